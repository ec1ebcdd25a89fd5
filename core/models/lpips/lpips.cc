#include "core/models/lpips/lpips.h"

#include "core/models/lpips/lpips_impl.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/checkpoint/torch_file.h"
#include "core/models/common/torch_convert.h"
#include "core/models/stylegan2/config.h"
#include "core/util/status_macros.h"

namespace ganserve::core::lpips {
namespace {

// torchvision vgg16.features: conv index -> (in, out); 'M' pools between blocks.
struct VggConv {
  int index, in, out;
};
constexpr VggConv kConvs[] = {{0, 3, 64},     {2, 64, 64},    {5, 64, 128},   {7, 128, 128},  {10, 128, 256},
                              {12, 256, 256}, {14, 256, 256}, {17, 256, 512}, {19, 512, 512}, {21, 512, 512},
                              {24, 512, 512}, {26, 512, 512}, {28, 512, 512}};
// The LPIPS taps: after the last ReLU of each block (relu1_2 ... relu5_3), by conv count.
constexpr int kTapAfter[] = {2, 4, 7, 10, 13};
constexpr int kTapChannels[] = {64, 128, 256, 512, 512};

}  // namespace

at::Tensor Lpips::Impl::Forward(const at::Tensor& a, const at::Tensor& b) const {
  const int64_t n = a.size(0);
  at::Tensor x = at::cat({(a - shift) / scale, (b - shift) / scale}, 0);
  at::Tensor total = at::zeros({n}, a.options());
  int tap = 0;
  for (int i = 0; i < 13; ++i) {
    if (i == 2 || i == 4 || i == 7 || i == 10) x = at::max_pool2d(x, {2, 2}, {2, 2});
    x = at::relu(at::conv2d(x, conv_w[i], conv_b[i], 1, 1));
    if (i + 1 == kTapAfter[tap]) {
      at::Tensor f = x / (at::sqrt(x.pow(2).sum(1, true)) + 1e-10);
      at::Tensor d = (f.narrow(0, 0, n) - f.narrow(0, n, n)).pow(2);
      total = total + at::conv2d(d, lin[tap]).mean({1, 2, 3});
      ++tap;
    }
  }
  return total;
}

Lpips::Lpips(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Lpips::~Lpips() = default;

MemoryFootprint Lpips::Footprint() const {
  FootprintCounter c;
  c.Add(impl_->conv_w);
  c.Add(impl_->conv_b);
  c.Add(impl_->lin);
  return c.total();
}

absl::StatusOr<std::unique_ptr<Lpips>> Lpips::FromTensors(const std::map<std::string, TensorView>& vgg16,
                                                          const std::map<std::string, TensorView>& lin,
                                                          const std::string& device_spec) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> vgg_expected, lin_expected;
  for (const VggConv& c : kConvs) {
    vgg_expected.push_back({absl::StrCat("features.", c.index, ".weight"), {c.out, c.in, 3, 3}});
    vgg_expected.push_back({absl::StrCat("features.", c.index, ".bias"), {c.out}});
  }
  for (int k = 0; k < 5; ++k) {
    lin_expected.push_back({absl::StrCat("lin", k, ".model.1.weight"), {1, kTapChannels[k], 1, 1}});
  }
  RETURN_IF_ERROR(stylegan2::CheckStateDict(vgg16, vgg_expected, "torchvision VGG16 (features)"));
  RETURN_IF_ERROR(stylegan2::CheckStateDict(lin, lin_expected, "LPIPS v0.1 linear layers (vgg.pth)"));
  ASSIGN_OR_RETURN(c10::Device device, ParseDevice(device_spec));
  auto impl = std::make_unique<Impl>();
  impl->device = device;
  try {
    c10::NoGradGuard ng;
    for (const VggConv& c : kConvs) {
      ASSIGN_OR_RETURN(at::Tensor w, ToTorchFloat(vgg16.at(absl::StrCat("features.", c.index, ".weight")), device));
      ASSIGN_OR_RETURN(at::Tensor bias, ToTorchFloat(vgg16.at(absl::StrCat("features.", c.index, ".bias")), device));
      impl->conv_w.push_back(w);
      impl->conv_b.push_back(bias);
    }
    for (int k = 0; k < 5; ++k) {
      ASSIGN_OR_RETURN(at::Tensor w, ToTorchFloat(lin.at(absl::StrCat("lin", k, ".model.1.weight")), device));
      impl->lin.push_back(w);
    }
    impl->shift = ImageShift(device);
    impl->scale = ImageScale(device);
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "building LPIPS failed");
  }
  return std::unique_ptr<Lpips>(new Lpips(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<Lpips>> Lpips::Load(const std::string& vgg16_path, const std::string& lin_path,
                                                   const std::string& device) {
  ASSIGN_OR_RETURN(auto vgg, LoadStateDictFile(vgg16_path));
  ASSIGN_OR_RETURN(auto lin, LoadStateDictFile(lin_path));
  return FromTensors(vgg, lin, device);
}

absl::StatusOr<FloatTensor> Lpips::Distance(const FloatTensor& a, const FloatTensor& b) const {
  return LpipsDistance(*impl_, a, b);
}

}  // namespace ganserve::core::lpips
