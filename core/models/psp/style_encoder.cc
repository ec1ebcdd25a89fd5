#include "core/models/psp/style_encoder.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_file.h"
#include "core/models/common/torch_convert.h"
#include "core/models/psp/style_encoder_impl.h"
#include "core/util/status_macros.h"

namespace ganserve::core::psp {
namespace {

constexpr char kFormat[] = "ganserve-psp-encoder-v1";
constexpr int64_t kCoarseEnd = 3;  // rows 0-2 read c3
constexpr int64_t kMiddleEnd = 7;  // rows 3-6 read p2, the rest p1
constexpr double kLeakySlope = 0.01;

// Body units after which the FPN taps its features (c1, c2, c3).
constexpr size_t kTapC1 = 6, kTapC2 = 20, kTapC3 = 23;

int64_t SpatialOf(int64_t row) { return row < kCoarseEnd ? 16 : (row < kMiddleEnd ? 32 : 64); }

at::Tensor UpsampleAdd(const at::Tensor& x, const at::Tensor& y) {
  return at::upsample_bilinear2d(x, {y.size(2), y.size(3)}, /*align_corners=*/true) + y;
}

}  // namespace

absl::string_view EncoderArchitectureName(EncoderArchitecture a) {
  return a == EncoderArchitecture::kEncoder4Editing ? "Encoder4Editing" : "GradualStyleEncoder";
}

std::optional<EncoderArchitecture> EncoderArchitectureFromName(absl::string_view name) {
  if (name == "Encoder4Editing") return EncoderArchitecture::kEncoder4Editing;
  if (name == "GradualStyleEncoder") return EncoderArchitecture::kGradualStyle;
  return std::nullopt;
}

int64_t StyleCountFor(int64_t resolution) {
  int64_t log2 = 0;
  while ((int64_t{1} << (log2 + 1)) <= resolution) ++log2;
  return 2 * log2 - 2;
}

at::Tensor GradualStyleBlock::operator()(const at::Tensor& x) const {
  at::Tensor h = x;
  for (size_t i = 0; i < conv_w.size(); ++i) h = at::leaky_relu(at::conv2d(h, conv_w[i], conv_b[i], 2, 1), kLeakySlope);
  h = h.reshape({-1, linear_w.size(1)});
  return at::linear(h, linear_w * (1.0 / std::sqrt(static_cast<double>(linear_w.size(1)))), linear_b);
}

at::Tensor StyleEncoder::Impl::Codes(const at::Tensor& x) const {
  at::Tensor h = trunk.Input(x);
  at::Tensor c1, c2, c3;
  for (size_t i = 0; i < trunk.units.size(); ++i) {
    h = trunk.units[i](h);
    if (i == kTapC1) c1 = h;
    if (i == kTapC2) c2 = h;
    if (i == kTapC3) c3 = h;
  }
  const auto n = static_cast<int64_t>(styles.size());
  at::Tensor p2, p1;
  auto features = [&](int64_t row) -> const at::Tensor& {
    if (row < kCoarseEnd) return c3;
    if (!p2.defined()) p2 = UpsampleAdd(c3, at::conv2d(c2, latlayer1_w, latlayer1_b));
    if (row < kMiddleEnd) return p2;
    if (!p1.defined()) p1 = UpsampleAdd(p2, at::conv2d(c1, latlayer2_w, latlayer2_b));
    return p1;
  };
  std::vector<at::Tensor> rows;
  if (config.architecture == EncoderArchitecture::kGradualStyle) {
    for (int64_t i = 0; i < n; ++i) rows.push_back(styles[i](features(i)));
    return at::stack(rows, 1);
  }
  // e4e: the main w, then each row's delta on top of it.
  const at::Tensor w0 = styles[0](c3);
  rows.push_back(w0);
  for (int64_t i = 1; i < n; ++i) rows.push_back(w0 + styles[i](features(i)));
  return at::stack(rows, 1);
}

at::Tensor StyleEncoder::Impl::Encode(const at::Tensor& x) const {
  at::Tensor codes = Codes(x);
  return latent_avg.defined() ? codes + latent_avg.unsqueeze(0) : codes;
}

StyleEncoder::StyleEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StyleEncoder::~StyleEncoder() = default;
const EncoderConfig& StyleEncoder::config() const { return impl_->config; }

absl::StatusOr<std::unique_ptr<StyleEncoder>> StyleEncoder::FromTensors(
    const std::map<std::string, TensorView>& tensors, const std::optional<TensorView>& latent_avg, EncoderConfig config,
    const std::string& device) {
  ASSIGN_OR_RETURN(c10::Device dev, ParseDevice(device));
  int64_t n = 0;
  while (tensors.count(absl::StrCat("styles.", n, ".linear.weight")) != 0) ++n;
  if (n < 1) return absl::InvalidArgumentError("the encoder has no style heads (styles.0.linear.weight is missing)");
  if (n < 2 || n % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("the encoder has ", n,
                                                   " style heads; a StyleGAN2 generator has 2 "
                                                   "log2(resolution) - 2 w+ rows (an even number >= 2)"));
  }
  if (config.start_from_latent_avg && !latent_avg.has_value()) {
    return absl::InvalidArgumentError(
        "the encoder's codes are offsets from latent_avg (start_from_latent_avg) but the checkpoint has no "
        "latent_avg");
  }
  config.styles = n;
  auto impl = std::make_unique<Impl>();
  impl->device = dev;
  impl->config = config;
  arcface::StateReader r(tensors, dev, "encoder", &impl->all);
  const int64_t d = kEncoderStyleDim;
  try {
    ASSIGN_OR_RETURN(impl->trunk, r.Trunk());
    for (int64_t i = 0; i < n; ++i) {
      GradualStyleBlock b;
      const auto pools = static_cast<int64_t>(std::lround(std::log2(static_cast<double>(SpatialOf(i)))));
      for (int64_t k = 0; k < pools; ++k) {
        const std::string p = absl::StrCat("styles.", i, ".convs.", 2 * k);
        ASSIGN_OR_RETURN(at::Tensor w, r.Get(p + ".weight", {d, d, 3, 3}));
        ASSIGN_OR_RETURN(at::Tensor bias, r.Get(p + ".bias", {d}));
        b.conv_w.push_back(w);
        b.conv_b.push_back(bias);
      }
      ASSIGN_OR_RETURN(b.linear_w, r.Get(absl::StrCat("styles.", i, ".linear.weight"), {d, d}));
      ASSIGN_OR_RETURN(b.linear_b, r.Get(absl::StrCat("styles.", i, ".linear.bias"), {d}));
      impl->styles.push_back(std::move(b));
    }
    ASSIGN_OR_RETURN(impl->latlayer1_w, r.Get("latlayer1.weight", {d, 256, 1, 1}));
    ASSIGN_OR_RETURN(impl->latlayer1_b, r.Get("latlayer1.bias", {d}));
    ASSIGN_OR_RETURN(impl->latlayer2_w, r.Get("latlayer2.weight", {d, 128, 1, 1}));
    ASSIGN_OR_RETURN(impl->latlayer2_b, r.Get("latlayer2.bias", {d}));
    if (config.start_from_latent_avg) {
      const std::vector<int64_t>& s = latent_avg->shape;
      const bool rows = s == std::vector<int64_t>{n, d};
      if (!rows && s != std::vector<int64_t>{1, d} && s != std::vector<int64_t>{d}) {
        return absl::InvalidArgumentError(absl::StrCat("latent_avg has shape ", ShapeString(s), ", expected [", n, ", ",
                                                       d, "], [1, ", d, "] or [", d, "]"));
      }
      ASSIGN_OR_RETURN(at::Tensor avg, ToTorchFloat(*latent_avg, dev));
      impl->latent_avg = avg.reshape({-1, d}).expand({n, d}).contiguous();
      impl->all.push_back(impl->latent_avg);
    }
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "loading the encoder failed");
  }
  return std::unique_ptr<StyleEncoder>(new StyleEncoder(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<StyleEncoder>> StyleEncoder::Load(const std::string& path, const std::string& device) {
  if (!absl::EndsWith(path, ".safetensors")) {
    ASSIGN_OR_RETURN(OfficialEncoderFile f, ReadOfficialEncoderFile(path));
    return FromTensors(f.encoder, f.latent_avg, f.config, device);
  }
  ASSIGN_OR_RETURN(SafetensorsFile f, LoadSafetensors(path));
  if (f.metadata["format"] != kFormat) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not an encoder file (format ", kFormat, ")"));
  }
  EncoderConfig c;
  const auto arch = EncoderArchitectureFromName(f.metadata["architecture"]);
  if (!arch.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": unknown encoder architecture '", f.metadata["architecture"], "'"));
  }
  c.architecture = *arch;
  c.start_from_latent_avg = f.tensors.count("latent_avg") != 0;
  std::optional<TensorView> avg;
  if (c.start_from_latent_avg) avg = f.tensors.at("latent_avg");
  return FromTensors(f.tensors, avg, c, device);
}

