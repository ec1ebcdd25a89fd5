#include "bench/op_profile.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace ganserve::bench {
namespace {

namespace prof = torch::autograd::profiler;

struct OpTotals {
  int64_t calls = 0;
  double self_us = 0;
  double flops = 0;  // matrix products only
};

// 2*M*N*K for the matrix products whose input shapes give it; 0 otherwise.
double MatmulFlops(const std::string& name, const std::vector<std::vector<int64_t>>& shapes) {
  auto numel = [](const std::vector<int64_t>& s) {
    double n = 1;
    for (int64_t d : s) n *= static_cast<double>(d);
    return n;
  };
  if ((name == "aten::mm") && shapes.size() >= 2 && shapes[0].size() == 2 && shapes[1].size() == 2) {
    return 2.0 * numel(shapes[0]) * static_cast<double>(shapes[1][1]);
  }
  if (name == "aten::addmm" && shapes.size() >= 3 && shapes[1].size() == 2 && shapes[2].size() == 2) {
    return 2.0 * numel(shapes[1]) * static_cast<double>(shapes[2][1]);
  }
  if (name == "aten::bmm" && shapes.size() >= 2 && shapes[0].size() == 3 && shapes[1].size() == 3) {
    return 2.0 * numel(shapes[0]) * static_cast<double>(shapes[1][2]);
  }
  return 0;
}

// Forward convolution FLOPs from the input and weight shapes, for the stride-1 "same"
// convolutions and the transposed ones (whose input pixels each meet the whole kernel);
// an estimate for other strides and paddings. 0 for other ops.
double ConvFlops(const std::string& name, const std::vector<std::vector<int64_t>>& shapes) {
  if (shapes.size() < 2 || shapes[0].size() != 4 || shapes[1].size() != 4) return 0;
  const auto& in = shapes[0];
  const auto& w = shapes[1];
  const double pixels = static_cast<double>(in[0]) * static_cast<double>(in[2]) * static_cast<double>(in[3]);
  if (name == "aten::mkldnn_convolution" || name == "aten::thnn_conv2d" || name == "aten::_slow_conv2d_forward") {
    // weight [O, C/g, kh, kw]: each output pixel (~ each input pixel) meets C/g*kh*kw of it.
    return 2.0 * pixels * static_cast<double>(w[0] * w[1] * w[2] * w[3]);
  }
  if (name == "aten::slow_conv_transpose2d") {
    // weight [C, O/g, kh, kw]: each input pixel meets its group's O/g*kh*kw.
    return 2.0 * pixels * static_cast<double>(w[0] * w[1] * w[2] * w[3]);
  }
  return 0;
}

std::string ShapesText(const std::vector<std::vector<int64_t>>& shapes) {
  std::string out;
  for (const auto& s : shapes) {
    if (s.empty()) continue;
    if (!out.empty()) out += " ";
    out += "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
    out += "]";
  }
  return out;
}

std::string Category(const std::string& name) {
  if (name.rfind("autograd::", 0) == 0 || name.find("Backward") != std::string::npos) return "autograd";
  if (name.find("conv") != std::string::npos || name.find("mkldnn") != std::string::npos) return "convolution";
  if (name == "aten::mm" || name == "aten::addmm" || name == "aten::bmm" || name == "aten::matmul" ||
      name == "aten::linear" || name == "aten::baddbmm") {
    return "matmul";
  }
  return "other";
}

}  // namespace

