#include "core/registry/model_repository.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/checkpoint/safetensors.h"
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
    default: return "unspecified";
  }
}

bool IsValidModelName(const std::string& name) {
  static const std::regex kRe("[a-z0-9][a-z0-9._-]{0,63}");
  return std::regex_match(name, kRe);
}

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Create(const std::string& root,
                                                                         stylegan2::LoadOptions load_options,
                                                                         clip::ClipPrecision clip_precision) {
  RETURN_IF_ERROR(MakeDirs(root));
  return std::unique_ptr<ModelRepository>(new ModelRepository(root, std::move(load_options), clip_precision));
}

ModelRepository::Entry ModelRepository::LoadOne(const std::string& name) {
  Entry e;
  e.info.name = name;
  const fs::path dir = fs::path(root_) / name;
  auto fail = [&](const absl::Status& s) {
    e.info.state = ModelState::kFailed;
    e.info.error = std::string(s.message());
    return e;
  };
  std::error_code ec;
  e.info.size_bytes = DirSize(dir);
  auto mtime = fs::last_write_time(dir / "manifest.json", ec);
  if (!ec) {
    e.info.create_time_unix =
        std::chrono::duration_cast<std::chrono::seconds>(mtime - fs::file_time_type::clock::now() +
                                                         std::chrono::system_clock::now().time_since_epoch())
            .count();
  }
  auto text = ReadFile((dir / "manifest.json").string(), 1 << 20);
  if (!text.ok()) return fail(text.status());
  nlohmann::json m = nlohmann::json::parse(*text, nullptr, false);
  if (m.is_discarded() || !m.is_object()) return fail(absl::InvalidArgumentError("manifest.json is not a JSON object"));
  const std::string kind = m.value("kind", "");
  e.info.domain = m.value("domain", "");
  e.info.default_truncation = m.value("default_truncation", 1.0f);
  e.info.base_model = m.value("base_model", "");
  e.info.source_text = m.value("source_text", "");
  e.info.target_text = m.value("target_text", "");
  if (kind == "generator") {
    e.info.kind = ModelKind::kGenerator;
    auto path = FileIn(dir, m, "checkpoint");
    if (!path.ok()) return fail(path.status());
    stylegan2::LoadOptions opt = load_options_;
    opt.key = m.value("checkpoint_key", "");
    auto g = stylegan2::Generator::Load(*path, opt);
    if (!g.ok()) return fail(g.status());
    FillGeneratorInfo(**g, &e.info);
    e.generator = std::move(*g);
  } else if (kind == "adapted_generator") {
    e.info.kind = ModelKind::kAdaptedGenerator;
    std::shared_ptr<const stylegan2::Generator> base;
    {
      absl::MutexLock lock(&mu_);
      auto it = models_.find(e.info.base_model);
      if (it == models_.end() || it->second.generator == nullptr) {
        return fail(absl::FailedPreconditionError(absl::StrCat("base model '", e.info.base_model, "' is not loaded")));
      }
      base = it->second.generator;
    }
    auto delta_path = FileIn(dir, m, "delta");
    if (!delta_path.ok()) return fail(delta_path.status());
    auto delta = LoadSafetensors(*delta_path);
    if (!delta.ok()) return fail(delta.status());
    std::map<std::string, TensorView> tensors =
        ViewsOf(std::make_shared<const std::map<std::string, FloatTensor>>(base->StateDict()));
    for (const auto& [k, v] : delta->tensors) {
      if (tensors.count(k) == 0) {
        return fail(absl::InvalidArgumentError(absl::StrCat("delta tensor '", k, "' is not in the base generator")));
      }
      tensors[k] = v;
    }
    auto avg = std::make_shared<const FloatTensor>(base->mean_latent());
    TensorView avg_view = ViewOf(avg);
    auto g = stylegan2::Generator::FromTensors(tensors, &avg_view, load_options_);
    if (!g.ok()) return fail(g.status());
    FillGeneratorInfo(**g, &e.info);
    e.generator = std::move(*g);
  } else if (kind == "clip") {
    e.info.kind = ModelKind::kClip;
    auto path = FileIn(dir, m, "checkpoint");
    if (!path.ok()) return fail(path.status());
    auto vocab = FileIn(dir, m, "vocab");
    if (!vocab.ok()) return fail(vocab.status());
    auto model = clip::ClipModel::Load(*path, load_options_.device, nullptr, clip_precision_);
    if (!model.ok()) return fail(model.status());
    auto tok = clip::Tokenizer::Load(*vocab);
    if (!tok.ok()) return fail(tok.status());
    e.info.resolution = (*model)->config().image_resolution;
    e.clip.model = std::move(*model);
    e.clip.tokenizer = std::move(*tok);
  } else if (kind == "lpips") {
    e.info.kind = ModelKind::kLpips;
    auto vgg = FileIn(dir, m, "vgg16");
    if (!vgg.ok()) return fail(vgg.status());
    auto lin = FileIn(dir, m, "lin");
    if (!lin.ok()) return fail(lin.status());
    auto model = lpips::Lpips::Load(*vgg, *lin, load_options_.device);
    if (!model.ok()) return fail(model.status());
    e.lpips = std::move(*model);
  } else {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("manifest kind '", kind, "' is not one of generator, adapted_generator, clip, lpips")));
  }
  e.info.state = ModelState::kReady;
  return e;
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