absl::StatusOr<FloatTensor> StyleEncoder::Encode(const FloatTensor& images) const {
  const std::vector<int64_t>& s = images.shape;
  if (s.size() != 4 || s[0] < 1 || s[1] != 3 || s[2] != kEncoderInputSize || s[3] != kEncoderInputSize) {
    return absl::InvalidArgumentError(absl::StrCat("the encoder takes images [N, 3, ", kEncoderInputSize, ", ",
                                                   kEncoderInputSize, "], got ", ShapeString(s)));
  }
  try {
    c10::NoGradGuard ng;
    return FromTorch(impl_->Encode(ToTorch(images, impl_->device)));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "the encoder forward failed");
  }
}

std::map<std::string, FloatTensor> StyleEncoder::StateDict() const {
  const Impl& m = *impl_;
  std::map<std::string, FloatTensor> out;
  auto add = [&](const std::string& name, const at::Tensor& t) { out[name] = FromTorch(t); };
  auto bn = [&](const std::string& p, const arcface::BatchNorm& b) {
    add(p + ".weight", b.weight);
    add(p + ".bias", b.bias);
    add(p + ".running_mean", b.mean);
    add(p + ".running_var", b.var);
  };
  add("input_layer.0.weight", m.trunk.input_conv);
  bn("input_layer.1", m.trunk.input_bn);
  add("input_layer.2.weight", m.trunk.input_prelu);
  for (size_t i = 0; i < m.trunk.units.size(); ++i) {
    const arcface::Unit& u = m.trunk.units[i];
    const std::string p = absl::StrCat("body.", i, ".");
    if (u.shortcut_conv.defined()) {
      add(p + "shortcut_layer.0.weight", u.shortcut_conv);
      bn(p + "shortcut_layer.1", u.shortcut_bn);
    }
    bn(p + "res_layer.0", u.bn_in);
    add(p + "res_layer.1.weight", u.conv1);
    add(p + "res_layer.2.weight", u.prelu);
    add(p + "res_layer.3.weight", u.conv2);
    bn(p + "res_layer.4", u.bn_out);
    add(p + "res_layer.5.fc1.weight", u.se_fc1);
    add(p + "res_layer.5.fc2.weight", u.se_fc2);
  }
  for (size_t i = 0; i < m.styles.size(); ++i) {
    const GradualStyleBlock& b = m.styles[i];
    for (size_t k = 0; k < b.conv_w.size(); ++k) {
      add(absl::StrCat("styles.", i, ".convs.", 2 * k, ".weight"), b.conv_w[k]);
      add(absl::StrCat("styles.", i, ".convs.", 2 * k, ".bias"), b.conv_b[k]);
    }
    add(absl::StrCat("styles.", i, ".linear.weight"), b.linear_w);
    add(absl::StrCat("styles.", i, ".linear.bias"), b.linear_b);
  }
  add("latlayer1.weight", m.latlayer1_w);
  add("latlayer1.bias", m.latlayer1_b);
  add("latlayer2.weight", m.latlayer2_w);
  add("latlayer2.bias", m.latlayer2_b);
  if (m.latent_avg.defined()) add("latent_avg", m.latent_avg);
  return out;
}

