#include "core/models/clip/clip_model.h"

#include "core/models/clip/clip_model_impl.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_file.h"
#include "core/models/common/torch_convert.h"
#include "core/util/status_macros.h"

namespace ganserve::core::clip {
namespace {

int CountBlocks(const std::map<std::string, TensorView>& t, const std::string& prefix) {
  std::set<std::string> ids;
  for (const auto& [k, v] : t) {
    if (absl::StartsWith(k, prefix)) {
      std::vector<std::string> rest = absl::StrSplit(k.substr(prefix.size()), '.');
      if (!rest.empty()) ids.insert(rest[0]);
    }
  }
  return static_cast<int>(ids.size());
}

}  // namespace

std::string ClipConfig::ToJson() const {
  nlohmann::json j = {{"embed_dim", embed_dim},
                      {"image_resolution", image_resolution},
                      {"vision_layers", vision_layers},
                      {"vision_width", vision_width},
                      {"vision_patch_size", vision_patch_size},
                      {"vision_heads", vision_heads},
                      {"context_length", context_length},
                      {"vocab_size", vocab_size},
                      {"transformer_width", transformer_width},
                      {"transformer_heads", transformer_heads},
                      {"transformer_layers", transformer_layers}};
  return j.dump(2);
}

absl::StatusOr<ClipConfig> InferClipConfig(const std::map<std::string, TensorView>& t) {
  auto shape = [&](const std::string& k) -> const std::vector<int64_t>* {
    auto it = t.find(k);
    return it == t.end() ? nullptr : &it->second.shape;
  };
  if (shape("visual.proj") == nullptr) {
    if (shape("visual.layer1.0.conv1.weight") != nullptr || shape("visual.attnpool.c_proj.weight") != nullptr) {
      return absl::UnimplementedError("ResNet CLIP models (RN50, RN101, ...) are not supported; use a ViT model");
    }
    return absl::InvalidArgumentError("not a CLIP checkpoint: 'visual.proj' is missing");
  }
  ClipConfig c;
  const auto* conv = shape("visual.conv1.weight");
  const auto* vpos = shape("visual.positional_embedding");
  const auto* tproj = shape("text_projection");
  const auto* pos = shape("positional_embedding");
  const auto* tok = shape("token_embedding.weight");
  const auto* lnf = shape("ln_final.weight");
  std::vector<std::string> missing;
  for (const char* k : {"visual.conv1.weight", "visual.positional_embedding", "text_projection", "positional_embedding",
                        "token_embedding.weight", "ln_final.weight"}) {
    if (shape(k) == nullptr) missing.push_back(k);
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("CLIP checkpoint lacks ", absl::StrJoin(missing, ", ")));
  }
  if (conv->size() != 4 || vpos->size() != 2 || tproj->size() != 2 || pos->size() != 2 || tok->size() != 2) {
    return absl::InvalidArgumentError("CLIP checkpoint tensors have unexpected ranks");
  }
  c.vision_width = static_cast<int>((*conv)[0]);
  c.vision_patch_size = static_cast<int>((*conv)[3]);
  c.vision_layers = CountBlocks(t, "visual.transformer.resblocks.");
  const int grid = static_cast<int>(std::lround(std::sqrt(static_cast<double>((*vpos)[0] - 1))));
  c.image_resolution = c.vision_patch_size * grid;
  c.embed_dim = static_cast<int>((*tproj)[1]);
  c.context_length = static_cast<int>((*pos)[0]);
  c.vocab_size = static_cast<int>((*tok)[0]);
  c.transformer_width = static_cast<int>((*lnf)[0]);
  c.transformer_heads = c.transformer_width / 64;
  c.vision_heads = c.vision_width / 64;
  c.transformer_layers = CountBlocks(t, "transformer.resblocks.");
  if (c.transformer_heads < 1 || c.vision_heads < 1 || c.vision_layers < 1 || c.transformer_layers < 1) {
    return absl::InvalidArgumentError("CLIP checkpoint has no attention blocks or widths below 64");
  }
  // Strict shape check of every tensor the model uses.
  std::vector<std::string> bad;
  auto expect = [&](const std::string& k, const std::vector<int64_t>& want) {
    const auto* s = shape(k);
    if (s == nullptr) {
      bad.push_back(k + " missing");
    } else if (*s != want) {
      bad.push_back(absl::StrCat(k, " is ", ShapeString(*s), ", expected ", ShapeString(want)));
    }
  };
  const int64_t vw = c.vision_width, tw = c.transformer_width;
  expect("visual.class_embedding", {vw});
  expect("visual.ln_pre.weight", {vw});
  expect("visual.ln_pre.bias", {vw});
  expect("visual.ln_post.weight", {vw});
  expect("visual.ln_post.bias", {vw});
  expect("visual.proj", {vw, c.embed_dim});
  expect("visual.conv1.weight", {vw, 3, c.vision_patch_size, c.vision_patch_size});
  expect("text_projection", {tw, c.embed_dim});
  expect("ln_final.bias", {tw});
  expect("positional_embedding", {c.context_length, tw});
  expect("token_embedding.weight", {c.vocab_size, tw});
  expect("logit_scale", {});
  auto blocks = [&](const std::string& p, int n, int64_t w) {
    for (int i = 0; i < n; ++i) {
      const std::string b = absl::StrCat(p, i, ".");
      expect(b + "attn.in_proj_weight", {3 * w, w});
      expect(b + "attn.in_proj_bias", {3 * w});
      expect(b + "attn.out_proj.weight", {w, w});
      expect(b + "attn.out_proj.bias", {w});
      expect(b + "ln_1.weight", {w});
      expect(b + "ln_1.bias", {w});
      expect(b + "ln_2.weight", {w});
      expect(b + "ln_2.bias", {w});
      expect(b + "mlp.c_fc.weight", {4 * w, w});
      expect(b + "mlp.c_fc.bias", {4 * w});
      expect(b + "mlp.c_proj.weight", {w, 4 * w});
      expect(b + "mlp.c_proj.bias", {w});
    }
  };
  blocks("visual.transformer.resblocks.", c.vision_layers, vw);
  blocks("transformer.resblocks.", c.transformer_layers, tw);
  if (!bad.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("incomplete CLIP checkpoint: ",
                     absl::StrJoin(bad.begin(), bad.begin() + std::min<size_t>(bad.size(), 8), "; ")));
  }
  return c;
}

