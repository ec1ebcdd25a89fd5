#include "core/registry/model_repository.h"

#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>

#include <spdlog/spdlog.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_file.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace ganserve::core {
namespace fs = std::filesystem;
namespace {

int64_t DirSize(const fs::path& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) total += static_cast<int64_t>(e.file_size(ec));
  }
  return total;
}

void FillGeneratorInfo(const stylegan2::Generator& g, ModelInfo* info) {
  const auto& c = g.config();
  info->resolution = c.resolution;
  info->style_dim = c.style_dim;
  info->n_mlp = c.n_mlp;
  info->n_latent = c.n_latent;
  info->s_dim = c.s_dim;
}

// Fills the work folder `tmp` through `write`, then renames it to `dest` (first removing
// a folder there when `replace`): no half-written folder is ever at `dest`, and a failed
// write leaves nothing behind.
absl::Status WriteThenRename(const fs::path& tmp, const fs::path& dest, bool replace,
                             const std::function<absl::Status(const std::string&)>& write) {
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));
  if (absl::Status st = write(tmp.string()); !st.ok()) {
    fs::remove_all(tmp, ec);
    return st;
  }
  if (replace) fs::remove_all(dest, ec);
  fs::rename(tmp, dest, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove_all(tmp, ec);
    return absl::InternalError(absl::StrCat("cannot publish ", dest.filename().string(), ": ", why));
  }
  return absl::OkStatus();
}

// Resolves a manifest's file entry inside the model folder (no escaping it).
absl::StatusOr<std::string> FileIn(const fs::path& dir, const nlohmann::json& m, const char* key) {
  if (!m.contains(key) || !m[key].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("manifest.json needs a string '", key, "'"));
  }
  fs::path p = m[key].get<std::string>();
  if (p.is_absolute() || absl::StartsWith(p.lexically_normal().string(), "..")) {
    return absl::InvalidArgumentError(absl::StrCat("manifest '", key, "' must be a path inside the model folder"));
  }
  return (dir / p).string();
}

}  // namespace

const char* ModelKindName(ModelKind k) {
  switch (k) {
    case ModelKind::kGenerator: return "generator";
    case ModelKind::kAdaptedGenerator: return "adapted_generator";
    case ModelKind::kClip: return "clip";
    case ModelKind::kLpips: return "lpips";
    case ModelKind::kMapper: return "mapper";
    case ModelKind::kArcFace: return "arcface";
    case ModelKind::kEncoder: return "encoder";
    case ModelKind::kLandmarks: return "landmarks";
    default: return "unspecified";
  }
}

bool IsValidModelName(const std::string& name) {
  static const std::regex kRe("[a-z0-9][a-z0-9._-]{0,63}");
  return std::regex_match(name, kRe);
}

bool IsValidModelRef(const std::string& name) {
  static const std::regex kSnapshot("[a-z0-9][a-z0-9._-]{0,63}@[1-9][0-9]{0,8}");
  return IsValidModelName(name) || std::regex_match(name, kSnapshot);
}

std::string SnapshotName(const std::string& model, int64_t step) { return absl::StrCat(model, "@", step); }

const char* ModelStateName(ModelState s) {
  switch (s) {
    case ModelState::kReady: return "ready";
    case ModelState::kFailed: return "failed";
    case ModelState::kLoading: return "loading";
    case ModelState::kUnloaded: return "unloaded";
    default: return "unspecified";
  }
}

absl::StatusOr<ResidencyOptions::Preload> ParsePreload(const std::string& s) {
  if (s == "all") return ResidencyOptions::Preload::kAll;
  if (s == "pinned") return ResidencyOptions::Preload::kPinned;
  if (s == "none") return ResidencyOptions::Preload::kNone;
  return absl::InvalidArgumentError(absl::StrCat("preload must be all, pinned or none, got '", s, "'"));
}

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Create(const std::string& root,
                                                                         stylegan2::LoadOptions load_options,
                                                                         clip::ClipPrecision clip_precision,
                                                                         ResidencyOptions residency,
                                                                         RepositoryObserver* observer) {
  if (residency.host_budget_bytes < 0 || residency.device_budget_bytes < 0) {
    return absl::InvalidArgumentError("model memory budgets must be >= 0 (0 = no limit)");
  }
  RETURN_IF_ERROR(MakeDirs(root));
  return std::unique_ptr<ModelRepository>(
      new ModelRepository(root, std::move(load_options), clip_precision, residency, observer));
}

ModelInfo ModelRepository::ScanOne(const std::string& name, const std::string& folder) const {
  ModelInfo info;
  info.name = name;
  info.state = ModelState::kUnloaded;
  const fs::path dir = folder;
  auto fail = [&](std::string why) {
    info.state = ModelState::kFailed;
    info.error = std::move(why);
    return info;
  };
  if (!IsValidModelRef(name)) return fail("folder name is not a valid model name ([a-z0-9][a-z0-9._-]{0,63})");
  std::error_code ec;
  info.size_bytes = DirSize(dir);
  auto mtime = fs::last_write_time(dir / "manifest.json", ec);
  if (!ec) {
    info.create_time_unix =
        std::chrono::duration_cast<std::chrono::seconds>(mtime - fs::file_time_type::clock::now() +
                                                         std::chrono::system_clock::now().time_since_epoch())
            .count();
  }
  auto text = ReadFile((dir / "manifest.json").string(), 1 << 20);
  if (!text.ok()) return fail(std::string(text.status().message()));
  nlohmann::json m = nlohmann::json::parse(*text, nullptr, false);
  if (m.is_discarded() || !m.is_object()) return fail("manifest.json is not a JSON object");
  const std::string kind = m.value("kind", "");
  if (kind == "generator") {
    info.kind = ModelKind::kGenerator;
  } else if (kind == "adapted_generator") {
    info.kind = ModelKind::kAdaptedGenerator;
  } else if (kind == "clip") {
    info.kind = ModelKind::kClip;
  } else if (kind == "lpips") {
    info.kind = ModelKind::kLpips;
  } else if (kind == "mapper") {
    info.kind = ModelKind::kMapper;
  } else if (kind == "arcface") {
    info.kind = ModelKind::kArcFace;
  } else if (kind == "encoder") {
    info.kind = ModelKind::kEncoder;
  } else if (kind == "landmarks") {
    info.kind = ModelKind::kLandmarks;
  } else {
    return fail(absl::StrCat("manifest kind '", kind,
                             "' is not one of generator, adapted_generator, clip, lpips, mapper, arcface, encoder, "
                             "landmarks"));
  }
  auto str = [&](const char* key) { return m.contains(key) && m[key].is_string() ? m[key].get<std::string>() : ""; };
  info.domain = str("domain");
  info.base_model = str("base_model");
  info.source_text = str("source_text");
  info.target_text = str("target_text");
  info.default_truncation = m.contains("default_truncation") && m["default_truncation"].is_number()
                                ? m["default_truncation"].get<float>()
                                : 1.0f;
  if (m.contains("pinned") && !m["pinned"].is_boolean()) return fail("manifest 'pinned' must be true or false");
  info.pinned = m.value("pinned", false);
  info.imported = m.contains("imported") && m["imported"].is_boolean() && m["imported"].get<bool>();
  if (info.kind == ModelKind::kAdaptedGenerator) {
    if (m.contains("mean_rows_from")) {
      if (!m["mean_rows_from"].is_number_integer() || m["mean_rows_from"].get<int64_t>() < 0 ||
          m["mean_rows_from"].get<int64_t>() > 64) {
        return fail("manifest 'mean_rows_from' must be an integer in [0, 64]");
      }
      info.mean_rows_from = m["mean_rows_from"].get<int>();
    }
    info.parameterization = m.contains("parameterization") ? str("parameterization") : "full";
    if (info.parameterization != "full" && !stylegan2::ParseDomainKind(info.parameterization)) {
      return fail(absl::StrCat("manifest parameterization '", info.parameterization,
                               "' is not full, domain_modulation, stylespace_direction or affine_light"));
    }
    if (m.contains("trained_parameters") && m["trained_parameters"].is_number_integer()) {
      info.trained_parameters = m["trained_parameters"].get<int64_t>();
    }
  }
  if (info.kind == ModelKind::kLpips) {
    if (m.contains("variant") && !m["variant"].is_string()) return fail("manifest 'variant' must be a string");
    info.variant = m.contains("variant") ? str("variant") : kLpipsVgg;
    if (info.variant != kLpipsVgg && info.variant != kLpipsAlexStargan) {
      return fail(
          absl::StrCat("manifest lpips variant '", info.variant, "' is not ", kLpipsVgg, " or ", kLpipsAlexStargan));
    }
  }
  if ((info.kind == ModelKind::kMapper || info.kind == ModelKind::kEncoder) && info.base_model.empty()) {
    return fail(absl::StrCat("a ", ModelKindName(info.kind), "'s manifest names its generator in 'base_model'"));
  }
  if (m.contains("snapshot_of")) {
    info.snapshot_job = str("job");
    info.snapshot_step = m.value("step", int64_t{0});
  }
  return info;
}

