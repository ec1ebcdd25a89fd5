// StyleCLIP global directions (Patashnik et al. 2021, section 6), as the official code
// computes them (TF global_directions/, which made the shipped statistics, and
// global_torch/), generalised to any generator resolution; docs/faithfulness.md lists
// the differences:
//
//  * S-space statistics: per-channel mean and std of S over `num_samples` z from one
//    NumPy stream (seed 5), mapped with truncation 0.7 toward the mean latent. By default
//    every w+ row is truncated, as the TF GetCode.py that made the shipped FFHQ
//    statistics does; `truncation_cutoff` 8 gives global_torch's mapping (rows 0..7 only).
//  * Channel relevance (the reference's fs3): for every channel c of the non-ToRGB layers
//    up to 128 px, the first `num_images` samples with s_c set to mean_c -/+ 5 std_c are
//    rendered, quantised to 8 bits, CLIP-preprocessed (PIL bicubic, centre crop) and
//    embedded; the unit embeddings' differences are normalised, averaged over the images
//    and normalised again. The -/+ renders of an image share every layer before the
//    channel's: those run once per pair. `render_resolution` may stop the renders at a
//    partial image (e.g. 256 px of a 1024 px model; docs/benchmarks.md measures how the
//    relevance rows agree). By default the clamping accumulates as in the official
//    SingleChannel.py (TF and torch), whose shallow list copy writes each clamp into the
//    shared codes: channel c is measured with every earlier channel (in layer, then
//    channel order) held at its mean. kIndependent moves only the measured channel, as
//    the paper describes it.
//  * An edit: the text direction dt (79 templates per text, unit embeddings averaged
//    and normalised; dt = unit(target - neutral)), relevance r = fs3 @ dt, channels with
//    |r| < beta dropped, r / max|r| times the channel std gives delta_s, and the
//    image is rendered from s + alpha * delta_s.
//
// Torch-free API over the public generator and CLIP interfaces (device-agnostic).
#ifndef GANSERVE_CORE_EDIT_GLOBAL_DIRECTIONS_H_
#define GANSERVE_CORE_EDIT_GLOBAL_DIRECTIONS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/models/clip/clip_model.h"
#include "core/models/stylegan2/generator.h"
#include "core/util/np_random.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::edit {

// How the relevance pass holds the other channels (see above).
enum class ChannelClamping { kCumulative, kIndependent };

struct GlobalStatsOptions {
  int num_samples = 100000;  // S mean/std samples (reference: 100,000)
  int num_images = 100;      // images per channel for relevance (reference: 100)
  float alpha = 5.0f;        // channel push in std units (reference: +-5)
  float truncation = 0.7f;   // of the sampled w (reference: 0.7)
  // w+ rows [0, cutoff) are truncated; nullopt = every row (TF GetCode.py, the shipped
  // statistics); 8 = global_torch's truncation_cutoff.
  std::optional<int> truncation_cutoff;
  ChannelClamping clamping = ChannelClamping::kCumulative;
  uint32_t seed = 5;         // NumPy seed of the z stream (reference: 5)
  int max_resolution = 128;  // relevance covers conv layers up to this size (reference: 128)
  // Measure every k-th of those channels only (estimates and agreement checks; the
  // reference measures all, and so do jobs).
  int channel_stride = 1;
  // Size the relevance renders stop at (0 = the model's resolution; else a power of two
  // from the largest measured layer's size up to the model's): the skip architecture's
  // partial image there is what reaches CLIP's 224 px input. The reference renders
  // full images.
  int render_resolution = 0;
  int batch_size = 16;      // renders per step (even: -/+ pairs)
  int sample_batch = 1000;  // mapped samples per statistics step
};

struct GlobalStats {
  FloatTensor s_mean, s_std;      // [s_dim]
  std::vector<int64_t> channels;  // flat S index of each relevance row
  FloatTensor relevance;          // [channels, clip_embed_dim], unit rows
  int num_samples = 0, num_images = 0;
  float alpha = 0;
  // How they were made ("cumulative" / "independent"; -1 = every row truncated);
  // empty / -1 in files written before these were recorded.
  std::string clamping;
  int truncation_cutoff = -1;
  int render_resolution = 0;  // 0 = full images (and files written before it was recorded)
};

const char* ChannelClampingName(ChannelClamping c);

