#include "core/checkpoint/nvidia_pickle.h"

#include <cmath>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace ganserve::core {
namespace {

constexpr char kPersistent[] = "torch_utils.persistence._reconstruct_persistent_obj";

// The meta dict of a persistent object (class_name, module_src, state), or null.
PyRef PersistentMeta(const PyRef& v) {
  if (v == nullptr || v->kind != PyValue::Kind::kObject || v->s != kPersistent || v->items.size() != 1) return nullptr;
  const PyRef& meta = v->items[0];
  return meta->kind == PyValue::Kind::kDict ? meta : nullptr;
}

std::string ClassName(const PyRef& meta) {
  PyRef c = meta->Get("class_name");
  return c != nullptr && c->IsString() ? c->s : "";
}

PyRef State(const PyRef& meta) {
  PyRef s = meta->Get("state");
  return s != nullptr && s->kind == PyValue::Kind::kDict ? s : nullptr;
}

// One module of the network: its attributes, tensors and children by name.
struct Module {
  std::string class_name;
  PyRef state;
  std::map<std::string, TensorView> tensors;  // parameters and buffers, own only
  std::map<std::string, Module> children;

  PyRef Attr(const std::string& name) const { return state->Get(name); }
  const Module* Child(const std::string& name) const {
    auto it = children.find(name);
    return it == children.end() ? nullptr : &it->second;
  }
};

absl::StatusOr<Module> ReadModule(const PyRef& object, const std::string& path, int depth) {
  if (depth > 32) return absl::InvalidArgumentError("network nesting too deep");
  PyRef meta = PersistentMeta(object);
  if (meta == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not an NVIDIA persistent network object (found ",
                                                   object == nullptr ? "nothing" : object->Describe(), ")"));
  }
  Module m;
  m.class_name = ClassName(meta);
  m.state = State(meta);
  if (m.state == nullptr) return absl::InvalidArgumentError(absl::StrCat(path, " has no module state"));
  for (const char* group : {"_parameters", "_buffers"}) {
    PyRef d = m.Attr(group);
    if (d == nullptr || d->kind != PyValue::Kind::kDict) continue;
    for (const auto& [k, v] : d->dict) {
      if (k->IsString() && v->kind == PyValue::Kind::kTensor) m.tensors[k->s] = *v->tensor;
    }
  }
  if (PyRef mods = m.Attr("_modules"); mods != nullptr && mods->kind == PyValue::Kind::kDict) {
    for (const auto& [k, v] : mods->dict) {
      if (!k->IsString() || v->kind == PyValue::Kind::kNone) continue;
      if (PersistentMeta(v) == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ".", k->s, " is a ", v->Describe(), ", not a network module of the pickle"));
      }
      ASSIGN_OR_RETURN(Module child, ReadModule(v, absl::StrCat(path, ".", k->s), depth + 1));
      m.children.emplace(k->s, std::move(child));
    }
  }
  return m;
}

std::optional<double> Number(const PyRef& v) {
  if (v == nullptr) return std::nullopt;
  if (v->kind == PyValue::Kind::kInt) return static_cast<double>(v->i);
  if (v->kind == PyValue::Kind::kFloat) return v->f;
  return std::nullopt;
}

std::string Text(const PyRef& v) { return v != nullptr && v->IsString() ? v->s : ""; }

// A tensor of `m` as a dense float32 copy with `shape` (same element count), times `scale`.
absl::StatusOr<FloatTensor> Take(const Module& m, const std::string& path, const std::string& name,
                                 const std::vector<int64_t>& shape, float scale = 1.0f) {
  auto it = m.tensors.find(name);
  if (it == m.tensors.end()) return absl::InvalidArgumentError(absl::StrCat(path, ".", name, " is missing"));
  ASSIGN_OR_RETURN(FloatTensor t, ToFloatTensor(it->second));
  if (NumElements(shape) != t.numel()) {
    std::string have;
    for (int64_t d : t.shape) absl::StrAppend(&have, have.empty() ? "" : ",", d);
    std::string want;
    for (int64_t d : shape) absl::StrAppend(&want, want.empty() ? "" : ",", d);
    return absl::InvalidArgumentError(absl::StrCat(path, ".", name, " has shape [", have, "], expected [", want, "]"));
  }
  t.shape = shape;
  if (scale != 1.0f) {
    for (float& x : t.data) x *= scale;
  }
  return t;
}

