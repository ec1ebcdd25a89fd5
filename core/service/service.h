// The application: every operation of ganserve behind one transport-free facade. Edges
// (gRPC today, HTTP next) translate requests into specs, call these methods, and turn
// the absl statuses and results into their wire format; nothing here knows a wire.
#ifndef GANSERVE_CORE_SERVICE_SERVICE_H_
#define GANSERVE_CORE_SERVICE_SERVICE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/jobs/job_engine.h"
#include "core/jobs/job_store.h"
#include "core/models/clip/text_embedding_cache.h"
#include "core/registry/model_repository.h"
#include "core/service/render.h"
#include "core/service/specs.h"
#include "core/service/storage.h"

namespace ganserve::core::service {

// Receives the reasons requests are turned away ("invalid", "queue_full"). Thread-safe.
class ServiceObserver {
 public:
  virtual ~ServiceObserver() = default;
  virtual void OnRequestRejected(const char* reason) = 0;
};

// How a job request arrived.
struct SubmitOptions {
  // The request's digest as versions before spec records computed it from the wire form
  // (the edge supplies it): a retry of a request submitted before an upgrade then finds
  // its job. Empty: none.
  std::string legacy_hash;
};

// What the service works with. Not owned; each must outlive the Service.
struct ServiceDeps {
  ModelRepository* repository = nullptr;
  JobStore* store = nullptr;
  JobEngine* engine = nullptr;
  clip::TextEmbeddingCache* text_cache = nullptr;  // null: no text edits
  GlobalStatsCache* stats_cache = nullptr;         // null: no global-direction edits
  ServiceObserver* observer = nullptr;             // may be null
  Limits limits;
  std::string data_dir;
  // False on a replica with the training role only: GenerateSamples and Edit are
  // refused (UNAVAILABLE, so a router tries another replica).
  bool inference = true;
};

// The webhook address (notify_url) a stored job request names; "" when it names none or
// the request is not a spec document.
std::string NotifyUrlOf(const JobRecord& job);

// Thread-safe. Planning methods may map latents or encode text: call them on the
// device executor.
enum class ExportFormat { kUnspecified = 0, kTorch = 1, kSafetensors = 2 };

// Longest manifest domain text an import may set.
inline constexpr size_t kMaxImportDomainChars = 256;

// An upload being received: where its bytes go until ImportModel publishes them. A
// generator is one file; a CLIP model its checkpoint and its BPE vocabulary; LPIPS the
// VGG16 features and the linear layers (in either order); a mapper an official StyleCLIP
// mapper checkpoint, whose decoder must be base_model's weights (only the mapper is kept).
struct ImportSpec {
  std::string name;
  int kind = 0;          // ModelKind
  std::string filename;  // the first file
  int64_t total_bytes = 0;
  std::string domain;
  std::string base_model;  // mappers: the generator they were trained on
};
struct ImportFile {
  std::string filename;
  int64_t total_bytes = 0;
  std::string staged_path;  // inside the repository's hidden work area
};
struct ImportTicket {
  ImportSpec spec;
  std::vector<ImportFile> files;
  std::string staging_dir;
};

struct ExportedModel {
  std::string filename;  // NAME.pt or NAME.safetensors
  std::string bytes;
};

class Service {
 public:
  explicit Service(ServiceDeps deps) : d_(std::move(deps)) {}

  // Job submission. A request_id already used with the same payload returns that job
  // (before validation: its own output may exist by now); with another payload,
  // ALREADY_EXISTS. Otherwise the spec is validated and queued: its errors, or
  // RESOURCE_EXHAUSTED when the queue is full.
  absl::StatusOr<JobRecord> SubmitAdapt(AdaptSpec spec, const SubmitOptions& options = {});
  absl::StatusOr<JobRecord> SubmitInvert(InvertSpec spec, const SubmitOptions& options = {});
  absl::StatusOr<JobRecord> SubmitGlobalStats(GlobalStatsSpec spec, const SubmitOptions& options = {});
  absl::StatusOr<JobRecord> SubmitMapper(MapperSpec spec, const SubmitOptions& options = {});

  absl::StatusOr<JobRecord> GetJob(const std::string& id);
  absl::StatusOr<ListJobsPage> ListJobs(ListJobsSpec spec);
  absl::StatusOr<JobRecord> CancelJob(const std::string& id);
  // Checks a watch: the job's snapshot to stream from, or OUT_OF_RANGE when after_seq
  // is past the newest event or its events were pruned.
  absl::StatusOr<JobRecord> PrepareWatch(WatchJobSpec spec);

  absl::StatusOr<std::vector<ModelInfo>> ListModels(int kind);
  absl::StatusOr<ModelInfo> GetModel(const std::string& name);
  absl::Status DeleteModel(const std::string& name);
  // Residency: LoadModel blocks while the model loads (call it off the RPC threads).
  absl::StatusOr<ModelInfo> LoadModel(const std::string& name, bool pin);
  absl::StatusOr<ModelInfo> UnloadModel(const std::string& name);
  ModelRepository::ScanResult RescanRepository();
  // A training snapshot (MODEL@STEP) kept as the adapted model `name`.
  absl::StatusOr<ModelInfo> PromoteSnapshot(const std::string& snapshot, const std::string& name);
  // A generator (base or adapted) as a file: rosinality's torch.save layout or
  // safetensors. NotFound, FailedPrecondition for other kinds or a failed model,
  // InvalidArgument for an unknown format.
  absl::StatusOr<ExportedModel> ExportModel(const std::string& name, ExportFormat format);
  // Imports: BeginImport checks the request (name free and valid, an importable kind, a
  // plain file name with a suffix the kind takes, total_bytes within
  // limits.max_import_mb) and returns where to write the first file's bytes; AddImportFile
  // does the same for a further file (CLIP and LPIPS have two) and returns its path;
  // FinishImport loads what was written as the kind says and publishes it atomically
  // (nothing is published when it does not load); AbortImport removes what was written.
  absl::StatusOr<ImportTicket> BeginImport(ImportSpec spec);
  absl::StatusOr<std::string> AddImportFile(ImportTicket* ticket, const std::string& filename, int64_t total_bytes);
  absl::StatusOr<ModelInfo> FinishImport(const ImportTicket& ticket);
  void AbortImport(const ImportTicket& ticket);

  absl::StatusOr<GeneratePlan> PlanGenerate(GenerateSpec spec);
  // Direction and global-direction edits.
  absl::StatusOr<EditPlan> PlanEdit(EditSpec spec);
  // UNAVAILABLE on a replica without the inference role.
  absl::Status CheckInferenceRole() const;
  // Latent-optimization edits.
  absl::StatusOr<OptimizePlan> PlanOptimize(EditSpec spec);

  const Limits& limits() const { return d_.limits; }

 private:
  absl::StatusOr<ModelInfo> PublishImport(const ImportTicket& ticket);
  template <typename Spec>
  absl::StatusOr<JobRecord> Submit(Spec spec, JobKind kind, const SubmitOptions& options);
  void Rejected(const absl::Status& s);

  const ServiceDeps d_;
};

}  // namespace ganserve::core::service

#endif  // GANSERVE_CORE_SERVICE_SERVICE_H_
