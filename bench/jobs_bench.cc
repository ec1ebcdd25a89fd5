// ganserve_jobs_bench: the shared job store under replicas, with runners that do no
// work, so the figures are the store's and the engine's: jobs per second through submit
// -> claim -> finish, the claim latency (submit to RUNNING), and the events per second
// that reach watchers spread over the replicas (each watcher on a replica that does not
// run the job reads the stored events). Prints one JSON object.
//   ganserve_jobs_bench --store sqlite --replicas 3 --jobs 300 --watchers 100
//   pg_virtualenv ganserve_jobs_bench --store postgresql:// ...   (bench/scaleout.sh)
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/jobs/job_engine.h"
#include "core/jobs/postgres_job_store.h"
#include "core/jobs/sqlite_job_store.h"
#include "core/util/status_macros.h"

namespace ganserve::core {
namespace {

class NoopRunner : public JobRunner {
 public:
  explicit NoopRunner(int64_t steps) : steps_(steps) {}
  int64_t total_steps() const override { return steps_; }
  int64_t step() const override { return step_; }
  absl::StatusOr<std::map<std::string, float>> Step() override {
    ++step_;
    return std::map<std::string, float>{{"loss", 0.0f}};
  }
  absl::StatusOr<FloatTensor> PreviewImages(bool) override { return FloatTensor{}; }
  absl::Status SaveCheckpoint(const std::string&) override { return absl::OkStatus(); }
  absl::Status RestoreCheckpoint(const std::string&) override { return absl::OkStatus(); }
  absl::StatusOr<std::string> Finish() override { return std::string("done"); }

