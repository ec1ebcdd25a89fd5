#include "core/service/service.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <random>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_writer.h"
#include "core/invert/face_landmarks.h"
#include "core/models/psp/style_encoder.h"
#include "core/service/job_runners.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace ganserve::core::service {

std::string NotifyUrlOf(const JobRecord& job) {
  if (job.request_encoding != kSpecJsonEncoding) return "";
  const nlohmann::json request = nlohmann::json::parse(job.request, nullptr, /*allow_exceptions=*/false);
  if (!request.is_object()) return "";
  auto it = request.find("notify_url");
  return it != request.end() && it->is_string() ? it->get<std::string>() : "";
}
namespace {

// "job-" + 16 random hex digits.
std::string NewJobId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat("job-", absl::Hex(rng(), absl::kZeroPad16));
}

absl::Status ValidateFor(AdaptSpec& s, const ModelRepository& repo, const std::string&) { return s.Validate(repo); }
absl::Status ValidateFor(InvertSpec& s, const ModelRepository& repo, const std::string&) { return s.Validate(repo); }
absl::Status ValidateFor(GlobalStatsSpec& s, const ModelRepository& repo, const std::string&) {
  return s.Validate(repo);
}
absl::Status ValidateFor(MapperSpec& s, const ModelRepository& repo, const std::string& data_dir) {
  return s.Validate(repo, data_dir);
}
int64_t StepsOf(const AdaptSpec& s, const ModelRepository&) { return s.TotalSteps(); }
int64_t StepsOf(const MapperSpec& s, const ModelRepository&) { return s.TotalSteps(); }
int64_t StepsOf(const InvertSpec& s, const ModelRepository&) { return s.TotalSteps(); }
int64_t StepsOf(const GlobalStatsSpec& s, const ModelRepository& repo) { return s.TotalSteps(repo); }

}  // namespace

void Service::Rejected(const absl::Status& s) {
  if (d_.observer == nullptr || s.ok()) return;
  d_.observer->OnRequestRejected(absl::IsResourceExhausted(s) ? "queue_full" : "invalid");
}

template <typename Spec>
absl::StatusOr<JobRecord> Service::Submit(Spec spec, JobKind kind, const SubmitOptions& options) {
  const std::string hash = SpecHash(spec);
  ASSIGN_OR_RETURN(std::optional<JobRecord> prior, d_.engine->FindRetry(spec.request_id, hash, options.legacy_hash));
  if (prior) return *std::move(prior);
  if (absl::Status st = ValidateFor(spec, *d_.repository, d_.data_dir); !st.ok()) {
    Rejected(st);
    return st;
  }
  JobRecord job;
  job.id = NewJobId();
  job.kind = kind;
  job.model = spec.model;
  job.request_id = spec.request_id;
  job.request_hash = hash;
  job.request = SpecToJson(spec);
  job.request_encoding = kSpecJsonEncoding;
  job.max_run_seconds = spec.max_run_seconds;
  job.priority = static_cast<int>(spec.priority);
  job.preview_every = spec.preview_every;
  job.total_steps = StepsOf(spec, *d_.repository);
  auto submitted = d_.engine->Submit(std::move(job));
  if (!submitted.ok() && absl::IsResourceExhausted(submitted.status())) Rejected(submitted.status());
  return submitted;
}

absl::StatusOr<JobRecord> Service::SubmitAdapt(AdaptSpec spec, const SubmitOptions& options) {
  return Submit(std::move(spec), JobKind::kAdapt, options);
}
absl::StatusOr<JobRecord> Service::SubmitInvert(InvertSpec spec, const SubmitOptions& options) {
  return Submit(std::move(spec), JobKind::kInvert, options);
}
absl::StatusOr<JobRecord> Service::SubmitGlobalStats(GlobalStatsSpec spec, const SubmitOptions& options) {
  return Submit(std::move(spec), JobKind::kEditStats, options);
}

absl::StatusOr<JobRecord> Service::SubmitMapper(MapperSpec spec, const SubmitOptions& options) {
  return Submit(std::move(spec), JobKind::kTrainMapper, options);
}

absl::StatusOr<JobRecord> Service::GetJob(const std::string& id) {
  RETURN_IF_ERROR(ValidateJobId(id));
  return d_.engine->Get(id);
}