absl::StatusOr<ModelRepository::Weights> ModelRepository::LoadWeights(const std::string& folder,
                                                                      ModelInfo* info) const {
  const fs::path dir = folder;
  ASSIGN_OR_RETURN(std::string text, ReadFile((dir / "manifest.json").string(), 1 << 20));
  nlohmann::json m = nlohmann::json::parse(text, nullptr, false);
  if (m.is_discarded() || !m.is_object()) return absl::InvalidArgumentError("manifest.json is not a JSON object");
  Weights w;
  switch (info->kind) {
    case ModelKind::kGenerator: {
      ASSIGN_OR_RETURN(std::string path, FileIn(dir, m, "checkpoint"));
      stylegan2::LoadOptions opt = load_options_;
      opt.key = m.value("checkpoint_key", "");
      ASSIGN_OR_RETURN(w.generator, stylegan2::Generator::Load(path, opt));
      FillGeneratorInfo(*w.generator, info);
      return w;
    }
    case ModelKind::kAdaptedGenerator: {
      // Only a base generator can be a base: no chain of adapted models, and no cycle to
      // wait on forever (a manifest naming itself).
      if (auto b = Get(info->base_model); b.ok() && b->kind != ModelKind::kGenerator) {
        return absl::FailedPreconditionError(absl::StrCat("base model '", info->base_model, "' is a ",
                                                          ModelKindName(b->kind), ", not a base generator"));
      }
      auto base = GetGenerator(info->base_model);
      if (!base.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("base model '", info->base_model, "' is not available: ", base.status().message()));
      }
      if (info->lightweight()) {
        // A lightweight domain: a file read, rendered on the base's resident weights.
        ASSIGN_OR_RETURN(std::string path, FileIn(dir, m, "domain_file"));
        ASSIGN_OR_RETURN(auto file, LoadSafetensors(path));
        stylegan2::DomainTensors t;
        t.kind = *stylegan2::ParseDomainKind(info->parameterization);
        for (const auto& [k, v] : file.tensors) {
          ASSIGN_OR_RETURN(t.tensors[k], ToFloatTensor(v));
        }
        ASSIGN_OR_RETURN(auto domain, (*base)->MakeDomain(t));
        info->trained_parameters = domain->parameter_count();
        ASSIGN_OR_RETURN(w.generator, stylegan2::Generator::WithDomain(*base, std::move(domain)));
        FillGeneratorInfo(*w.generator, info);
        return w;
      }
      ASSIGN_OR_RETURN(std::string delta_path, FileIn(dir, m, "delta"));
      ASSIGN_OR_RETURN(auto delta, LoadSafetensors(delta_path));
      auto base_sd = std::make_shared<std::map<std::string, FloatTensor>>((*base)->StateDict());
      // "values" (the default): the trained tensors themselves; "difference": what to add
      // to the base's (stored in half precision).
      const std::string encoding = m.value("delta_encoding", "values");
      if (encoding != "values" && encoding != "difference") {
        return absl::InvalidArgumentError(
            absl::StrCat("manifest delta_encoding '", encoding, "' is not values or difference"));
      }
      std::map<std::string, TensorView> replaced;
      for (const auto& [k, v] : delta.tensors) {
        auto it = base_sd->find(k);
        if (it == base_sd->end()) {
          return absl::InvalidArgumentError(absl::StrCat("delta tensor '", k, "' is not in the base generator"));
        }
        if (encoding == "values") {
          replaced[k] = v;
          continue;
        }
        ASSIGN_OR_RETURN(FloatTensor d, ToFloatTensor(v));
        if (d.shape != it->second.shape) {
          return absl::InvalidArgumentError(absl::StrCat("delta tensor '", k, "' has the wrong shape"));
        }
        for (size_t i = 0; i < d.data.size(); ++i) it->second.data[i] += d.data[i];
      }
      std::map<std::string, TensorView> tensors =
          ViewsOf(std::shared_ptr<const std::map<std::string, FloatTensor>>(std::move(base_sd)));
      for (auto& [k, v] : replaced) tensors[k] = std::move(v);
      // The base's mean latent, or the one the result was trained and sampled with (a
      // one-shot result's w_mean from its source generator).
      auto avg = std::make_shared<FloatTensor>((*base)->mean_latent());
      if (m.contains("mean_latent")) {
        const nlohmann::json& ml = m["mean_latent"];
        if (!ml.is_array() || ml.size() != avg->data.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("manifest mean_latent must be an array of ", avg->data.size(), " numbers"));
        }
        for (size_t i = 0; i < ml.size(); ++i) {
          if (!ml[i].is_number()) return absl::InvalidArgumentError("manifest mean_latent must hold numbers");
          avg->data[i] = ml[i].get<float>();
        }
      }
      TensorView avg_view = ViewOf(std::shared_ptr<const FloatTensor>(avg));
      stylegan2::LoadOptions opt = load_options_;
      opt.conv_clamp = (*base)->config().conv_clamp;  // trained through the base's clamp
      ASSIGN_OR_RETURN(w.generator, stylegan2::Generator::FromTensors(tensors, &avg_view, opt));
      FillGeneratorInfo(*w.generator, info);
      return w;
    }
    case ModelKind::kClip: {
      ASSIGN_OR_RETURN(std::string path, FileIn(dir, m, "checkpoint"));
      ASSIGN_OR_RETURN(std::string vocab, FileIn(dir, m, "vocab"));
      ASSIGN_OR_RETURN(w.clip.model, clip::ClipModel::Load(path, load_options_.device, nullptr, clip_precision_));
      ASSIGN_OR_RETURN(w.clip.tokenizer, clip::Tokenizer::Load(vocab));
      RETURN_IF_ERROR(w.clip.tokenizer->CheckModelVocabulary(w.clip.model->config().vocab_size));
      info->resolution = w.clip.model->config().image_resolution;
      return w;
    }
    case ModelKind::kLpips: {
      if (info->variant == kLpipsAlexStargan) {
        ASSIGN_OR_RETURN(std::string alexnet, FileIn(dir, m, "alexnet"));
        ASSIGN_OR_RETURN(std::string lin, FileIn(dir, m, "lin"));
        ASSIGN_OR_RETURN(w.alex_lpips, lpips::AlexLpips::Load(alexnet, lin, load_options_.device));
        return w;
      }
      ASSIGN_OR_RETURN(std::string vgg, FileIn(dir, m, "vgg16"));
      ASSIGN_OR_RETURN(std::string lin, FileIn(dir, m, "lin"));
      ASSIGN_OR_RETURN(w.lpips, lpips::Lpips::Load(vgg, lin, load_options_.device));
      return w;
    }
    case ModelKind::kArcFace: {
      ASSIGN_OR_RETURN(std::string path, FileIn(dir, m, "checkpoint"));
      ASSIGN_OR_RETURN(w.arcface, arcface::ArcFace::Load(path, load_options_.device));
      return w;
    }
    case ModelKind::kMapper: {
      ASSIGN_OR_RETURN(std::string path, FileIn(dir, m, "mapper_file"));
      edit::MapperConfig config;
      if (absl::EndsWith(path, ".safetensors")) {
        ASSIGN_OR_RETURN(auto file, LoadSafetensors(path));
        ASSIGN_OR_RETURN(config, edit::MapperConfigFromNames(file.tensors));
        ASSIGN_OR_RETURN(w.mapper, edit::LatentMapper::FromTensors(file.tensors, config, load_options_.device));
      } else {  // an official checkpoint as published (fetch-weights installs them so)
        ASSIGN_OR_RETURN(auto file, edit::ReadOfficialMapperFile(path));
        config = file.config;
        ASSIGN_OR_RETURN(w.mapper, edit::LatentMapper::FromTensors(file.mapper, config, load_options_.device));
      }
      info->style_dim = static_cast<int>(config.dim);
      info->trained_parameters = w.mapper->parameter_count();
      return w;
    }
    case ModelKind::kEncoder: {
      ASSIGN_OR_RETURN(std::string path, FileIn(dir, m, "encoder_file"));
      ASSIGN_OR_RETURN(w.encoder, psp::StyleEncoder::Load(path, load_options_.device));
      info->resolution = static_cast<int>(psp::kEncoderInputSize);
      info->style_dim = static_cast<int>(psp::kEncoderStyleDim);
      return w;
    }
    case ModelKind::kLandmarks: {
      ASSIGN_OR_RETURN(std::string path, FileIn(dir, m, "predictor"));
      ASSIGN_OR_RETURN(w.landmarker, invert::FaceLandmarker::Load(path));
      return w;
    }
    default: return absl::InvalidArgumentError("unknown model kind");
  }
}

