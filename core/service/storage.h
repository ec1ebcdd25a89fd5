// Where the service keeps what its jobs produce, written once:
//   <data_dir>/inversions/<inv-id>.safetensors                 InvertImage results
//   <data_dir>/inversions/<inv-id>.pinned                      kept past the job retention
//   <repository>/<model>/global_directions/<clip>.safetensors  global-direction statistics
//                                                              (beside the generator they
//                                                              measure: deleting or replacing
//                                                              the model drops them too)
// Adapted models are published by ModelRepository::Publish.
//
// With shared files (ModelRepository::shared_files, README "Scaling out") each of these
// is also a set there, written by the job that makes it and fetched by a replica that
// lacks it on first use:
//   inversions/<inv-id>                 the inversion and its pin marker
//   global_directions/<model>/<clip>    the statistics file
#ifndef GANSERVE_CORE_SERVICE_STORAGE_H_
#define GANSERVE_CORE_SERVICE_STORAGE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/edit/global_directions.h"
#include "core/jobs/retention.h"
#include "core/registry/model_repository.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::service {

// The CLIP model of a StyleCLIP operation: `requested`, or when empty the repository's
// StyleCLIP default (ModelRepository::SetStyleClipDefault) if it is installed.
// NotFound / FailedPrecondition saying what to install or name.
absl::StatusOr<std::string> ResolveClipModel(const ModelRepository& repo, const std::string& requested);

std::string GlobalStatsPath(const ModelRepository& repo, const std::string& model, const std::string& clip);
// Stores the statistics file in the shared files (OK without them).
absl::Status ShareGlobalStats(const ModelRepository& repo, const std::string& model, const std::string& clip);
// Whether the statistics exist, on this replica or (fetched now) in the shared files.
absl::StatusOr<bool> HaveGlobalStats(const ModelRepository& repo, const std::string& model, const std::string& clip);

// Loaded statistics by file, reloaded when the file changes. Thread-safe.
class GlobalStatsCache {
 public:
  // FailedPrecondition naming the job to run when there are none.
  absl::StatusOr<std::shared_ptr<const edit::GlobalStats>> Get(const ModelRepository& repo, const std::string& model,
                                                               const std::string& clip);

 private:
  struct Entry {
    std::string stamp;  // size and mtime of the file it came from
    std::shared_ptr<const edit::GlobalStats> stats;
  };
  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

// The inversions folder under a data directory.
std::string InversionsDir(const std::string& data_dir);
// The id of the inversion a job produces ("inv-" + the job id's hex part).
std::string InversionIdForJob(const std::string& job_id);
// Path of a stored inversion; InvalidArgument for ids that are not inversion ids.
absl::StatusOr<std::string> InversionPath(const std::string& data_dir, const std::string& id);

// Whether an inversion is kept past the job retention (InvertImageRequest.pin): a marker
// file <inv-id>.pinned beside it.
std::string InversionPinPath(const std::string& inversion_path);

// Stores the inversion (and its pin marker) in the shared files (OK without them).
absl::Status ShareInversion(const ModelRepository& repo, const std::string& data_dir, const std::string& id);

// Unpinned inversions expire with their job (their shared copy too).
class StoredInversions : public JobArtifacts {
 public:
  StoredInversions(std::string data_dir, SharedFiles* shared) : data_dir_(std::move(data_dir)), shared_(shared) {}
  const char* what() const override { return "inversions"; }
  std::vector<std::string> JobsWithArtifacts() override;
  int64_t ExpireArtifacts(const std::string& job_id) override;

 private:
  const std::string data_dir_;
  SharedFiles* const shared_;
};

// A stored inversion ready to render through `model` (the model it was made with, or
// one adapted from it): its w+ [1, n_latent, style_dim] and, when `with_noise`, its
// optimised noise maps. InvalidArgument / NotFound / FailedPrecondition with reasons.
struct StoredInversion {
  FloatTensor wplus;
  std::vector<FloatTensor> noise_maps;
};
absl::StatusOr<StoredInversion> LoadInversionFor(const std::string& data_dir, const std::string& id,
                                                 const ModelRepository& repo, const std::string& model,
                                                 bool with_noise);

}  // namespace ganserve::core::service

#endif  // GANSERVE_CORE_SERVICE_STORAGE_H_
