// Residency under a memory budget: lazy loads, LRU eviction of unpinned models, pins,
// one load for concurrent first uses, explicit load/unload, rescans, and adapted models
// whose base was evicted.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "core/checkpoint/safetensors.h"
#include "core/models/stylegan2/random_init.h"
#include "core/registry/model_repository.h"

namespace ganserve::core {
namespace {

namespace fs = std::filesystem;

// Counts what the repository reports.
class CountingObserver : public RepositoryObserver {
 public:
  void OnModelLoad(ModelKind kind, bool ok, double) override {
    absl::MutexLock lock(&mu_);
    ++loads_[kind];
    if (!ok) ++failed_loads_;
  }
  void OnModelEvicted(ModelKind) override {
    absl::MutexLock lock(&mu_);
    ++evictions_;
  }
  void OnRepositoryState(const RepositoryState& s) override {
    absl::MutexLock lock(&mu_);
    last_ = s;
  }
  int loads(ModelKind k) {
    absl::MutexLock lock(&mu_);
    return loads_[k];
  }
  int evictions() {
    absl::MutexLock lock(&mu_);
    return evictions_;
  }
  RepositoryState last() {
    absl::MutexLock lock(&mu_);
    return last_;
  }

 private:
  absl::Mutex mu_;
  std::map<ModelKind, int> loads_;
  int failed_loads_ = 0;
  int evictions_ = 0;
  RepositoryState last_;
};

class ModelResidencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ganserve_residency_test_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    for (const char* name : {"g1", "g2", "g3", "g4"}) WriteGenerator(name, false);
    // One model's footprint, measured: every model here has the same shapes.
    auto probe = ModelRepository::Create(root_.string(), {}, clip::ClipPrecision::kAuto);
    ASSERT_TRUE(probe.ok());
    ASSERT_EQ((*probe)->LoadAll(), 4);
    one_ = (*probe)->Get("g1")->resident.host_bytes;
    ASSERT_GT(one_, 0);
    EXPECT_EQ((*probe)->Get("g1")->resident.device_bytes, 0) << "a CPU device holds everything in host RAM";
  }
  void TearDown() override { fs::remove_all(root_); }

  void WriteGenerator(const std::string& name, bool pinned, uint64_t seed = 1) {
    fs::create_directories(root_ / name);
    auto weights = stylegan2::RandomGeneratorWeights(stylegan2::MakeConfig(32, 16, 2, 1, 8), seed, 0.1f);
    ASSERT_TRUE(SaveSafetensors((root_ / name / "g.safetensors").string(), weights, {}).ok());
    std::ofstream(root_ / name / "manifest.json")
        << R"({"kind": "generator", "checkpoint": "g.safetensors")" << (pinned ? R"(, "pinned": true)" : "") << "}";
  }