namespace {
MemoryFootprint FootprintOf(const ModelRepository::Clip& clip, const std::shared_ptr<const stylegan2::Generator>& g,
                            const std::shared_ptr<const lpips::Lpips>& l,
                            const std::shared_ptr<const lpips::AlexLpips>& alex,
                            const std::shared_ptr<const edit::LatentMapper>& mapper,
                            const std::shared_ptr<const arcface::ArcFace>& face,
                            const std::shared_ptr<const psp::StyleEncoder>& encoder,
                            const std::shared_ptr<const invert::FaceLandmarker>& landmarker) {
  MemoryFootprint f;
  if (landmarker != nullptr) f.host_bytes += landmarker->footprint_bytes();
  if (encoder != nullptr) f += encoder->Footprint();
  if (mapper != nullptr) f += mapper->Footprint();
  if (face != nullptr) f += face->Footprint();
  if (g != nullptr) f += g->Footprint();
  if (clip.model != nullptr) f += clip.model->Footprint();
  if (l != nullptr) f += l->Footprint();
  if (alex != nullptr) f += alex->Footprint();
  return f;
}
}  // namespace

absl::StatusOr<ModelRepository::Weights> ModelRepository::Acquire(const std::string& name, bool retry_failed,
                                                                  bool pin) const {
  ModelInfo scanned;
  std::string folder;
  {
    absl::MutexLock lock(&mu_);
    for (;;) {
      auto it = models_.find(name);
      if (it == models_.end()) {
        return absl::NotFoundError(absl::StrCat("no model named '", name, "' (", Available(), ")"));
      }
      Entry& e = it->second;
      if (e.info.state == ModelState::kLoading) {
        load_done_.Wait(&mu_);
        continue;
      }
      if (e.info.state == ModelState::kFailed && !retry_failed) {
        return absl::FailedPreconditionError(absl::StrCat("model '", name, "' failed to load: ", e.info.error));
      }
      if (pin) e.info.pinned = true;
      if (e.info.state == ModelState::kReady) {
        e.last_use = ++use_clock_;
        return e.weights;
      }
      e.info.state = ModelState::kLoading;
      scanned = e.info;
      folder = e.folder;
      break;
    }
  }
  Notify({});
  // Loaded without the lock: other models stay usable meanwhile.
  if (scanned.kind == ModelKind::kUnspecified || !scanned.error.empty()) {
    ModelInfo fresh = ScanOne(name, folder);  // a FAILED entry is read again
    fresh.pinned = fresh.pinned || scanned.pinned;
    scanned = fresh;
  }
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<Weights> w = absl::FailedPreconditionError(scanned.error);
  if (scanned.state != ModelState::kFailed) {
    // Nothing may leave the entry LOADING: its waiters would wait forever.
    try {
      w = LoadWeights(folder, &scanned);
    } catch (const std::exception& e) {
      w = absl::InternalError(absl::StrCat("loading failed: ", e.what()));
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<ModelKind> evicted;
  absl::StatusOr<Weights> result = w;
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end()) {
      result = absl::NotFoundError(absl::StrCat("model '", name, "' was removed while it loaded"));
    } else {
      Entry& e = it->second;
      const bool pinned = e.info.pinned || scanned.pinned;
      e.info = scanned;
      e.info.pinned = pinned;
      if (w.ok()) {
        e.weights = *w;
        e.info.state = ModelState::kReady;
        e.info.error.clear();
        e.info.resident = FootprintOf(w->clip, w->generator, w->lpips, w->alex_lpips, w->mapper, w->arcface, w->encoder,
                                      w->landmarker);
        e.last_use = ++use_clock_;
        evicted = EvictOverBudget(name);
      } else {
        e.weights = {};
        e.info.state = ModelState::kFailed;
        e.info.error = std::string(w.status().message());
        e.info.resident = {};
        result = absl::FailedPreconditionError(absl::StrCat("model '", name, "' failed to load: ", e.info.error));
      }
    }
    load_done_.SignalAll();
  }
  if (observer_ != nullptr) observer_->OnModelLoad(scanned.kind, w.ok(), seconds);
  Notify(evicted);
  return result;
}

