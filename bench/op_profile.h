// Where a step's time goes, op by op: one run under LibTorch's profiler, aggregated by op
// name into self time (time in the op minus time in the ops it called), with FLOPs for
// the matrix products whose shapes determine them.
#ifndef GANSERVE_BENCH_OP_PROFILE_H_
#define GANSERVE_BENCH_OP_PROFILE_H_

#include <functional>
#include <nlohmann/json.hpp>

namespace ganserve::bench {

// Runs `step` once under the profiler (recording input shapes). Returns the wall time,
// the profiled ops' self times (the `top` largest by name, with call counts and shares of
// the wall time) and per category totals: "convolution" (forward and backward
// convolution kernels), "matmul" (mm/addmm/bmm/matmul/linear), "autograd" (engine
// bookkeeping nodes), "other" (elementwise, reductions, copies, allocation). Null when
// `step` failed.
nlohmann::json ProfileOps(const std::function<bool()>& step, int top);

}  // namespace ganserve::bench

#endif  // GANSERVE_BENCH_OP_PROFILE_H_
