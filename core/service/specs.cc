#include "core/service/specs.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/adapt/domain_trainer.h"
#include "core/adapt/nada_trainer.h"
#include "core/adapt/oneshot_trainer.h"
#include "core/edit/global_directions.h"
#include "core/edit/latent_optimizer.h"
#include "core/edit/mapper_trainer.h"
#include "core/invert/face_align.h"
#include "core/invert/face_landmarks.h"
#include "core/invert/projector.h"
#include "core/io/image_codec.h"
#include "core/registry/model_repository.h"
#include "core/service/storage.h"
#include "core/util/status_macros.h"

namespace ganserve::core::service {
namespace {

absl::Status Invalid(const std::string& m) { return absl::InvalidArgumentError(m); }

// Integer field in [lo, hi]; the message says what 0 means when it has a default.
absl::Status Range(const char* field, int64_t v, int64_t lo, int64_t hi, const std::string& zero = "") {
  if (v >= lo && v <= hi) return absl::OkStatus();
  return Invalid(
      absl::StrCat(field, " must be in [", lo, ", ", hi, "]", zero.empty() ? "" : " (0 = " + zero + ")", ", got ", v));
}

// Finite float field in [lo, hi].
absl::Status RangeF(const char* field, float v, float lo, float hi, const std::string& zero = "") {
  if (std::isfinite(v) && v >= lo && v <= hi) return absl::OkStatus();
  return Invalid(
      absl::StrCat(field, " must be in [", lo, ", ", hi, "]", zero.empty() ? "" : " (0 = " + zero + ")", ", got ", v));
}

template <typename E>
bool Known(E e, E last) {
  return static_cast<int>(e) >= 0 && static_cast<int>(e) <= static_cast<int>(last);
}

constexpr int kMaxText = 300;
constexpr int64_t kMaxSeed = 0xffffffffLL;

absl::Status CheckText(const std::string& field, const std::string& text, bool required) {
  if (required && text.empty()) return Invalid(absl::StrCat(field, " is required (1 to ", kMaxText, " characters)"));
  if (text.size() > kMaxText) {
    return Invalid(absl::StrCat(field, " is ", text.size(), " bytes; the limit is ", kMaxText));
  }
  for (unsigned char c : text) {
    if (c < 0x20 && c != '\t') return Invalid(absl::StrCat(field, " contains control characters"));
  }
  return absl::OkStatus();
}

absl::Status CheckSeed(const std::string& field, int64_t seed) {
  if (seed < 0 || seed > kMaxSeed) return Invalid(absl::StrCat(field, " = ", seed, " is outside [0, 4294967295]"));
  return absl::OkStatus();
}

std::string Slug(const std::string& text) {
  std::string out;
  for (char ch : text) {
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      out.push_back(c);
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
    if (out.size() >= 40) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "adapted" : out;
}

// What every job spec shares: an idempotency key and a loaded generator.
absl::Status CheckJobBasics(const std::string& request_id, const std::string& model, const ModelRepository& repo) {
  if (request_id.size() > 128) return Invalid("request_id is longer than 128 characters");
  for (unsigned char c : request_id) {
    if (c < 0x21 || c > 0x7e) return Invalid("request_id must be printable ASCII without spaces");
  }
  if (model.empty()) return Invalid("model is required: name a generator from ListModels");
  RETURN_IF_ERROR(ValidateModelName(model, "model"));
  return repo.GetGenerator(model).status();
}

// The name a job's result takes: the caller's, or `derived` (cut to 56 characters);
// ALREADY_EXISTS when a model has it.
absl::Status CheckOutputName(std::string* output_name, std::string derived, const ModelRepository& repo) {
  if (output_name->empty()) {
    if (derived.size() > 56) derived.resize(56);
    *output_name = std::move(derived);
    if (repo.Exists(*output_name)) {
      return absl::AlreadyExistsError(
          absl::StrCat("a model named '", *output_name, "' exists; set output_name or delete it first"));
    }
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(ValidateModelName(*output_name, "output_name"));
  if (repo.Exists(*output_name)) {
    return absl::AlreadyExistsError(absl::StrCat("a model named '", *output_name, "' already exists"));
  }
  return absl::OkStatus();
}

// A webhook address: empty, or an absolute http(s) URL with a host, no spaces or
// control characters, at most 2048 characters.
absl::Status CheckNotifyUrl(const std::string& url) {
  if (url.empty()) return absl::OkStatus();
  if (url.size() > 2048) return Invalid("notify_url is longer than 2048 characters");
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7f) return Invalid("notify_url must be a URL without spaces or control characters");
  }
  const size_t scheme_end = url.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : absl::AsciiStrToLower(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") {
    return Invalid(absl::StrCat("notify_url must start with http:// or https://, got '", url.substr(0, 64), "'"));
  }
  const std::string rest = url.substr(scheme_end + 3);
  if (rest.empty() || rest[0] == '/' || rest[0] == ':' || rest[0] == '?') return Invalid("notify_url has no host");
  return absl::OkStatus();
}

// An image field decoded under the request limits; errors name the field.
absl::StatusOr<Rgb8Image> DecodeField(const std::string& field, const std::string& bytes) {
  auto img = DecodeImage(bytes, RequestImageLimits());
  if (!img.ok()) return absl::Status(img.status().code(), absl::StrCat(field, ": ", img.status().message()));
  return img;
}

absl::Status CheckImage(const std::string& field, const std::string& bytes) {
  return DecodeField(field, bytes).status();
}

absl::Status CheckFormat(ImageFormat f) {
  if (!Known(f, ImageFormat::kRawFloat)) return Invalid("format must be PNG, JPEG or RAW_FLOAT");
  return absl::OkStatus();
}

// Truncation psi: unset, or in [0, 2].
absl::Status CheckTruncation(const std::optional<float>& psi) {
  if (psi.has_value()) return RangeF("truncation", *psi, 0, 2);
  return absl::OkStatus();
}

// The tensor contract of caller latents: 1 to 4 dimensions, each >= 1, as many values
// as the shape says (at most `max_elements`), all finite.
absl::Status CheckTensor(const FloatTensor& t, const std::string& field, int64_t max_elements) {
  if (t.shape.empty() || t.shape.size() > 4) {
    return Invalid(absl::StrCat(field, ".shape must have 1 to 4 dimensions, got ", t.shape.size()));
  }
  int64_t n = 1;
  for (int64_t d : t.shape) {
    if (d < 1) return Invalid(absl::StrCat(field, ".shape entries must be >= 1"));
    if (n > max_elements / d) return Invalid(absl::StrCat(field, " has more than ", max_elements, " elements"));
    n *= d;
  }
  if (n != static_cast<int64_t>(t.data.size())) {
    return Invalid(
        absl::StrCat(field, ".shape ", ShapeString(t.shape), " needs ", n, " values, data has ", t.data.size()));
  }
  for (size_t i = 0; i < t.data.size(); ++i) {
    if (!std::isfinite(t.data[i])) {
      return Invalid(absl::StrCat(field, ".data[", i, "] is ", t.data[i], "; latents must be finite"));
    }
  }
  return absl::OkStatus();
}

// One source of inputs for Generate / Edit.
int SourceCount(const std::vector<int64_t>& seeds, const std::optional<LatentInput>& latents,
                const std::string& inversion_id) {
  return (seeds.empty() ? 0 : 1) + (latents.has_value() ? 1 : 0) + (inversion_id.empty() ? 0 : 1);
}

}  // namespace

DecodeLimits RequestImageLimits() {
  // Images inside requests: <= 16 MiB encoded, <= 8192 px a side, <= 64 Mpx.
  return DecodeLimits{16u << 20, 8192, 8192, 64LL << 20};
}

absl::Status ValidateJobId(const std::string& id) {
  if (id.empty() || id.size() > 128) return Invalid("id is required (at most 128 characters)");
  return absl::OkStatus();
}

absl::Status ValidateModelName(const std::string& name, const char* field) {
  if (!IsValidModelName(name)) {
    return Invalid(absl::StrCat(field, " '", name.substr(0, 80), "' is not a valid model name: it must match ",
                                "[a-z0-9][a-z0-9._-]{0,63}"));
  }
  return absl::OkStatus();
}

absl::Status ValidateModelRef(const std::string& name, const char* field) {
  if (!IsValidModelRef(name)) {
    return Invalid(absl::StrCat(field, " '", name.substr(0, 80), "' is not a valid model name: it must match ",
                                "[a-z0-9][a-z0-9._-]{0,63}, or MODEL@STEP for a training snapshot"));
  }
  return absl::OkStatus();
}

absl::Status ValidateModelKindFilter(int kind) {
  if (kind < 0 || kind > static_cast<int>(ModelKind::kEncoder)) return Invalid("unknown kind filter");
  return absl::OkStatus();
}

absl::Status ListJobsSpec::Validate() {
  RETURN_IF_ERROR(Range("page_size", page_size, 0, 500, std::to_string(Defaults::kListPageSize)));
  if (page_size == 0) page_size = Defaults::kListPageSize;
  if (kind < 0 || kind > static_cast<int64_t>(JobKind::kTrainMapper) || state < 0 || state > 5) {
    return Invalid("unknown kind or state filter");
  }
  if (page_token.size() > 256) return Invalid("page_token is too long");
  return absl::OkStatus();
}

absl::Status WatchJobSpec::Validate() {
  RETURN_IF_ERROR(ValidateJobId(id));
  if (after_seq < 0) return Invalid("after_seq must be >= 0");
  return absl::OkStatus();
}

std::optional<stylegan2::DomainKind> DomainKindOf(Parameterization p) {
  switch (p) {
    case Parameterization::kDomainModulation: return stylegan2::DomainKind::kDomainModulation;
    case Parameterization::kStyleSpaceDirection: return stylegan2::DomainKind::kStyleSpaceDirection;
    case Parameterization::kAffineLight: return stylegan2::DomainKind::kAffineLight;
    default: return std::nullopt;
  }
}

Parameterization ParameterizationNamed(const std::string& name) {
  if (name == "full") return Parameterization::kFull;
  for (Parameterization p :
       {Parameterization::kDomainModulation, Parameterization::kStyleSpaceDirection, Parameterization::kAffineLight}) {
    if (name == stylegan2::DomainKindName(*DomainKindOf(p))) return p;
  }
  return Parameterization::kUnspecified;
}

namespace {

// The settings of a lightweight parameterization: what FULL-only fields must be left
// alone, and its recipe's defaults.
absl::Status ValidateLightweight(AdaptSpec& s, stylegan2::DomainKind kind) {
  const std::string name = stylegan2::DomainKindName(kind);
  const adapt::DomainTrainerOptions recipe = adapt::DomainTrainerDefaults(kind);
  auto only_full = [&](const char* field) {
    return Invalid(absl::StrCat(field, " applies to parameterization FULL only, not ", name));
  };
  if (!s.target_images.empty()) {
    return Invalid(absl::StrCat("parameterization ", name, " trains from target_text; target_images need FULL"));
  }
  if (s.auto_layer_k != 0 || s.auto_layer_iters != 0 || s.auto_layer_batch != 0) return only_full("auto_layer_*");
  if (s.layer_preset != LayerPreset::kUnspecified || s.layer_mapping != LayerMapping::kUnspecified) {
    return only_full("layer_preset and layer_mapping");
  }
  if (s.lambda_global != 0 || s.lambda_manifold != 0) return only_full("lambda_global and lambda_manifold");
  if (s.adam_steps != AdamSteps::kUnspecified) return only_full("adam_steps");
  if (s.delta_dtype != DeltaDtype::kUnspecified && s.delta_dtype != DeltaDtype::kFloat32) {
    return only_full("delta_dtype (a lightweight domain is a few KB in float32)");
  }
  RETURN_IF_ERROR(Range("batch_size", s.batch_size, 0, 16, std::to_string(recipe.batch_size)));
  if (s.batch_size == 0) s.batch_size = recipe.batch_size;
  if (s.batch_size < 2) {
    return Invalid(absl::StrCat("batch_size must be >= 2 for ", name, ": its in-domain loss compares pairs"));
  }
  if (!s.mixing.has_value()) s.mixing = recipe.mixing;
  if (!s.lambda_indomain.has_value()) s.lambda_indomain = recipe.lambda_indomain;
  RETURN_IF_ERROR(RangeF("lambda_indomain", *s.lambda_indomain, 0, 100));
  if (!s.lambda_direction.has_value()) s.lambda_direction = recipe.lambda_direction;
  if (*s.lambda_direction == 0 && *s.lambda_indomain == 0) {
    return Invalid("lambda_direction and lambda_indomain are both 0: nothing would train");
  }
  return absl::OkStatus();
}

// NADA requests leave the one-shot settings unset.
absl::Status RefuseOneShotSettings(const AdaptSpec& s) {
  if (s.reference_steps != 0 || s.skip_reference_search || !s.w_ref.empty() || s.lambda_const.has_value() ||
      s.lambda_patch.has_value() || s.ref_every != 0) {
    return Invalid("one_shot settings apply to method ONE_SHOT; this request is NADA (the default method)");
  }
  return absl::OkStatus();
}

// ONE_SHOT: one target image, one CLIP model, the AlexNet LPIPS, a base whose training
// checkpoint has `g` and `d`; the NADA-only fields stay unset.
absl::Status ValidateOneShot(AdaptSpec& s, const ModelRepository& repo, const ModelInfo& base) {
  const adapt::OneshotOptions reference;
  auto nada_only = [](const char* field) {
    return Invalid(absl::StrCat(field, " applies to method NADA, not ONE_SHOT"));
  };
  if (s.parameterization != Parameterization::kUnspecified && s.parameterization != Parameterization::kFull) {
    return Invalid("ONE_SHOT fine-tunes the whole generator: parameterization must be FULL or unset");
  }
  if (s.auto_layer_k != 0 || s.auto_layer_iters != 0 || s.auto_layer_batch != 0) return nada_only("auto_layer_*");
  if (s.layer_preset != LayerPreset::kUnspecified || s.layer_mapping != LayerMapping::kUnspecified) {
    return nada_only("layer_preset and layer_mapping");
  }
  if (s.lambda_global != 0 || s.lambda_manifold != 0 || s.lambda_direction.has_value() ||
      s.lambda_indomain.has_value()) {
    return nada_only("lambda_global, lambda_manifold, lambda_direction and lambda_indomain");
  }
  if (s.adam_steps != AdamSteps::kUnspecified) return nada_only("adam_steps");
  if (s.target_images.size() != 1) {
    return Invalid(
        absl::StrCat("ONE_SHOT adapts to exactly one target image (target_images), got ", s.target_images.size()));
  }
  RETURN_IF_ERROR(CheckImage("target_images[0]", s.target_images[0]));
  // Texts only label the result (its domain and default name).
  RETURN_IF_ERROR(CheckText("target_text", s.target_text, false));
  if (s.source_text.empty()) s.source_text = base.domain.empty() ? adapt::NadaOptions{}.source_text : base.domain;
  RETURN_IF_ERROR(CheckText("source_text", s.source_text, false));

  RETURN_IF_ERROR(Range("iterations", s.iterations, 0, 5000, std::to_string(reference.iterations)));
  if (s.iterations == 0) s.iterations = reference.iterations;
  RETURN_IF_ERROR(Range("batch_size", s.batch_size, 0, 16, std::to_string(reference.batch_size)));
  if (s.batch_size == 0) s.batch_size = reference.batch_size;
  if (s.batch_size < 2) return Invalid("batch_size must be >= 2 for ONE_SHOT: its consistency loss compares pairs");
  RETURN_IF_ERROR(RangeF("lr_scale", s.lr_scale, 0, 10, absl::StrCat(Defaults::kLrScale)));
  if (s.lr_scale == 0) s.lr_scale = Defaults::kLrScale;
  if (!s.mixing.has_value()) s.mixing = reference.mixing;
  RETURN_IF_ERROR(RangeF("mixing", *s.mixing, 0, 1));
  RETURN_IF_ERROR(
      Range("one_shot.reference_steps", s.reference_steps, 0, 5000, std::to_string(reference.reference_steps)));
  if (s.reference_steps == 0) s.reference_steps = reference.reference_steps;
  if (s.skip_reference_search) {
    for (float v : s.w_ref) {
      if (!std::isfinite(v) || std::fabs(v) > 1e4f) {
        return Invalid("one_shot.w_ref values must be finite and within [-1e4, 1e4]");
      }
    }
  } else if (!s.w_ref.empty()) {
    return Invalid("one_shot.w_ref is used only with skip_reference_search (the search starts from w_mean)");
  }
  if (!s.lambda_const.has_value()) s.lambda_const = reference.lambda_const;
  if (!s.lambda_patch.has_value()) s.lambda_patch = reference.lambda_patch;
  RETURN_IF_ERROR(RangeF("one_shot.lambda_const", *s.lambda_const, 0, 100));
  RETURN_IF_ERROR(RangeF("one_shot.lambda_patch", *s.lambda_patch, 0, 100));
  RETURN_IF_ERROR(Range("one_shot.ref_every", s.ref_every, 0, 100, std::to_string(reference.ref_every)));
  if (s.ref_every == 0) s.ref_every = reference.ref_every;
  // What the repository must hold: checked after the request's own fields.
  if (s.clip_models.size() > 1) {
    return Invalid(absl::StrCat("ONE_SHOT uses one CLIP model (the paper's ViT-B/32), got ", s.clip_models.size()));
  }
  if (s.clip_models.empty()) {
    // The configured ViT-B/32 (the paper's), else the only CLIP model installed.
    std::vector<std::string> installed;
    for (const auto& m : repo.List()) {
      if (m.kind == ModelKind::kClip && IsUsable(m.state)) installed.push_back(m.name);
    }
    const std::string configured = repo.styleclip_default();
    if (!configured.empty() && std::find(installed.begin(), installed.end(), configured) != installed.end()) {
      s.clip_models.push_back({configured, Defaults::kClipWeight});
    } else if (installed.size() == 1) {
      s.clip_models.push_back({installed[0], Defaults::kClipWeight});
    } else {
      return absl::FailedPreconditionError(
          absl::StrCat("ONE_SHOT needs a CLIP model: the configured default '", configured, "' is not installed and ",
                       installed.size(), " others are; name one in clip_models (the paper uses ViT-B/32)"));
    }
  }
  ClipWeight& c = s.clip_models[0];
  if (c.weight.has_value() && *c.weight != Defaults::kClipWeight) {
    return Invalid("clip_models weight does not apply to ONE_SHOT (its loss weights are fixed by the method)");
  }
  c.weight = Defaults::kClipWeight;
  RETURN_IF_ERROR(ValidateModelName(c.name, "clip_models name"));
  RETURN_IF_ERROR(repo.GetClip(c.name).status());
  RETURN_IF_ERROR(repo.FirstAlexLpips().status());
  RETURN_IF_ERROR(repo.TrainingFilesOf(s.model).status());
  if (s.skip_reference_search) {
    ASSIGN_OR_RETURN(auto g, repo.GetGenerator(s.model));
    const int dim = g->config().style_dim;
    if (static_cast<int>(s.w_ref.size()) != dim) {
      return Invalid(absl::StrCat("one_shot.skip_reference_search needs w_ref with style_dim = ", dim, " values, got ",
                                  s.w_ref.size()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AdaptSpec::Validate(const ModelRepository& repo) {
  // An adapted generator or a CLIP model as the base gets its own advice.
  if (auto info = repo.Get(model); info.ok() && info->kind != ModelKind::kGenerator) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", model, "' is a ", ModelKindName(info->kind), "; adapt from a base generator"));
  }
  RETURN_IF_ERROR(CheckJobBasics(request_id, model, repo));
  RETURN_IF_ERROR(CheckNotifyUrl(notify_url));
  ASSIGN_OR_RETURN(ModelInfo base, repo.Get(model));
  const adapt::NadaOptions reference;
  if (!Known(method, AdaptMethod::kOneShot)) return Invalid("unknown method");
  if (method == AdaptMethod::kOneShot) {
    RETURN_IF_ERROR(ValidateOneShot(*this, repo, base));
  } else {
    RETURN_IF_ERROR(RefuseOneShotSettings(*this));
    if (!Known(parameterization, Parameterization::kAffineLight)) return Invalid("unknown parameterization");
    if (parameterization == Parameterization::kUnspecified) parameterization = Parameterization::kFull;
    const std::optional<stylegan2::DomainKind> lightweight = DomainKindOf(parameterization);
    if (lightweight) {
      RETURN_IF_ERROR(ValidateLightweight(*this, *lightweight));
    } else if (lambda_indomain.has_value()) {
      return Invalid("lambda_indomain applies to the lightweight parameterizations, not FULL");
    }
    if (target_images.size() > 16) return Invalid("target_images: at most 16");
    for (size_t i = 0; i < target_images.size(); ++i) {
      RETURN_IF_ERROR(CheckImage(absl::StrCat("target_images[", i, "]"), target_images[i]));
    }
    if (target_text.empty() && target_images.empty()) {
      return Invalid("target_text is required (e.g. \"pencil sketch\") unless target_images are given");
    }
    if (target_text.empty() && auto_layer_k > 0) {
      return Invalid("auto_layer_k needs target_text: layer selection is text-guided, also with target_images");
    }
    RETURN_IF_ERROR(CheckText("target_text", target_text, false));
    if (source_text.empty()) source_text = base.domain.empty() ? reference.source_text : base.domain;
    RETURN_IF_ERROR(CheckText("source_text", source_text, false));
    if (source_text == target_text) return Invalid("source_text and target_text are the same");

    if (clip_models.empty()) {
      for (const auto& m : repo.List()) {
        if (m.kind == ModelKind::kClip && IsUsable(m.state)) {
          clip_models.push_back({m.name, Defaults::kClipWeight});
        }
      }
      if (clip_models.empty()) {
        return absl::FailedPreconditionError(
            "the repository has no CLIP model; add one (e.g. ViT-B-32.pt with its vocabulary, kind \"clip\")");
      }
    }
    if (clip_models.size() > 4) return Invalid("clip_models: at most 4");
    bool any_weight = false;
    for (auto& c : clip_models) {
      if (!c.weight.has_value()) c.weight = Defaults::kClipWeight;
      if (!(*c.weight >= 0 && *c.weight <= 10)) {
        return Invalid(
            absl::StrCat("clip_models weight for '", c.name.substr(0, 80), "' must be in [0, 10], got ", *c.weight));
      }
      any_weight = any_weight || *c.weight > 0;
      RETURN_IF_ERROR(ValidateModelName(c.name, "clip_models name"));
      RETURN_IF_ERROR(repo.GetClip(c.name).status());
    }
    if (!any_weight) return Invalid("clip_models: every weight is 0, so nothing would train; give one a weight > 0");
    RETURN_IF_ERROR(Range("iterations", iterations, 0, 5000, std::to_string(reference.iterations)));
    if (iterations == 0) iterations = reference.iterations;
    RETURN_IF_ERROR(RangeF("lr_scale", lr_scale, 0, 10, absl::StrCat(Defaults::kLrScale)));
    if (lr_scale == 0) lr_scale = Defaults::kLrScale;
    if (!lightweight) {
      RETURN_IF_ERROR(Range("batch_size", batch_size, 0, 16, std::to_string(reference.batch_size)));
      if (batch_size == 0) batch_size = reference.batch_size;
      if (!mixing.has_value()) mixing = reference.mixing;
      RETURN_IF_ERROR(Range("auto_layer_k", auto_layer_k, 0, base.n_latent, "the preset's layers"));
      RETURN_IF_ERROR(Range("auto_layer_iters", auto_layer_iters, 0, 10, std::to_string(reference.auto_layer_iters)));
      if (auto_layer_iters == 0) auto_layer_iters = reference.auto_layer_iters;
      RETURN_IF_ERROR(Range("auto_layer_batch", auto_layer_batch, 0, 32, std::to_string(reference.auto_layer_batch)));
      if (auto_layer_batch == 0) auto_layer_batch = reference.auto_layer_batch;
      if (!Known(layer_mapping, LayerMapping::kOfficial)) return Invalid("unknown layer_mapping");
      if (layer_mapping == LayerMapping::kUnspecified) layer_mapping = Defaults::kLayerMapping;
      if (!Known(layer_preset, LayerPreset::kShapeExpanded)) return Invalid("unknown layer_preset");
      if (layer_preset == LayerPreset::kUnspecified) layer_preset = Defaults::kLayerPreset;
      RETURN_IF_ERROR(RangeF("lambda_global", lambda_global, 0, 100));
      RETURN_IF_ERROR(RangeF("lambda_manifold", lambda_manifold, 0, 100));
      if (!lambda_direction.has_value()) lambda_direction = reference.lambda_direction;
      if (*lambda_direction == 0 && lambda_global == 0 && lambda_manifold == 0) {
        return Invalid("lambda_direction, lambda_global and lambda_manifold are all 0: nothing would train");
      }
      if (!Known(adam_steps, AdamSteps::kPerParameter)) return Invalid("unknown adam_steps");
      if (adam_steps == AdamSteps::kUnspecified) adam_steps = Defaults::kAdamSteps;
      // Both losses compare text embeddings of the source and target domains.
      if (target_text.empty() && (lambda_global > 0 || lambda_manifold > 0)) {
        return Invalid(
            "lambda_global and lambda_manifold need target_text: both losses use the target text's "
            "CLIP embedding, also with target_images");
      }
    }
    RETURN_IF_ERROR(RangeF("mixing", *mixing, 0, 1));
    RETURN_IF_ERROR(RangeF("lambda_direction", *lambda_direction, 0, 100));
  }
  RETURN_IF_ERROR(Range("preview_every", preview_every, 0, 5000, "the server's interval"));
  RETURN_IF_ERROR(Range("preview_count", preview_count, 0, 16, std::to_string(reference.preview_count)));
  if (preview_count == 0) preview_count = reference.preview_count;
  RETURN_IF_ERROR(Range("max_run_seconds", max_run_seconds, 0, 86400, "the server's limit"));
  RETURN_IF_ERROR(Range("priority", priority, Defaults::kMinPriority, Defaults::kMaxPriority, "the default"));
  RETURN_IF_ERROR(Range("snapshot_every", snapshot_every, 0, iterations, "no snapshots"));
  if (!Known(delta_dtype, DeltaDtype::kBFloat16)) return Invalid("unknown delta_dtype");
  if (snapshot_every > 0 && (iterations - 1) / snapshot_every > Defaults::kMaxSnapshots) {
    return Invalid(absl::StrCat("snapshot_every ", snapshot_every, " would keep ", (iterations - 1) / snapshot_every,
                                " snapshots of ", iterations, " steps; at most ", Defaults::kMaxSnapshots,
                                " (raise snapshot_every)"));
  }
  if (seed < 0) return Invalid("seed must be >= 0");
  if (!Known(preview_format, ImageFormat::kRawFloat)) return Invalid("unknown preview_format");
  const std::string unnamed = method == AdaptMethod::kOneShot ? "oneshot" : "images";
  return CheckOutputName(&output_name, absl::StrCat(model, "-", target_text.empty() ? unnamed : Slug(target_text)),
                         repo);
}

absl::Status InvertSpec::CheckEncoder(const ModelRepository& repo) {
  if (encoder.empty()) {
    ASSIGN_OR_RETURN(encoder, repo.EncoderFor(model));
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(ValidateModelName(encoder, "encoder"));
  ASSIGN_OR_RETURN(ModelInfo e, repo.Get(encoder));
  if (e.kind != ModelKind::kEncoder) {
    return Invalid(absl::StrCat("encoder '", encoder, "' is a ", ModelKindName(e.kind), ", not an encoder"));
  }
  ASSIGN_OR_RETURN(ModelInfo g, repo.Get(model));
  if (e.base_model != model && !(g.kind == ModelKind::kAdaptedGenerator && e.base_model == g.base_model)) {
    return absl::FailedPreconditionError(
        absl::StrCat("encoder '", encoder, "' encodes into '", e.base_model, "', not into '", model, "'",
                     g.base_model.empty() ? "" : " or its base '" + g.base_model + "'"));
  }
  return absl::OkStatus();
}

absl::Status InvertSpec::Validate(const ModelRepository& repo) {
  RETURN_IF_ERROR(CheckJobBasics(request_id, model, repo));
  RETURN_IF_ERROR(CheckNotifyUrl(notify_url));
  if (image.empty()) return Invalid("image is required (PNG or JPEG bytes)");
  ASSIGN_OR_RETURN(const Rgb8Image photo, DecodeField("image", image));
  if (align) {
    if (aligned) return Invalid("align detects the face to align the photo: an aligned photo takes neither");
    if (!landmarks.empty()) return Invalid("align detects the landmarks: send landmarks or align, not both");
    ASSIGN_OR_RETURN(auto landmarker, repo.FirstLandmarker());
    ASSIGN_OR_RETURN(const invert::DetectedFace face, landmarker->Largest(photo));
    for (const auto& p : face.landmarks) {
      landmarks.push_back(static_cast<float>(p.x));
      landmarks.push_back(static_cast<float>(p.y));
    }
  }
  if (!landmarks.empty()) {
    if (aligned) return Invalid("landmarks align the photo: an aligned photo takes none (set aligned false)");
    if (landmarks.size() != 10 && landmarks.size() != 136) {
      return Invalid(absl::StrCat("landmarks: give 68 points (dlib's order) or 5 (left eye, right eye, nose, left and ",
                                  "right mouth corner), got ", landmarks.size() / 2.0));
    }
    for (float v : landmarks) {
      if (!std::isfinite(v) || std::fabs(v) > 1e6f) return Invalid("landmarks must be finite pixel coordinates");
    }
    auto square = invert::FaceQuad(invert::PointsOf(landmarks));
    if (!square.ok()) return Invalid(std::string(square.status().message()));
    double x0 = square->quad[0].x, x1 = x0, y0 = square->quad[0].y, y1 = y0;
    for (const auto& p : square->quad) {
      x0 = std::min(x0, p.x);
      x1 = std::max(x1, p.x);
      y0 = std::min(y0, p.y);
      y1 = std::max(y1, p.y);
    }
    if (x1 <= 0 || y1 <= 0 || x0 >= photo.width || y0 >= photo.height) {
      return Invalid(
          absl::StrCat("landmarks: the face they outline lies outside the ", photo.width, "x", photo.height, " photo"));
    }
  }
  if (space == LatentSpace::kUnspecified) space = LatentSpace::kWPlus;
  if (space != LatentSpace::kW && space != LatentSpace::kWPlus) return Invalid("space must be W or W_PLUS");
  if (!Known(method, InvertMethod::kEncoder)) return Invalid("unknown method (OPTIMIZATION or ENCODER)");
  const invert::ProjectorOptions reference;
  if (method == InvertMethod::kEncoder) {
    if (steps != 0) return Invalid("steps is the OPTIMIZATION method's; after an ENCODER, refine_steps refines");
    if (space != LatentSpace::kWPlus) return Invalid("the ENCODER method inverts into W_PLUS (set space W_PLUS)");
    RETURN_IF_ERROR(Range("refine_steps", refine_steps, 0, 5000, "no refinement"));
    RETURN_IF_ERROR(CheckEncoder(repo));
  } else {
    if (!encoder.empty() || refine_steps != 0) return Invalid("encoder and refine_steps are for method ENCODER");
    RETURN_IF_ERROR(Range("steps", steps, 0, 5000, std::to_string(reference.steps)));
    if (steps == 0) steps = reference.steps;
  }
  RETURN_IF_ERROR(RangeF("lr", lr, 0, 1, absl::StrCat(reference.lr)));
  if (lr == 0) lr = reference.lr;
  if (!noise_regularize.has_value()) noise_regularize = reference.noise_regularize;
  RETURN_IF_ERROR(RangeF("noise_regularize", *noise_regularize, 0, 1e6f));
  // 0 keeps the loss choice to the job: MSE weight 0 with LPIPS, 1 without.
  RETURN_IF_ERROR(RangeF("mse", mse, 0, 100));
  RETURN_IF_ERROR(Range("preview_every", preview_every, 0, 5000, "the server's interval"));
  if (seed < 0) return Invalid("seed must be >= 0");
  RETURN_IF_ERROR(Range("max_run_seconds", max_run_seconds, 0, 86400, "the server's limit"));
  RETURN_IF_ERROR(Range("priority", priority, Defaults::kMinPriority, Defaults::kMaxPriority, "the default"));
  return absl::OkStatus();
}

absl::Status GlobalStatsSpec::Validate(const ModelRepository& repo) {
  RETURN_IF_ERROR(CheckJobBasics(request_id, model, repo));
  RETURN_IF_ERROR(CheckNotifyUrl(notify_url));
  ASSIGN_OR_RETURN(clip_model, ResolveClipModel(repo, clip_model));
  const edit::GlobalStatsOptions reference;
  if (num_samples != 0) {
    RETURN_IF_ERROR(Range("num_samples", num_samples, 100, 1000000, std::to_string(reference.num_samples)));
  }
  if (num_samples == 0) num_samples = reference.num_samples;
  RETURN_IF_ERROR(Range("num_images", num_images, 0, 1000, std::to_string(reference.num_images)));
  if (num_images == 0) num_images = reference.num_images;
  if (num_images > num_samples) return Invalid("num_images cannot exceed num_samples");
  if (batch_size != 0 && (batch_size < 2 || batch_size > 64 || batch_size % 2 != 0)) {
    return Invalid(
        absl::StrCat("batch_size must be even and in [2, 64] (0 = ", reference.batch_size, "), got ", batch_size));
  }
  if (batch_size == 0) batch_size = reference.batch_size;
  if (!Known(clamping, ChannelClamping::kIndependent)) return Invalid("unknown clamping");
  if (clamping == ChannelClamping::kUnspecified) clamping = Defaults::kClamping;
  ASSIGN_OR_RETURN(auto gen, repo.GetGenerator(model));
  if (truncation_cutoff.has_value()) {
    RETURN_IF_ERROR(Range("truncation_cutoff", *truncation_cutoff, 1, gen->config().n_latent));
  }
  RETURN_IF_ERROR(Range("render_resolution", render_resolution, 0, gen->config().resolution, "full images"));
  RETURN_IF_ERROR(edit::CheckRenderResolution(gen->config(), GlobalStatsOptionsOf(*this)));
  RETURN_IF_ERROR(Range("preview_every", preview_every, 0, 1000000, "the server's interval"));
  RETURN_IF_ERROR(Range("max_run_seconds", max_run_seconds, 0, int64_t{7} * 86400, "the server's limit"));
  RETURN_IF_ERROR(Range("priority", priority, Defaults::kMinPriority, Defaults::kMaxPriority, "the default"));
  ASSIGN_OR_RETURN(bool have, HaveGlobalStats(repo, model, clip_model));
  if (!recompute && have) {
    return absl::AlreadyExistsError(absl::StrCat("global-direction statistics for model '", model, "' with CLIP '",
                                                 clip_model, "' exist already; set recompute to compute them again"));
  }
  return absl::OkStatus();
}

absl::Status MapperSpec::Validate(const ModelRepository& repo, const std::string& data_dir) {
  if (auto info = repo.Get(model); info.ok() && info->kind != ModelKind::kGenerator) {
    return absl::FailedPreconditionError(absl::StrCat("model '", model, "' is a ", ModelKindName(info->kind),
                                                      "; a mapper is trained on a base generator"));
  }
  RETURN_IF_ERROR(CheckJobBasics(request_id, model, repo));
  RETURN_IF_ERROR(CheckNotifyUrl(notify_url));
  RETURN_IF_ERROR(CheckText("text", text, true));
  const edit::MapperTrainerOptions reference;
  if (!Known(mapper_type, MapperKind::kSingle)) return Invalid("unknown mapper_type");
  if (mapper_type == MapperKind::kUnspecified) mapper_type = MapperKind::kLevels;
  if (mapper_type == MapperKind::kSingle && (no_coarse || no_medium || no_fine)) {
    return Invalid("no_coarse, no_medium and no_fine apply to the LEVELS mapper, not SINGLE");
  }
  if (no_coarse && no_medium && no_fine) {
    return Invalid("no_coarse, no_medium and no_fine are all set: the mapper would change nothing");
  }
  RETURN_IF_ERROR(Range("steps", steps, 0, 200000, std::to_string(reference.steps)));
  if (steps == 0) steps = reference.steps;
  RETURN_IF_ERROR(RangeF("lr", lr, 0, 100, absl::StrCat(reference.lr)));
  if (lr == 0) lr = static_cast<float>(reference.lr);
  RETURN_IF_ERROR(Range("batch_size", batch_size, 0, 16, std::to_string(reference.batch_size)));
  if (batch_size == 0) batch_size = reference.batch_size;
  if (!clip_lambda.has_value()) clip_lambda = reference.clip_lambda;
  RETURN_IF_ERROR(RangeF("clip_lambda", *clip_lambda, 0, 100));
  if (*clip_lambda == 0) return Invalid("clip_lambda is 0: without the CLIP loss the mapper learns no edit");
  if (!latent_l2_lambda.has_value()) latent_l2_lambda = reference.latent_l2_lambda;
  RETURN_IF_ERROR(RangeF("latent_l2_lambda", *latent_l2_lambda, 0, 100));
  if (!id_lambda.has_value()) id_lambda = reference.id_lambda;
  RETURN_IF_ERROR(RangeF("id_lambda", *id_lambda, 0, 10));
  if (*id_lambda > 0) {
    if (absl::Status st = repo.FirstArcFace().status(); !st.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("id_lambda is ", *id_lambda, " (unset means the official ",
                                                        reference.id_lambda, "): ", st.message(),
                                                        "; or send id_lambda 0"));
    }
  }
  if (inversion_ids.size() > 1000) return Invalid("inversion_ids: at most 1000");
  if (!inversion_ids.empty()) {
    if (train_latents != 0) return Invalid("train_latents counts random latents; leave it 0 with inversion_ids");
    if (static_cast<int64_t>(inversion_ids.size()) < batch_size) {
      return Invalid(
          absl::StrCat("inversion_ids: ", inversion_ids.size(), " latents cannot fill a batch of ", batch_size));
    }
    for (size_t i = 0; i < inversion_ids.size(); ++i) {
      auto inv = LoadInversionFor(data_dir, inversion_ids[i], repo, model, false);
      if (!inv.ok()) {
        return absl::Status(inv.status().code(), absl::StrCat("inversion_ids[", i, "]: ", inv.status().message()));
      }
    }
  } else {
    RETURN_IF_ERROR(Range("train_latents", train_latents, 0, 100000, std::to_string(reference.train_latents)));
    if (train_latents == 0) train_latents = reference.train_latents;
    if (train_latents < batch_size) {
      return Invalid(absl::StrCat("train_latents ", train_latents, " cannot fill a batch of ", batch_size));
    }
  }
  ASSIGN_OR_RETURN(clip_model, ResolveClipModel(repo, clip_model));
  ASSIGN_OR_RETURN(auto gen, repo.GetGenerator(model));
  ASSIGN_OR_RETURN(ModelRepository::Clip clip, repo.GetClip(clip_model));
  if (absl::Status st = edit::MapperTrainer::CheckModels(*gen, *clip.model); !st.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", model, "' and CLIP model '", clip_model, "' do not fit: ", st.message()));
  }
  RETURN_IF_ERROR(Range("preview_every", preview_every, 0, 1000000, "the server's interval"));
  RETURN_IF_ERROR(Range("preview_count", preview_count, 0, 16, std::to_string(reference.preview_count)));
  if (preview_count == 0) preview_count = reference.preview_count;
  if (seed < 0) return Invalid("seed must be >= 0");
  RETURN_IF_ERROR(Range("max_run_seconds", max_run_seconds, 0, int64_t{7} * 86400, "the server's limit"));
  RETURN_IF_ERROR(Range("priority", priority, Defaults::kMinPriority, Defaults::kMaxPriority, "the default"));
  return CheckOutputName(&output_name, absl::StrCat(model, "-mapper-", Slug(text)), repo);
}

edit::MapperTrainerOptions MapperOptionsOf(const MapperSpec& s) {
  edit::MapperTrainerOptions o;
  o.mapper.type = s.mapper_type == MapperKind::kSingle ? edit::MapperType::kSingle : edit::MapperType::kLevels;
  o.mapper.coarse = !s.no_coarse;
  o.mapper.medium = !s.no_medium;
  o.mapper.fine = !s.no_fine;
  o.steps = s.steps;
  o.lr = s.lr;
  o.batch_size = s.batch_size;
  o.clip_lambda = s.clip_lambda.value_or(o.clip_lambda);
  o.latent_l2_lambda = s.latent_l2_lambda.value_or(o.latent_l2_lambda);
  o.id_lambda = s.id_lambda.value_or(o.id_lambda);
  o.train_latents = s.train_latents;
  o.preview_count = s.preview_count;
  o.seed = static_cast<uint64_t>(s.seed);
  return o;
}

edit::GlobalStatsOptions GlobalStatsOptionsOf(const GlobalStatsSpec& s) {
  edit::GlobalStatsOptions o;
  o.num_samples = s.num_samples;
  o.num_images = s.num_images;
  o.batch_size = s.batch_size;
  o.clamping = s.clamping == ChannelClamping::kIndependent ? edit::ChannelClamping::kIndependent
                                                           : edit::ChannelClamping::kCumulative;
  if (s.truncation_cutoff.has_value()) o.truncation_cutoff = static_cast<int>(*s.truncation_cutoff);
  o.render_resolution = static_cast<int>(s.render_resolution);
  return o;
}

int64_t GlobalStatsSpec::TotalSteps(const ModelRepository& repo) const {
  auto gen = repo.GetGenerator(model);
  if (!gen.ok()) return 0;
  return edit::GlobalStatsBuilder::TotalSteps((*gen)->config(), GlobalStatsOptionsOf(*this));
}

absl::Status GenerateSpec::Validate(const ModelRepository& repo, const Limits& limits) {
  if (model.empty()) return Invalid("model is required: name a generator from ListModels");
  RETURN_IF_ERROR(ValidateModelRef(model, "model"));
  ASSIGN_OR_RETURN(auto gen, repo.GetGenerator(model));
  return ValidateFor(gen->config(), limits);
}

absl::Status GenerateSpec::ValidateFor(const stylegan2::GeneratorConfig& cfg, const Limits& limits) {
  const int sources = SourceCount(seeds, latents, inversion_id) + (count != 0 ? 1 : 0);
  if (sources != 1) {
    return Invalid(absl::StrCat("give exactly one of seeds, count, latents or inversion_id (got ", sources, ")"));
  }
  const int max_images = limits.max_images_per_request;
  int total = 1;  // an inversion is one image
  if (!seeds.empty()) {
    if (static_cast<int64_t>(seeds.size()) > max_images) {
      return Invalid(absl::StrCat("seeds has ", seeds.size(), " entries; the limit is ", max_images));
    }
    for (size_t i = 0; i < seeds.size(); ++i) RETURN_IF_ERROR(CheckSeed(absl::StrCat("seeds[", i, "]"), seeds[i]));
    total = static_cast<int>(seeds.size());
  } else if (count != 0) {
    RETURN_IF_ERROR(Range("count", count, 1, max_images));
    if (base_seed < 0 || base_seed + count - 1 > kMaxSeed) {
      return Invalid("base_seed + count - 1 must stay within [0, 4294967295]");
    }
    total = count;
  } else if (latents.has_value()) {
    const LatentSpace sp = latents->space;
    if (sp != LatentSpace::kZ && sp != LatentSpace::kW && sp != LatentSpace::kWPlus && sp != LatentSpace::kS) {
      return Invalid("latents.space must be Z, W, W_PLUS or S");
    }
    const int64_t row = sp == LatentSpace::kWPlus ? int64_t{cfg.n_latent} * cfg.style_dim
                        : sp == LatentSpace::kS   ? cfg.s_dim
                                                  : cfg.style_dim;
    const FloatTensor& t = latents->values;
    RETURN_IF_ERROR(CheckTensor(t, "latents.values", row * max_images));
    const std::vector<int64_t> want = sp == LatentSpace::kWPlus
                                          ? std::vector<int64_t>{t.shape[0], cfg.n_latent, cfg.style_dim}
                                          : std::vector<int64_t>{t.shape[0], row};
    if (t.shape != want) {
      return Invalid(absl::StrCat("latents.values has shape ", ShapeString(t.shape), "; model '", model, "' needs ",
                                  sp == LatentSpace::kWPlus ? "[N, n_latent, style_dim] = " : "", ShapeString(want)));
    }
    if (t.shape[0] > max_images) {
      return Invalid(absl::StrCat("latents has ", t.shape[0], " rows; the limit is ", max_images));
    }
    total = static_cast<int>(t.shape[0]);
  }
  RETURN_IF_ERROR(Range("batch_size", batch_size, 0, limits.max_batch_size, std::to_string(Defaults::kGenerateBatch)));
  if (batch_size == 0) batch_size = Defaults::kGenerateBatch;
  RETURN_IF_ERROR(CheckTruncation(truncation));
  if (!Known(noise, NoiseMode::kNone)) return Invalid("noise must be CONST, RANDOM or NONE");
  if (!mix_seeds.empty()) {
    if (seeds.empty() && count == 0) {
      return Invalid("mix_seeds needs seeds or count (mixing works on z drawn from seeds)");
    }
    if (static_cast<int64_t>(mix_seeds.size()) != total) {
      return Invalid(
          absl::StrCat("mix_seeds needs one seed per image: ", total, " images, ", mix_seeds.size(), " mix seeds"));
    }
    for (size_t i = 0; i < mix_seeds.size(); ++i) {
      RETURN_IF_ERROR(CheckSeed(absl::StrCat("mix_seeds[", i, "]"), mix_seeds[i]));
    }
    if (inject_index < 1 || inject_index >= cfg.n_latent) {
      return Invalid(absl::StrCat("inject_index must be in [1, ", cfg.n_latent - 1, "] for model '", model, "', got ",
                                  inject_index));
    }
  } else if (inject_index != 0) {
    return Invalid("inject_index is only meaningful with mix_seeds");
  }
  if (mean_rows_from.has_value()) {
    RETURN_IF_ERROR(Range("mean_rows_from", *mean_rows_from, 0, cfg.n_latent, "off"));
  }
  RETURN_IF_ERROR(CheckFormat(format));
  if (format == ImageFormat::kUnspecified) format = ImageFormat::kPng;
  RETURN_IF_ERROR(Range("jpeg_quality", jpeg_quality, 0, 100, std::to_string(Defaults::kJpegQuality)));
  if (jpeg_quality == 0) jpeg_quality = Defaults::kJpegQuality;

  // Each streamed message must stay under the message limit.
  const int64_t px = int64_t{cfg.resolution} * cfg.resolution;
  int64_t per_image = format == ImageFormat::kRawFloat ? 12 * px : 3 * px + px / 8 + 4096;
  if (return_latents) per_image += int64_t{cfg.n_latent} * cfg.style_dim * 4 + 64;
  const int64_t fits = (int64_t{limits.max_message_mb} << 20) / per_image;
  if (fits < 1) {
    return Invalid(absl::StrCat("one ", cfg.resolution, " px image in this format exceeds the ", limits.max_message_mb,
                                " MiB message limit; use PNG or JPEG"));
  }
  if (batch_size > fits) {
    return Invalid(absl::StrCat("batch_size ", batch_size, " could exceed the ", limits.max_message_mb,
                                " MiB message limit at ", cfg.resolution, " px; use batch_size <= ", fits));
  }
  return absl::OkStatus();
}

int EditSpec::StrengthCount() const {
  if (global_direction.has_value()) return static_cast<int>(global_direction->alphas.size());
  if (direction.has_value()) return static_cast<int>(direction->strengths.size());
  if (mapper.has_value()) return std::max<int>(1, static_cast<int>(mapper->strengths.size()));
  return 1;
}

absl::Status EditSpec::Validate(const ModelRepository& repo, const Limits& limits) {
  if (model.empty()) return Invalid("model is required: name the generator whose latent space you edit in");
  RETURN_IF_ERROR(ValidateModelRef(model, "model"));
  if (render_model.empty()) render_model = model;
  RETURN_IF_ERROR(ValidateModelRef(render_model, "render_model"));
  const int methods =
      global_direction.has_value() + latent_optimization.has_value() + direction.has_value() + mapper.has_value();
  if (methods != 1) return Invalid("give one edit method: direction, global_direction, latent_optimization or mapper");
  if (global_direction.has_value()) {
    GlobalDirectionSpec& g = *global_direction;
    if (g.neutral_text.empty() || g.neutral_text.size() > kMaxText || g.target_text.empty() ||
        g.target_text.size() > kMaxText) {
      return Invalid("global_direction.neutral_text and target_text need 1 to 300 characters each");
    }
    if (g.alphas.size() > 16) return Invalid("global_direction.alphas takes at most 16 values");
    for (float a : g.alphas) RETURN_IF_ERROR(RangeF("global_direction.alphas", a, -20, 20));
    if (g.alphas.empty()) g.alphas.push_back(Defaults::kGlobalAlpha);
    if (!std::isfinite(g.beta) || g.beta < 0 || g.beta >= 1) {
      return Invalid(absl::StrCat("global_direction.beta must be in [0, 1) (0 = ", Defaults::kGlobalBeta, ")"));
    }
    if (g.beta == 0) g.beta = Defaults::kGlobalBeta;
    if (!g.clip_model.empty()) RETURN_IF_ERROR(ValidateModelName(g.clip_model, "global_direction.clip_model"));
  } else if (latent_optimization.has_value()) {
    LatentOptimizationSpec& l = *latent_optimization;
    const edit::LatentOptimizationOptions reference;
    if (l.target_text.empty() || l.target_text.size() > kMaxText) {
      return Invalid("latent_optimization.target_text needs 1 to 300 characters");
    }
    RETURN_IF_ERROR(Range("latent_optimization.steps", l.steps, 0, 1000, std::to_string(reference.steps)));
    if (l.steps == 0) l.steps = reference.steps;
    RETURN_IF_ERROR(RangeF("latent_optimization.lr", l.lr, 0, 1, absl::StrCat(reference.lr)));
    if (l.lr == 0) l.lr = reference.lr;
    if (!l.l2_lambda.has_value()) l.l2_lambda = reference.l2_lambda;
    RETURN_IF_ERROR(RangeF("latent_optimization.l2_lambda", *l.l2_lambda, 0, 10));
    RETURN_IF_ERROR(RangeF("latent_optimization.id_lambda", l.id_lambda, 0, 10));
    if (l.id_lambda > 0) {
      if (absl::Status st = repo.FirstArcFace().status(); !st.ok()) {
        return absl::FailedPreconditionError(absl::StrCat("latent_optimization.id_lambda is ", l.id_lambda, ": ",
                                                          st.message(), "; or send id_lambda 0"));
      }
    }
    if (!l.clip_model.empty()) RETURN_IF_ERROR(ValidateModelName(l.clip_model, "latent_optimization.clip_model"));
    if (noise != NoiseMode::kUnspecified && noise != NoiseMode::kConst) {
      return Invalid("latent optimization keeps the noise fixed: noise must be CONST");
    }
  } else if (mapper.has_value()) {
    MapperEditSpec& m = *mapper;
    if (m.mapper.empty()) return Invalid("mapper.mapper is required: name a mapper model (ListModels kind MAPPER)");
    RETURN_IF_ERROR(ValidateModelName(m.mapper, "mapper.mapper"));
    if (m.strengths.size() > 16) return Invalid("mapper.strengths takes at most 16 values");
    for (float v : m.strengths) RETURN_IF_ERROR(RangeF("mapper.strengths", v, -10, 10));
    if (m.strengths.empty()) m.strengths.push_back(1.0f);
  } else {
    DirectionSpec& d = *direction;
    if (d.strengths.empty() || d.strengths.size() > 16) return Invalid("direction.strengths needs 1 to 16 values");
    for (float s : d.strengths) RETURN_IF_ERROR(RangeF("direction.strengths", s, -100, 100));
    const LatentSpace sp = d.direction.space;
    if (sp != LatentSpace::kW && sp != LatentSpace::kWPlus && sp != LatentSpace::kS) {
      return Invalid("direction.direction.space must be W, W_PLUS or S");
    }
  }
  if (SourceCount(seeds, latents, inversion_id) != 1) {
    return Invalid("give exactly one of seeds, latents or inversion_id");
  }
  const int max_inputs = latent_optimization.has_value() ? kMaxOptimizedInputs
                                                         : std::max(1, limits.max_images_per_request / StrengthCount());
  if (static_cast<int>(seeds.size()) > max_inputs) return Invalid(absl::StrCat("seeds: at most ", max_inputs, " here"));
  for (size_t i = 0; i < seeds.size(); ++i) RETURN_IF_ERROR(CheckSeed(absl::StrCat("seeds[", i, "]"), seeds[i]));
  if (latents.has_value()) {
    const LatentSpace sp = latents->space;
    if (sp != LatentSpace::kZ && sp != LatentSpace::kW && sp != LatentSpace::kWPlus) {
      return Invalid("latents.space must be Z, W or W_PLUS");
    }
  }
  RETURN_IF_ERROR(CheckTruncation(truncation));
  RETURN_IF_ERROR(CheckFormat(format));
  if (format == ImageFormat::kUnspecified) format = ImageFormat::kPng;
  if (!Known(noise, NoiseMode::kNone)) return Invalid("noise must be CONST or NONE for edits");
  if (noise == NoiseMode::kRandom) {
    return Invalid("noise must be CONST or NONE for edits (random noise would change every strength)");
  }
  // The model and render model must exist; their shapes are matched when planning.
  RETURN_IF_ERROR(repo.GetGenerator(model).status());
  return repo.GetGenerator(render_model).status();
}

absl::Status CheckLatentTensor(const FloatTensor& t, const std::string& field, int64_t max_elements) {
  return CheckTensor(t, field, max_elements);
}

}  // namespace ganserve::core::service