bool ModelRepository::OverBudget() const {
  MemoryFootprint total;
  for (const auto& [n, e] : models_) total += e.info.resident;
  // Models on a CPU device hold no device memory: there the device budget bounds host RAM.
  const int64_t device_bytes = total.device_bytes == 0 ? total.host_bytes : total.device_bytes;
  return (residency_.host_budget_bytes > 0 && total.host_bytes > residency_.host_budget_bytes) ||
         (residency_.device_budget_bytes > 0 && device_bytes > residency_.device_budget_bytes);
}

std::vector<ModelKind> ModelRepository::EvictOverBudget(const std::string& keep) const {
  std::vector<ModelKind> evicted;
  // Resident lightweight domains hold their base's weights: a base stays while one that
  // is pinned (or just loaded) needs it, and goes with the others.
  auto held = [&](const std::string& base) {
    for (const auto& [n, e] : models_) {
      if (e.info.lightweight() && e.info.base_model == base && e.info.state == ModelState::kReady &&
          (e.info.pinned || n == keep)) {
        return true;
      }
    }
    return false;
  };
  auto unload = [&](Entry& e) {
    e.weights = {};
    e.info.resident = {};
    e.info.state = ModelState::kUnloaded;
    evicted.push_back(e.info.kind);
    ++evictions_;
  };
  while (OverBudget()) {
    Entry* victim = nullptr;
    for (auto& [n, e] : models_) {
      if (n == keep || e.info.pinned || e.info.state != ModelState::kReady || held(n)) continue;
      if (victim == nullptr || e.last_use < victim->last_use) victim = &e;
    }
    if (victim == nullptr) break;  // everything left is pinned or in use by this load
    unload(*victim);
    if (victim->info.kind != ModelKind::kGenerator) continue;
    for (auto& [n, e] : models_) {
      if (e.info.lightweight() && e.info.base_model == victim->info.name && e.info.state == ModelState::kReady) {
        unload(e);
      }
    }
  }
  return evicted;
}

RepositoryState ModelRepository::StateLocked() const {
  RepositoryState s;
  for (const auto& [n, e] : models_) {
    ++s.models[e.info.state];
    s.resident[e.info.kind] += e.info.resident;
  }
  return s;
}

void ModelRepository::Notify(const std::vector<ModelKind>& evicted) const {
  if (observer_ == nullptr) return;
  RepositoryState state;
  {
    absl::MutexLock lock(&mu_);
    state = StateLocked();
  }
  for (ModelKind k : evicted) observer_->OnModelEvicted(k);
  observer_->OnRepositoryState(state);
}

int ModelRepository::RemoveStaleWorkFolders() {
  int removed = 0;
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& d : fs::directory_iterator(root_, ec)) {
    const std::string n = d.path().filename().string();
    if (d.is_directory() && (absl::StartsWith(n, ".tmp-") || absl::StartsWith(n, ".deleted-"))) {
      stale.push_back(d.path());
    }
  }
  for (const auto& p : stale) {
    fs::remove_all(p, ec);
    if (!ec) ++removed;
  }
  return removed;
}

std::map<std::string, std::string> ModelRepository::ScanFolders() const {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(root_, ec)) {
    const std::string n = d.path().filename().string();
    if (n.empty() || n[0] == '.') continue;  // temp, trash and snapshot folders
    if (d.is_directory() && fs::exists(d.path() / "manifest.json")) out[n] = d.path().string();
  }
  // Training snapshots: .snapshots/<job>/<step>/, named by their manifest.
  for (const auto& job : fs::directory_iterator(fs::path(root_) / kSnapshotsDir, ec)) {
    if (!job.is_directory()) continue;
    for (const auto& step : fs::directory_iterator(job.path(), ec)) {
      if (step.path().filename().string()[0] == '.') continue;
      auto text = ReadFile((step.path() / "manifest.json").string(), 1 << 20);
      if (!text.ok()) continue;
      auto m = nlohmann::json::parse(*text, nullptr, false);
      if (!m.is_object() || !m.contains("snapshot_of") || !m["snapshot_of"].is_string() || !m.contains("step") ||
          !m["step"].is_number_integer()) {
        continue;
      }
      out[SnapshotName(m["snapshot_of"].get<std::string>(), m["step"].get<int64_t>())] = step.path().string();
    }
  }
  return out;
}

ModelRepository::ScanResult ModelRepository::Rescan() {
  const std::map<std::string, std::string> folders = ScanFolders();
  ScanResult r;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = models_.begin(); it != models_.end();) {
      if (folders.count(it->first) == 0 && it->second.info.state != ModelState::kLoading) {
        r.removed.push_back(it->first);
        it = models_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& [n, folder] : folders) {
    {
      absl::MutexLock lock(&mu_);
      auto it = models_.find(n);
      if (it != models_.end() && it->second.info.state != ModelState::kFailed) continue;
    }
    ModelInfo info = ScanOne(n, folder);
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = models_.try_emplace(n);
    if (!inserted && it->second.info.state != ModelState::kFailed) continue;
    if (inserted) r.added.push_back(n);
    it->second.info = std::move(info);
    it->second.folder = folder;
  }
  Notify({});
  return r;
}