// The [1,3,3,1] outer-product filter, normalised to sum 1, that both codebases use.
absl::Status CheckResampleFilter(const Module& m, const std::string& path) {
  ASSIGN_OR_RETURN(FloatTensor f, Take(m, path, "resample_filter", {4, 4}));
  static constexpr float kTaps[4] = {1, 3, 3, 1};
  for (size_t i = 0; i < 4; ++i) {
    for (size_t j = 0; j < 4; ++j) {
      if (std::fabs(f.data[i * 4 + j] - kTaps[i] * kTaps[j] / 64.0f) > 1e-6f) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ".resample_filter is not the [1,3,3,1] filter; rosinality's layout has no other"));
      }
    }
  }
  return absl::OkStatus();
}

// conv0 / conv1 / torgb of a synthesis block -> a rosinality StyledConv / ToRGB.
absl::Status MapLayer(const Module& layer, const std::string& path, const std::string& ros, bool torgb,
                      NvidiaGenerator* out) {
  auto& t = out->tensors;
  auto wit = layer.tensors.find("weight");
  if (wit == layer.tensors.end() || wit->second.shape.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat(path, ".weight is missing or not 4-d"));
  }
  const std::vector<int64_t> ws = wit->second.shape;  // [O, I, k, k]
  const Module* affine = layer.Child("affine");
  if (affine == nullptr) return absl::InvalidArgumentError(absl::StrCat(path, ".affine is missing"));
  auto ait = affine->tensors.find("weight");
  if (ait == affine->tensors.end() || ait->second.shape.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(path, ".affine.weight is missing or not 2-d"));
  }
  const int64_t in = ws[1], w_dim = ait->second.shape[1];
  ASSIGN_OR_RETURN(t[ros + ".conv.weight"], Take(layer, path, "weight", {1, ws[0], ws[1], ws[2], ws[3]}));
  ASSIGN_OR_RETURN(t[ros + ".conv.modulation.weight"], Take(*affine, path + ".affine", "weight", {in, w_dim}));
  ASSIGN_OR_RETURN(t[ros + ".conv.modulation.bias"], Take(*affine, path + ".affine", "bias", {in}));
  if (torgb) {
    ASSIGN_OR_RETURN(t[ros + ".bias"], Take(layer, path, "bias", {1, ws[0], 1, 1}));
    return absl::OkStatus();
  }
  if (ws[2] != 3 || ws[3] != 3) return absl::InvalidArgumentError(absl::StrCat(path, ": only 3x3 convolutions map"));
  if (const std::string act = Text(layer.Attr("activation")); act != "lrelu") {
    return absl::InvalidArgumentError(absl::StrCat(path, " uses activation '", act, "'; only lrelu maps"));
  }
  if (PyRef noise = layer.Attr("use_noise"); noise != nullptr && noise->kind == PyValue::Kind::kBool && !noise->b) {
    return absl::InvalidArgumentError(absl::StrCat(path, " has no noise input; rosinality layers always add noise"));
  }
  ASSIGN_OR_RETURN(t[ros + ".activate.bias"], Take(layer, path, "bias", {ws[0]}));
  ASSIGN_OR_RETURN(t[ros + ".noise.weight"], Take(layer, path, "noise_strength", {1}));
  if (PyRef clamp = layer.Attr("conv_clamp"); Number(clamp)) out->conv_clamp = *Number(clamp);
  return absl::OkStatus();
}

}  // namespace