absl::StatusOr<ListJobsPage> Service::ListJobs(ListJobsSpec spec) {
  RETURN_IF_ERROR(spec.Validate());
  ListJobsQuery q;
  q.kind = static_cast<JobKind>(spec.kind);
  q.state = static_cast<JobState>(spec.state);
  q.page_size = spec.page_size;
  q.page_token = spec.page_token;
  return d_.store->ListJobs(q);
}

absl::StatusOr<JobRecord> Service::CancelJob(const std::string& id) {
  RETURN_IF_ERROR(ValidateJobId(id));
  return d_.engine->Cancel(id);
}

absl::StatusOr<JobRecord> Service::PrepareWatch(WatchJobSpec spec) {
  RETURN_IF_ERROR(spec.Validate());
  ASSIGN_OR_RETURN(JobRecord job, d_.engine->Get(spec.id));
  if (spec.after_seq > job.last_seq) {
    return absl::OutOfRangeError(
        absl::StrCat("after_seq ", spec.after_seq, " is past the job's newest event (seq ", job.last_seq, ")"));
  }
  ASSIGN_OR_RETURN(int64_t first, d_.store->FirstSeq(spec.id));
  if (first > 0 && spec.after_seq + 1 < first) {
    return absl::OutOfRangeError(absl::StrCat("events after seq ", spec.after_seq,
                                              " were discarded; the oldest kept is ", first, " and the current seq is ",
                                              job.last_seq, "; call GetJob for the snapshot and watch from there"));
  }
  return job;
}

absl::StatusOr<std::vector<ModelInfo>> Service::ListModels(int kind) {
  RETURN_IF_ERROR(ValidateModelKindFilter(kind));
  std::vector<ModelInfo> out;
  for (auto& m : d_.repository->List()) {
    if (kind == 0 || static_cast<int>(m.kind) == kind) out.push_back(std::move(m));
  }
  return out;
}

absl::StatusOr<ModelInfo> Service::GetModel(const std::string& name) {
  RETURN_IF_ERROR(ValidateModelRef(name));
  return d_.repository->Get(name);
}

absl::Status Service::DeleteModel(const std::string& name) {
  RETURN_IF_ERROR(ValidateModelRef(name));
  return d_.repository->Delete(name);
}

absl::StatusOr<ModelInfo> Service::LoadModel(const std::string& name, bool pin) {
  RETURN_IF_ERROR(ValidateModelRef(name));
  return d_.repository->Load(name, pin);
}

absl::StatusOr<ModelInfo> Service::UnloadModel(const std::string& name) {
  RETURN_IF_ERROR(ValidateModelRef(name));
  return d_.repository->Unload(name);
}

absl::StatusOr<ModelInfo> Service::PromoteSnapshot(const std::string& snapshot, const std::string& name) {
  RETURN_IF_ERROR(ValidateModelRef(snapshot, "snapshot"));
  RETURN_IF_ERROR(ValidateModelName(name, "name"));
  return d_.repository->PromoteSnapshot(snapshot, name);
}

ModelRepository::ScanResult Service::RescanRepository() { return d_.repository->Rescan(); }