ClipModel::ClipModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClipModel::~ClipModel() = default;
const ClipConfig& ClipModel::config() const { return impl_->config; }

MemoryFootprint ClipModel::Footprint() const {
  const Impl& m = *impl_;
  FootprintCounter c;
  for (const auto* t :
       {&m.conv1, &m.class_emb, &m.vis_pos, &m.ln_pre_w, &m.ln_pre_b, &m.ln_post_w, &m.ln_post_b, &m.vis_proj,
        &m.tok_emb, &m.txt_pos, &m.ln_final_w, &m.ln_final_b, &m.txt_proj, &m.causal_mask}) {
    c.Add(*t);
  }
  for (const auto* blocks : {&m.vis_blocks, &m.txt_blocks}) {
    for (const Block& b : *blocks) {
      for (const auto* t : {&b.ln1_w, &b.ln1_b, &b.in_w, &b.in_b, &b.out_w, &b.out_b, &b.ln2_w, &b.ln2_b, &b.fc_w,
                            &b.fc_b, &b.proj_w, &b.proj_b}) {
        c.Add(*t);
      }
    }
  }
  return c.total();
}
float ClipModel::logit_scale() const { return impl_->logit_scale; }
ClipPrecision ClipModel::precision() const { return impl_->precision; }

absl::StatusOr<ClipPrecision> ParseClipPrecision(absl::string_view name) {
  if (name == "auto") return ClipPrecision::kAuto;
  if (name == "fp32") return ClipPrecision::kFloat32;
  if (name == "fp16") return ClipPrecision::kFloat16;
  if (name == "bf16") return ClipPrecision::kBFloat16;
  return absl::InvalidArgumentError(absl::StrCat("CLIP precision \"", name, "\" is not one of auto, fp32, fp16, bf16"));
}

const char* ClipPrecisionName(ClipPrecision p) {
  switch (p) {
    case ClipPrecision::kAuto: return "auto";
    case ClipPrecision::kFloat32: return "fp32";
    case ClipPrecision::kFloat16: return "fp16";
    case ClipPrecision::kBFloat16: return "bf16";
  }
  return "?";
}

