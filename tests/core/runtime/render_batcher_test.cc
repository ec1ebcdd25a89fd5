// The render batcher: concurrent compatible work shares one generator call, each
// request gets its own rows back, and limits, cancellation and shutdown answer every
// piece of work exactly once.
#include "core/runtime/render_batcher.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/util/retry_hint.h"
#include "tests/testing/tensor_compare.h"
#include "tests/testing/tiny_models.h"

namespace ganserve::core {
namespace {

using stylegan2::GenerateParams;
using stylegan2::GenerateResult;
using stylegan2::Generator;

std::shared_ptr<const Generator> Tiny() { return testing::TinyGenerator(16, 32, 3); }

GenerateParams Seeds(const std::vector<uint32_t>& seeds, float psi = 0.7f) {
  GenerateParams p;
  p.latents.shape = {static_cast<int64_t>(seeds.size()), 32};
  for (uint32_t s : seeds) {
    auto z = stylegan2::SeedToZ(s, 32);
    p.latents.data.insert(p.latents.data.end(), z.begin(), z.end());
  }
  p.noise_seeds = seeds;
  p.truncation = psi;
  p.return_wplus = true;
  return p;
}

// Holds the executor's thread until released, so that work queues up behind it.
// Holds the executor's thread until release is notified; Block returns once it holds.
struct Gate {
  absl::Notification running, release;
  absl::Status Block(DeviceExecutor* e) {
    absl::Status s = e->Submit(WorkClass::kInteractive, [this](bool) {
      running.Notify();
      release.WaitForNotification();
    });
    if (s.ok()) running.WaitForNotification();
    return s;
  }
};

struct Collected {
  absl::Mutex mu;
  std::vector<std::pair<int, int>> calls;  // (images, requests)
  std::map<int, absl::StatusOr<GenerateResult>> results;
  int answers = 0;

  // Records each coalesced call (images, requests).
  RenderBatcher::BatchObserver Observer() {
    return [this](int images, int requests) {
      absl::MutexLock lock(&mu);
      calls.push_back({images, requests});
    };
  }