// The S channels that get relevance rows: every channel of the non-ToRGB layers whose
// output is at most `max_resolution` px (all 5376 channels up to 128 px at 1024 px).
std::vector<int64_t> RelevanceChannels(const stylegan2::GeneratorConfig& config, int max_resolution);

// InvalidArgument unless `options.render_resolution` is 0 or a power of two from the
// largest measured layer's size (min(max_resolution, resolution)) to the model's.
absl::Status CheckRenderResolution(const stylegan2::GeneratorConfig& config, const GlobalStatsOptions& options);

// Computes GlobalStats in small steps so that a job can interleave them with
// interactive work, checkpoint and resume. Not thread-safe (one job owns it).
class GlobalStatsBuilder {
 public:
  // InvalidArgument for options out of range.
  static absl::StatusOr<std::unique_ptr<GlobalStatsBuilder>> Create(
      std::shared_ptr<const stylegan2::Generator> generator, std::shared_ptr<const clip::ClipModel> clip,
      GlobalStatsOptions options);

  // Statistics batches, then ceil(2 * num_images / batch_size) render steps per channel.
  int64_t total_steps() const;
  static int64_t TotalSteps(const stylegan2::GeneratorConfig& config, const GlobalStatsOptions& options);
  int64_t step() const { return step_; }
  // One unit of work. Returns progress terms ("channels_done", "channel_norm": the norm
  // of the last finished channel's averaged difference before normalisation).
  absl::StatusOr<std::map<std::string, float>> Step();
  // The last rendered batch (pairs of -/+ images), or a few samples before any.
  absl::StatusOr<FloatTensor> Preview() const;
  absl::Status SaveCheckpoint(const std::string& path) const;
  absl::Status RestoreCheckpoint(const std::string& path);
  // FailedPrecondition until every step ran.
  absl::StatusOr<GlobalStats> Result() const;

 private:
  GlobalStatsBuilder(std::shared_ptr<const stylegan2::Generator> g, std::shared_ptr<const clip::ClipModel> c,
                     GlobalStatsOptions o);
  absl::Status SampleStep();
  absl::StatusOr<float> RelevanceStep();
  absl::StatusOr<FloatTensor> EmbedImages(const FloatTensor& images) const;
  std::string OptionsKey() const;
  int64_t SampleSteps() const;
  int64_t StepsPerChannel() const;

  std::shared_ptr<const stylegan2::Generator> gen_;
  std::shared_ptr<const clip::ClipModel> clip_;
  GlobalStatsOptions opt_;
  std::vector<int64_t> channels_;
  int64_t s_dim_ = 0;
  int64_t embed_dim_ = 0;
  int64_t step_ = 0;
  // Statistics phase.
  NumpyRandomState rng_;
  int64_t drawn_ = 0;
  std::vector<double> sum_, sumsq_;
  FloatTensor first_s_;  // [num_images, s_dim]
  FloatTensor mean_, std_;
  // Relevance phase.
  std::vector<double> pending_;   // running sum of the current channel's unit differences
  std::vector<float> relevance_;  // finished rows
  FloatTensor last_images_;
};

// Stores / loads statistics as safetensors (float32; channel indices as float32, exact
// below 2^24). InvalidArgument for files that are not global-direction statistics.
absl::Status SaveGlobalStats(const std::string& path, const GlobalStats& stats, const std::string& model,
                             const std::string& clip_model);
absl::StatusOr<GlobalStats> LoadGlobalStats(const std::string& path);

// StyleCLIP's text direction from the raw template embeddings of the two texts
// ([T, D] each): unit(mean(unit rows of target)) - unit(mean(unit rows of neutral)),
// normalised. [D].
FloatTensor TextDirection(const FloatTensor& neutral_templates, const FloatTensor& target_templates);

struct GlobalDirection {
  FloatTensor delta_s;      // [1, s_dim]
  int channels_moved = 0;   // channels with |relevance| >= beta
  float max_relevance = 0;  // max |relevance| over all channels, before the threshold
};

// The S-space edit direction for text direction `dt` ([D]) and threshold `beta`.
// InvalidArgument when dt does not match the statistics' CLIP width.
absl::StatusOr<GlobalDirection> MakeGlobalDirection(const GlobalStats& stats, const FloatTensor& dt, float beta);

}  // namespace ganserve::core::edit

#endif  // GANSERVE_CORE_EDIT_GLOBAL_DIRECTIONS_H_
