// The model repository: a directory with one folder per model, each holding a
// manifest.json and its weights. Base generators, adapted generators (a safetensors
// delta over a base) and CLIP encoders.
//
//   <root>/<name>/manifest.json
//     {"kind": "generator", "checkpoint": "stylegan2-ffhq-config-f.pt",
//      "checkpoint_key": "g_ema", "domain": "photo of a face", "default_truncation": 0.7}
//     {"kind": "adapted_generator", "base_model": "ffhq", "delta": "delta.safetensors",
//      "source_text": "photo", "target_text": "sketch", ...}
//     {"kind": "clip", "checkpoint": "ViT-B-32.pt", "vocab": "bpe_simple_vocab_16e6.txt.gz"}
//     {"kind": "lpips", "vgg16": "vgg16-397923af.pth", "lin": "vgg.pth"}
//     {"kind": "lpips", "variant": "alex_stargan", "alexnet": "alexnet-owt-7be5be79.pth",
//      "lin": "lpips_weights.ckpt"}
//   An lpips manifest without "variant" is the VGG16 one ("variant": "vgg").
//
// With shared files (replicas that share no folder, README "Scaling out"): what the
// service makes (Publish: adapted models, promoted snapshots, imports) is also stored
// there as the set "models/<name>"; a name this replica does not have is fetched from
// there on first use (Get) or by SyncShared; Delete removes the set too, and SyncShared
// on the other replicas drops their copies. Models installed with the server (base
// generators, CLIP, ...) come with each replica's image or volume.
#ifndef GANSERVE_CORE_REGISTRY_MODEL_REPOSITORY_H_
#define GANSERVE_CORE_REGISTRY_MODEL_REPOSITORY_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/edit/latent_mapper.h"
#include "core/invert/face_landmarks.h"
#include "core/models/arcface/arcface.h"
#include "core/models/clip/clip_model.h"
#include "core/models/clip/tokenizer.h"
#include "core/models/lpips/alex_lpips.h"
#include "core/models/lpips/lpips.h"
#include "core/models/psp/style_encoder.h"
#include "core/models/stylegan2/generator.h"
#include "core/util/shared_files.h"