int ModelRepository::LoadAll() {
  Rescan();
  std::vector<ModelInfo> order = List();
  // Pinned first, then base models before the adapted ones that need them.
  std::stable_sort(order.begin(), order.end(), [](const ModelInfo& a, const ModelInfo& b) {
    auto rank = [](const ModelInfo& m) { return (m.pinned ? 0 : 2) + (m.kind == ModelKind::kAdaptedGenerator); };
    return rank(a) < rank(b);
  });
  for (const auto& m : order) {
    if (m.state != ModelState::kUnloaded) continue;
    if (residency_.preload == ResidencyOptions::Preload::kNone) break;
    if (residency_.preload == ResidencyOptions::Preload::kPinned && !m.pinned) continue;
    uint64_t evictions_before = 0;
    {
      absl::MutexLock lock(&mu_);
      evictions_before = evictions_;
    }
    (void)Acquire(m.name, /*retry_failed=*/false, /*pin=*/false);
    // A full budget ends the preload: loading more would only evict what was loaded.
    absl::MutexLock lock(&mu_);
    if (evictions_ != evictions_before) break;
  }
  int ready = 0;
  for (const auto& m : List()) ready += m.state == ModelState::kReady ? 1 : 0;
  return ready;
}

std::vector<ModelInfo> ModelRepository::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<ModelInfo> out;
  for (const auto& [n, e] : models_) out.push_back(e.info);
  return out;
}

void ModelRepository::SetStyleClipDefault(std::string name) {
  absl::MutexLock lock(&mu_);
  styleclip_default_ = std::move(name);
}

std::string ModelRepository::styleclip_default() const {
  absl::MutexLock lock(&mu_);
  return styleclip_default_;
}

std::string ModelRepository::Available() const {
  std::vector<std::string> names;
  for (const auto& [n, e] : models_) {
    if (IsUsable(e.info.state)) names.push_back(n);
  }
  return names.empty() ? "none are available" : absl::StrCat("available: ", absl::StrJoin(names, ", "));
}

absl::StatusOr<TrainingFiles> ModelRepository::TrainingFilesOf(const std::string& name) const {
  ASSIGN_OR_RETURN(ModelInfo info, Get(name));
  if (info.kind != ModelKind::kGenerator) {
    return absl::FailedPreconditionError(absl::StrCat("model '", name, "' is a ", ModelKindName(info.kind),
                                                      "; fine-tuning starts from a base generator"));
  }
  std::string folder;
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model named '", name, "'"));
    folder = it->second.folder;
  }
  const fs::path dir(folder);
  ASSIGN_OR_RETURN(std::string text, ReadFile((dir / "manifest.json").string()));
  nlohmann::json m = nlohmann::json::parse(text, nullptr, false);
  if (!m.is_object()) return absl::InvalidArgumentError(absl::StrCat("model '", name, "': manifest.json is not JSON"));
  TrainingFiles files;
  if (m.contains("train_g") || m.contains("train_d")) {
    ASSIGN_OR_RETURN(files.g_path, FileIn(dir, m, "train_g"));
    ASSIGN_OR_RETURN(files.d_path, FileIn(dir, m, "train_d"));
    for (const std::string& p : {files.g_path, files.d_path}) {
      if (!fs::exists(p)) return absl::NotFoundError(absl::StrCat("model '", name, "': ", p, " is missing"));
    }
    return files;
  }
  ASSIGN_OR_RETURN(std::string path, FileIn(dir, m, "checkpoint"));
  const std::string needs = absl::StrCat(
      "model '", name,
      "' has no training checkpoint: fine-tuning needs the checkpoint's g and d beside g_ema (a rosinality training "
      "checkpoint such as 550000.pt, or manifest entries train_g and train_d)");
  if (absl::EndsWith(path, ".safetensors")) {
    return absl::InvalidArgumentError(
        absl::StrCat(needs, "; ", fs::path(path).filename().string(), " holds one state dict"));
  }
  ASSIGN_OR_RETURN(TorchFile f, LoadTorchFile(path));
  std::vector<std::string> missing;
  for (const char* key : {"g", "d"}) {
    const PyRef v = f.root != nullptr && f.root->kind == PyValue::Kind::kDict ? f.root->Get(key) : nullptr;
    if (v == nullptr || v->kind != PyValue::Kind::kDict) missing.push_back(key);
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(needs, "; ", fs::path(path).filename().string(), " lacks ", absl::StrJoin(missing, " and ")));
  }
  files.g_path = files.d_path = path;
  files.g_key = "g";
  return files;
}

absl::StatusOr<ModelInfo> ModelRepository::Get(const std::string& name) const {
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it != models_.end()) return it->second.info;
  }
  // Published meanwhile by another process on the same folder (replicas sharing a
  // volume): registered on first use.
  const fs::path folder = fs::path(root_) / name;
  if (IsValidModelName(name) && fs::exists(folder / "manifest.json")) return Register(name, folder.string());
  if (shared_ != nullptr && IsValidModelName(name)) {
    absl::StatusOr<ModelInfo> fetched = FetchShared(name);
    if (!absl::IsNotFound(fetched.status())) return fetched;
  }
  absl::MutexLock lock(&mu_);
  return absl::NotFoundError(absl::StrCat("no model named '", name, "' (", Available(), ")"));
}

namespace {
// FailedPrecondition unless `info` is of one of `kinds` (checked before loading anything).
absl::Status CheckKind(const ModelInfo& info, std::initializer_list<ModelKind> kinds, const char* what) {
  if (info.state == ModelState::kFailed) return absl::OkStatus();  // Acquire reports the load error
  for (ModelKind k : kinds) {
    if (info.kind == k) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("model '", info.name, "' is a ", ModelKindName(info.kind), ", not ", what));
}
}  // namespace

absl::StatusOr<std::shared_ptr<const stylegan2::Generator>> ModelRepository::GetGenerator(
    const std::string& name) const {
  ASSIGN_OR_RETURN(ModelInfo info, Get(name));
  RETURN_IF_ERROR(CheckKind(info, {ModelKind::kGenerator, ModelKind::kAdaptedGenerator}, "a generator"));
  ASSIGN_OR_RETURN(Weights w, Acquire(name, /*retry_failed=*/false, /*pin=*/false));
  if (w.generator == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("model '", name, "' is not a generator"));
  }
  return w.generator;
}

absl::StatusOr<ModelRepository::Clip> ModelRepository::GetClip(const std::string& name) const {
  ASSIGN_OR_RETURN(ModelInfo info, Get(name));
  RETURN_IF_ERROR(CheckKind(info, {ModelKind::kClip}, "a CLIP model"));
  ASSIGN_OR_RETURN(Weights w, Acquire(name, /*retry_failed=*/false, /*pin=*/false));
  if (w.clip.model == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("model '", name, "' is not CLIP"));
  }
  return w.clip;
}