absl::StatusOr<ExportedModel> Service::ExportModel(const std::string& name, ExportFormat format) {
  RETURN_IF_ERROR(ValidateModelRef(name));
  if (format != ExportFormat::kUnspecified && format != ExportFormat::kTorch && format != ExportFormat::kSafetensors) {
    return absl::InvalidArgumentError(
        absl::StrCat("format ", static_cast<int>(format), " is unknown; use TORCH (1) or SAFETENSORS (2)"));
  }
  ASSIGN_OR_RETURN(ModelInfo info, d_.repository->Get(name));
  if (info.kind != ModelKind::kGenerator && info.kind != ModelKind::kAdaptedGenerator) {
    return absl::FailedPreconditionError(absl::StrCat("model '", name, "' is a ", ModelKindName(info.kind),
                                                      " model; only generators and adapted generators export"));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const stylegan2::Generator> gen, d_.repository->GetGenerator(name));
  auto exported = gen->ExportStateDict();
  if (!exported.ok()) return exported.status();
  std::map<std::string, FloatTensor> g_ema = std::move(*exported);
  ExportedModel out;
  if (format == ExportFormat::kSafetensors) {
    g_ema["latent_avg"] = gen->mean_latent();
    std::map<std::string, std::string> meta{{"layout", "rosinality-stylegan2"}, {"model", name}};
    if (!info.base_model.empty()) meta["base_model"] = info.base_model;
    if (!info.target_text.empty()) meta["target_text"] = info.target_text;
    if (!info.source_text.empty()) meta["source_text"] = info.source_text;
    // NVIDIA's clamp has no place in rosinality's layout: recorded, so a reader can apply it.
    if (gen->config().conv_clamp > 0) meta["conv_clamp"] = absl::StrCat(gen->config().conv_clamp);
    out.filename = name + ".safetensors";
    out.bytes = EncodeSafetensors(g_ema, meta);
    return out;
  }
  out.filename = name + ".pt";
  out.bytes = EncodeTorchSave({{"g_ema", std::move(g_ema)}, {"latent_avg", gen->mean_latent()}});
  return out;
}

namespace {

// What each importable kind takes: how many files and which suffixes.
struct ImportRule {
  size_t files;
  std::vector<const char*> suffixes;
  const char* says;
};

absl::StatusOr<ImportRule> ImportRuleFor(int kind) {
  switch (static_cast<ModelKind>(kind)) {
    case ModelKind::kGenerator:
      return ImportRule{1, {".pt", ".pth", ".pkl", ".safetensors"}, ".pt, .pth, .pkl or .safetensors"};
    case ModelKind::kClip:
      return ImportRule{2,
                        {".pt", ".pth", ".safetensors", ".txt", ".gz"},
                        ".pt, .pth or .safetensors (the checkpoint) and .txt or .gz (the BPE vocabulary)"};
    case ModelKind::kLpips:
      return ImportRule{2,
                        {".pth", ".pt", ".ckpt"},
                        ".pth, .pt or .ckpt (torchvision VGG16 and LPIPS's linear layers, or torchvision AlexNet "
                        "and StarGAN v2's lpips_weights.ckpt)"};
    case ModelKind::kMapper:
      return ImportRule{1, {".pt", ".pth"}, ".pt or .pth (an official StyleCLIP mapper checkpoint)"};
    case ModelKind::kArcFace: return ImportRule{1, {".pth", ".pt"}, ".pth or .pt (model_ir_se50.pth)"};
    case ModelKind::kEncoder:
      return ImportRule{1, {".pt", ".pth"}, ".pt or .pth (an official e4e or pSp checkpoint, e4e_ffhq_encode.pt)"};
    case ModelKind::kLandmarks: return ImportRule{1, {".dat"}, ".dat (dlib's shape_predictor_68_face_landmarks.dat)"};
    case ModelKind::kAdaptedGenerator:
      return absl::InvalidArgumentError(
          "adapted generators are made by AdaptDomain; import an exported adapted model as a GENERATOR");
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "kind ", kind,
          " cannot be imported: use GENERATOR (1), CLIP (3), LPIPS (4), MAPPER (5), ARCFACE (6), ENCODER (7) or "
          "LANDMARKS (8)"));
  }
}

