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
#ifndef GANSERVE_CORE_REGISTRY_MODEL_REPOSITORY_H_
#define GANSERVE_CORE_REGISTRY_MODEL_REPOSITORY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/models/clip/clip_model.h"
#include "core/models/clip/tokenizer.h"
#include "core/models/lpips/lpips.h"
#include "core/models/stylegan2/generator.h"

namespace ganserve::core {

enum class ModelKind { kUnspecified = 0, kGenerator = 1, kAdaptedGenerator = 2, kClip = 3, kLpips = 4 };
enum class ModelState { kUnspecified = 0, kReady = 1, kFailed = 2, kLoading = 3 };

const char* ModelKindName(ModelKind k);

struct ModelInfo {
  std::string name;
  ModelKind kind = ModelKind::kUnspecified;
  ModelState state = ModelState::kLoading;
  std::string error;  // why it failed (kFailed)
  std::string domain;
  float default_truncation = 1.0f;
  std::string base_model, source_text, target_text;
  int64_t size_bytes = 0;
  int64_t create_time_unix = 0;
  // Generators.
  int resolution = 0, style_dim = 0, n_mlp = 0, n_latent = 0;
  int64_t s_dim = 0;
};

// True for names a model folder may have: [a-z0-9][a-z0-9._-]{0,63}.
bool IsValidModelName(const std::string& name);

// Thread-safe. In-flight work keeps a model alive through its shared_ptr, so deleting
// or replacing a model never pulls weights out from under a running request.
class ModelRepository {
 public:
  // Does not load anything yet; `root` is created if missing. CLIP models load on
  // load_options.device in `clip_precision` (kAuto: fp16 on CUDA as OpenAI runs them).
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Create(
      const std::string& root, stylegan2::LoadOptions load_options,
      clip::ClipPrecision clip_precision = clip::ClipPrecision::kAuto);

  // Scans the root and loads every model. A broken model is recorded as FAILED with
  // its reason and does not stop the others. Returns the number of READY models.
  int LoadAll();
  // Removes the hidden work folders a crash left behind (".tmp-*": a model being
  // written; ".deleted-*": one being deleted). Call before any job can write, i.e. at start-up. Returns how many.
  int RemoveStaleWorkFolders();

  std::vector<ModelInfo> List() const;
  // NotFound naming the available models.
  absl::StatusOr<ModelInfo> Get(const std::string& name) const;
  // NotFound, or FailedPrecondition (with the load error) for a broken model or one
  // that is not a generator.
  absl::StatusOr<std::shared_ptr<const stylegan2::Generator>> GetGenerator(const std::string& name) const;
  // A loaded CLIP model with its tokenizer. NotFound / FailedPrecondition as above.
  struct Clip {
    std::shared_ptr<const clip::ClipModel> model;
    std::shared_ptr<const clip::Tokenizer> tokenizer;
  };
  absl::StatusOr<Clip> GetClip(const std::string& name) const;
  // The first ready LPIPS model (by name), or null when the repository has none.
  std::shared_ptr<const lpips::Lpips> FirstLpips() const;
  // Loads (or reloads) one model folder that was just written, e.g. by an adaptation
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
  // Removes an adapted generator's folder. FailedPrecondition for base models.
  absl::Status Delete(const std::string& name);

  const std::string& root() const { return root_; }

  // The CLIP model StyleCLIP's methods use when a request names none (its statistics,
  // global-direction edits and latent optimization; the official code uses ViT-B/32
  // throughout and its alpha/beta ranges are tuned for it). Empty = none configured.
  void SetStyleClipDefault(std::string name) ABSL_LOCKS_EXCLUDED(mu_);
  std::string styleclip_default() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  ModelRepository(std::string root, stylegan2::LoadOptions opt, clip::ClipPrecision clip_precision)
      : root_(std::move(root)), load_options_(std::move(opt)), clip_precision_(clip_precision) {}
  struct Entry {
    ModelInfo info;
    std::shared_ptr<const stylegan2::Generator> generator;
    Clip clip;
    std::shared_ptr<const lpips::Lpips> lpips;
  };
  Entry LoadOne(const std::string& name);
  std::string Available() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string root_;
  const stylegan2::LoadOptions load_options_;
  const clip::ClipPrecision clip_precision_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> models_ ABSL_GUARDED_BY(mu_);
  std::string styleclip_default_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ganserve::core

#endif  // GANSERVE_CORE_REGISTRY_MODEL_REPOSITORY_H_
