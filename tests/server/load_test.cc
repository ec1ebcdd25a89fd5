// A bounded load test on loopback: concurrent GenerateSamples callers, a running
// adaptation job, watchers that read slowly or hang up mid-stream, and a slow image
// reader. Every call must finish OK or be refused with RESOURCE_EXHAUSTED (small queue
// limit), no stream may buffer without bound, and resident memory after the run must
// come back near its level before it. Prints p50/p99 latency and memory figures.
// Bounded: a fixed number of requests and a 180 s cap.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/server/test_server.h"

namespace ganserve::testing {
namespace {

using Clock = std::chrono::steady_clock;

double ResidentMb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;  // NOLINT(runtime/int)
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

TEST(LoadTest, ConcurrentCallersJobAndSlowWatchersStayBounded) {
  TestServerOptions opt;
  opt.max_interactive_queue = 10;
  opt.max_images_per_request = 64;
  TestServer server(::testing::TempDir() + "/load_test_" + std::to_string(::getpid()), opt);
  const auto deadline = Clock::now() + std::chrono::seconds(180);
  auto generate = [&](int count, int batch, int64_t first_seed, int read_delay_ms) {
    auto stub = server.Stub();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    v1::GenerateSamplesRequest r;
    r.set_model("tiny");
    for (int i = 0; i < count; ++i) r.add_seeds(first_seed + i);
    r.set_batch_size(batch);
    auto reader = stub->GenerateSamples(&ctx, r);
    v1::ImageBatch b;
    int images = 0;
    while (reader->Read(&b)) {
      images += b.images_size();
      if (read_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(read_delay_ms));
    }
    grpc::Status st = reader->Finish();
    return std::make_pair(st, st.ok() ? images == count : true);
  };
  // Warm up (first calls allocate the allocator's pools), then measure the baseline.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(generate(4, 2, 100 + i, 0).first.ok());
  const double rss_before = ResidentMb();

  // A training job in the background, followed by slow and disconnecting watchers.
  std::string job_id;
  std::atomic<bool> adapt_ok{false};
  std::thread adapter([&] {
    auto stub = server.Stub();
    grpc::ClientContext ctx;
    v1::AdaptDomainRequest r;
    r.set_model("tiny");
    r.set_source_text("photo");
    r.set_target_text("sketch");
    r.set_iterations(30);
    r.set_preview_every(5);
    auto reader = stub->AdaptDomain(&ctx, r);
    v1::JobEvent e;
    while (reader->Read(&e)) {
      if (job_id.empty()) job_id = e.job().id();
    }
    adapt_ok = reader->Finish().ok() && e.job().state() == v1::JOB_STATE_SUCCEEDED;
  });
  while (job_id.empty() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_FALSE(job_id.empty()) << "the adaptation job never started";
  std::atomic<int> slow_watchers_done{0}, hangups_done{0};
  std::vector<std::thread> watchers;
  for (int w = 0; w < 4; ++w) {
    watchers.emplace_back([&, w] {
      auto stub = server.Stub();
      grpc::ClientContext ctx;
      v1::WatchJobRequest r;
      r.set_id(job_id);
      auto reader = stub->WatchJob(&ctx, r);
      v1::JobEvent e;
      int n = 0;
      bool terminal = false;
      while (reader->Read(&e)) {
        ++n;
        terminal = e.job().state() == v1::JOB_STATE_SUCCEEDED;
        if (w % 2 == 1 && n == 3) {
          ctx.TryCancel();  // hang up mid-stream
          break;
        }
        if (w % 2 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(150));  // slow reader
      }
      grpc::Status st = reader->Finish();
      if (w % 2 == 0 && st.ok() && terminal) ++slow_watchers_done;
      if (w % 2 == 1 && st.error_code() == grpc::StatusCode::CANCELLED) ++hangups_done;
    });
  }

  // Concurrent callers: 12 threads x 5 requests, plus one slow image reader.
  std::mutex mu;
  std::vector<double> latencies;
  int ok = 0, refused = 0, other = 0, incomplete = 0;
  std::vector<std::thread> callers;
  for (int t = 0; t < 12; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 5 && Clock::now() < deadline; ++i) {
        const auto t0 = Clock::now();
        auto [st, complete] = generate(2, 2, 1000 + t * 10 + i, 0);
        const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
        std::lock_guard<std::mutex> lock(mu);
        if (st.ok()) {
          ++ok;
          latencies.push_back(secs);
          if (!complete) ++incomplete;
        } else if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          ++refused;
          EXPECT_NE(st.error_message().find("queue"), std::string::npos) << st.error_message();
        } else {
          ++other;
          ADD_FAILURE() << "unexpected status " << st.error_code() << ": " << st.error_message();
        }
      }
    });
  }
  auto slow = std::async(std::launch::async, [&] { return generate(16, 2, 5000, 200); });
  for (auto& c : callers) c.join();
  auto [slow_status, slow_complete] = slow.get();
  adapter.join();
  for (auto& w : watchers) w.join();
  const double rss_peak_seen = ResidentMb();

  ASSERT_LT(Clock::now(), deadline) << "the load test ran past its cap";
  EXPECT_TRUE(adapt_ok) << "the adaptation job did not succeed under load";
  EXPECT_EQ(slow_watchers_done, 2) << "slow watchers must still get the terminal event";
  EXPECT_EQ(hangups_done, 2);
  EXPECT_TRUE(slow_status.ok() || slow_status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED)
      << slow_status.error_message();
  EXPECT_TRUE(slow_complete);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(incomplete, 0);
  EXPECT_EQ(ok + refused, 60);
  EXPECT_GT(ok, 0);
  // The server is idle again: memory comes back near the baseline (generous: the
  // allocator keeps some pages; unbounded buffering would show hundreds of MB).
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const double rss_after = ResidentMb();
  EXPECT_LT(rss_after - rss_before, 200.0)
      << "resident memory grew from " << rss_before << " to " << rss_after << " MB";
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies.empty() ? 0.0 : latencies[static_cast<size_t>(p * (latencies.size() - 1))];
  };
  std::printf(
      "load: 60 GenerateSamples calls (2 images each) from 12 threads + a 16-image slow reader + a 30-step "
      "adaptation + 2 slow and 2 hanging-up watchers: %d ok, %d RESOURCE_EXHAUSTED; latency p50 %.3f s, "
      "p99 %.3f s; resident memory before %.0f MB, after load %.0f MB, after idle %.0f MB\n",
      ok, refused, pct(0.5), pct(0.99), rss_before, rss_peak_seen, rss_after);
}

}  // namespace
}  // namespace ganserve::testing
