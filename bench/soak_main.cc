// ganserve_soak: mixed load against a running ganserve for a fixed time, then idle,
// sampling the server's resident memory, open file descriptors and jobs.db size every
// interval. Prints one JSON report (bench/soak.sh drives it).
//
// Load: GenerateSamples from N threads; one adaptation after another (each result
// rendered once, then deleted); inversions (each rendered once); text edits (global
// direction sweeps and short latent optimisations); watchers that read a few events,
// hang up and re-attach with after_seq; one slow reader of a 16-image stream.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "ganserve/v1/ganserve.grpc.pb.h"
#include "server/status_util.h"

namespace {

namespace v1 = ganserve::v1;
using Clock = std::chrono::steady_clock;

struct Stats {
  std::mutex mu;
  std::map<std::string, std::vector<double>> latency_s;           // per method, successful calls
  std::map<std::string, std::map<std::string, int>> codes;        // per method, per code
  std::map<std::string, std::vector<std::string>> error_samples;  // first messages per code

  void Record(const std::string& method, const grpc::Status& st, double secs) {
    std::lock_guard<std::mutex> lock(mu);
    const std::string code = ganserve::server::GrpcCodeName(st.error_code());
    codes[method][code]++;
    if (st.ok()) {
      latency_s[method].push_back(secs);
    } else if (error_samples[code].size() < 3) {
      error_samples[code].push_back(method + ": " + st.error_message());
    }
  }
};

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int64_t ReadRssKb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "VmRSS:")) return std::stoll(line.substr(6));
  }
  return -1;
}

int CountFds(int pid) {
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

int64_t FileSize(const std::string& path) {
  struct stat s {};
  return ::stat(path.c_str(), &s) == 0 ? static_cast<int64_t>(s.st_size) : 0;
}

template <typename Msg, typename Reader>
grpc::Status Drain(Reader reader, std::vector<Msg>* out = nullptr) {
  Msg m;
  while (reader->Read(&m)) {
    if (out != nullptr) out->push_back(m);
  }
  return reader->Finish();
}

void Deadline(grpc::ClientContext* ctx, int seconds) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}

}  // namespace