// An official checkpoint's decoder.* (rosinality names: a StyleCLIP mapper's, an e4e /
// pSp encoder's) against the base generator it is imported for: every tensor of the base
// (noise buffers and latent_avg aside) present, same shape, equal within 1e-4 of the
// tensor's largest magnitude (a base converted from another format may round differently).
// `what` names the file's network ("mapper", "encoder").
absl::Status CheckDecoder(const std::map<std::string, TensorView>& decoder, const stylegan2::Generator& base,
                          const std::string& base_name, const std::string& what) {
  if (decoder.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ", what, " file has no decoder.* generator, so it cannot be checked against base_model; official ", what,
        " checkpoints carry the generator they were trained with"));
  }
  for (const auto& [name, want] : base.StateDict()) {
    if (name == "latent_avg" || absl::StartsWith(name, "noises.")) continue;
    auto it = decoder.find(name);
    if (it == decoder.end()) {
      return absl::FailedPreconditionError(absl::StrCat("the ", what, "'s generator lacks '", name, "' of base_model '",
                                                        base_name, "': it was trained on another architecture"));
    }
    ASSIGN_OR_RETURN(FloatTensor got, ToFloatTensor(it->second));
    if (got.shape != want.shape) {
      return absl::FailedPreconditionError(absl::StrCat("the ", what, "'s generator has '", name, "' of shape ",
                                                        ShapeString(got.shape), ", base_model '", base_name, "' ",
                                                        ShapeString(want.shape), ": another generator"));
    }
    float scale = 0, diff = 0;
    for (size_t i = 0; i < want.data.size(); ++i) {
      scale = std::max(scale, std::fabs(want.data[i]));
      diff = std::max(diff, std::fabs(want.data[i] - got.data[i]));
    }
    if (!(diff <= 1e-4f * scale + 1e-8f)) {
      return absl::FailedPreconditionError(
          absl::StrCat("the ", what, " was trained on another generator than base_model '", base_name, "': its '", name,
                       "' differs by up to ", diff, " (largest magnitude ", scale, ")"));
    }
  }
  return absl::OkStatus();
}

bool IsVocabulary(const std::string& filename) {
  return absl::EndsWith(filename, ".txt") || absl::EndsWith(filename, ".gz");
}

}  // namespace

absl::StatusOr<std::string> Service::AddImportFile(ImportTicket* ticket, const std::string& filename,
                                                   int64_t total_bytes) {
  ASSIGN_OR_RETURN(ImportRule rule, ImportRuleFor(ticket->spec.kind));
  if (ticket->files.size() >= rule.files) {
    return absl::InvalidArgumentError(absl::StrCat("a ", ModelKindName(static_cast<ModelKind>(ticket->spec.kind)),
                                                   " import has ", rule.files, " file(s); '", filename.substr(0, 128),
                                                   "' is one too many"));
  }
  bool known_suffix = false;
  for (const char* s : rule.suffixes) known_suffix = known_suffix || absl::EndsWith(filename, s);
  if (filename.empty() || filename.size() > 128 || absl::StrContains(filename, '/') ||
      absl::StrContains(filename, '\\') || filename[0] == '.' || filename == "manifest.json" || !known_suffix) {
    return absl::InvalidArgumentError(absl::StrCat("filename '", filename.substr(0, 128),
                                                   "' must be a plain file name (no path) ending in ", rule.says,
                                                   ", at most 128 characters"));
  }
  for (const auto& f : ticket->files) {
    if (f.filename == filename) {
      return absl::InvalidArgumentError(absl::StrCat("two files are named '", filename, "'"));
    }
  }
  const int64_t limit = int64_t{d_.limits.max_import_mb} << 20;
  int64_t sum = total_bytes;
  for (const auto& f : ticket->files) sum += f.total_bytes;
  if (total_bytes <= 0 || sum > limit) {
    return absl::InvalidArgumentError(absl::StrCat("total_bytes ", total_bytes, " of '", filename.substr(0, 128),
                                                   "' is outside [1, ", limit, "] for the whole upload (the server's ",
                                                   "--max_import_mb is ", d_.limits.max_import_mb, ")"));
  }
  ImportFile f{filename, total_bytes,
               (std::filesystem::path(ticket->staging_dir) / absl::StrCat("file-", ticket->files.size())).string()};
  ticket->files.push_back(f);
  return f.staged_path;
}