bool IsNvidiaNetworkPickle(const PyRef& root) {
  return root != nullptr && root->kind == PyValue::Kind::kDict && PersistentMeta(root->Get("G_ema")) != nullptr;
}

absl::StatusOr<NvidiaGenerator> NvidiaGeneratorToRosinality(const PyRef& root) {
  if (!IsNvidiaNetworkPickle(root)) {
    return absl::InvalidArgumentError(
        "not an NVIDIA network pickle: expected a dict with a G_ema network (stylegan2-ada-pytorch or StyleGAN3 "
        "release); TensorFlow pickles (a tuple of dnnlib.tflib networks) are not read");
  }
  ASSIGN_OR_RETURN(Module g, ReadModule(root->Get("G_ema"), "G_ema", 0));
  if (g.class_name != "Generator") {
    return absl::InvalidArgumentError(absl::StrCat("G_ema is a ", g.class_name, ", not a Generator"));
  }
  const Module* synthesis = g.Child("synthesis");
  const Module* mapping = g.Child("mapping");
  if (synthesis == nullptr || mapping == nullptr) {
    return absl::InvalidArgumentError("G_ema has no synthesis or mapping network");
  }
  if (synthesis->Child("input") != nullptr || !synthesis->children.count("b4")) {
    return absl::InvalidArgumentError(
        "StyleGAN3 (alias-free, config T/R) generators are not supported; import a StyleGAN2-architecture pickle "
        "(stylegan2-ada-pytorch, or stylegan2-*.pkl from the StyleGAN3 release)");
  }
  if (auto c = Number(g.Attr("c_dim")); (c && *c != 0) || mapping->Child("embed") != nullptr) {
    return absl::InvalidArgumentError(
        "conditional generators (c_dim > 0) are not supported: rosinality's generator takes no class label");
  }
  const auto z_dim = Number(g.Attr("z_dim")), w_dim = Number(g.Attr("w_dim"));
  if (!z_dim || !w_dim || *z_dim != *w_dim) {
    return absl::InvalidArgumentError("z_dim and w_dim differ (or are missing); rosinality has one style_dim");
  }
  if (auto ch = Number(synthesis->Attr("img_channels")); !ch || *ch != 3) {
    return absl::InvalidArgumentError("only 3-channel (RGB) generators are supported");
  }
  const auto res = Number(synthesis->Attr("img_resolution"));
  if (!res || *res < 8 || *res > 4096) {
    return absl::InvalidArgumentError("synthesis.img_resolution missing or out of range");
  }
  NvidiaGenerator out;
  out.resolution = static_cast<int>(*res);
  const int64_t wd = static_cast<int64_t>(*w_dim);
  auto& t = out.tensors;

  // Mapping: fc0..fc{n-1}, lrelu, lr multiplier 0.01 (bias_gain), w_dim -> w_dim.
  int n_mlp = 0;
  for (;; ++n_mlp) {
    const Module* fc = mapping->Child(absl::StrCat("fc", n_mlp));
    if (fc == nullptr) break;
    const std::string path = absl::StrCat("G_ema.mapping.fc", n_mlp);
    if (Text(fc->Attr("activation")) != "lrelu") {
      return absl::InvalidArgumentError(absl::StrCat(path, " is not an lrelu layer"));
    }
    if (auto gain = Number(fc->Attr("bias_gain")); !gain || std::fabs(*gain - 0.01) > 1e-9) {
      return absl::InvalidArgumentError(absl::StrCat(path, " has a learning-rate multiplier other than 0.01"));
    }
    const std::string ros = absl::StrCat("style.", n_mlp + 1);
    ASSIGN_OR_RETURN(t[ros + ".weight"], Take(*fc, path, "weight", {wd, wd}));
    ASSIGN_OR_RETURN(t[ros + ".bias"], Take(*fc, path, "bias", {wd}));
  }
  if (n_mlp == 0) return absl::InvalidArgumentError("G_ema.mapping has no fc layers");
  ASSIGN_OR_RETURN(out.latent_avg, Take(*mapping, "G_ema.mapping", "w_avg", {wd}));

  // Synthesis blocks b4 .. b{res}.
  for (int64_t r = 4, j = -1; r <= *res; r *= 2, ++j) {
    const std::string path = absl::StrCat("G_ema.synthesis.b", r);
    const Module* b = synthesis->Child(absl::StrCat("b", r));
    if (b == nullptr) return absl::InvalidArgumentError(absl::StrCat(path, " is missing"));
    if (const std::string arch = Text(b->Attr("architecture")); arch != "skip") {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " has the '", arch, "' architecture; only 'skip' (StyleGAN2 config F) maps"));
    }
    const Module* conv1 = b->Child("conv1");
    const Module* torgb = b->Child("torgb");
    if (conv1 == nullptr || torgb == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(path, " lacks conv1 or torgb"));
    }
    if (r == 4) {
      auto cit = b->tensors.find("const");
      if (cit == b->tensors.end() || cit->second.shape.size() != 3) {
        return absl::InvalidArgumentError(absl::StrCat(path, ".const is missing or not 3-d"));
      }
      const auto& cs = cit->second.shape;
      ASSIGN_OR_RETURN(t["input.input"], Take(*b, path, "const", {1, cs[0], cs[1], cs[2]}));
      RETURN_IF_ERROR(MapLayer(*conv1, path + ".conv1", "conv1", false, &out));
      RETURN_IF_ERROR(MapLayer(*torgb, path + ".torgb", "to_rgb1", true, &out));
      ASSIGN_OR_RETURN(t["noises.noise_0"], Take(*conv1, path + ".conv1", "noise_const", {1, 1, 4, 4}));
      continue;
    }
    const Module* conv0 = b->Child("conv0");
    if (conv0 == nullptr) return absl::InvalidArgumentError(absl::StrCat(path, ".conv0 is missing"));
    const std::string c0 = absl::StrCat("convs.", 2 * j), c1 = absl::StrCat("convs.", 2 * j + 1);
    RETURN_IF_ERROR(MapLayer(*conv0, path + ".conv0", c0, false, &out));
    RETURN_IF_ERROR(MapLayer(*conv1, path + ".conv1", c1, false, &out));
    RETURN_IF_ERROR(MapLayer(*torgb, path + ".torgb", absl::StrCat("to_rgbs.", j), true, &out));
    RETURN_IF_ERROR(CheckResampleFilter(*conv0, path + ".conv0"));
    RETURN_IF_ERROR(CheckResampleFilter(*b, path));
    // rosinality stores the filters with the upsampling gain (2^2) baked in.
    ASSIGN_OR_RETURN(t[c0 + ".conv.blur.kernel"], Take(*conv0, path + ".conv0", "resample_filter", {4, 4}, 4.0f));
    ASSIGN_OR_RETURN(t[absl::StrCat("to_rgbs.", j, ".upsample.kernel")],
                     Take(*b, path, "resample_filter", {4, 4}, 4.0f));
    ASSIGN_OR_RETURN(t[absl::StrCat("noises.noise_", 2 * j + 1)],
                     Take(*conv0, path + ".conv0", "noise_const", {1, 1, r, r}));
    ASSIGN_OR_RETURN(t[absl::StrCat("noises.noise_", 2 * j + 2)],
                     Take(*conv1, path + ".conv1", "noise_const", {1, 1, r, r}));
  }
  if (wd != 512) out.notes.push_back(absl::StrCat("w_dim is ", wd, "; rosinality's tools assume 512"));
  if (n_mlp != 8) out.notes.push_back(absl::StrCat(n_mlp, " mapping layers; rosinality's tools assume 8"));
  return out;
}

}  // namespace ganserve::core
