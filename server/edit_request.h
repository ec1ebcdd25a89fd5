// Edit: latents from seeds, the client or an inversion, moved along a direction in w,
// w+ or S space by each requested strength, rendered through the model or a model that
// shares its latent space (an adapted one). StyleCLIP's global directions and latent
// optimization are not built yet and answer UNIMPLEMENTED.
#ifndef GANSERVE_SERVER_EDIT_REQUEST_H_
#define GANSERVE_SERVER_EDIT_REQUEST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/models/stylegan2/generator.h"
#include "core/registry/model_repository.h"
#include "ganserve/v1/ganserve.pb.h"
#include "core/models/clip/text_embedding_cache.h"
#include "core/edit/latent_optimizer.h"
#include "server/edit_stats_job.h"
#include "server/generate_request.h"
#include "server/options.h"

namespace ganserve::server {

struct EditPlan {
  std::string render_model;
  std::shared_ptr<const core::stylegan2::Generator> render;
  // Starting points, already in the edit space: [N, n_latent, sd] (w/w+) or [N, s_dim] (S).
  core::FloatTensor base;
  core::stylegan2::LatentSpace space = core::stylegan2::LatentSpace::kWPlus;
  core::FloatTensor direction;  // one row of the edit space, broadcast over inputs
  std::vector<float> strengths;
  std::vector<int64_t> seeds;   // per input, -1 when not from a seed
  int total = 0;                // inputs x strengths; image k = input k / S, strength k % S
  int batch_size = 8;
  EncodeOptions encode;
  core::stylegan2::NoiseMode noise = core::stylegan2::NoiseMode::kConst;
  std::vector<core::FloatTensor> noise_maps;  // an inversion's optimised noise, when editing one
  int channels_moved = 0;                     // global directions: S channels the edit moves
};

// An edit's starting points (see ResolveEditInputs).
struct EditInputs {
  core::stylegan2::GenerateResult start;  // wplus [N, n_latent, sd], s [N, s_dim] when asked
  std::vector<int64_t> seeds;             // per input, -1 when not from a seed
  std::vector<core::FloatTensor> noise_maps;
};

// What global-direction edits need besides the repository. Not owned.
struct EditResources {
  core::clip::TextEmbeddingCache* text_cache = nullptr;
  GlobalStatsCache* stats = nullptr;
};

absl::StatusOr<EditPlan> PlanEdit(const v1::EditRequest& req, const core::ModelRepository& repo,
                                  const ServerOptions& options, const EditResources& resources);
// StyleCLIP latent optimization: each input's w+ optimised on the device executor,
// then rendered (server/gan_service.cc streams progress and the results).
inline constexpr int kMaxOptimizedInputs = 4;
struct OptimizePlan {
  std::string render_model;
  std::shared_ptr<const core::stylegan2::Generator> render;  // optimised through and rendered by
  std::shared_ptr<const core::clip::ClipModel> clip;
  core::FloatTensor starts;  // [N, n_latent, sd]
  std::vector<int64_t> seeds;
  std::vector<core::FloatTensor> noise_maps;
  core::FloatTensor text_embedding;  // [embed_dim]
  core::edit::LatentOptimizationOptions options;
  int progress_every = 10;
  EncodeOptions encode;
};
absl::StatusOr<OptimizePlan> PlanOptimize(const v1::EditRequest& req, const core::ModelRepository& repo,
                                          const ServerOptions& options, const EditResources& resources);

// The generator input for images [start, start + count) of the plan.
BatchWork PrepareEditBatch(const EditPlan& plan, int start, int count);

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_EDIT_REQUEST_H_