namespace ganserve::core {

// kMapper: a StyleCLIP latent mapper of one generator (base_model), trained for one
// prompt (target_text).
// kArcFace: the IR-SE-50 identity network of StyleCLIP's identity loss.
// kEncoder: a pSp / e4e image encoder into one generator's w+ (base_model).
// kLandmarks: dlib's face detector with a 68-point shape predictor (FFHQ alignment).
enum class ModelKind {
  kUnspecified = 0,
  kGenerator = 1,
  kAdaptedGenerator = 2,
  kClip = 3,
  kLpips = 4,
  kMapper = 5,
  kArcFace = 6,
  kEncoder = 7,
  kLandmarks = 8
};
// kUnloaded: a valid folder whose weights are not in memory; the first use (or
// LoadModel) loads it.
enum class ModelState { kUnspecified = 0, kReady = 1, kFailed = 2, kLoading = 3, kUnloaded = 4 };

// The LPIPS networks an lpips manifest's "variant" names: LPIPS v0.1 over VGG16 (the
// default; InvertImage's projector loss) and StarGAN v2's AlexNet LPIPS (OneshotCLIP's).
inline constexpr char kLpipsVgg[] = "vgg";
inline constexpr char kLpipsAlexStargan[] = "alex_stargan";

const char* ModelKindName(ModelKind k);
const char* ModelStateName(ModelState s);
// READY, LOADING or UNLOADED: a request may name it (it loads on use).
inline bool IsUsable(ModelState s) {
  return s == ModelState::kReady || s == ModelState::kLoading || s == ModelState::kUnloaded;
}

struct ModelInfo {
  std::string name;
  ModelKind kind = ModelKind::kUnspecified;
  ModelState state = ModelState::kUnloaded;
  std::string error;  // why it failed (kFailed)
  std::string domain;
  float default_truncation = 1.0f;
  std::string base_model, source_text, target_text;
  int64_t size_bytes = 0;
  int64_t create_time_unix = 0;
  // Never evicted: the manifest's "pinned": true, or LoadModel with pin.
  bool pinned = false;
  // Added by ImportModel (manifest "imported": true): DeleteModel may remove it.
  bool imported = false;
  // Training snapshots (MODEL@STEP): the job that wrote it and its step.
  std::string snapshot_job;
  int64_t snapshot_step = 0;
  // Adapted generators: "full" (changed weights overlaid on the base) or a lightweight
  // domain kind (stylegan2::DomainKindName: rendered on the base's resident weights), and
  // how many numbers training stored.
  std::string parameterization;
  int64_t trained_parameters = 0;
  // Adapted generators that sample with rows [mean_rows_from, n_latent) of w+ at the
  // mean latent by default (manifest "mean_rows_from"; OneshotCLIP results: 11); 0 = none.
  int mean_rows_from = 0;
  // LPIPS models: kLpipsVgg or kLpipsAlexStargan.
  std::string variant;
  bool lightweight() const { return !parameterization.empty() && parameterization != "full"; }
  // What its weights hold while resident (zero otherwise).
  MemoryFootprint resident;
  // Generators (known once it has been loaded).
  int resolution = 0, style_dim = 0, n_mlp = 0, n_latent = 0;
  int64_t s_dim = 0;
};

// What stays resident. Budgets are in bytes, 0 = no limit. When a load puts the resident
// models over a budget, the least recently used unpinned models are unloaded until it
// fits (a model in-flight requests hold is freed when they finish).
struct ResidencyOptions {
  // Host RAM held by models (on a CPU device: all of their weights).
  int64_t host_budget_bytes = 0;
  // The compute device's memory held by models; on a CPU device it bounds host RAM too.
  int64_t device_budget_bytes = 0;
  // What LoadAll loads before the first request: every model while the budgets have
  // room, only pinned ones, or none (each loads on first use).
  enum class Preload { kAll, kPinned, kNone };
  Preload preload = Preload::kAll;
};

// Parses all | pinned | none.
absl::StatusOr<ResidencyOptions::Preload> ParsePreload(const std::string& s);

// A snapshot of the repository for gauges.
struct RepositoryState {
  std::map<ModelKind, MemoryFootprint> resident;
  std::map<ModelState, int> models;
};

// Receives the repository's loads and evictions. Called without the repository's lock
// held; must not call back into the repository.
class RepositoryObserver {
 public:
  virtual ~RepositoryObserver() = default;
  virtual void OnModelLoad(ModelKind kind, bool ok, double seconds) = 0;
  virtual void OnModelEvicted(ModelKind kind) = 0;
  virtual void OnRepositoryState(const RepositoryState& state) = 0;
};

// The files a GAN fine-tune (one-shot adaptation) of a base generator starts from: the
// trainable generator `g` and the discriminator `d`. A rosinality training checkpoint
// holds both beside `g_ema`; a manifest may instead name state-dict files as "train_g"
// and "train_d" (e.g. safetensors).
struct TrainingFiles {
  std::string g_path;
  std::string g_key;  // "g" inside a training checkpoint; empty for a bare state dict
  std::string d_path;
};

// True for names a model folder may have: [a-z0-9][a-z0-9._-]{0,63}.
bool IsValidModelName(const std::string& name);
// Names a request may refer to: model names and training snapshots (MODEL@STEP).
bool IsValidModelRef(const std::string& name);
std::string SnapshotName(const std::string& model, int64_t step);
// Where training snapshots live under the repository root: <job id>/<step>/.
inline constexpr char kSnapshotsDir[] = ".snapshots";

// Thread-safe. In-flight work keeps a model alive through its shared_ptr, so deleting,
// replacing or evicting a model never pulls weights out from under a running request.
// Models load lazily: the Get* calls load a model that is not resident (concurrent
// callers wait for one load) and mark it used for the LRU order.
class ModelRepository {
 public:
  // Does not load anything yet; `root` is created if missing. CLIP models load on
  // load_options.device in `clip_precision` (kAuto: fp16 on CUDA as OpenAI runs them).
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Create(
      const std::string& root, stylegan2::LoadOptions load_options,
      clip::ClipPrecision clip_precision = clip::ClipPrecision::kAuto, ResidencyOptions residency = {},
      RepositoryObserver* observer = nullptr);

  // Scans the root, then preloads as ResidencyOptions::preload says. A broken model is
  // recorded as FAILED with its reason and does not stop the others. Returns the number
  // of resident (READY) models.
  int LoadAll();
  // Picks up model folders added or removed on disk since the last scan (FAILED ones are
  // read again); loads nothing. Names added and removed.
  struct ScanResult {
    std::vector<std::string> added, removed;
  };
  ScanResult Rescan();
  // With shared files: fetches the models other replicas stored that this one lacks, and
  // drops its copies of models deleted there (only copies of shared models: folders it
  // fetched or published, marked by a ".shared" file). Names added and removed.
  ScanResult SyncShared();
  // Removes the hidden work folders a crash left behind (".tmp-*": a model being
  // written; ".deleted-*": one being deleted). Call before any job can write, i.e. at start-up. Returns how many.
  int RemoveStaleWorkFolders();