absl::StatusOr<ImportTicket> Service::BeginImport(ImportSpec spec) {
  RETURN_IF_ERROR(ValidateModelName(spec.name));
  RETURN_IF_ERROR(ImportRuleFor(spec.kind).status());
  if (spec.domain.size() > kMaxImportDomainChars) {
    return absl::InvalidArgumentError(
        absl::StrCat("domain is ", spec.domain.size(), " bytes; at most ", kMaxImportDomainChars, " are kept"));
  }
  if (d_.repository->Exists(spec.name)) {
    return absl::AlreadyExistsError(absl::StrCat("a model named '", spec.name, "' exists; import under another name"));
  }
  const auto kind = static_cast<ModelKind>(spec.kind);
  if (kind == ModelKind::kMapper || kind == ModelKind::kEncoder) {
    if (spec.base_model.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("a ", kind == ModelKind::kMapper ? "MAPPER" : "ENCODER",
                                                     " import names its generator in base_model"));
    }
    RETURN_IF_ERROR(ValidateModelName(spec.base_model, "base_model"));
    ASSIGN_OR_RETURN(ModelInfo base, d_.repository->Get(spec.base_model));
    if (base.kind != ModelKind::kGenerator) {
      return absl::FailedPreconditionError(
          absl::StrCat("base_model '", spec.base_model, "' is a ", ModelKindName(base.kind), ", not a base generator"));
    }
  } else if (!spec.base_model.empty()) {
    return absl::InvalidArgumentError("base_model applies to MAPPER and ENCODER imports only");
  }
  ImportTicket ticket;
  ticket.spec = std::move(spec);
  std::mt19937_64 rng(std::random_device{}());
  ticket.staging_dir =
      (std::filesystem::path(d_.repository->root()) / absl::StrCat(".tmp-upload-", absl::Hex(rng(), absl::kZeroPad16)))
          .string();
  RETURN_IF_ERROR(AddImportFile(&ticket, ticket.spec.filename, ticket.spec.total_bytes).status());
  std::error_code ec;
  std::filesystem::create_directories(ticket.staging_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot stage the upload: ", ec.message()));
  return ticket;
}

absl::StatusOr<ModelInfo> Service::FinishImport(const ImportTicket& ticket) {
  auto info = PublishImport(ticket);
  AbortImport(ticket);  // the staging folder goes whether the import succeeded or not
  return info;
}