MemoryFootprint StyleEncoder::Footprint() const {
  FootprintCounter c;
  c.Add(impl_->all);
  return c.total();
}

absl::Status SaveEncoder(const std::string& path, const StyleEncoder& encoder,
                         const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> meta = extra;
  meta["format"] = kFormat;
  meta["architecture"] = std::string(EncoderArchitectureName(encoder.config().architecture));
  meta["styles"] = absl::StrCat(encoder.config().styles);
  return SaveSafetensors(path, encoder.StateDict(), meta);
}

absl::StatusOr<OfficialEncoderFile> ReadOfficialEncoderFile(const std::string& path) {
  ASSIGN_OR_RETURN(WrappedStateDict f, LoadWrappedStateDict(path, "a pSp / e4e checkpoint"));
  OfficialEncoderFile out;
  out.encoder = f.Under("encoder");
  out.decoder = f.Under("decoder");
  if (out.encoder.empty()) return absl::InvalidArgumentError("the file holds no 'encoder.*' tensors");
  std::string type = "Encoder4Editing";  // e4e's checkpoints; pSp's name theirs
  bool start_from_avg = true;
  if (const PyRef& opts = f.opts; opts != nullptr) {
    if (const PyRef t = opts->Get("encoder_type"); t != nullptr && t->IsString()) type = t->s;
    if (const PyRef s = opts->Get("start_from_latent_avg"); s != nullptr && s->kind == PyValue::Kind::kBool) {
      start_from_avg = s->b;
    }
    if (const PyRef s = opts->Get("stylegan_size"); s != nullptr && s->kind == PyValue::Kind::kInt) {
      out.stylegan_size = s->i;
    }
  }
  const auto arch = EncoderArchitectureFromName(type);
  if (!arch.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "encoder_type '", type.substr(0, 64),
        "' is not supported: Encoder4Editing (e4e) and GradualStyleEncoder (pSp) are (not SingleStyleCodeEncoder)"));
  }
  out.config.architecture = *arch;
  out.config.start_from_latent_avg = start_from_avg;
  if (const PyRef avg = f.root->Get("latent_avg"); avg != nullptr && avg->kind == PyValue::Kind::kTensor) {
    out.latent_avg = *avg->tensor;
  }
  int64_t heads = 0;
  while (out.encoder.count(absl::StrCat("styles.", heads, ".linear.weight")) != 0) ++heads;
  out.config.styles = heads;
  if (out.stylegan_size > 0 && StyleCountFor(out.stylegan_size) != heads) {
    return absl::InvalidArgumentError(absl::StrCat("opts say stylegan_size ", out.stylegan_size, " (",
                                                   StyleCountFor(out.stylegan_size), " w+ rows) but the encoder has ",
                                                   heads, " style heads"));
  }
  return out;
}

}  // namespace ganserve::core::psp