int ModelRepository::LoadAll() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(root_, ec)) {
    const std::string n = d.path().filename().string();
    if (n.empty() || n[0] == '.') continue;  // temp and trash folders
    if (d.is_directory() && fs::exists(d.path() / "manifest.json")) names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  {
    absl::MutexLock lock(&mu_);
    for (const auto& n : names) {
      Entry e;
      e.info.name = n;
      e.info.state = IsValidModelName(n) ? ModelState::kLoading : ModelState::kFailed;
      if (!IsValidModelName(n)) e.info.error = "folder name is not a valid model name ([a-z0-9][a-z0-9._-]{0,63})";
      models_[n] = e;
    }
  }
  // Base generators first, so adapted ones find their base.
  auto is_adapted = [&](const std::string& n) {
    auto text = ReadFile((fs::path(root_) / n / "manifest.json").string(), 1 << 20);
    if (!text.ok()) return false;
    auto m = nlohmann::json::parse(*text, nullptr, false);
    return m.is_object() && m.value("kind", "") == "adapted_generator";
  };
  std::stable_partition(names.begin(), names.end(), [&](const std::string& n) { return !is_adapted(n); });
  int ready = 0;
  for (const auto& n : names) {
    if (!IsValidModelName(n)) continue;
    Entry e = LoadOne(n);
    if (e.info.state == ModelState::kReady) ++ready;
    absl::MutexLock lock(&mu_);
    models_[n] = std::move(e);
  }
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
    if (e.info.state == ModelState::kReady) names.push_back(n);
  }
  return names.empty() ? "none are loaded" : absl::StrCat("available: ", absl::StrJoin(names, ", "));
}

absl::StatusOr<ModelInfo> ModelRepository::Get(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model named '", name, "' (", Available(), ")"));
  return it->second.info;
}

absl::StatusOr<std::shared_ptr<const stylegan2::Generator>> ModelRepository::GetGenerator(
    const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model named '", name, "' (", Available(), ")"));
  const Entry& e = it->second;
  if (e.info.state == ModelState::kLoading) {
    return absl::UnavailableError(absl::StrCat("model '", name, "' is still loading; retry shortly"));
  }
  if (e.info.state == ModelState::kFailed) {
    return absl::FailedPreconditionError(absl::StrCat("model '", name, "' failed to load: ", e.info.error));
  }
  if (e.generator == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", name, "' is a ", ModelKindName(e.info.kind), ", not a generator"));
  }
  return e.generator;
}

absl::StatusOr<ModelInfo> ModelRepository::Add(const std::string& name) {
  if (!IsValidModelName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not a valid model name"));
  }
  Entry e = LoadOne(name);
  ModelInfo info = e.info;
  {
    absl::MutexLock lock(&mu_);
    models_[name] = std::move(e);
  }
  if (info.state != ModelState::kReady) {
    return absl::InternalError(absl::StrCat("model '", name, "' was written but does not load: ", info.error));
  }
  return info;
}

bool ModelRepository::Exists(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  return models_.count(name) > 0 || fs::exists(fs::path(root_) / name);
}

absl::StatusOr<ModelRepository::Clip> ModelRepository::GetClip(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model named '", name, "' (", Available(), ")"));
  const Entry& e = it->second;
  if (e.info.state == ModelState::kFailed) {
    return absl::FailedPreconditionError(absl::StrCat("model '", name, "' failed to load: ", e.info.error));
  }
  if (e.clip.model == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", name, "' is a ", ModelKindName(e.info.kind), ", not a CLIP model"));
  }
  return e.clip;
}

std::shared_ptr<const lpips::Lpips> ModelRepository::FirstLpips() const {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, e] : models_) {
    if (e.info.kind == ModelKind::kLpips && e.info.state == ModelState::kReady && e.lpips != nullptr) return e.lpips;
  }
  return nullptr;
}

absl::StatusOr<ModelInfo> ModelRepository::Publish(const std::string& name, const std::string& work_id,
                                                   const std::function<absl::Status(const std::string&)>& write) {
  if (!IsValidModelName(name)) return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not a model name"));
  if (Exists(name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("a model named '", name, "' appeared meanwhile; the result was not saved. Use another name"));
  }
  const fs::path tmp = fs::path(root_) / (".tmp-" + work_id);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));
  if (absl::Status st = write(tmp.string()); !st.ok()) {
    fs::remove_all(tmp, ec);
    return st;
  }
  fs::rename(tmp, fs::path(root_) / name, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot publish model '", name, "': ", ec.message()));
  return Add(name);
}

absl::Status ModelRepository::Delete(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model named '", name, "'"));
  if (it->second.info.kind != ModelKind::kAdaptedGenerator) {
    return absl::FailedPreconditionError(absl::StrCat("model '", name, "' is a ", ModelKindName(it->second.info.kind),
                                                      "; only adapted generators can be deleted through the API"));
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