  // An adapted model folder over `base` whose delta holds `delta`.
  void WriteAdapted(const std::string& name, const std::string& base, const std::map<std::string, FloatTensor>& delta) {
    fs::create_directories(root_ / name);
    ASSERT_TRUE(SaveSafetensors((root_ / name / "delta.safetensors").string(), delta, {}).ok());
    std::ofstream(root_ / name / "manifest.json")
        << R"({"kind": "adapted_generator", "base_model": ")" << base << R"(", "delta": "delta.safetensors"})";
  }
  // A lightweight domain folder over `base` (domain modulation, values from `seed`).
  void WriteDomain(const std::string& name, const std::string& base, uint32_t seed, bool pinned = false) {
    fs::create_directories(root_ / name);
    std::map<std::string, FloatTensor> t;
    const auto cfg = stylegan2::MakeConfig(32, 16, 2, 1, 8);
    for (const auto& [key, shape] : stylegan2::DomainTensorShapes(cfg, stylegan2::DomainKind::kDomainModulation)) {
      FloatTensor v{shape, {}};
      for (int64_t i = 0; i < v.numel(); ++i) v.data.push_back(0.2f * std::sin(static_cast<float>(seed * 131 + i)));
      t[key] = v;
    }
    ASSERT_TRUE(SaveSafetensors((root_ / name / "domain.safetensors").string(), t, {}).ok());
    std::ofstream(root_ / name / "manifest.json")
        << R"({"kind": "adapted_generator", "base_model": ")" << base
        << R"(", "parameterization": "domain_modulation", "domain_file": "domain.safetensors")"
        << (pinned ? R"(, "pinned": true)" : "") << "}";
  }
  // A delta that moves one tensor of the fixture's generators.
  static std::map<std::string, FloatTensor> MovedDelta() {
    auto weights = stylegan2::RandomGeneratorWeights(stylegan2::MakeConfig(32, 16, 2, 1, 8), 1, 0.1f);
    std::map<std::string, FloatTensor> delta{{"convs.0.conv.weight", weights.at("convs.0.conv.weight")}};
    for (float& v : delta["convs.0.conv.weight"].data) v += 0.5f;
    return delta;
  }

  std::unique_ptr<ModelRepository> Open(double budget_models, ResidencyOptions::Preload preload) {
    ResidencyOptions r;
    r.device_budget_bytes = static_cast<int64_t>(budget_models * static_cast<double>(one_));
    r.preload = preload;
    auto repo = ModelRepository::Create(root_.string(), {}, clip::ClipPrecision::kAuto, r, &observer_);
    EXPECT_TRUE(repo.ok()) << repo.status();
    return repo.ok() ? std::move(*repo) : nullptr;
  }

  int64_t ResidentBytes(const ModelRepository& repo) {
    int64_t total = 0;
    for (const auto& m : repo.List()) total += m.resident.host_bytes + m.resident.device_bytes;
    return total;
  }
  ModelState StateOf(const ModelRepository& repo, const std::string& name) { return repo.Get(name)->state; }

  fs::path root_;
  int64_t one_ = 0;
  CountingObserver observer_;
};

TEST_F(ModelResidencyTest, MoreModelsThanTheBudgetAreAllServedWithLruEvictions) {
  auto repo = Open(2.5, ResidencyOptions::Preload::kNone);
  ASSERT_NE(repo, nullptr);
  EXPECT_EQ(repo->LoadAll(), 0) << "nothing preloads";
  for (const auto& m : repo->List()) EXPECT_EQ(m.state, ModelState::kUnloaded) << m.name;
  EXPECT_EQ(repo->Get("g1")->resolution, 0) << "shapes are known once loaded";

  stylegan2::GenerateParams p;
  p.latents = FloatTensor{{1, 16}, std::vector<float>(16, 0.3f)};
  std::shared_ptr<const stylegan2::Generator> held;
  for (const char* name : {"g1", "g2", "g3", "g4", "g1", "g2"}) {
    auto g = repo->GetGenerator(name);
    ASSERT_TRUE(g.ok()) << name << ": " << g.status();
    EXPECT_TRUE((*g)->Generate(p).ok()) << name;
    if (held == nullptr) held = *g;
    EXPECT_EQ(StateOf(*repo, name), ModelState::kReady) << name;
    EXPECT_LE(ResidentBytes(*repo), static_cast<int64_t>(2.5 * static_cast<double>(one_))) << "after " << name;
  }
  // g1 g2 | g3 evicts g1 | g4 evicts g2 | g1 evicts g3 | g2 evicts g4: least recently used first.
  EXPECT_EQ(observer_.evictions(), 4);
  EXPECT_EQ(observer_.loads(ModelKind::kGenerator), 6);
  EXPECT_EQ(StateOf(*repo, "g3"), ModelState::kUnloaded);
  EXPECT_EQ(StateOf(*repo, "g4"), ModelState::kUnloaded);
  EXPECT_EQ(repo->Get("g3")->resolution, 32) << "shapes stay known after an eviction";
  // A generator evicted while a request holds it keeps working for that request.
  EXPECT_TRUE(held->Generate(p).ok());
  // Use refreshes the order: touching g1 makes g2 the next victim.
  ASSERT_TRUE(repo->GetGenerator("g1").ok());
  ASSERT_TRUE(repo->GetGenerator("g3").ok());
  EXPECT_EQ(StateOf(*repo, "g1"), ModelState::kReady);
  EXPECT_EQ(StateOf(*repo, "g2"), ModelState::kUnloaded);
  // The gauges' snapshot follows.
  RepositoryState s = observer_.last();
  EXPECT_EQ(s.models[ModelState::kReady], 2);
  EXPECT_EQ(s.models[ModelState::kUnloaded], 2);
  EXPECT_EQ(s.resident[ModelKind::kGenerator].host_bytes, 2 * one_);
}