nlohmann::json ProfileOps(const std::function<bool()>& step, int top) {
  prof::thread_event_lists lists;
  const auto t0 = std::chrono::steady_clock::now();
  bool ok = false;
  {
    prof::TLSLegacyProfilerGuard guard(
        torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU, /*report_input_shapes=*/true),
        [&lists](const prof::thread_event_lists& l) { lists = l; });
    ok = step();
  }
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!ok) return nullptr;

  std::map<std::string, OpTotals> ops;
  std::map<std::string, OpTotals> convs;  // by op and input shapes
  for (const auto& events : lists) {
    // Push/pop ranges nest per thread: a stack of open ranges with the time their
    // children took.
    struct Open {
      const prof::LegacyEvent* push;
      double child_us;
    };
    std::vector<Open> stack;
    for (const auto& e : events) {
      if (e.kind() == prof::EventKind::PushRange) {
        stack.push_back({&e, 0.0});
      } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
        const Open open = stack.back();
        stack.pop_back();
        const double total_us = open.push->cpuElapsedUs(e);
        auto& t = ops[open.push->name()];
        t.calls += 1;
        t.self_us += total_us - open.child_us;
        t.flops += MatmulFlops(open.push->name(), open.push->shapes());
        if (Category(open.push->name()) == "convolution") {
          auto& c = convs[std::string(open.push->name()) + " " + ShapesText(open.push->shapes())];
          c.calls += 1;
          c.self_us += total_us - open.child_us;
          c.flops += ConvFlops(open.push->name(), open.push->shapes());
        }
        if (!stack.empty()) stack.back().child_us += total_us;
      }
    }
  }

  std::vector<std::pair<std::string, OpTotals>> sorted(ops.begin(), ops.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second.self_us > b.second.self_us; });
  nlohmann::json out;
  out["wall_s"] = wall_s;
  std::map<std::string, double> category_us;
  double profiled_us = 0;
  for (const auto& [name, t] : sorted) {
    category_us[Category(name)] += t.self_us;
    profiled_us += t.self_us;
  }
  nlohmann::json categories = nlohmann::json::object();
  for (const auto& [name, us] : category_us) categories[name] = {{"self_s", us * 1e-6}, {"share", us * 1e-6 / wall_s}};
  out["categories"] = categories;
  out["profiled_s"] = profiled_us * 1e-6;
  nlohmann::json rows = nlohmann::json::array();
  std::fprintf(stderr, "%-48s %8s %10s %7s %9s\n", "op (self time)", "calls", "self s", "share", "GFLOP/s");
  for (size_t i = 0; i < sorted.size() && static_cast<int>(i) < top; ++i) {
    const auto& [name, t] = sorted[i];
    nlohmann::json row = {{"op", name},
                          {"calls", t.calls},
                          {"self_s", t.self_us * 1e-6},
                          {"share", t.self_us * 1e-6 / wall_s},
                          {"category", Category(name)}};
    if (t.flops > 0) row["gflop_per_s"] = t.flops / (t.self_us * 1e-6) * 1e-9;
    std::fprintf(stderr, "%-48s %8lld %10.3f %6.1f%% %9s\n", name.c_str(), static_cast<long long>(t.calls),
                 t.self_us * 1e-6, 100.0 * t.self_us * 1e-6 / wall_s,
                 t.flops > 0 ? std::to_string(static_cast<int>(t.flops / (t.self_us * 1e3))).c_str() : "");
    rows.push_back(row);
  }
  out["ops"] = rows;

  std::vector<std::pair<std::string, OpTotals>> by_shape(convs.begin(), convs.end());
  std::sort(by_shape.begin(), by_shape.end(),
            [](const auto& a, const auto& b) { return a.second.self_us > b.second.self_us; });
  nlohmann::json conv_rows = nlohmann::json::array();
  std::fprintf(stderr, "\n%-90s %6s %9s %9s\n", "convolution op and input shapes", "calls", "self s", "GFLOP/s");
  for (size_t i = 0; i < by_shape.size() && static_cast<int>(i) < top; ++i) {
    const auto& [key, t] = by_shape[i];
    nlohmann::json row = {{"op", key}, {"calls", t.calls}, {"self_s", t.self_us * 1e-6}};
    const double rate = t.flops > 0 ? t.flops / (t.self_us * 1e3) : 0;
    if (rate > 0) row["gflop_per_s"] = rate;
    std::fprintf(stderr, "%-90s %6lld %9.3f %9s\n", key.c_str(), static_cast<long long>(t.calls), t.self_us * 1e-6,
                 rate > 0 ? std::to_string(static_cast<int>(rate)).c_str() : "");
    conv_rows.push_back(row);
  }
  out["convolutions"] = conv_rows;
  return out;
}

}  // namespace ganserve::bench