std::vector<std::string> ModelRepository::Candidates(const std::function<bool(const ModelInfo&)>& matches,
                                                     std::vector<std::string>* failures) const {
  std::vector<std::string> names;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, e] : models_) {
    if (!matches(e.info)) continue;
    if (IsUsable(e.info.state)) {
      names.push_back(name);
    } else {
      failures->push_back(absl::StrCat("model '", name, "' failed to load: ", e.info.error));
    }
  }
  return names;
}

template <typename T>
std::shared_ptr<const T> ModelRepository::FirstLoaded(const std::function<bool(const ModelInfo&)>& matches,
                                                      std::shared_ptr<const T> Weights::*member,
                                                      std::vector<std::string>* failures) const {
  for (const auto& n : Candidates(matches, failures)) {
    auto w = Acquire(n, /*retry_failed=*/false, /*pin=*/false);
    if (w.ok() && (*w).*member != nullptr) return (*w).*member;
    if (!w.ok()) failures->emplace_back(w.status().message());
  }
  return nullptr;
}

absl::StatusOr<std::shared_ptr<const arcface::ArcFace>> ModelRepository::FirstArcFace() const {
  std::vector<std::string> failures;
  const auto arcface =
      FirstLoaded([](const ModelInfo& m) { return m.kind == ModelKind::kArcFace; }, &Weights::arcface, &failures);
  if (arcface != nullptr) return arcface;
  return absl::FailedPreconditionError(absl::StrCat(
      "the identity loss needs ArcFace IR-SE50 weights (", arcface::kArcFaceWeightsFile,
      ", TreB1eN's InsightFace) as a repository model of kind arcface (scripts/fetch-weights.sh installs it, or "
      "ImportModel kind ARCFACE)",
      failures.empty() ? "; none is installed" : absl::StrCat("; ", absl::StrJoin(failures, "; "))));
}

absl::StatusOr<std::shared_ptr<const invert::FaceLandmarker>> ModelRepository::FirstLandmarker() const {
  std::vector<std::string> failures;
  const auto landmarker =
      FirstLoaded([](const ModelInfo& m) { return m.kind == ModelKind::kLandmarks; }, &Weights::landmarker, &failures);
  if (landmarker != nullptr) return landmarker;
  return absl::FailedPreconditionError(
      absl::StrCat("face detection needs dlib's 68-point shape predictor (", invert::kLandmarksPredictorFile,
                   ") as a repository model of kind landmarks (scripts/fetch-weights.sh dlib-landmarks installs it, or "
                   "ImportModel kind LANDMARKS); or send the face's landmarks",
                   failures.empty() ? "; none is installed" : absl::StrCat("; ", absl::StrJoin(failures, "; "))));
}

absl::StatusOr<std::shared_ptr<const edit::LatentMapper>> ModelRepository::GetMapper(const std::string& name) const {
  ASSIGN_OR_RETURN(ModelInfo info, Get(name));
  RETURN_IF_ERROR(CheckKind(info, {ModelKind::kMapper}, "a latent mapper"));
  ASSIGN_OR_RETURN(Weights w, Acquire(name, /*retry_failed=*/false, /*pin=*/false));
  if (w.mapper == nullptr) return absl::FailedPreconditionError(absl::StrCat("model '", name, "' is not a mapper"));
  return w.mapper;
}

absl::StatusOr<std::shared_ptr<const psp::StyleEncoder>> ModelRepository::GetEncoder(const std::string& name) const {
  ASSIGN_OR_RETURN(ModelInfo info, Get(name));
  RETURN_IF_ERROR(CheckKind(info, {ModelKind::kEncoder}, "an image encoder"));
  ASSIGN_OR_RETURN(Weights w, Acquire(name, /*retry_failed=*/false, /*pin=*/false));
  if (w.encoder == nullptr) return absl::FailedPreconditionError(absl::StrCat("model '", name, "' is not an encoder"));
  return w.encoder;
}

absl::StatusOr<std::string> ModelRepository::EncoderFor(const std::string& generator) const {
  ASSIGN_OR_RETURN(ModelInfo info, Get(generator));
  std::vector<std::string> bases{generator};
  if (info.kind == ModelKind::kAdaptedGenerator && !info.base_model.empty()) bases.push_back(info.base_model);
  std::vector<std::string> failures;
  for (const std::string& base : bases) {
    const auto names = Candidates(
        [&](const ModelInfo& m) { return m.kind == ModelKind::kEncoder && m.base_model == base; }, &failures);
    if (!names.empty()) return names.front();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "no image encoder for '", absl::StrJoin(bases, "' or its base '"),
      "': import one (an official e4e or pSp checkpoint, e.g. e4e_ffhq_encode.pt) with ImportModel kind ENCODER and "
      "base_model '",
      bases.back(), "' (scripts/fetch-weights.sh e4e), or invert with method OPTIMIZATION",
      failures.empty() ? "" : absl::StrCat("; ", absl::StrJoin(failures, "; "))));
}

std::shared_ptr<const lpips::Lpips> ModelRepository::FirstLpips() const {
  std::vector<std::string> names;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, e] : models_) {
      if (e.info.kind == ModelKind::kLpips && e.info.variant == kLpipsVgg && IsUsable(e.info.state)) {
        names.push_back(name);
      }
    }
  }
  for (const auto& n : names) {
    auto w = Acquire(n, /*retry_failed=*/false, /*pin=*/false);
    if (w.ok() && w->lpips != nullptr) return w->lpips;
  }
  return nullptr;
}

absl::StatusOr<std::shared_ptr<const lpips::AlexLpips>> ModelRepository::FirstAlexLpips() const {
  std::vector<std::string> failures;
  const auto alex = [](const ModelInfo& m) { return m.kind == ModelKind::kLpips && m.variant == kLpipsAlexStargan; };
  if (auto found = FirstLoaded(alex, &Weights::alex_lpips, &failures); found != nullptr) return found;
  return absl::FailedPreconditionError(absl::StrCat(
      "no usable AlexNet LPIPS model (OneshotCLIP's perceptual loss) in the model repository: it needs "
      "torchvision's AlexNet (alexnet-owt-7be5be79.pth) and StarGAN v2's LPIPS weights (lpips_weights.ckpt) in a "
      "model folder whose manifest.json is {\"kind\": \"lpips\", \"variant\": \"alex_stargan\", "
      "\"alexnet\": \"alexnet-owt-7be5be79.pth\", \"lin\": \"lpips_weights.ckpt\"}; "
      "scripts/fetch-weights.sh installs them (as lpips-alex), then RescanRepository or a restart picks them up",
      failures.empty() ? "" : absl::StrCat(". ", absl::StrJoin(failures, "; "))));
}