  std::vector<ModelInfo> List() const;
  // NotFound naming the available models.
  absl::StatusOr<ModelInfo> Get(const std::string& name) const;
  // Loads when needed. NotFound, or FailedPrecondition (with the load error) for a broken
  // model or one that is not a generator.
  absl::StatusOr<std::shared_ptr<const stylegan2::Generator>> GetGenerator(const std::string& name) const;
  // A loaded CLIP model with its tokenizer. NotFound / FailedPrecondition as above.
  struct Clip {
    std::shared_ptr<const clip::ClipModel> model;
    std::shared_ptr<const clip::Tokenizer> tokenizer;
  };
  absl::StatusOr<Clip> GetClip(const std::string& name) const;
  // The first usable ArcFace model; FailedPrecondition naming the weights file (and the
  // installed ones that failed) when there is none.
  absl::StatusOr<std::shared_ptr<const arcface::ArcFace>> FirstArcFace() const;
  // The first usable face landmarker (kind kLandmarks); FailedPrecondition naming the
  // predictor file (and the installed ones that failed) when there is none.
  absl::StatusOr<std::shared_ptr<const invert::FaceLandmarker>> FirstLandmarker() const;
  // A latent mapper (kind kMapper).
  absl::StatusOr<std::shared_ptr<const edit::LatentMapper>> GetMapper(const std::string& name) const;
  // An image encoder (kind kEncoder).
  absl::StatusOr<std::shared_ptr<const psp::StyleEncoder>> GetEncoder(const std::string& name) const;
  // The encoder InvertImage uses for `generator` when the request names none: the first
  // usable encoder (by name) of the generator or, for an adapted generator, of the
  // generator it was adapted from. FailedPrecondition saying how to add one otherwise.
  absl::StatusOr<std::string> EncoderFor(const std::string& generator) const;
  // The first usable VGG16 LPIPS model (by name), loaded; null when the repository has
  // none. AlexNet LPIPS models are never returned.
  std::shared_ptr<const lpips::Lpips> FirstLpips() const;
  // The first AlexNet LPIPS model (variant alex_stargan, by name) that loads.
  // FailedPrecondition saying which files to install (and why installed ones fail) when
  // there is none.
  absl::StatusOr<std::shared_ptr<const lpips::AlexLpips>> FirstAlexLpips() const;
  // The training files of base generator `name`. NotFound; FailedPrecondition for other
  // kinds; InvalidArgument naming what is missing when the checkpoint has no `g` or `d`
  // (generator-only releases such as exported g_ema files).
  absl::StatusOr<TrainingFiles> TrainingFilesOf(const std::string& name) const;
  // Makes a model resident now (a FAILED one is tried again); `pin` keeps it resident
  // until Unload. Returns its info, or the load error.
  absl::StatusOr<ModelInfo> Load(const std::string& name, bool pin);
  // Unpins a model and frees its weights (in-flight users keep theirs until they finish).
  absl::StatusOr<ModelInfo> Unload(const std::string& name);
  // Registers and loads one model folder that was just written, e.g. by an adaptation
  // job. Returns the model's info; a broken folder is recorded as FAILED and returned
  // as an error.
  absl::StatusOr<ModelInfo> Add(const std::string& name);
  bool Exists(const std::string& name) const;
  // Publishes a new model folder atomically: `write` fills a hidden work folder (its
  // argument), which is then renamed to <root>/<name> and loaded. No half-written
  // model is ever visible; a crash leaves a work folder RemoveStaleWorkFolders removes.
  // `work_id` names the work folder (one per writer). AlreadyExists when `name` is taken.
  absl::StatusOr<ModelInfo> Publish(const std::string& name, const std::string& work_id,
                                    const std::function<absl::Status(const std::string& folder)>& write);
  // Removes an adapted or imported model's folder. FailedPrecondition for models installed
  // with the server, snapshots, and bases of other models.
  absl::Status Delete(const std::string& name);

  // Training snapshots: an adapted model's delta at a step, named MODEL@STEP, stored
  // under <root>/.snapshots/<job id>/<step>/ (written again when a resumed job redoes the
  // step). Not loaded until used.
  absl::StatusOr<ModelInfo> PublishSnapshot(const std::string& model, const std::string& job_id, int64_t step,
                                            const std::function<absl::Status(const std::string& folder)>& write);
  // Jobs that have snapshots, and removal of one job's (returns the bytes freed).
  std::vector<std::string> SnapshotJobs() const;
  int64_t ExpireSnapshots(const std::string& job_id);
  // Copies a snapshot into a new adapted model `name` (AlreadyExists when taken).
  absl::StatusOr<ModelInfo> PromoteSnapshot(const std::string& snapshot, const std::string& name);

  const std::string& root() const { return root_; }

