// JSON forms of the specs: what job records and manifests store, and the shape JSON
// edges accept. Field names are
// the specs' member names; binary fields (images) are base64. Missing fields take the
// spec's zero value, so records written before a field existed still load.
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/service/specs.h"

// Optional fields: null when unset.
namespace nlohmann {
template <typename T>
struct adl_serializer<std::optional<T>> {
  static void to_json(json& j, const std::optional<T>& v) {
    if (v.has_value()) {
      j = *v;
    } else {
      j = nullptr;
    }
  }
  static void from_json(const json& j, std::optional<T>& v) {
    if (j.is_null()) {
      v.reset();
    } else {
      v = j.get<T>();
    }
  }
};
}  // namespace nlohmann

namespace ganserve::core {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(FloatTensor, shape, data)
}  // namespace ganserve::core

namespace ganserve::core::service {

NLOHMANN_JSON_SERIALIZE_ENUM(NoiseMode, {{NoiseMode::kUnspecified, "unspecified"},
                                         {NoiseMode::kConst, "const"},
                                         {NoiseMode::kRandom, "random"},
                                         {NoiseMode::kNone, "none"}})
NLOHMANN_JSON_SERIALIZE_ENUM(LatentSpace, {{LatentSpace::kUnspecified, "unspecified"},
                                           {LatentSpace::kZ, "z"},
                                           {LatentSpace::kW, "w"},
                                           {LatentSpace::kWPlus, "w_plus"},
                                           {LatentSpace::kS, "s"}})
NLOHMANN_JSON_SERIALIZE_ENUM(InvertMethod, {{InvertMethod::kUnspecified, "unspecified"},
                                            {InvertMethod::kOptimization, "optimization"},
                                            {InvertMethod::kEncoder, "encoder"}})
NLOHMANN_JSON_SERIALIZE_ENUM(ImageFormat, {{ImageFormat::kUnspecified, "unspecified"},
                                           {ImageFormat::kPng, "png"},
                                           {ImageFormat::kJpeg, "jpeg"},
                                           {ImageFormat::kRawFloat, "raw_float"}})
NLOHMANN_JSON_SERIALIZE_ENUM(LayerPreset, {{LayerPreset::kUnspecified, "unspecified"},
                                           {LayerPreset::kDefault, "default"},
                                           {LayerPreset::kAll, "all"},
                                           {LayerPreset::kTexture, "texture"},
                                           {LayerPreset::kShape, "shape"},
                                           {LayerPreset::kNoFine, "no_fine"},
                                           {LayerPreset::kShapeExpanded, "shape_expanded"}})
NLOHMANN_JSON_SERIALIZE_ENUM(LayerMapping, {{LayerMapping::kUnspecified, "unspecified"},
                                            {LayerMapping::kConsumer, "consumer"},
                                            {LayerMapping::kOfficial, "official"}})
NLOHMANN_JSON_SERIALIZE_ENUM(AdamSteps, {{AdamSteps::kUnspecified, "unspecified"},
                                         {AdamSteps::kShared, "shared"},
                                         {AdamSteps::kPerParameter, "per_parameter"}})
NLOHMANN_JSON_SERIALIZE_ENUM(DeltaDtype, {{DeltaDtype::kUnspecified, "unspecified"},
                                          {DeltaDtype::kFloat32, "float32"},
                                          {DeltaDtype::kFloat16, "float16"},
                                          {DeltaDtype::kBFloat16, "bfloat16"}})
NLOHMANN_JSON_SERIALIZE_ENUM(Parameterization, {{Parameterization::kUnspecified, "unspecified"},
                                                {Parameterization::kFull, "full"},
                                                {Parameterization::kDomainModulation, "domain_modulation"},
                                                {Parameterization::kStyleSpaceDirection, "stylespace_direction"},
                                                {Parameterization::kAffineLight, "affine_light"}})
NLOHMANN_JSON_SERIALIZE_ENUM(AdaptMethod, {{AdaptMethod::kUnspecified, "unspecified"},
                                           {AdaptMethod::kNada, "nada"},
                                           {AdaptMethod::kOneShot, "one_shot"}})
NLOHMANN_JSON_SERIALIZE_ENUM(ChannelClamping, {{ChannelClamping::kUnspecified, "unspecified"},
                                               {ChannelClamping::kCumulative, "cumulative"},
                                               {ChannelClamping::kIndependent, "independent"}})

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ClipWeight, name, weight)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(AdaptSpec, request_id, model, output_name, source_text, target_text,
                                                target_images, clip_models, iterations, batch_size, lr_scale, mixing,
                                                auto_layer_k, auto_layer_iters, auto_layer_batch, layer_mapping,
                                                layer_preset, lambda_global, lambda_manifold, lambda_direction,
                                                adam_steps, preview_every, preview_count, seed, max_run_seconds,
                                                priority, preview_format, snapshot_every, delta_dtype, parameterization,
                                                lambda_indomain, notify_url, method, reference_steps,
                                                skip_reference_search, w_ref, lambda_const, lambda_patch, ref_every)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(InvertSpec, request_id, model, image, aligned, space, steps, lr,
                                                noise_regularize, mse, preview_every, seed, max_run_seconds, priority,
                                                pin, notify_url, landmarks, method, encoder, refine_steps, align)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GlobalStatsSpec, request_id, model, clip_model, num_samples, num_images,
                                                batch_size, preview_every, max_run_seconds, priority, recompute,
                                                clamping, truncation_cutoff, render_resolution, notify_url)