absl::StatusOr<ModelInfo> ModelRepository::Load(const std::string& name, bool pin) {
  RETURN_IF_ERROR(Acquire(name, /*retry_failed=*/true, pin).status());
  return Get(name);
}

absl::StatusOr<ModelInfo> ModelRepository::Unload(const std::string& name) {
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model named '", name, "'"));
    Entry& e = it->second;
    if (e.info.state == ModelState::kLoading) {
      return absl::UnavailableError(absl::StrCat("model '", name, "' is loading; unload it when it is ready"));
    }
    e.info.pinned = false;
    // A base's resident lightweight domains hold its weights: they go with it.
    for (auto& [n, other] : models_) {
      const bool domain_of_it = other.info.lightweight() && other.info.base_model == name;
      if ((&other == &e || domain_of_it) && other.info.state == ModelState::kReady) {
        other.weights = {};
        other.info.resident = {};
        other.info.state = ModelState::kUnloaded;
      }
    }
  }
  Notify({});
  return Get(name);
}

namespace {
constexpr char kSharedModels[] = "models/";
std::string SharedModelSet(const std::string& name) { return absl::StrCat(kSharedModels, name); }
// Marks a model folder as a copy of a shared model (dropped when the set goes).
constexpr char kSharedMarker[] = ".shared";
absl::Status MarkShared(const fs::path& folder) {
  return WriteFileAtomic((folder / kSharedMarker).string(), "a copy of a model in the shared files\n");
}
}  // namespace

absl::StatusOr<ModelInfo> ModelRepository::FetchShared(const std::string& name) const {
  {
    absl::MutexLock lock(&mu_);
    if (publishing_.count(name) > 0) return absl::NotFoundError(absl::StrCat("model '", name, "' is being published"));
  }
  absl::StatusOr<bool> there = shared_->HasSet(SharedModelSet(name));
  if (!there.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot look for model '", name, "' in ", shared_->url(), ": ", there.status().message()));
  }
  if (!*there) return absl::NotFoundError(absl::StrCat("no model named '", name, "'"));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const fs::path tmp = fs::path(root_) / absl::StrCat(".tmp-fetch-", name, "-", absl::Hex(rng()));
  const fs::path dest = fs::path(root_) / name;
  std::error_code ec;
  absl::Status st = shared_->GetSet(SharedModelSet(name), tmp.string());
  if (st.ok()) st = MarkShared(tmp);
  if (!st.ok()) {
    fs::remove_all(tmp, ec);
    return absl::UnavailableError(
        absl::StrCat("model '", name, "' is in ", shared_->url(), " but did not download: ", st.message()));
  }
  fs::rename(tmp, dest, ec);
  fs::remove_all(tmp, ec);  // left when another call placed it first
  if (!fs::exists(dest / "manifest.json")) {
    return absl::UnavailableError(absl::StrCat("model '", name, "' downloaded but cannot be placed in ", root_));
  }
  spdlog::info("model '{}' fetched from {}", name, shared_->url());
  return Register(name, dest.string());
}

absl::StatusOr<ModelInfo> ModelRepository::Register(const std::string& name, const std::string& folder) const {
  ModelInfo info = ScanOne(name, folder);
  {
    absl::MutexLock lock(&mu_);
    Entry& e = models_[name];
    // A folder written again (a retried publish, a snapshot step redone after a resume)
    // replaces the old weights.
    e.weights = {};
    e.info = info;
    e.folder = folder;
  }
  Notify({});
  return info;
}

absl::StatusOr<ModelInfo> ModelRepository::PublishSnapshot(
    const std::string& model, const std::string& job_id, int64_t step,
    const std::function<absl::Status(const std::string&)>& write) {
  if (!IsValidModelName(model) || step < 1 || job_id.empty() || absl::StrContains(job_id, '/') || job_id[0] == '.') {
    return absl::InvalidArgumentError("snapshot of an invalid model name, job id or step");
  }
  const fs::path job_dir = fs::path(root_) / kSnapshotsDir / job_id;
  const fs::path final_dir = job_dir / std::to_string(step);
  RETURN_IF_ERROR(WriteThenRename(job_dir / absl::StrCat(".tmp-", step), final_dir, /*replace=*/true, write));
  return Register(SnapshotName(model, step), final_dir.string());
}

std::vector<std::string> ModelRepository::SnapshotJobs() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(fs::path(root_) / kSnapshotsDir, ec)) {
    if (d.is_directory()) out.push_back(d.path().filename().string());
  }
  return out;
}

int64_t ModelRepository::ExpireSnapshots(const std::string& job_id) {
  if (job_id.empty() || absl::StrContains(job_id, '/') || job_id[0] == '.') return 0;
  const fs::path dir = fs::path(root_) / kSnapshotsDir / job_id;
  const fs::path trash = fs::path(root_) / (".deleted-snapshots-" + job_id);
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  const int64_t bytes = DirSize(dir);
  {
    absl::MutexLock lock(&mu_);
    for (auto it = models_.begin(); it != models_.end();) {
      if (it->second.info.snapshot_job == job_id) {
        it = models_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Rename first (atomic), then remove: a crash leaves a trash folder the next start removes.
  fs::remove_all(trash, ec);
  fs::rename(dir, trash, ec);
  if (ec) return 0;
  fs::remove_all(trash, ec);
  Notify({});
  return bytes;
}

absl::StatusOr<ModelInfo> ModelRepository::PromoteSnapshot(const std::string& snapshot, const std::string& name) {
  std::string folder;
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(snapshot);
    if (it == models_.end()) {
      return absl::NotFoundError(absl::StrCat("no snapshot named '", snapshot, "' (snapshots are MODEL@STEP)"));
    }
    if (it->second.info.snapshot_job.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("model '", snapshot, "' is not a training snapshot"));
    }
    folder = it->second.folder;
  }
  if (!IsValidModelName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "name '", name.substr(0, 80), "' is not a valid model name: it must match [a-z0-9][a-z0-9._-]{0,63}"));
  }
  if (Exists(name)) return absl::AlreadyExistsError(absl::StrCat("a model named '", name, "' already exists"));
  ASSIGN_OR_RETURN(std::string text, ReadFile((fs::path(folder) / "manifest.json").string(), 1 << 20));
  nlohmann::json m = nlohmann::json::parse(text, nullptr, false);
  if (!m.is_object()) return absl::DataLossError("the snapshot's manifest.json is not a JSON object");
  // The trained tensors: a lightweight domain's file or a FULL delta.
  ASSIGN_OR_RETURN(std::string delta, FileIn(folder, m, m.contains("domain_file") ? "domain_file" : "delta"));
  m.erase("snapshot_of");
  m.erase("step");
  m["promoted_from"] = snapshot;
  return Publish(name, absl::StrCat("promote-", name), [&](const std::string& out) -> absl::Status {
    std::error_code ec;
    fs::copy_file(delta, fs::path(out) / fs::path(delta).filename(), ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot copy the snapshot's delta: ", ec.message()));
    return WriteFileAtomic((fs::path(out) / "manifest.json").string(), m.dump(2) + "\n");
  });
}

