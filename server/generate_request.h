// GenerateSamples: request validation into a plan, and rendering of one batch.
#ifndef GANSERVE_SERVER_GENERATE_REQUEST_H_
#define GANSERVE_SERVER_GENERATE_REQUEST_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/models/stylegan2/generator.h"
#include "core/registry/model_repository.h"
#include "ganserve/v1/ganserve.pb.h"
#include "server/options.h"

namespace ganserve::server {

// A validated GenerateSamples request. Immutable once planned.
struct GeneratePlan {
  std::string model;
  std::shared_ptr<const core::stylegan2::Generator> generator;
  int total = 0;
  int batch_size = 8;
  // Seeds of each image (seed mode), or empty when the client sent latents.
  std::vector<uint32_t> seeds;
  core::stylegan2::LatentSpace space = core::stylegan2::LatentSpace::kZ;
  core::FloatTensor latents;  // client latents, [total, ...]
  std::vector<core::FloatTensor> noise_maps;  // an inversion's optimised noise (one image)
  float truncation = 1.0f;
  core::stylegan2::NoiseMode noise = core::stylegan2::NoiseMode::kConst;
  std::vector<uint32_t> mix_seeds;
  int inject_index = 0;
  v1::ImageFormat format = v1::IMAGE_FORMAT_PNG;
  int jpeg_quality = 90;
  bool return_latents = false;
};

// Checks every field against its documented range and the model, and resolves
// defaults. INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION / UNIMPLEMENTED with a
// message naming the field and what to send instead.
absl::StatusOr<GeneratePlan> PlanGenerate(const v1::GenerateSamplesRequest& req, const core::ModelRepository& repo,
                                          const ServerOptions& options);

// How rendered images go into a batch message.
struct EncodeOptions {
  v1::ImageFormat format = v1::IMAGE_FORMAT_PNG;
  int jpeg_quality = 90;
  bool return_latents = false;
};

// Appends result images (and their w+ when asked and present) to `batch`, indexed from
// `first_index`; `seeds[i]` (or -1) is reported per image.
absl::Status AppendImages(const core::stylegan2::GenerateResult& result, int first_index,
                          const std::vector<int64_t>& seeds, const EncodeOptions& options, v1::ImageBatch* batch);

// One batch of a stream: the generator call, and how its result becomes a message.
struct BatchWork {
  std::shared_ptr<const core::stylegan2::Generator> generator;
  core::stylegan2::GenerateParams params;
  std::string model;  // reported in the message
  int total = 0;      // images in the whole request
  int start = 0;      // index of the first image of this batch
  std::vector<int64_t> seeds;  // per image, -1 when not from a seed
  EncodeOptions encode;
  int channels_moved = 0;  // reported with global-direction edits
};

// The generator input for images [start, start + count) of the plan.
BatchWork PrepareGenerateBatch(const GeneratePlan& plan, int start, int count);

// Encodes a batch's rendered result into its stream message.
absl::StatusOr<v1::ImageBatch> EncodeBatch(const BatchWork& work, const core::stylegan2::GenerateResult& result);

}  // namespace ganserve::server

#endif  // GANSERVE_SERVER_GENERATE_REQUEST_H_