int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape): CLI11 errors are caught where parsed
  CLI::App app("ganserve soak load");
  std::string server = "127.0.0.1:50051", model = "demo", clip = "demo-clip", data_dir, out;
  int pid = 0, generate_threads = 8;
  double minutes = 30, idle_minutes = 3, interval_s = 60;
  app.add_option("--server", server);
  app.add_option("--pid", pid, "the server's process id (memory, descriptors)")->required();
  app.add_option("--data_dir", data_dir, "the server's --data_dir (jobs.db size)")->required();
  app.add_option("--model", model);
  app.add_option("--clip", clip);
  app.add_option("--minutes", minutes, "load duration");
  app.add_option("--idle_minutes", idle_minutes, "idle observation after the load");
  app.add_option("--interval", interval_s, "seconds between samples");
  app.add_option("--generate_threads", generate_threads);
  app.add_option("--out", out, "also write the report here");
  CLI11_PARSE(app, argc, argv);

  auto channel = grpc::CreateChannel(server, grpc::InsecureChannelCredentials());
  auto stub = v1::GanService::NewStub(channel);
  Stats stats;
  std::atomic<bool> stop{false};
  std::atomic<int> adapted{0}, inverted{0};

  // A target image for the inversions: the model's own seed 7.
  std::string png;
  {
    v1::GenerateSamplesRequest r;
    r.set_model(model);
    r.add_seeds(7);
    grpc::ClientContext ctx;
    std::vector<v1::ImageBatch> b;
    grpc::Status st = Drain<v1::ImageBatch>(stub->GenerateSamples(&ctx, r), &b);
    if (!st.ok() || b.empty()) {
      std::fprintf(stderr, "cannot reach the model: %s\n", st.error_message().c_str());
      return 1;
    }
    png = b[0].images(0).data();
  }
  {  // Global-direction statistics once, for the edits.
    v1::PrepareGlobalDirectionsRequest r;
    r.set_model(model);
    r.set_clip_model(clip);
    r.set_num_samples(100);
    r.set_num_images(2);
    r.set_batch_size(4);
    grpc::ClientContext ctx;
    grpc::Status st = Drain<v1::JobEvent>(stub->PrepareGlobalDirections(&ctx, r));
    if (!st.ok() && st.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
      std::fprintf(stderr, "statistics: %s\n", st.error_message().c_str());
      return 1;
    }
  }

  auto timed = [&](const std::string& method, const std::function<grpc::Status()>& call) {
    const auto t0 = Clock::now();
    grpc::Status st = call();
    stats.Record(method, st, Since(t0));
    if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return st;
  };

  std::vector<std::thread> load;
  load.reserve(generate_threads + 6);
  for (int t = 0; t < generate_threads; ++t) {
    load.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      while (!stop) {
        v1::GenerateSamplesRequest r;
        r.set_model(model);
        const int n = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < n; ++i) r.add_seeds(static_cast<int64_t>(rng() % 100000));
        r.set_batch_size(2);
        timed("GenerateSamples", [&] {
          grpc::ClientContext ctx;
          Deadline(&ctx, 60);
          return Drain<v1::ImageBatch>(stub->GenerateSamples(&ctx, r));
        });
      }
    });
  }
  load.emplace_back([&] {  // one adaptation after another
    while (!stop) {
      const std::string name = "soak-" + std::to_string(adapted.load());
      v1::AdaptDomainRequest r;
      r.set_model(model);
      r.set_source_text("photo");
      r.set_target_text("pencil sketch");
      r.set_iterations(20);
      r.set_output_name(name);
      std::vector<v1::JobEvent> events;
      grpc::Status st = timed("AdaptDomain", [&] {
        grpc::ClientContext ctx;
        Deadline(&ctx, 600);
        return Drain<v1::JobEvent>(stub->AdaptDomain(&ctx, r), &events);
      });
      if (!st.ok() || events.empty() || events.back().job().state() != v1::JOB_STATE_SUCCEEDED) continue;
      adapted++;
      v1::GenerateSamplesRequest g;
      g.set_model(name);
      g.add_seeds(1);
      timed("GenerateSamples(adapted)", [&] {
        grpc::ClientContext ctx;
        return Drain<v1::ImageBatch>(stub->GenerateSamples(&ctx, g));
      });
      v1::DeleteModelRequest d;
      d.set_name(name);
      timed("DeleteModel", [&] {
        grpc::ClientContext ctx;
        v1::DeleteModelResponse resp;
        return stub->DeleteModel(&ctx, d, &resp);
      });
    }
  });
  load.emplace_back([&] {  // inversions
    while (!stop) {
      v1::InvertImageRequest r;
      r.set_model(model);
      r.set_image(png);
      r.set_steps(20);
      std::vector<v1::JobEvent> events;
      grpc::Status st = timed("InvertImage", [&] {
        grpc::ClientContext ctx;
        Deadline(&ctx, 600);
        return Drain<v1::JobEvent>(stub->InvertImage(&ctx, r), &events);
      });
      if (!st.ok() || events.empty() || events.back().job().state() != v1::JOB_STATE_SUCCEEDED) continue;
      inverted++;
      v1::GenerateSamplesRequest g;
      g.set_model(model);
      g.set_inversion_id(events.back().job().result());
      timed("GenerateSamples(inversion)", [&] {
        grpc::ClientContext ctx;
        return Drain<v1::ImageBatch>(stub->GenerateSamples(&ctx, g));
      });
    }
  });
  load.emplace_back([&] {  // text edits
    int i = 0;
    while (!stop) {
      v1::EditRequest e;
      e.set_model(model);
      e.add_seeds(i % 50);
      if (i++ % 2 == 0) {
        auto* gd = e.mutable_global_direction();
        gd->set_neutral_text("a photo");
        gd->set_target_text("a pencil sketch");
        gd->set_clip_model(clip);
        for (float a : {-2.0f, 0.0f, 2.0f}) gd->add_alphas(a);
      } else {
        auto* lo = e.mutable_latent_optimization();
        lo->set_target_text("a pencil sketch");
        lo->set_steps(5);
        lo->set_clip_model(clip);
      }
      timed(e.has_global_direction() ? "Edit(global)" : "Edit(optimise)", [&] {
        grpc::ClientContext ctx;
        Deadline(&ctx, 120);
        return Drain<v1::ImageBatch>(stub->Edit(&ctx, e));
      });
    }
  });
  for (int w = 0; w < 2; ++w) {  // watchers that hang up and re-attach
    load.emplace_back([&] {
      while (!stop) {
        v1::ListJobsRequest lr;
        lr.set_page_size(5);
        v1::ListJobsResponse jobs;
        grpc::Status ls = timed("ListJobs", [&] {
          grpc::ClientContext ctx;
          return stub->ListJobs(&ctx, lr, &jobs);
        });
        if (!ls.ok() || jobs.jobs().empty()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
          continue;
        }
        v1::WatchJobRequest wr;
        wr.set_id(jobs.jobs(0).id());
        int64_t last_seq = 0;
        {
          grpc::ClientContext ctx;
          auto reader = stub->WatchJob(&ctx, wr);
          v1::JobEvent e;
          for (int n = 0; n < 3 && reader->Read(&e); ++n) last_seq = e.seq();
          ctx.TryCancel();
          reader->Finish();
        }
        wr.set_after_seq(last_seq);
        timed("WatchJob(re-attach)", [&] {
          grpc::ClientContext ctx;
          Deadline(&ctx, 600);
          return Drain<v1::JobEvent>(stub->WatchJob(&ctx, wr));
        });
      }
    });
  }
  load.emplace_back([&] {  // a slow reader
    while (!stop) {
      v1::GenerateSamplesRequest r;
      r.set_model(model);
      r.set_count(16);
      r.set_batch_size(2);
      timed("GenerateSamples(slow reader)", [&] {
        grpc::ClientContext ctx;
        Deadline(&ctx, 300);
        auto reader = stub->GenerateSamples(&ctx, r);
        v1::ImageBatch b;
        while (reader->Read(&b)) std::this_thread::sleep_for(std::chrono::milliseconds(500));
        return reader->Finish();
      });
    }
  });

  nlohmann::json samples = nlohmann::json::array();
  const std::string db = (std::filesystem::path(data_dir) / "jobs.db").string();
  const auto start = Clock::now();
  auto sample = [&](const char* phase) {
    nlohmann::json s = {{"t_min", Since(start) / 60},
                        {"phase", phase},
                        {"rss_mb", ReadRssKb(pid) / 1024.0},
                        {"fds", CountFds(pid)},
                        {"jobs_db_mb", (FileSize(db) + FileSize(db + "-wal")) / 1048576.0}};
    std::fprintf(stderr, "%s\n", s.dump().c_str());
    samples.push_back(s);
  };
  sample("start");
  const int start_fds = samples[0]["fds"].get<int>();
  while (Since(start) < minutes * 60) {
    std::this_thread::sleep_for(std::chrono::duration<double>(std::min(interval_s, minutes * 60 - Since(start))));
    sample("load");
  }
  stop = true;
  for (auto& t : load) t.join();
  const auto idle_start = Clock::now();
  while (Since(idle_start) < idle_minutes * 60) {
    std::this_thread::sleep_for(std::chrono::duration<double>(std::min(interval_s, 60.0)));
    sample("idle");
  }

  nlohmann::json report;
  report["samples"] = samples;
  report["adaptations"] = adapted.load();
  report["inversions"] = inverted.load();
  nlohmann::json methods;
  bool only_exhausted = true;
  for (auto& [m, codes] : stats.codes) {
    auto& l = stats.latency_s[m];
    std::sort(l.begin(), l.end());
    auto pct = [&](double p) { return l.empty() ? 0.0 : l[static_cast<size_t>(p * (l.size() - 1))]; };
    methods[m] = {{"codes", codes}, {"p50_s", pct(0.5)}, {"p95_s", pct(0.95)}, {"p99_s", pct(0.99)}};
    for (const auto& [code, n] : codes) {
      if (code != "OK" && code != "RESOURCE_EXHAUSTED") only_exhausted = false;
    }
  }
  report["methods"] = methods;
  report["error_samples"] = stats.error_samples;
  // Goals: memory after the run within 10 % of its level after 5 minutes, no error other
  // than RESOURCE_EXHAUSTED, descriptors back to their start.
  double rss5 = 0;
  for (const auto& s : samples) {
    if (s["t_min"].get<double>() >= 5) {
      rss5 = s["rss_mb"].get<double>();
      break;
    }
  }
  const auto& last = samples.back();
  report["rss_mb_at_5_min"] = rss5;
  report["rss_mb_end"] = last["rss_mb"];
  report["rss_within_10_percent"] = rss5 > 0 && last["rss_mb"].get<double>() <= rss5 * 1.10;
  report["only_resource_exhausted"] = only_exhausted;
  report["fds_start"] = start_fds;
  report["fds_end"] = last["fds"];
  report["fds_back"] = last["fds"].get<int>() <= start_fds;
  std::printf("%s\n", report.dump(2).c_str());
  if (!out.empty()) std::ofstream(out) << report.dump(2) << "\n";
  return 0;
}