NLOHMANN_JSON_SERIALIZE_ENUM(MapperKind, {{MapperKind::kUnspecified, "unspecified"},
                                          {MapperKind::kLevels, "levels"},
                                          {MapperKind::kSingle, "single"}})
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MapperSpec, request_id, model, output_name, text, mapper_type,
                                                no_coarse, no_medium, no_fine, steps, lr, batch_size, clip_lambda,
                                                latent_l2_lambda, id_lambda, inversion_ids, train_latents, clip_model,
                                                preview_every, preview_count, seed, max_run_seconds, priority,
                                                notify_url)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LatentInput, space, values)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GenerateSpec, model, seeds, count, base_seed, latents, inversion_id,
                                                batch_size, truncation, noise, mix_seeds, inject_index, format,
                                                jpeg_quality, return_latents, mean_rows_from)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GlobalDirectionSpec, neutral_text, target_text, alphas, beta,
                                                clip_model)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LatentOptimizationSpec, target_text, steps, lr, l2_lambda, id_lambda,
                                                clip_model)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DirectionSpec, direction, strengths)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MapperEditSpec, mapper, strengths)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(EditSpec, model, render_model, seeds, latents, inversion_id, truncation,
                                                global_direction, latent_optimization, direction, mapper, format,
                                                return_latents, noise)

namespace {

// Binary fields travel as base64 inside the JSON document.
void EncodeBinary(AdaptSpec& s) {
  for (auto& img : s.target_images) img = absl::Base64Escape(img);
}
void EncodeBinary(InvertSpec& s) { s.image = absl::Base64Escape(s.image); }
void EncodeBinary(GlobalStatsSpec&) {}
void EncodeBinary(MapperSpec&) {}
void EncodeBinary(GenerateSpec&) {}
void EncodeBinary(EditSpec&) {}

bool DecodeBinary(AdaptSpec& s) {
  for (auto& img : s.target_images) {
    std::string raw;
    if (!absl::Base64Unescape(img, &raw)) return false;
    img = std::move(raw);
  }
  return true;
}
bool DecodeBinary(InvertSpec& s) {
  std::string raw;
  if (!absl::Base64Unescape(s.image, &raw)) return false;
  s.image = std::move(raw);
  return true;
}
bool DecodeBinary(GlobalStatsSpec&) { return true; }
bool DecodeBinary(MapperSpec&) { return true; }
bool DecodeBinary(GenerateSpec&) { return true; }
bool DecodeBinary(EditSpec&) { return true; }

template <typename Spec>
nlohmann::json ToJsonValue(Spec s) {
  EncodeBinary(s);
  return nlohmann::json(s);
}

}  // namespace