absl::StatusOr<ModelInfo> Service::PublishImport(const ImportTicket& ticket) {
  const ImportSpec& spec = ticket.spec;
  ASSIGN_OR_RETURN(ImportRule rule, ImportRuleFor(spec.kind));
  if (ticket.files.size() != rule.files) {
    return absl::InvalidArgumentError(absl::StrCat("a ", ModelKindName(static_cast<ModelKind>(spec.kind)),
                                                   " import needs ", rule.files, " files (", rule.says, "); got ",
                                                   ticket.files.size()));
  }
  // Files get their own names (safetensors are told apart by suffix, torch files and
  // pickles by their content), and are loaded, and so checked, before anything is published.
  const std::filesystem::path dir = ticket.staging_dir;
  std::vector<std::string> named;
  for (const auto& f : ticket.files) {
    std::error_code ec;
    std::filesystem::rename(f.staged_path, dir / f.filename, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot stage the upload: ", ec.message()));
    named.push_back((dir / f.filename).string());
  }
  auto refused = [&](const char* what, const absl::Status& s) {
    return absl::InvalidArgumentError(
        absl::StrCat("the uploaded files are not ", what, " this server can load: ", s.message()));
  };
  nlohmann::json manifest;
  // MAPPER, ENCODER: the network converted out of the official file, written instead of it.
  std::function<absl::Status(const std::filesystem::path& folder)> write_converted;
  switch (static_cast<ModelKind>(spec.kind)) {
    case ModelKind::kGenerator: {
      auto loaded = stylegan2::Generator::Load(named[0], {});
      if (!loaded.ok()) return refused("a generator", loaded.status());
      manifest = {{"kind", "generator"}, {"checkpoint", ticket.files[0].filename}};
      break;
    }
    case ModelKind::kClip: {
      const bool vocab_first = IsVocabulary(ticket.files[0].filename);
      const ImportFile& ckpt = ticket.files[vocab_first ? 1 : 0];
      const ImportFile& vocab = ticket.files[vocab_first ? 0 : 1];
      if (IsVocabulary(ckpt.filename) || !IsVocabulary(vocab.filename)) {
        return absl::InvalidArgumentError(
            "a CLIP import is one checkpoint (.pt, .pth, .safetensors) and one vocabulary (.txt, .gz)");
      }
      auto model = clip::ClipModel::Load((dir / ckpt.filename).string(), "cpu", nullptr, clip::ClipPrecision::kFloat32);
      if (!model.ok()) return refused("a CLIP model", model.status());
      auto tok = clip::Tokenizer::Load((dir / vocab.filename).string());
      if (!tok.ok()) return refused("a CLIP vocabulary", tok.status());
      if (absl::Status fit = (*tok)->CheckModelVocabulary((*model)->config().vocab_size); !fit.ok()) {
        return refused("a CLIP vocabulary", fit);
      }
      manifest = {{"kind", "clip"}, {"checkpoint", ckpt.filename}, {"vocab", vocab.filename}};
      break;
    }
    case ModelKind::kLpips: {
      // Which network and which file is which: the combination that loads (VGG16 first).
      // The errors reported are those of the files in upload order.
      absl::Status vgg_error, alex_error;
      for (size_t net = 0; net < 2 && manifest.is_null(); ++net) {
        auto loaded = lpips::Lpips::Load(named[net], named[1 - net], "cpu");
        if (loaded.ok()) {
          manifest = {
              {"kind", "lpips"}, {"vgg16", ticket.files[net].filename}, {"lin", ticket.files[1 - net].filename}};
        } else if (net == 0) {
          vgg_error = loaded.status();
        }
      }
      for (size_t net = 0; net < 2 && manifest.is_null(); ++net) {
        auto loaded = lpips::AlexLpips::Load(named[net], named[1 - net], "cpu");
        if (loaded.ok()) {
          manifest = {{"kind", "lpips"},
                      {"variant", kLpipsAlexStargan},
                      {"alexnet", ticket.files[net].filename},
                      {"lin", ticket.files[1 - net].filename}};
        } else if (net == 0) {
          alex_error = loaded.status();
        }
      }
      if (manifest.is_null()) {
        return refused("LPIPS weights (VGG16 features and linear layers, or AlexNet and StarGAN v2's lpips_weights)",
                       absl::InvalidArgumentError(
                           absl::StrCat("as VGG16: ", vgg_error.message(), "; as AlexNet: ", alex_error.message())));
      }
      break;
    }
    case ModelKind::kArcFace: {
      auto loaded = arcface::ArcFace::Load(named[0], "cpu");
      if (!loaded.ok()) return refused("ArcFace IR-SE-50 weights", loaded.status());
      manifest = {{"kind", "arcface"}, {"checkpoint", ticket.files[0].filename}};
      break;
    }
    case ModelKind::kLandmarks: {
      auto loaded = invert::FaceLandmarker::Load(named[0]);
      if (!loaded.ok()) return refused("a dlib 68-point shape predictor", loaded.status());
      manifest = {{"kind", "landmarks"}, {"predictor", ticket.files[0].filename}};
      break;
    }
    case ModelKind::kMapper: {
      auto file = edit::ReadOfficialMapperFile(named[0]);
      if (!file.ok()) return refused("a StyleCLIP mapper", file.status());
      auto mapper = edit::LatentMapper::FromTensors(file->mapper, file->config, "cpu");
      if (!mapper.ok()) return refused("a StyleCLIP mapper", mapper.status());
      ASSIGN_OR_RETURN(auto base, d_.repository->GetGenerator(spec.base_model));
      RETURN_IF_ERROR(CheckDecoder(file->decoder, *base, spec.base_model, "mapper"));
      write_converted = [tensors = (*mapper)->StateDict(), &spec](const std::filesystem::path& folder) {
        return SaveSafetensors((folder / "mapper.safetensors").string(), tensors, {{"base_model", spec.base_model}});
      };
      const std::string text = file->description.empty() ? spec.domain : file->description;
      nlohmann::json groups = nlohmann::json::array();
      if (file->config.type == edit::MapperType::kLevels) {
        if (file->config.coarse) groups.push_back("coarse");
        if (file->config.medium) groups.push_back("medium");
        if (file->config.fine) groups.push_back("fine");
      }
      manifest = {{"kind", "mapper"},
                  {"base_model", spec.base_model},
                  {"target_text", text},
                  {"domain", text},
                  {"mapper_type", edit::MapperTypeName(file->config.type)},
                  {"groups", groups},
                  {"mapper_file", "mapper.safetensors"},
                  {"source_file", ticket.files[0].filename}};
      break;
    }
    case ModelKind::kEncoder: {
      auto file = psp::ReadOfficialEncoderFile(named[0]);
      if (!file.ok()) return refused("a pSp / e4e encoder", file.status());
      auto loaded = psp::StyleEncoder::FromTensors(file->encoder, file->latent_avg, file->config, "cpu");
      if (!loaded.ok()) return refused("a pSp / e4e encoder", loaded.status());
      std::shared_ptr<const psp::StyleEncoder> encoder = std::move(*loaded);
      ASSIGN_OR_RETURN(auto base, d_.repository->GetGenerator(spec.base_model));
      if (encoder->config().styles != base->config().n_latent || base->config().style_dim != psp::kEncoderStyleDim) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the encoder gives w+ [", encoder->config().styles, ", ", psp::kEncoderStyleDim, "]; base_model '",
            spec.base_model, "' takes [", base->config().n_latent, ", ", base->config().style_dim, "]"));
      }
      RETURN_IF_ERROR(CheckDecoder(file->decoder, *base, spec.base_model, "encoder"));
      write_converted = [encoder, &spec](const std::filesystem::path& folder) {
        return psp::SaveEncoder((folder / "encoder.safetensors").string(), *encoder, {{"base_model", spec.base_model}});
      };
      manifest = {{"kind", "encoder"},
                  {"base_model", spec.base_model},
                  {"architecture", std::string(psp::EncoderArchitectureName(encoder->config().architecture))},
                  {"styles", encoder->config().styles},
                  {"start_from_latent_avg", encoder->config().start_from_latent_avg},
                  {"encoder_file", "encoder.safetensors"},
                  {"source_file", ticket.files[0].filename}};
      break;
    }
    default: return absl::InvalidArgumentError("kind cannot be imported");
  }
  if (!spec.domain.empty()) manifest["domain"] = spec.domain;
  manifest["imported"] = true;  // what the API added, the API may delete
  // The staging folder's own (random) name keeps concurrent imports apart.
  const std::string work_id = absl::StrCat("import-", dir.filename().string());
  return d_.repository->Publish(spec.name, work_id, [&](const std::string& folder) {
    if (write_converted) {
      // Only the converted network is kept: the file's decoder is the base's weights.
      RETURN_IF_ERROR(write_converted(folder));
      return WriteFileAtomic((std::filesystem::path(folder) / "manifest.json").string(), manifest.dump(2) + "\n");
    }
    for (const auto& f : ticket.files) {
      std::error_code e;
      std::filesystem::rename(dir / f.filename, std::filesystem::path(folder) / f.filename, e);
      if (e) return absl::InternalError(absl::StrCat("cannot publish the upload: ", e.message()));
    }
    return WriteFileAtomic((std::filesystem::path(folder) / "manifest.json").string(), manifest.dump(2) + "\n");
  });
}

