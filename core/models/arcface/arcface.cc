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

// Reads named tensors with their expected shapes onto the device.
class Reader {
 public:
  Reader(const std::map<std::string, TensorView>& t, c10::Device d, std::vector<at::Tensor>* all)
      : t_(t), d_(d), all_(all) {}
  absl::StatusOr<at::Tensor> Get(const std::string& name, const std::vector<int64_t>& shape) {
    auto it = t_.find(name);
    if (it == t_.end()) return absl::InvalidArgumentError(absl::StrCat("ArcFace tensor '", name, "' is missing"));
    if (it->second.shape != shape) {
      return absl::InvalidArgumentError(absl::StrCat("ArcFace tensor '", name, "' has shape ",
                                                     ShapeString(it->second.shape), ", expected ", ShapeString(shape)));
    }
    ASSIGN_OR_RETURN(at::Tensor v, ToTorchFloat(it->second, d_));
    all_->push_back(v);
    return v;
  }
  absl::StatusOr<BatchNorm> Bn(const std::string& prefix, int64_t c) {
    BatchNorm bn;
    ASSIGN_OR_RETURN(bn.weight, Get(prefix + ".weight", {c}));
    ASSIGN_OR_RETURN(bn.bias, Get(prefix + ".bias", {c}));
    ASSIGN_OR_RETURN(bn.mean, Get(prefix + ".running_mean", {c}));
    ASSIGN_OR_RETURN(bn.var, Get(prefix + ".running_var", {c}));
    return bn;
  }

 private:
  const std::map<std::string, TensorView>& t_;
  c10::Device d_;
  std::vector<at::Tensor>* all_;
};

constexpr int64_t kSeReduction = 16;
constexpr int64_t kFeatures = 512;

}  // namespace

std::vector<UnitShape> IrSe50Units() {
  std::vector<UnitShape> out;
  const int64_t depths[] = {64, 128, 256, 512};
  const int units[] = {3, 4, 14, 3};
  int64_t in = 64;
  for (int s = 0; s < 4; ++s) {
    for (int u = 0; u < units[s]; ++u) {
      out.push_back({u == 0 ? in : depths[s], depths[s], u == 0 ? 2 : 1});
    }
    in = depths[s];
  }
  return out;
}

at::Tensor ArcFace::Impl::Forward(const at::Tensor& x) const {
  at::Tensor h = at::prelu(input_bn(at::conv2d(x, input_conv, {}, 1, 1)), input_prelu);
  for (const Unit& u : units) {
    const at::Tensor shortcut =
        u.shortcut_conv.defined()
            ? u.shortcut_bn(at::conv2d(h, u.shortcut_conv, {}, u.shape.stride))
            : (u.shape.stride == 1 ? h : at::max_pool2d(h, {1, 1}, {u.shape.stride, u.shape.stride}));
    at::Tensor r = at::conv2d(u.bn_in(h), u.conv1, {}, 1, 1);
    r = at::prelu(r, u.prelu);
    r = u.bn_out(at::conv2d(r, u.conv2, {}, u.shape.stride, 1));
    at::Tensor se = at::adaptive_avg_pool2d(r, {1, 1});
    se = at::sigmoid(at::conv2d(at::relu(at::conv2d(se, u.se_fc1)), u.se_fc2));
    h = r * se + shortcut;
  }
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
  Reader r(tensors, dev, &impl->all);
  try {
    ASSIGN_OR_RETURN(impl->input_conv, r.Get("input_layer.0.weight", {64, 3, 3, 3}));
    ASSIGN_OR_RETURN(impl->input_bn, r.Bn("input_layer.1", 64));
    ASSIGN_OR_RETURN(impl->input_prelu, r.Get("input_layer.2.weight", {64}));
    const auto shapes = IrSe50Units();
    for (size_t i = 0; i < shapes.size(); ++i) {
      const UnitShape& s = shapes[i];
      const std::string p = absl::StrCat("body.", i, ".");
      Unit u;
      u.shape = s;
      if (s.in != s.depth) {
        ASSIGN_OR_RETURN(u.shortcut_conv, r.Get(p + "shortcut_layer.0.weight", {s.depth, s.in, 1, 1}));
        ASSIGN_OR_RETURN(u.shortcut_bn, r.Bn(p + "shortcut_layer.1", s.depth));
      }
      ASSIGN_OR_RETURN(u.bn_in, r.Bn(p + "res_layer.0", s.in));
      ASSIGN_OR_RETURN(u.conv1, r.Get(p + "res_layer.1.weight", {s.depth, s.in, 3, 3}));
      ASSIGN_OR_RETURN(u.prelu, r.Get(p + "res_layer.2.weight", {s.depth}));
      ASSIGN_OR_RETURN(u.conv2, r.Get(p + "res_layer.3.weight", {s.depth, s.depth, 3, 3}));
      ASSIGN_OR_RETURN(u.bn_out, r.Bn(p + "res_layer.4", s.depth));
      ASSIGN_OR_RETURN(u.se_fc1, r.Get(p + "res_layer.5.fc1.weight", {s.depth / kSeReduction, s.depth, 1, 1}));
      ASSIGN_OR_RETURN(u.se_fc2, r.Get(p + "res_layer.5.fc2.weight", {s.depth, s.depth / kSeReduction, 1, 1}));
      impl->units.push_back(std::move(u));
    }
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