  void WaitFor(int n) {
    absl::MutexLock lock(&mu);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return answers >= n; };
    mu.Await(absl::Condition(&reached));
  }
};

RenderBatcher::Work MakeWork(std::shared_ptr<const Generator> g, GenerateParams p, int id, Collected* c) {
  RenderBatcher::Work w;
  w.generator = std::move(g);
  w.params = std::move(p);
  w.done = [c, id](absl::StatusOr<GenerateResult> r) {
    absl::MutexLock lock(&c->mu);
    c->results.emplace(id, std::move(r));
    ++c->answers;
  };
  return w;
}

TEST(RenderBatcherTest, CompatibleWorkSharesOneCallAndGetsItsOwnRows) {
  auto gen = Tiny();
  DeviceExecutor exec({});
  Collected c;
  RenderBatcher batcher(&exec, {}, c.Observer());
  Gate gate;
  ASSERT_TRUE(gate.Block(&exec).ok());
  const std::vector<std::vector<uint32_t>> seeds = {{1, 2}, {3}, {4, 5, 6}};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(batcher.Submit(MakeWork(gen, Seeds(seeds[i]), i, &c)).ok());
  gate.release.Notify();
  c.WaitFor(3);
  exec.Shutdown();
  ASSERT_EQ(c.answers, 3);
  EXPECT_EQ(c.calls, (std::vector<std::pair<int, int>>{{6, 3}}));
  for (int i = 0; i < 3; ++i) {
    const auto& r = c.results.at(i);
    ASSERT_TRUE(r.ok()) << r.status();
    auto solo = gen->Generate(Seeds(seeds[i]));
    ASSERT_TRUE(solo.ok());
    EXPECT_EQ(r->images.shape, solo->images.shape);
    EXPECT_EQ(r->wplus.shape, solo->wplus.shape);
    // Same images; the batched kernels may differ from a solo call by float rounding.
    EXPECT_LE(testing::MaxAbsDiff(r->images, solo->images), 1e-4f);
    EXPECT_LE(testing::MaxAbsDiff(r->wplus, solo->wplus), 1e-5f);
  }
}

// Requests for a base and for lightweight domains of it share one call, each row in its
// own domain; another generator's requests do not join.
TEST(RenderBatcherTest, DomainsOfOneBaseShareOneCall) {
  auto gen = Tiny();
  auto other = testing::TinyGenerator(16, 32, 4);
  std::vector<std::shared_ptr<const Generator>> views;
  for (auto kind : {stylegan2::DomainKind::kDomainModulation, stylegan2::DomainKind::kStyleSpaceDirection}) {
    stylegan2::DomainTensors t;
    t.kind = kind;
    for (const auto& [name, shape] : stylegan2::DomainTensorShapes(gen->config(), kind)) {
      FloatTensor v{shape, {}};
      for (int64_t i = 0; i < v.numel(); ++i) v.data.push_back(0.3f * std::sin(static_cast<float>(i + 1)));
      t.tensors[name] = v;
    }
    auto d = gen->MakeDomain(t);
    ASSERT_TRUE(d.ok()) << d.status();
    auto view = Generator::WithDomain(gen, *d);
    ASSERT_TRUE(view.ok());
    views.push_back(*view);
  }
  const std::vector<std::shared_ptr<const Generator>> gens = {views[0], gen, views[1], views[0], other};
  DeviceExecutor exec({});
  Collected c;
  RenderBatcher batcher(&exec, {}, c.Observer());
  Gate gate;
  ASSERT_TRUE(gate.Block(&exec).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(batcher.Submit(MakeWork(gens[i], Seeds({static_cast<uint32_t>(10 + i), 20}), i, &c)).ok());
  }
  gate.release.Notify();
  c.WaitFor(5);
  exec.Shutdown();
  ASSERT_EQ(c.calls.size(), 2u);
  EXPECT_EQ(c.calls[0], (std::pair<int, int>{8, 4}));  // the base and its domains
  EXPECT_EQ(c.calls[1], (std::pair<int, int>{2, 1}));  // another generator
  for (int i = 0; i < 5; ++i) {
    const auto& r = c.results.at(i);
    ASSERT_TRUE(r.ok()) << r.status();
    auto solo = gens[i]->Generate(Seeds({static_cast<uint32_t>(10 + i), 20}));
    ASSERT_TRUE(solo.ok());
    EXPECT_LE(testing::MaxAbsDiff(r->images, solo->images), 1e-4f) << i;
  }
  // The domains changed what rendered: same seeds, different images.
  auto base = gen->Generate(Seeds({10, 20}));
  ASSERT_TRUE(base.ok());
  EXPECT_GT(testing::MaxAbsDiff(c.results.at(0)->images, base->images), 1e-3f);
}

TEST(RenderBatcherTest, LimitsAndIncompatibleSettingsSplitCalls) {
  auto gen = Tiny();
  DeviceExecutor exec({});
  Collected c;
  RenderBatcher::Options opt;
  opt.max_images = 4;
  RenderBatcher batcher(&exec, opt, c.Observer());
  Gate gate;
  ASSERT_TRUE(gate.Block(&exec).ok());
  ASSERT_TRUE(batcher.Submit(MakeWork(gen, Seeds({1, 2}), 0, &c)).ok());
  ASSERT_TRUE(batcher.Submit(MakeWork(gen, Seeds({3, 4}, 0.5f), 1, &c)).ok());  // other truncation
  ASSERT_TRUE(batcher.Submit(MakeWork(gen, Seeds({5, 6}), 2, &c)).ok());
  ASSERT_TRUE(batcher.Submit(MakeWork(gen, Seeds({7}), 3, &c)).ok());                 // past max_images: next call
  ASSERT_TRUE(batcher.Submit(MakeWork(gen, Seeds({8, 9, 10, 11, 12}), 4, &c)).ok());  // alone, larger than the cap
  gate.release.Notify();
  c.WaitFor(5);
  exec.Shutdown();
  ASSERT_EQ(c.answers, 5);
  EXPECT_EQ(c.calls, (std::vector<std::pair<int, int>>{{4, 2}, {2, 1}, {1, 1}, {5, 1}}));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(c.results.at(i).ok()) << i << " " << c.results.at(i).status();
}

TEST(RenderBatcherTest, CancelledQueueFullAndShutdownAnswerEveryPieceOnce) {
  auto gen = Tiny();
  DeviceExecutor::Options eo;
  eo.max_queue = {3, 1, 1};
  DeviceExecutor exec(eo);
  Collected c;
  RenderBatcher::Options bo;
  bo.max_waiting = 3;
  RenderBatcher batcher(&exec, bo);
  Gate gate;
  ASSERT_TRUE(gate.Block(&exec).ok());
  auto unwanted = MakeWork(gen, Seeds({1}), 0, &c);
  unwanted.wanted = [] { return false; };
  ASSERT_TRUE(batcher.Submit(std::move(unwanted)).ok());
  ASSERT_TRUE(batcher.Submit(MakeWork(gen, Seeds({2}), 1, &c)).ok());
  ASSERT_TRUE(batcher.Submit(MakeWork(gen, Seeds({3}), 2, &c)).ok());
  // Three pieces wait (in one executor task): the fourth is refused, with a retry
  // delay, and never answered.
  absl::Status full = batcher.Submit(MakeWork(gen, Seeds({4}), 3, &c));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_TRUE(RetryAfter(full).has_value()) << full;
  EXPECT_EQ(exec.QueueDepth(WorkClass::kInteractive), 1u);
  // Shutdown while the gate still runs: the queued tasks are dropped.
  std::thread stopper([&] { exec.Shutdown(); });
  // The queue is full, so Submit says ResourceExhausted until the executor is stopping.
  while (exec.Submit(WorkClass::kInteractive, [](bool) {}).code() != absl::StatusCode::kUnavailable) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  gate.release.Notify();
  stopper.join();
  EXPECT_EQ(c.answers, 3);
  EXPECT_EQ(c.results.count(3), 0u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.results.at(i).status().code(), absl::StatusCode::kUnavailable) << i;
  }
  EXPECT_EQ(batcher.Submit(MakeWork(gen, Seeds({5}), 5, &c)).code(), absl::StatusCode::kUnavailable);
}