 private:
  int64_t steps_;
  int64_t step_ = 0;
};

absl::StatusOr<std::unique_ptr<JobStore>> OpenStore(const std::string& store, const std::string& dir) {
  if (store == "sqlite") {
    ASSIGN_OR_RETURN(auto s, SqliteJobStore::Open(dir + "/jobs.db"));
    return std::unique_ptr<JobStore>(std::move(s));
  }
  ASSIGN_OR_RETURN(auto s, PostgresJobStore::Open(store));
  return std::unique_ptr<JobStore>(std::move(s));
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

struct Replica {
  std::unique_ptr<JobStore> store;
  std::unique_ptr<DeviceExecutor> executor;
  std::unique_ptr<JobEngine> engine;
};

int Run(const std::string& store_kind, int replicas, int jobs, int steps, int watchers, double poll,
        bool announcements) {
  const std::string dir = std::filesystem::temp_directory_path() / ("ganserve_jobs_bench_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::vector<Replica> rs;
  // One more that claims nothing (an inference-only replica): jobs submitted there are
  // claimed by another replica, which hears of them from the store.
  for (int i = 0; i <= replicas; ++i) {
    Replica r;
    auto store = OpenStore(store_kind, dir);
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
      return 1;
    }
    r.store = std::move(*store);
    r.executor = std::make_unique<DeviceExecutor>(DeviceExecutor::Options{});
    JobEngine::Options o;
    o.checkpoint_dir = dir + "/ckpt";
    o.checkpoint_every = 0;
    o.preview_every = 0;
    o.max_queued = static_cast<size_t>(jobs) + 1;
    o.leases.enabled = true;
    o.leases.worker = "r" + std::to_string(i);
    o.leases.poll_seconds = poll;
    o.leases.claims = i < replicas;
    o.leases.announcements = announcements;
    r.engine = std::make_unique<JobEngine>(o, r.store.get(), r.executor.get(), [](const JobEvent& e) {
      return std::string(64, 'e') + std::to_string(e.seq);
    });
    r.engine->RegisterFactory(JobKind::kAdapt, [steps](const JobRecord&) {
      return absl::StatusOr<std::unique_ptr<JobRunner>>(std::make_unique<NoopRunner>(steps));
    });
    if (!r.engine->Start().ok()) return 1;
    rs.push_back(std::move(r));
  }
  const std::string run = "r" + std::to_string(getpid()) + "-";  // ids unique in a reused database
  auto submit = [&](int replica, const std::string& id) {
    JobRecord rec;
    rec.id = run + id;
    rec.kind = JobKind::kAdapt;
    rec.model = "m";
    return rs[replica].engine->Submit(rec).status();
  };
  auto wait_end = [&](const std::string& id) {
    for (;;) {
      auto rec = rs[0].store->GetJob(run + id);
      if (rec.ok() && IsTerminal(rec->state)) return *rec;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };
  // Claim latency with free replicas: one job at a time, submit to RUNNING.
  std::vector<double> idle_ms;
  for (int k = 0; k < 20; ++k) {
    const std::string id = "idle" + std::to_string(k);
    if (!submit(k % replicas, id).ok()) return 1;
    const JobRecord rec = wait_end(id);
    idle_ms.push_back(static_cast<double>(rec.start_time_ms - rec.create_time_ms));
  }
  // Claim latency of a job submitted to the replica that claims nothing.
  std::vector<double> remote_ms;
  for (int k = 0; k < 20; ++k) {
    const std::string id = "remote" + std::to_string(k);
    if (!submit(replicas, id).ok()) return 1;
    const JobRecord rec = wait_end(id);
    remote_ms.push_back(static_cast<double>(rec.start_time_ms - rec.create_time_ms));
  }
  // Watchers: `watchers` subscriptions spread over the replicas and over the first jobs.
  std::atomic<int64_t> delivered{0};
  const int watched = std::max(1, std::min(jobs, 10));
  for (int w = 0; w < watchers; ++w) {
    rs[w % replicas].engine->Subscribe(run + "b" + std::to_string(w % watched), [&](const JobEvent& e) {
      if (e.type != JobEvent::Type::kHeartbeat) delivered.fetch_add(1);
    });
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (int j = 0; j < jobs; ++j) {
    if (absl::Status s = submit(j % replicas, "b" + std::to_string(j)); !s.ok()) {
      std::fprintf(stderr, "submit: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  const double submit_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> wait_ms;
  std::vector<std::string> workers;
  for (int j = 0; j < jobs; ++j) {
    const JobRecord rec = wait_end("b" + std::to_string(j));
    wait_ms.push_back(static_cast<double>(rec.start_time_ms - rec.create_time_ms));
    workers.push_back(rec.worker);
  }
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The watchers of the last watched jobs catch up within a poll or two.
  std::this_thread::sleep_for(std::chrono::duration<double>(3 * poll + 0.2));
  const double watch_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& r : rs) r.engine->Shutdown();
  int64_t expected = 0;  // every stored event of a watched job, once per watcher of it
  for (int w = 0; w < watchers; ++w) expected += wait_end("b" + std::to_string(w % watched)).last_seq;
  std::sort(workers.begin(), workers.end());
  const auto distinct = std::unique(workers.begin(), workers.end()) - workers.begin();
  nlohmann::json out = {{"store", store_kind == "sqlite" ? "sqlite" : "postgresql"},
                        {"replicas", replicas},
                        {"jobs", jobs},
                        {"steps_per_job", steps},
                        {"watchers", watchers},
                        {"poll_seconds", poll},
                        {"announcements", announcements && rs[0].store->announces_changes()},
                        {"submit_per_second", jobs / submit_s},
                        {"jobs_per_second", jobs / total_s},
                        {"idle_claim_latency_ms_p50", Percentile(idle_ms, 0.5)},
                        {"idle_claim_latency_ms_p95", Percentile(idle_ms, 0.95)},
                        {"claim_latency_from_another_replica_ms_p50", Percentile(remote_ms, 0.5)},
                        {"claim_latency_from_another_replica_ms_p95", Percentile(remote_ms, 0.95)},
                        {"backlog_wait_ms_p50", Percentile(wait_ms, 0.5)},
                        {"backlog_wait_ms_p95", Percentile(wait_ms, 0.95)},
                        {"replicas_that_ran_jobs", distinct},
                        {"events_delivered", delivered.load()},
                        {"events_stored_for_watchers", expected},
                        {"events_per_second_to_watchers", static_cast<double>(delivered.load()) / watch_s}};
  std::printf("%s\n", out.dump().c_str());
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace ganserve::core

int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape): CLI11 errors are caught by CLI11_PARSE
  CLI::App app{"ganserve_jobs_bench: the shared job store under replicas (no-op runners)"};
  std::string store = "sqlite";
  int replicas = 3, jobs = 300, steps = 10, watchers = 100;
  double poll = 0.05;
  bool announcements = true;
  app.add_option("--store", store, "sqlite (one file, one machine) or a postgresql:// URL")->capture_default_str();
  app.add_option("--replicas", replicas, "job engines, each with its own store connection")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--jobs", jobs)->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--steps", steps, "progress events per job")->check(CLI::Range(1, 10000))->capture_default_str();
  app.add_option("--watchers", watchers, "subscriptions spread over the replicas and the first 10 jobs")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  app.add_option("--poll", poll, "--job_poll_seconds of the replicas")->capture_default_str();
  app.add_option("--announcements", announcements, "follow the store's announcements (PostgreSQL NOTIFY)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return ganserve::core::Run(store, replicas, jobs, steps, watchers, poll, announcements);
}