absl::Status FillClipImpl(const std::function<absl::StatusOr<at::Tensor>(const std::string&)>& get,
                          ClipModel::Impl* impl) {
  const ClipConfig& config = impl->config;
  // Matmul weights in the compute precision (the reference's convert_weights set).
  auto get_w = [&](const std::string& k) -> absl::StatusOr<at::Tensor> {
    ASSIGN_OR_RETURN(at::Tensor t, get(k));
    return t.to(impl->dtype);
  };
  auto block = [&](const std::string& p) -> absl::StatusOr<Block> {
    Block b;
    ASSIGN_OR_RETURN(b.ln1_w, get(p + "ln_1.weight"));
    ASSIGN_OR_RETURN(b.ln1_b, get(p + "ln_1.bias"));
    ASSIGN_OR_RETURN(b.in_w, get_w(p + "attn.in_proj_weight"));
    ASSIGN_OR_RETURN(b.in_b, get_w(p + "attn.in_proj_bias"));
    ASSIGN_OR_RETURN(b.out_w, get_w(p + "attn.out_proj.weight"));
    ASSIGN_OR_RETURN(b.out_b, get_w(p + "attn.out_proj.bias"));
    ASSIGN_OR_RETURN(b.ln2_w, get(p + "ln_2.weight"));
    ASSIGN_OR_RETURN(b.ln2_b, get(p + "ln_2.bias"));
    ASSIGN_OR_RETURN(b.fc_w, get_w(p + "mlp.c_fc.weight"));
    ASSIGN_OR_RETURN(b.fc_b, get_w(p + "mlp.c_fc.bias"));
    ASSIGN_OR_RETURN(b.proj_w, get_w(p + "mlp.c_proj.weight"));
    ASSIGN_OR_RETURN(b.proj_b, get_w(p + "mlp.c_proj.bias"));
    return b;
  };
  ASSIGN_OR_RETURN(impl->conv1, get_w("visual.conv1.weight"));
  ASSIGN_OR_RETURN(impl->class_emb, get("visual.class_embedding"));
  ASSIGN_OR_RETURN(impl->vis_pos, get("visual.positional_embedding"));
  ASSIGN_OR_RETURN(impl->ln_pre_w, get("visual.ln_pre.weight"));
  ASSIGN_OR_RETURN(impl->ln_pre_b, get("visual.ln_pre.bias"));
  ASSIGN_OR_RETURN(impl->ln_post_w, get("visual.ln_post.weight"));
  ASSIGN_OR_RETURN(impl->ln_post_b, get("visual.ln_post.bias"));
  ASSIGN_OR_RETURN(impl->vis_proj, get_w("visual.proj"));
  for (int i = 0; i < config.vision_layers; ++i) {
    ASSIGN_OR_RETURN(Block b, block(absl::StrCat("visual.transformer.resblocks.", i, ".")));
    impl->vis_blocks.push_back(std::move(b));
  }
  for (int i = 0; i < config.transformer_layers; ++i) {
    ASSIGN_OR_RETURN(Block b, block(absl::StrCat("transformer.resblocks.", i, ".")));
    impl->txt_blocks.push_back(std::move(b));
  }
  ASSIGN_OR_RETURN(impl->tok_emb, get("token_embedding.weight"));
  ASSIGN_OR_RETURN(impl->txt_pos, get("positional_embedding"));
  ASSIGN_OR_RETURN(impl->ln_final_w, get("ln_final.weight"));
  ASSIGN_OR_RETURN(impl->ln_final_b, get("ln_final.bias"));
  ASSIGN_OR_RETURN(impl->txt_proj, get_w("text_projection"));
  ASSIGN_OR_RETURN(at::Tensor scale, get("logit_scale"));
  impl->logit_scale = scale.item<float>();
  impl->causal_mask = at::full({config.context_length, config.context_length}, -INFINITY,
                               at::TensorOptions().dtype(at::kFloat).device(impl->device))
                          .triu(1);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ClipModel>> ClipModel::FromTensors(const std::map<std::string, TensorView>& tensors,
                                                                  const std::string& device, ClipPrecision precision) {
  ASSIGN_OR_RETURN(ClipConfig config, InferClipConfig(tensors));
  ASSIGN_OR_RETURN(c10::Device dev, ParseDevice(device));
  if (precision == ClipPrecision::kAuto) precision = dev.is_cuda() ? ClipPrecision::kFloat16 : ClipPrecision::kFloat32;
  if (precision == ClipPrecision::kFloat16 && !dev.is_cuda()) {
    return absl::InvalidArgumentError(absl::StrCat("fp16 CLIP needs a CUDA device, not ", dev.str(),
                                                   " (LibTorch's CPU kernels do not cover half precision); "
                                                   "use fp32 or bf16"));
  }
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->device = dev;
  impl->precision = precision;
  impl->dtype = precision == ClipPrecision::kFloat16    ? at::kHalf
                : precision == ClipPrecision::kBFloat16 ? at::kBFloat16
                                                        : at::kFloat;
  try {
    // Normal (not inference) tensors: the NADA losses backpropagate through CLIP.
    c10::NoGradGuard no_grad;
    RETURN_IF_ERROR(FillClipImpl([&](const std::string& k) { return ToTorchFloat(tensors.at(k), dev); }, impl.get()));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "building CLIP failed");
  }
  return std::unique_ptr<ClipModel>(new ClipModel(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<ClipModel>> ClipModel::Load(const std::string& path, const std::string& device,
                                                           ClipLoadReport* report, ClipPrecision precision) {
  ClipLoadReport local;
  ClipLoadReport& rep = report != nullptr ? *report : local;
  std::map<std::string, TensorView> tensors;
  if (absl::EndsWith(path, ".safetensors")) {
    ASSIGN_OR_RETURN(SafetensorsFile f, LoadSafetensors(path));
    rep.format = "safetensors";
    tensors = std::move(f.tensors);
  } else {
    ASSIGN_OR_RETURN(TorchFile f, LoadTorchFile(path));
    rep.format = std::string(TorchFileFormatName(f.format));
    PyRef root = f.root;
    if (root->kind == PyValue::Kind::kDict && root->Get("state_dict") != nullptr) root = root->Get("state_dict");
    ASSIGN_OR_RETURN(tensors, StateDictTensors(root));
  }
  auto model = FromTensors(tensors, device, precision);
  if (!model.ok()) return absl::Status(model.status().code(), absl::StrCat(path, ": ", model.status().message()));
  for (const auto& [k, v] : tensors) {
    if (k == "input_resolution" || k == "context_length" || k == "vocab_size") continue;
    const bool used = absl::StartsWith(k, "visual.") || absl::StartsWith(k, "transformer.") ||
                      k == "token_embedding.weight" || k == "positional_embedding" ||
                      absl::StartsWith(k, "ln_final.") || k == "text_projection" || k == "logit_scale";
    if (!used) rep.ignored_tensors.push_back(k);
  }
  return model;
}

absl::StatusOr<FloatTensor> ClipModel::EncodeImage(const FloatTensor& images) const {
  const int r = impl_->config.image_resolution;
  if (images.shape.size() != 4 || images.shape[1] != 3 || images.shape[2] != r || images.shape[3] != r ||
      images.shape[0] < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("images must be [N, 3, ", r, ", ", r, "], got ", ShapeString(images.shape)));
  }
  try {
    c10::InferenceMode guard;
    return FromTorch(impl_->EncodeImage(ToTorch(images, impl_->device)));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "encode_image failed");
  }
}

absl::StatusOr<FloatTensor> ClipModel::EncodeText(const std::vector<std::vector<int>>& tokens) const {
  const int ctx = impl_->config.context_length;
  if (tokens.empty()) return absl::InvalidArgumentError("no token rows given");
  std::vector<int64_t> flat;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (static_cast<int>(tokens[i].size()) != ctx) {
      return absl::InvalidArgumentError(
          absl::StrCat("token row ", i, " has ", tokens[i].size(), " ids, expected ", ctx));
    }
    for (int id : tokens[i]) {
      if (id < 0 || id >= impl_->config.vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat("token id ", id, " in row ", i, " is outside [0, ", impl_->config.vocab_size, ")"));
      }
      flat.push_back(id);
    }
  }
  try {
    c10::InferenceMode guard;
    at::Tensor t =
        at::from_blob(flat.data(), {static_cast<int64_t>(tokens.size()), ctx}, at::kLong).clone().to(impl_->device);
    return FromTorch(impl_->EncodeText(t));
  } catch (const c10::Error& e) {
    return TorchErrorStatus(e, "encode_text failed");
  }
}

absl::StatusOr<FloatTensor> ClipModel::Logits(const FloatTensor& images,
                                              const std::vector<std::vector<int>>& tokens) const {
  ASSIGN_OR_RETURN(FloatTensor img, EncodeImage(images));
  ASSIGN_OR_RETURN(FloatTensor txt, EncodeText(tokens));
  c10::InferenceMode guard;
  at::Tensor a = ToTorch(img, c10::kCPU), b = ToTorch(txt, c10::kCPU);
  a = a / a.norm(2, -1, true);
  b = b / b.norm(2, -1, true);
  return FromTorch(std::exp(impl_->logit_scale) * at::matmul(a, b.t()));
}

}  // namespace ganserve::core::clip