  // The deployment's shared files (not owned; null = none, the single-machine default):
  // models as the class comment says; inversions and statistics beside them
  // (core/service/storage.h). Set before use.
  void SetSharedFiles(SharedFiles* shared) { shared_ = shared; }
  SharedFiles* shared_files() const { return shared_; }
  const ResidencyOptions& residency() const { return residency_; }

  // The CLIP model StyleCLIP's methods use when a request names none (its statistics,
  // global-direction edits and latent optimization; the official code uses ViT-B/32
  // throughout and its alpha/beta ranges are tuned for it). Empty = none configured.
  void SetStyleClipDefault(std::string name) ABSL_LOCKS_EXCLUDED(mu_);
  std::string styleclip_default() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  ModelRepository(std::string root, stylegan2::LoadOptions opt, clip::ClipPrecision clip_precision,
                  ResidencyOptions residency, RepositoryObserver* observer)
      : root_(std::move(root)),
        load_options_(std::move(opt)),
        clip_precision_(clip_precision),
        residency_(residency),
        observer_(observer) {}
  struct Weights {
    std::shared_ptr<const stylegan2::Generator> generator;
    Clip clip;
    std::shared_ptr<const lpips::Lpips> lpips;
    std::shared_ptr<const lpips::AlexLpips> alex_lpips;
    std::shared_ptr<const edit::LatentMapper> mapper;
    std::shared_ptr<const arcface::ArcFace> arcface;
    std::shared_ptr<const psp::StyleEncoder> encoder;
    std::shared_ptr<const invert::FaceLandmarker> landmarker;
  };
  struct Entry {
    ModelInfo info;
    Weights weights;
    std::string folder;
    uint64_t last_use = 0;
  };
  // Reads a folder's manifest: the info a scan knows (state UNLOADED, or FAILED).
  ModelInfo ScanOne(const std::string& name, const std::string& folder) const;
  // Loads the weights (an adapted generator's base through GetGenerator).
  absl::StatusOr<Weights> LoadWeights(const std::string& folder, ModelInfo* info) const;
  // Records (or replaces) a model folder as UNLOADED.
  absl::StatusOr<ModelInfo> Register(const std::string& name, const std::string& folder) const;
  // The entry's weights, loading them first when needed. `retry_failed` loads a FAILED
  // model again; `pin` pins it.
  absl::StatusOr<Weights> Acquire(const std::string& name, bool retry_failed, bool pin) const ABSL_LOCKS_EXCLUDED(mu_);
  // The `member` weights of the first usable model `matches` accepts that loads; null,
  // with why the others did not in `failures`, when none does.
  template <typename T>
  std::shared_ptr<const T> FirstLoaded(const std::function<bool(const ModelInfo&)>& matches,
                                       std::shared_ptr<const T> Weights::*member,
                                       std::vector<std::string>* failures) const ABSL_LOCKS_EXCLUDED(mu_);
  // Unloads LRU unpinned models (never `keep`) while over a budget. Returns the kinds evicted.
  std::vector<ModelKind> EvictOverBudget(const std::string& keep) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool OverBudget() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  RepositoryState StateLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tells the observer about evictions and the new state.
  void Notify(const std::vector<ModelKind>& evicted) const ABSL_LOCKS_EXCLUDED(mu_);
  // Model name -> folder, for every model folder and snapshot on disk.
  std::map<std::string, std::string> ScanFolders() const;
  // The models `matches` accepts that may load (by name), and why the others failed.
  std::vector<std::string> Candidates(const std::function<bool(const ModelInfo&)>& matches,
                                      std::vector<std::string>* failures) const ABSL_LOCKS_EXCLUDED(mu_);
  // Delete without notifying the observer; takes the lock.
  absl::Status DeleteFolder(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  std::string Available() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // With shared files: `name` fetched into <root>/<name> and registered; NotFound when
  // the shared files lack it too (or this replica is publishing it right now).
  absl::StatusOr<ModelInfo> FetchShared(const std::string& name) const;

  const std::string root_;
  SharedFiles* shared_ = nullptr;
  const stylegan2::LoadOptions load_options_;
  const clip::ClipPrecision clip_precision_;
  const ResidencyOptions residency_;
  RepositoryObserver* const observer_;
  // The repository is a cache of the folder: loads through const getters change it.
  mutable absl::Mutex mu_;
  mutable absl::CondVar load_done_;
  mutable std::map<std::string, Entry> models_ ABSL_GUARDED_BY(mu_);
  // Names Publish is writing (stored in the shared files, not yet in the root).
  std::set<std::string> publishing_ ABSL_GUARDED_BY(mu_);
  mutable uint64_t use_clock_ ABSL_GUARDED_BY(mu_) = 0;
  mutable uint64_t evictions_ ABSL_GUARDED_BY(mu_) = 0;
  std::string styleclip_default_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_REGISTRY_MODEL_REPOSITORY_H_