std::string SpecToJson(const AdaptSpec& s) { return ToJsonValue(s).dump(); }
std::string SpecToJson(const InvertSpec& s) { return ToJsonValue(s).dump(); }
std::string SpecToJson(const GlobalStatsSpec& s) { return ToJsonValue(s).dump(); }
std::string SpecToJson(const MapperSpec& s) { return ToJsonValue(s).dump(); }
std::string SpecToJson(const GenerateSpec& s) { return ToJsonValue(s).dump(); }
std::string SpecToJson(const EditSpec& s) { return ToJsonValue(s).dump(); }

// Every number converts to its field without undefined behaviour: the JSON library
// casts a double to an integer or float field as it is, so a float beyond the int64
// range (or an unsigned integer beyond it) is refused here. Integral spec fields are
// int64_t and float fields take anything below this bound; the specs check the ranges.
bool NumbersConvertible(const nlohmann::json& j) {
  constexpr double kBound = 9.2e18;  // just below 2^63
  switch (j.type()) {
    case nlohmann::json::value_t::number_float: {
      const double v = j.get<double>();
      return std::isfinite(v) && std::fabs(v) < kBound;
    }
    case nlohmann::json::value_t::number_unsigned:
      return j.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    case nlohmann::json::value_t::array:
    case nlohmann::json::value_t::object:
      for (const auto& v : j) {
        if (!NumbersConvertible(v)) return false;
      }
      return true;
    default: return true;
  }
}

template <typename Spec>
absl::StatusOr<Spec> SpecFromJson(const std::string& json) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::DataLossError("the stored request is not a JSON object");
  if (!NumbersConvertible(j)) {
    return absl::DataLossError("the stored request has a number outside the range of 64-bit integers");
  }
  Spec s;
  try {
    s = j.get<Spec>();
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("the stored request does not match its spec: ", e.what()));
  }
  if (!DecodeBinary(s)) return absl::DataLossError("the stored request has a field that is not valid base64");
  return s;
}

template <typename Spec>
std::string SpecHash(const Spec& spec) {
  Spec copy = spec;
  copy.request_id.clear();
  // Object keys are sorted, so the same payload always dumps to the same bytes.
  nlohmann::json j = ToJsonValue(std::move(copy));
  // Fields added later leave the digest alone at their default, so a retry of a request
  // submitted before the upgrade still finds its job.
  for (const char* later : {"snapshot_every", "pin", "delta_dtype", "parameterization", "lambda_indomain", "notify_url",
                            "method", "reference_steps", "skip_reference_search", "w_ref", "lambda_const",
                            "lambda_patch", "ref_every", "landmarks", "encoder", "refine_steps", "align", "priority"}) {
    if (j.contains(later) && (j[later].is_null() || j[later] == 0 || j[later] == false || j[later] == "unspecified" ||
                              j[later] == "" || j[later] == nlohmann::json::array())) {
      j.erase(later);
    }
  }
  const std::string bytes = j.dump();
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return absl::StrCat("spec:", absl::Hex(h, absl::kZeroPad16), "-", bytes.size());
}

template absl::StatusOr<AdaptSpec> SpecFromJson<AdaptSpec>(const std::string&);
template absl::StatusOr<InvertSpec> SpecFromJson<InvertSpec>(const std::string&);
template absl::StatusOr<GlobalStatsSpec> SpecFromJson<GlobalStatsSpec>(const std::string&);
template absl::StatusOr<MapperSpec> SpecFromJson<MapperSpec>(const std::string&);
template absl::StatusOr<GenerateSpec> SpecFromJson<GenerateSpec>(const std::string&);
template absl::StatusOr<EditSpec> SpecFromJson<EditSpec>(const std::string&);
template std::string SpecHash<AdaptSpec>(const AdaptSpec&);
template std::string SpecHash<InvertSpec>(const InvertSpec&);
template std::string SpecHash<GlobalStatsSpec>(const GlobalStatsSpec&);
template std::string SpecHash<MapperSpec>(const MapperSpec&);

}  // namespace ganserve::core::service
