#include "core/models/arcface/arcface.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/checkpoint/torch_file.h"
#include "core/models/arcface/arcface_impl.h"
#include "core/models/common/torch_convert.h"
#include "core/util/status_macros.h"

namespace ganserve::core::arcface {
namespace {
constexpr int64_t kFeatures = 512;
}  // namespace

at::Tensor ArcFace::Impl::Forward(const at::Tensor& x) const {
  at::Tensor h = trunk.Input(x);
  for (const Unit& u : trunk.units) h = u(h);
  h = output_bn2d(h).flatten(1);
  h = output_bn1d(at::linear(h, linear_w, linear_b));
  return h / h.norm(2, 1, true);
}

at::Tensor ArcFace::Impl::IdFeatures(const at::Tensor& images) const {
  at::Tensor x = images.size(2) == 256 && images.size(3) == 256 ? images : at::adaptive_avg_pool2d(images, {256, 256});
  x = x.narrow(2, 35, 188).narrow(3, 32, 188);
  return Forward(at::adaptive_avg_pool2d(x, {112, 112}));
}

at::Tensor ArcFace::Impl::IdLoss(const at::Tensor& y_hat, const at::Tensor& y) const {
  const at::Tensor fy = IdFeatures(y).detach();
  const at::Tensor fh = IdFeatures(y_hat);
  return (1 - (fh * fy).sum(1)).mean();
}

ArcFace::ArcFace(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ArcFace::~ArcFace() = default;

absl::StatusOr<std::unique_ptr<ArcFace>> ArcFace::FromTensors(const std::map<std::string, TensorView>& tensors,
                                                              const std::string& device) {
  ASSIGN_OR_RETURN(c10::Device dev, ParseDevice(device));
  auto impl = std::make_unique<Impl>();
  impl->device = dev;
  StateReader r(tensors, dev, "ArcFace", &impl->all);
  try {
    ASSIGN_OR_RETURN(impl->trunk, r.Trunk());
    ASSIGN_OR_RETURN(impl->output_bn2d, r.Bn("output_layer.0", kFeatures));
    ASSIGN_OR_RETURN(impl->linear_w, r.Get("output_layer.3.weight", {kFeatures, kFeatures * 7 * 7}));
    ASSIGN_OR_RETURN(impl->linear_b, r.Get("output_layer.3.bias", {kFeatures}));
    ASSIGN_OR_RETURN(impl->output_bn1d, r.Bn("output_layer.4", kFeatures));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "loading ArcFace failed");
  }
  return std::unique_ptr<ArcFace>(new ArcFace(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<ArcFace>> ArcFace::Load(const std::string& path, const std::string& device) {
  ASSIGN_OR_RETURN(auto tensors, LoadStateDictFile(path));
  return FromTensors(tensors, device);
}

absl::StatusOr<FloatTensor> ArcFace::Embed(const FloatTensor& faces) const {
  if (faces.shape != std::vector<int64_t>{faces.shape.empty() ? 0 : faces.shape[0], 3, 112, 112} ||
      faces.shape[0] < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ArcFace takes faces [N, 3, 112, 112], got ", ShapeString(faces.shape)));
  }
  try {
    c10::NoGradGuard ng;
    return FromTorch(impl_->Forward(ToTorch(faces, impl_->device)));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "the ArcFace forward failed");
  }
}

namespace {
absl::Status CheckImages(const FloatTensor& images) {
  if (images.shape.size() != 4 || images.shape[0] < 1 || images.shape[1] != 3 || images.shape[2] != images.shape[3] ||
      images.shape[2] < 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the identity features take square images [N, 3, H, H] with H >= 64, got ", ShapeString(images.shape)));
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<FloatTensor> ArcFace::IdFeatures(const FloatTensor& images) const {
  RETURN_IF_ERROR(CheckImages(images));
  try {
    c10::NoGradGuard ng;
    return FromTorch(impl_->IdFeatures(ToTorch(images, impl_->device)));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "the ArcFace forward failed");
  }
}

absl::StatusOr<float> ArcFace::IdLoss(const FloatTensor& y_hat, const FloatTensor& y) const {
  if (y_hat.shape != y.shape) return absl::InvalidArgumentError("the identity loss compares batches of one shape");
  RETURN_IF_ERROR(CheckImages(y));
  try {
    c10::NoGradGuard ng;
    return impl_->IdLoss(ToTorch(y_hat, impl_->device), ToTorch(y, impl_->device)).item<float>();
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "the identity loss failed");
  }
}

MemoryFootprint ArcFace::Footprint() const {
  FootprintCounter c;
  c.Add(impl_->all);
  return c.total();
}

}  // namespace ganserve::core::arcface