void Service::AbortImport(const ImportTicket& ticket) {
  std::error_code ec;
  if (!ticket.staging_dir.empty()) std::filesystem::remove_all(ticket.staging_dir, ec);
}

absl::Status Service::CheckInferenceRole() const {
  if (d_.inference) return absl::OkStatus();
  return absl::UnavailableError(
      "this replica runs jobs only (--roles training): send GenerateSamples and Edit to a replica with the inference "
      "role");
}

absl::StatusOr<GeneratePlan> Service::PlanGenerate(GenerateSpec spec) {
  RETURN_IF_ERROR(CheckInferenceRole());
  auto plan = service::PlanGenerate(std::move(spec), *d_.repository, d_.limits, d_.data_dir);
  if (!plan.ok()) Rejected(plan.status());
  return plan;
}

absl::StatusOr<EditPlan> Service::PlanEdit(EditSpec spec) {
  RETURN_IF_ERROR(CheckInferenceRole());
  auto plan = service::PlanEdit(std::move(spec), *d_.repository, d_.limits, d_.data_dir,
                                EditResources{d_.text_cache, d_.stats_cache});
  if (!plan.ok()) Rejected(plan.status());
  return plan;
}

absl::StatusOr<OptimizePlan> Service::PlanOptimize(EditSpec spec) {
  auto plan = service::PlanOptimize(std::move(spec), *d_.repository, d_.limits, d_.data_dir,
                                    EditResources{d_.text_cache, d_.stats_cache});
  if (!plan.ok()) Rejected(plan.status());
  return plan;
}

}  // namespace ganserve::core::service