// Under load the executor's queue holds one task per waiting batch, not one per request:
// 40 compatible requests behind a busy device are one queued task, rendered as 32 + 8.
TEST(RenderBatcherTest, TheQueueHoldsOneTaskPerWaitingBatch) {
  auto gen = Tiny();
  DeviceExecutor exec({});
  Collected c;
  RenderBatcher::Options opt;
  opt.max_images = 32;
  RenderBatcher batcher(&exec, opt, c.Observer());
  Gate gate;
  ASSERT_TRUE(gate.Block(&exec).ok());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(batcher.Submit(MakeWork(gen, Seeds({static_cast<uint32_t>(i)}), i, &c)).ok());
  }
  EXPECT_EQ(exec.QueueDepth(WorkClass::kInteractive), 1u);
  gate.release.Notify();
  c.WaitFor(40);
  exec.Shutdown();
  EXPECT_EQ(c.calls, (std::vector<std::pair<int, int>>{{32, 32}, {8, 8}}));
  for (int i = 0; i < 40; ++i) EXPECT_TRUE(c.results.at(i).ok()) << i;
}

TEST(RenderBatcherTest, UnwantedWorkIsSkippedBeforeRendering) {
  auto gen = Tiny();
  DeviceExecutor exec({});
  Collected c;
  RenderBatcher batcher(&exec, {}, c.Observer());
  Gate gate;
  ASSERT_TRUE(gate.Block(&exec).ok());
  auto unwanted = MakeWork(gen, Seeds({1}), 0, &c);
  unwanted.wanted = [] { return false; };
  ASSERT_TRUE(batcher.Submit(std::move(unwanted)).ok());
  ASSERT_TRUE(batcher.Submit(MakeWork(gen, Seeds({2, 3}), 1, &c)).ok());
  gate.release.Notify();
  c.WaitFor(2);
  exec.Shutdown();
  ASSERT_EQ(c.answers, 2);
  EXPECT_EQ(c.results.at(0).status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(c.results.at(1).ok());
  EXPECT_EQ(c.calls, (std::vector<std::pair<int, int>>{{2, 1}}));
}

}  // namespace
}  // namespace ganserve::core
