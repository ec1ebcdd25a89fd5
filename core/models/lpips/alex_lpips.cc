#include "core/models/lpips/alex_lpips.h"

#include "core/models/lpips/alex_lpips_impl.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include "absl/strings/str_cat.h"
#include "core/checkpoint/torch_file.h"
#include "core/models/common/torch_convert.h"
#include "core/models/lpips/lpips_impl.h"
#include "core/models/stylegan2/config.h"
#include "core/util/status_macros.h"

namespace ganserve::core::lpips {
namespace {

// torchvision alexnet.features: conv index, channels, kernel, stride, padding; a 3x3/2
// max pool follows the first two ReLUs.
struct AlexConv {
  int index, out, in, kernel, stride, padding;
};
constexpr AlexConv kConvs[] = {{0, 64, 3, 11, 4, 2},
                               {3, 192, 64, 5, 1, 2},
                               {6, 384, 192, 3, 1, 1},
                               {8, 256, 384, 3, 1, 1},
                               {10, 256, 256, 3, 1, 1}};

}  // namespace

at::Tensor AlexLpips::Impl::Forward(const at::Tensor& a, const at::Tensor& b) const {
  const int64_t n = a.size(0);
  at::Tensor x = at::cat({(a - shift) / scale, (b - shift) / scale}, 0);
  at::Tensor total = at::zeros({n}, a.options());
  for (int i = 0; i < 5; ++i) {
    const AlexConv& c = kConvs[i];
    if (i == 1 || i == 2) x = at::max_pool2d(x, {3, 3}, {2, 2});
    x = at::relu(at::conv2d(x, conv_w[i], conv_b[i], c.stride, c.padding));
    const at::Tensor f = x * at::rsqrt(x.pow(2).sum(1, true) + 1e-10);
    const at::Tensor d = (f.narrow(0, 0, n) - f.narrow(0, n, n)).pow(2);
    total = total + at::conv2d(d, lin[i]).mean({1, 2, 3});
  }
  return total;
}

AlexLpips::AlexLpips(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AlexLpips::~AlexLpips() = default;

MemoryFootprint AlexLpips::Footprint() const {
  FootprintCounter c;
  c.Add(impl_->conv_w);
  c.Add(impl_->conv_b);
  c.Add(impl_->lin);
  return c.total();
}

absl::StatusOr<std::unique_ptr<AlexLpips>> AlexLpips::FromTensors(const std::map<std::string, TensorView>& alexnet,
                                                                  const std::map<std::string, TensorView>& weights,
                                                                  const std::string& device_spec) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> alex_expected, lin_expected;
  for (int i = 0; i < 5; ++i) {
    const AlexConv& c = kConvs[i];
    alex_expected.push_back({absl::StrCat("features.", c.index, ".weight"), {c.out, c.in, c.kernel, c.kernel}});
    alex_expected.push_back({absl::StrCat("features.", c.index, ".bias"), {c.out}});
    lin_expected.push_back({absl::StrCat("lpips_weights.", i, ".main.1.weight"), {1, c.out, 1, 1}});
  }
  RETURN_IF_ERROR(stylegan2::CheckStateDict(alexnet, alex_expected, "torchvision AlexNet (features)"));
  RETURN_IF_ERROR(stylegan2::CheckStateDict(weights, lin_expected, "StarGAN v2 LPIPS weights (lpips_weights.ckpt)"));
  ASSIGN_OR_RETURN(c10::Device device, ParseDevice(device_spec));
  auto impl = std::make_unique<Impl>();
  impl->device = device;
  try {
    c10::NoGradGuard ng;
    for (int i = 0; i < 5; ++i) {
      const AlexConv& c = kConvs[i];
      ASSIGN_OR_RETURN(at::Tensor w, ToTorchFloat(alexnet.at(absl::StrCat("features.", c.index, ".weight")), device));
      ASSIGN_OR_RETURN(at::Tensor bias, ToTorchFloat(alexnet.at(absl::StrCat("features.", c.index, ".bias")), device));
      ASSIGN_OR_RETURN(at::Tensor lin,
                       ToTorchFloat(weights.at(absl::StrCat("lpips_weights.", i, ".main.1.weight")), device));
      impl->conv_w.push_back(w);
      impl->conv_b.push_back(bias);
      impl->lin.push_back(lin);
    }
    impl->shift = ImageShift(device);
    impl->scale = ImageScale(device);
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "building the AlexNet LPIPS failed");
  }
  return std::unique_ptr<AlexLpips>(new AlexLpips(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<AlexLpips>> AlexLpips::Load(const std::string& alexnet_path,
                                                           const std::string& weights_path, const std::string& device) {
  ASSIGN_OR_RETURN(auto alexnet, LoadStateDictFile(alexnet_path));
  ASSIGN_OR_RETURN(auto weights, LoadStateDictFile(weights_path));
  return FromTensors(alexnet, weights, device);
}

absl::StatusOr<FloatTensor> AlexLpips::Distance(const FloatTensor& a, const FloatTensor& b) const {
  return LpipsDistance(*impl_, a, b);
}

}  // namespace ganserve::core::lpips