TEST_F(ModelResidencyTest, PinnedModelsStayAndPreloadStopsAtTheBudget) {
  WriteGenerator("g3", /*pinned=*/true);
  auto repo = Open(2.5, ResidencyOptions::Preload::kAll);
  ASSERT_NE(repo, nullptr);
  // The pinned g3 first, then g1, g2; g4 would evict, so preloading stops around there.
  const int resident = repo->LoadAll();
  EXPECT_GE(resident, 2);
  EXPECT_LE(resident, 3);
  EXPECT_TRUE(repo->Get("g3")->pinned);
  EXPECT_EQ(StateOf(*repo, "g3"), ModelState::kReady);
  for (const char* name : {"g1", "g2", "g4", "g1", "g2", "g4"}) ASSERT_TRUE(repo->GetGenerator(name).ok()) << name;
  EXPECT_EQ(StateOf(*repo, "g3"), ModelState::kReady) << "a pinned model is never evicted";

  // LoadModel with pin, then UnloadModel unpins and frees.
  auto loaded = repo->Load("g1", /*pin=*/true);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->pinned);
  EXPECT_EQ(loaded->state, ModelState::kReady);
  for (const char* name : {"g2", "g4", "g2"}) ASSERT_TRUE(repo->GetGenerator(name).ok()) << name;
  EXPECT_EQ(StateOf(*repo, "g1"), ModelState::kReady);
  auto unloaded = repo->Unload("g1");
  ASSERT_TRUE(unloaded.ok());
  EXPECT_FALSE(unloaded->pinned);
  EXPECT_EQ(unloaded->state, ModelState::kUnloaded);
  EXPECT_EQ(unloaded->resident.host_bytes, 0);
  EXPECT_EQ(repo->Unload("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo->Load("nope", false).status().code(), absl::StatusCode::kNotFound);
  // Pinned models alone may exceed the budget: they stay, and are reported.
  ASSERT_TRUE(repo->Load("g2", true).ok());
  ASSERT_TRUE(repo->Load("g4", true).ok());
  EXPECT_GT(ResidentBytes(*repo), static_cast<int64_t>(2.5 * static_cast<double>(one_)));
}

TEST_F(ModelResidencyTest, ConcurrentFirstUsesShareOneLoad) {
  auto repo = Open(0, ResidencyOptions::Preload::kNone);
  ASSERT_NE(repo, nullptr);
  repo->LoadAll();
  std::vector<std::thread> threads;
  std::vector<const stylegan2::Generator*> got(6, nullptr);
  std::atomic<int> failures{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      auto g = repo->GetGenerator("g2");
      if (g.ok()) {
        got[i] = g->get();
      } else {
        ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(observer_.loads(ModelKind::kGenerator), 1);
  for (auto* g : got) EXPECT_EQ(g, got[0]);
}

TEST_F(ModelResidencyTest, RescanAndFailedModelsLoadAgainWhenFixed) {
  auto repo = Open(0, ResidencyOptions::Preload::kNone);
  ASSERT_NE(repo, nullptr);
  repo->LoadAll();
  WriteGenerator("g5", false);
  fs::create_directories(root_ / "broken");
  std::ofstream(root_ / "broken/manifest.json") << R"({"kind": "generator", "checkpoint": "later.safetensors"})";
  fs::remove_all(root_ / "g4");
  // (A Get of "g5" would already find it: ModelRepositoryTest.AModelPublishedByAnother...)
  ModelRepository::ScanResult r = repo->Rescan();
  EXPECT_EQ(r.added, (std::vector<std::string>{"broken", "g5"}));
  EXPECT_EQ(r.removed, (std::vector<std::string>{"g4"}));
  EXPECT_EQ(StateOf(*repo, "g5"), ModelState::kUnloaded);
  EXPECT_TRUE(repo->GetGenerator("g5").ok());
  // The missing checkpoint shows at first use; once it is there, LoadModel retries.
  EXPECT_EQ(repo->GetGenerator("broken").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StateOf(*repo, "broken"), ModelState::kFailed);
  fs::copy_file(root_ / "g1/g.safetensors", root_ / "broken/later.safetensors");
  EXPECT_EQ(repo->GetGenerator("broken").status().code(), absl::StatusCode::kFailedPrecondition)
      << "a failed model stays failed until asked to load again";
  auto fixed = repo->Load("broken", false);
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_EQ(fixed->state, ModelState::kReady);
}

TEST_F(ModelResidencyTest, AnAdaptedModelLoadsItsEvictedBase) {
  WriteAdapted("sketch", "g1", MovedDelta());
  auto repo = Open(1.5, ResidencyOptions::Preload::kNone);
  ASSERT_NE(repo, nullptr);
  repo->LoadAll();
  ASSERT_TRUE(repo->GetGenerator("g2").ok());
  auto adapted = repo->GetGenerator("sketch");
  ASSERT_TRUE(adapted.ok()) << adapted.status();
  EXPECT_EQ(StateOf(*repo, "sketch"), ModelState::kReady);
  EXPECT_EQ(StateOf(*repo, "g2"), ModelState::kUnloaded);
  // Its base loaded for it and was evicted again to fit the budget.
  EXPECT_EQ(StateOf(*repo, "g1"), ModelState::kUnloaded);
  EXPECT_EQ(repo->Get("sketch")->resolution, 32);
  // A manifest naming itself (or another adapted model) as its base fails; it never waits on itself.
  WriteAdapted("loop", "loop", MovedDelta());
  WriteAdapted("chain", "sketch", MovedDelta());
  repo->Rescan();
  for (const char* name : {"loop", "chain"}) {
    auto g = repo->GetGenerator(name);
    EXPECT_EQ(g.status().code(), absl::StatusCode::kFailedPrecondition) << name;
    EXPECT_NE(g.status().message().find("not a base generator"), std::string::npos) << g.status();
  }
}

// Lightweight domains render on their base's weights: loading one loads the base, its
// own footprint is its few numbers, the base stays while a pinned domain needs it, and an
// evicted or unloaded base takes its domains with it.
TEST_F(ModelResidencyTest, LightweightDomainsRideOnTheirBase) {
  WriteDomain("d1", "g1", 1);
  WriteDomain("d2", "g1", 2);
  auto repo = Open(2.5, ResidencyOptions::Preload::kNone);
  ASSERT_NE(repo, nullptr);
  repo->LoadAll();
  EXPECT_EQ(repo->Get("d1")->parameterization, "domain_modulation");
  auto d1 = repo->GetGenerator("d1");
  ASSERT_TRUE(d1.ok()) << d1.status();
  auto g1 = repo->GetGenerator("g1");
  ASSERT_TRUE(g1.ok());
  EXPECT_EQ((*d1)->weights_id(), (*g1)->weights_id()) << "no copy of the base";
  ASSERT_TRUE(repo->GetGenerator("d2").ok());
  const ModelInfo info = *repo->Get("d1");
  EXPECT_EQ(info.state, ModelState::kReady);
  EXPECT_EQ(info.trained_parameters, 7 * 8);  // conv1 and six convs of 8 channels
  EXPECT_LT(info.resident.host_bytes * 100, one_);
  // Two other generators push g1 out (LRU): its domains go with it.
  ASSERT_TRUE(repo->GetGenerator("g2").ok());
  ASSERT_TRUE(repo->GetGenerator("g3").ok());
  EXPECT_EQ(StateOf(*repo, "g1"), ModelState::kUnloaded);
  EXPECT_EQ(StateOf(*repo, "d1"), ModelState::kUnloaded);
  EXPECT_EQ(StateOf(*repo, "d2"), ModelState::kUnloaded);
  // A pinned domain keeps its base.
  ASSERT_TRUE(repo->Load("d1", /*pin=*/true).ok());
  for (const char* name : {"g2", "g3", "g4", "g2", "g3"}) ASSERT_TRUE(repo->GetGenerator(name).ok()) << name;
  EXPECT_EQ(StateOf(*repo, "g1"), ModelState::kReady);
  EXPECT_EQ(StateOf(*repo, "d1"), ModelState::kReady);
  // Unloading the base unloads its domains.
  ASSERT_TRUE(repo->Unload("g1").ok());
  EXPECT_EQ(StateOf(*repo, "d1"), ModelState::kUnloaded);
  // A domain whose tensors do not fit its base fails with the reason.
  WriteDomain("d3", "g1", 3);
  std::map<std::string, FloatTensor> wrong{{"conv1.domain", FloatTensor{{3}, {0, 0, 0}}}};
  ASSERT_TRUE(SaveSafetensors((root_ / "d3" / "domain.safetensors").string(), wrong, {}).ok());
  repo->Rescan();
  auto d3 = repo->GetGenerator("d3");
  EXPECT_EQ(d3.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(d3.status().message().find("does not fit"), std::string::npos) << d3.status();
}

// A thousand domains of one base: all load (a file read each, no generator copy), their
// memory is a fraction of one generator's, and a batch mixing 16 of them renders each
// image as its solo render.
TEST_F(ModelResidencyTest, AThousandDomainsLoadAndServeOneMixedBatch) {
  constexpr int kDomains = 1000;
  for (int i = 0; i < kDomains; ++i) WriteDomain("dom-" + std::to_string(i), "g1", static_cast<uint32_t>(i + 10));
  auto repo = Open(0, ResidencyOptions::Preload::kNone);
  ASSERT_NE(repo, nullptr);
  repo->LoadAll();
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<const stylegan2::Generator>> views;
  for (int i = 0; i < kDomains; ++i) {
    auto g = repo->GetGenerator("dom-" + std::to_string(i));
    ASSERT_TRUE(g.ok()) << g.status();
    views.push_back(*g);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int64_t domain_bytes = 0;
  for (const auto& m : repo->List()) {
    if (m.lightweight()) domain_bytes += m.resident.host_bytes + m.resident.device_bytes;
  }
  std::printf("%d domains loaded in %.2f s; they hold %lld bytes (the base generator: %lld)\n", kDomains, seconds,
              static_cast<long long>(domain_bytes), static_cast<long long>(one_));
  // Each holds its 56 numbers twice (on the device and the host copy exports fold from).
  EXPECT_EQ(domain_bytes, int64_t{kDomains} * 2 * 56 * 4);
  stylegan2::GenerateParams p;
  for (int i = 0; i < 16; ++i) {
    std::vector<float> z(16);
    for (int j = 0; j < 16; ++j) z[j] = std::cos(static_cast<float>(i * 16 + j));
    p.latents.shape = {i + 1, 16};
    p.latents.data.insert(p.latents.data.end(), z.begin(), z.end());
    p.domains.push_back(views[static_cast<size_t>(i * 61)]->domain());
  }
  auto batch = views[0]->Generate(p);
  ASSERT_TRUE(batch.ok()) << batch.status();
  const int64_t row = batch->images.numel() / 16;
  for (int i = 0; i < 16; ++i) {
    stylegan2::GenerateParams one;
    one.latents = FloatTensor{
        {1, 16}, std::vector<float>(p.latents.data.begin() + i * 16, p.latents.data.begin() + (i + 1) * 16)};
    auto solo = views[static_cast<size_t>(i * 61)]->Generate(one);
    ASSERT_TRUE(solo.ok());
    float diff = 0;
    for (int64_t k = 0; k < row; ++k)
      diff = std::max(diff, std::fabs(solo->images.data[k] - batch->images.data[i * row + k]));
    EXPECT_LE(diff, 2e-5f) << "image " << i;
  }
}

// An adapted model over an NVIDIA base with conv_clamp renders through the same clamp:
// with a delta that changes nothing it renders exactly as its base.
TEST_F(ModelResidencyTest, AnAdaptedModelKeepsItsBasesConvClamp) {
  fs::create_directories(root_ / "nv");
  fs::copy_file(std::string(GANSERVE_SOURCE_DIR) + "/tests/fixtures/nvidia/tiny_clamp_p4.pkl", root_ / "nv/g.pkl");
  std::ofstream(root_ / "nv/manifest.json") << R"({"kind": "generator", "checkpoint": "g.pkl"})";
  auto repo = Open(0, ResidencyOptions::Preload::kAll);
  ASSERT_NE(repo, nullptr);
  repo->LoadAll();
  auto base = repo->GetGenerator("nv");
  ASSERT_TRUE(base.ok()) << base.status();
  ASSERT_GT((*base)->config().conv_clamp, 0.0f);
  const auto sd = (*base)->StateDict();
  WriteAdapted("nv-same", "nv", {{"conv1.activate.bias", sd.at("conv1.activate.bias")}});
  repo->Rescan();
  auto adapted = repo->GetGenerator("nv-same");
  ASSERT_TRUE(adapted.ok()) << adapted.status();
  EXPECT_EQ((*adapted)->config().conv_clamp, (*base)->config().conv_clamp);
  stylegan2::GenerateParams p;
  p.latents = FloatTensor{{2, 64}, std::vector<float>(128, 0.4f)};
  p.noise = stylegan2::NoiseMode::kConst;
  auto a = (*base)->Generate(p);
  auto b = (*adapted)->Generate(p);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->images.data.size(), b->images.data.size());
  // Two generators with the same weights: equal up to kernel choices (without the clamp
  // the images differ by far more).
  float diff = 0;
  for (size_t i = 0; i < a->images.data.size(); ++i)
    diff = std::max(diff, std::fabs(a->images.data[i] - b->images.data[i]));
  EXPECT_LE(diff, 1e-5f);
}

// Imported models may be deleted, but not while another model builds on them.
TEST_F(ModelResidencyTest, AnImportedBaseIsDeletedOnlyAfterTheModelsOverIt) {
  std::ofstream(root_ / "g2/manifest.json")
      << R"({"kind": "generator", "checkpoint": "g.safetensors", "imported": true})";
  WriteAdapted("over-g2", "g2", MovedDelta());
  auto repo = Open(0, ResidencyOptions::Preload::kNone);
  ASSERT_NE(repo, nullptr);
  repo->LoadAll();
  EXPECT_EQ(repo->Delete("g1").code(), absl::StatusCode::kFailedPrecondition) << "installed with the server";
  absl::Status st = repo->Delete("g2");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("over-g2"), std::string::npos) << st;
  ASSERT_TRUE(repo->Delete("over-g2").ok());
  ASSERT_TRUE(repo->Delete("g2").ok());
  EXPECT_FALSE(fs::exists(root_ / "g2"));
}

}  // namespace
}  // namespace ganserve::core
