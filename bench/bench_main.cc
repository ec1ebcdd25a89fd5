// ganserve_bench: timing scenarios with random weights at the official sizes (values do
// not change speed). Prints one JSON object per scenario on stdout.
//
//   ganserve_bench --scenario generate --resolution 256 --batch 1 --iters 5
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/models/stylegan2/generator.h"
#include "core/models/stylegan2/random_init.h"
#include "core/runtime/torch_setup.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace sg = ganserve::core::stylegan2;

double PeakRssMb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

nlohmann::json Stats(std::vector<double> secs) {
  std::sort(secs.begin(), secs.end());
  return {{"median_s", secs[secs.size() / 2]}, {"min_s", secs.front()}, {"max_s", secs.back()}, {"runs", secs.size()}};
}

int BenchGenerate(int resolution, int batch, int iters, const std::string& device, nlohmann::json* out) {
  const auto cfg = sg::MakeConfig(resolution, 512, 8, 2);
  auto weights = sg::RandomGeneratorWeights(cfg, 1);
  std::map<std::string, ganserve::core::TensorView> views;
  for (auto& [name, t] : weights) {
    ganserve::core::TensorView v;
    v.shape = t.shape;
    v.data = reinterpret_cast<const uint8_t*>(t.data.data());
    v.nbytes = t.data.size() * sizeof(float);
    views[name] = v;
  }
  ganserve::core::FloatTensor avg{{512}, std::vector<float>(512, 0.f)};
  auto avg_view = ganserve::core::ViewOf(std::make_shared<const ganserve::core::FloatTensor>(avg));
  sg::LoadOptions opt;
  opt.device = device;
  auto gen = sg::Generator::FromTensors(views, &avg_view, opt);
  if (!gen.ok()) {
    std::fprintf(stderr, "%s\n", gen.status().ToString().c_str());
    return 1;
  }
  weights.clear();
  sg::GenerateParams p;
  p.latents.shape = {batch, 512};
  for (int i = 0; i < batch; ++i) {
    auto z = sg::SeedToZ(static_cast<uint32_t>(i), 512);
    p.latents.data.insert(p.latents.data.end(), z.begin(), z.end());
  }
  p.truncation = 0.7f;
  (void)(*gen)->Generate(p);  // warm-up
  std::vector<double> secs;
  for (int i = 0; i < iters; ++i) {
    auto t0 = Clock::now();
    auto r = (*gen)->Generate(p);
    secs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    if (!r.ok()) return 1;
  }
  *out = Stats(secs);
  (*out)["images_per_s"] = batch / (*out)["median_s"].get<double>();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("ganserve benchmarks");
  std::string scenario = "generate", device = "cpu";
  int resolution = 256, batch = 1, iters = 5, threads = 0;
  app.add_option("--scenario", scenario, "generate")->check(CLI::IsMember({"generate"}));
  app.add_option("--resolution", resolution)->check(CLI::IsMember({32, 64, 128, 256, 512, 1024}));
  app.add_option("--batch", batch)->check(CLI::Range(1, 64));
  app.add_option("--iters", iters)->check(CLI::Range(1, 1000));
  app.add_option("--threads", threads);
  app.add_option("--device", device);
  CLI11_PARSE(app, argc, argv);
  const auto info = ganserve::core::ConfigureTorch(threads);
  nlohmann::json j;
  int rc = BenchGenerate(resolution, batch, iters, device, &j);
  j["scenario"] = scenario;
  j["resolution"] = resolution;
  j["batch"] = batch;
  j["threads"] = info.threads;
  j["blas"] = info.blas_library;
  j["device"] = device;
  j["peak_rss_mb"] = PeakRssMb();
  std::printf("%s\n", j.dump().c_str());
  return rc;
}