absl::StatusOr<ModelInfo> ModelRepository::Add(const std::string& name) {
  if (!IsValidModelName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not a valid model name"));
  }
  RETURN_IF_ERROR(Register(name, (fs::path(root_) / name).string()).status());
  auto w = Acquire(name, /*retry_failed=*/true, /*pin=*/false);
  if (!w.ok()) {
    return absl::InternalError(
        absl::StrCat("model '", name, "' was written but does not load: ", w.status().message()));
  }
  return Get(name);
}

bool ModelRepository::Exists(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  return models_.count(name) > 0 || fs::exists(fs::path(root_) / name);
}

absl::StatusOr<ModelInfo> ModelRepository::Publish(const std::string& name, const std::string& work_id,
                                                   const std::function<absl::Status(const std::string&)>& write) {
  if (!IsValidModelName(name)) return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not a model name"));
  auto taken = [&] {
    return absl::AlreadyExistsError(
        absl::StrCat("a model named '", name, "' appeared meanwhile; the result was not saved. Use another name"));
  };
  if (Exists(name)) return taken();
  if (shared_ != nullptr) {
    absl::StatusOr<bool> there = shared_->HasSet(SharedModelSet(name));
    if (!there.ok()) return there.status();
    if (*there) return taken();
  }
  // With shared files the set is stored before the folder appears here: a model any
  // replica lists is one every replica can fetch. Meanwhile this replica does not fetch
  // it from there itself.
  if (shared_ != nullptr) {
    absl::MutexLock lock(&mu_);
    if (!publishing_.insert(name).second) return taken();
  }
  absl::Status written =
      WriteThenRename(fs::path(root_) / (".tmp-" + work_id), fs::path(root_) / name, /*replace=*/false,
                      [&](const std::string& out) -> absl::Status {
                        RETURN_IF_ERROR(write(out));
                        if (shared_ == nullptr) return absl::OkStatus();
                        absl::Status st = shared_->PutSet(SharedModelSet(name), out, {});
                        if (!st.ok()) {
                          return absl::UnavailableError(
                              absl::StrCat("the model could not be stored in ", shared_->url(), ": ", st.message()));
                        }
                        return MarkShared(out);
                      });
  if (shared_ != nullptr) {
    absl::MutexLock lock(&mu_);
    publishing_.erase(name);
  }
  RETURN_IF_ERROR(written);
  return Add(name);
}

ModelRepository::ScanResult ModelRepository::SyncShared() {
  ScanResult r;
  if (shared_ == nullptr) return r;
  absl::StatusOr<std::vector<std::string>> sets = shared_->ListSets(kSharedModels);
  if (!sets.ok()) {
    spdlog::warn("cannot list the models in {}: {}", shared_->url(), sets.status().ToString());
    return r;
  }
  std::set<std::string> remote;
  for (const std::string& set : *sets) remote.insert(set.substr(std::strlen(kSharedModels)));
  std::vector<std::string> gone;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [n, e] : models_) {
      if (remote.count(n) == 0 && publishing_.count(n) == 0 && e.info.state != ModelState::kLoading &&
          fs::exists(fs::path(e.folder) / kSharedMarker)) {
        gone.push_back(n);
      }
    }
  }
  for (const std::string& n : gone) {
    // Rename first (atomic), then remove; in-flight work keeps the weights it holds.
    const fs::path dir = fs::path(root_) / n, trash = fs::path(root_) / (".deleted-" + n);
    std::error_code ec;
    fs::remove_all(trash, ec);
    fs::rename(dir, trash, ec);
    if (ec) continue;
    fs::remove_all(trash, ec);
    {
      absl::MutexLock lock(&mu_);
      models_.erase(n);
    }
    spdlog::info("model '{}' was deleted from {}: dropped here too", n, shared_->url());
    r.removed.push_back(n);
  }
  for (const std::string& n : remote) {
    if (!IsValidModelName(n) || Exists(n)) continue;
    absl::StatusOr<ModelInfo> got = FetchShared(n);
    if (got.ok()) {
      r.added.push_back(n);
    } else if (!absl::IsNotFound(got.status())) {
      spdlog::warn("model '{}' in {} was not fetched: {}", n, shared_->url(), got.status().ToString());
    }
  }
  if (!r.removed.empty()) Notify({});
  return r;
}

absl::Status ModelRepository::Delete(const std::string& name) {
  // A model only the shared files hold is fetched first, so the same rules apply.
  if (shared_ != nullptr) RETURN_IF_ERROR(Get(name).status());
  absl::Status st = DeleteFolder(name);
  if (st.ok() && shared_ != nullptr) {
    if (absl::Status gone = shared_->DeleteSet(SharedModelSet(name)); !gone.ok()) {
      Notify({});
      return absl::UnavailableError(absl::StrCat("model '", name, "' was removed from this replica but its copy in ",
                                                 shared_->url(), " remains (", gone.message(), "); delete it again"));
    }
  }
  if (st.ok()) Notify({});
  return st;
}

absl::Status ModelRepository::DeleteFolder(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model named '", name, "'"));
  if (it->second.info.state == ModelState::kLoading) {
    return absl::UnavailableError(absl::StrCat("model '", name, "' is loading; delete it when it is ready"));
  }
  if (!it->second.info.snapshot_job.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("'", name,
                                                      "' is a training snapshot: snapshots expire with their job; "
                                                      "PromoteSnapshot keeps one as a model"));
  }
  if (it->second.info.kind != ModelKind::kAdaptedGenerator && it->second.info.kind != ModelKind::kMapper &&
      !it->second.info.imported) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", name, "' is a ", ModelKindName(it->second.info.kind),
                     " installed with the server; only adapted generators, mappers "
                     "and models added by ImportModel can be deleted through the API"));
  }
  std::vector<std::string> dependents;
  for (const auto& [n, e] : models_) {
    if (e.info.base_model == name && n != name) dependents.push_back(n);
  }
  if (!dependents.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", name, "' is the base of ", absl::StrJoin(dependents, ", "), "; delete those first"));
  }
  // Rename first (atomic), then remove: a crash leaves no half-deleted model visible.
  const fs::path dir = fs::path(root_) / name;
  const fs::path trash = fs::path(root_) / (".deleted-" + name);
  std::error_code ec;
  fs::remove_all(trash, ec);
  fs::rename(dir, trash, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot delete model '", name, "': ", ec.message()));
  fs::remove_all(trash, ec);
  models_.erase(it);
  return absl::OkStatus();
}

}  // namespace ganserve::core
