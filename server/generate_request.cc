#include "server/generate_request.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include <filesystem>

#include "core/io/image_codec.h"
#include "server/invert_job.h"
#include "server/convert.h"

namespace ganserve::server {
namespace {

using core::stylegan2::LatentSpace;
using core::stylegan2::NoiseMode;

constexpr int64_t kMaxSeed = 0xffffffffLL;

absl::Status Invalid(const std::string& msg) { return absl::InvalidArgumentError(msg); }

// A bound on one image's message bytes, to keep each batch under the message limit.
int64_t ImageBytesBound(const GeneratePlan& p, int resolution, int64_t latent_floats) {
  const int64_t px = int64_t{resolution} * resolution;
  int64_t bytes = p.format == v1::IMAGE_FORMAT_RAW_FLOAT ? 12 * px : 3 * px + px / 8 + 4096;
  if (p.return_latents) bytes += latent_floats * 4 + 64;
  return bytes;
}

}  // namespace

absl::StatusOr<GeneratePlan> PlanGenerate(const v1::GenerateSamplesRequest& req, const core::ModelRepository& repo,
                                          const ServerOptions& opt) {
  GeneratePlan p;
  if (req.model().empty()) return Invalid("model is required: name a generator from ListModels");
  if (!core::IsValidModelName(req.model())) {
    return Invalid(absl::StrCat("model '", req.model().substr(0, 80), "' is not a valid model name"));
  }
  auto gen = repo.GetGenerator(req.model());
  if (!gen.ok()) return gen.status();
  p.model = req.model();
  p.generator = *gen;
  const auto& cfg = p.generator->config();

  const int sources = (req.seeds_size() > 0) + (req.count() != 0) + req.has_latents() + !req.inversion_id().empty();
  if (sources != 1) {
    return Invalid(absl::StrCat("give exactly one of seeds, count, latents or inversion_id (got ", sources, ")"));
  }
  const int max_images = opt.max_images_per_request;
  if (!req.inversion_id().empty()) {
    // The w+ of a finished InvertImage job, rendered through its model or one adapted
    // from it; its optimised noise maps too unless a noise mode is asked for.
    auto inv = LoadInversionFor(opt.data_dir, req.inversion_id(), repo, p.model,
                                req.noise() == v1::NOISE_MODE_UNSPECIFIED);
    if (!inv.ok()) return inv.status();
    p.space = LatentSpace::kWPlus;
    p.latents = std::move(inv->wplus);
    p.noise_maps = std::move(inv->noise_maps);
  }
  if (!req.inversion_id().empty()) {
    // handled above
  } else if (req.seeds_size() > 0) {
    if (req.seeds_size() > max_images) {
      return Invalid(absl::StrCat("seeds has ", req.seeds_size(), " entries; the limit is ", max_images));
    }
    for (int i = 0; i < req.seeds_size(); ++i) {
      if (req.seeds(i) < 0 || req.seeds(i) > kMaxSeed) {
        return Invalid(absl::StrCat("seeds[", i, "] = ", req.seeds(i), " is outside [0, 4294967295]"));
      }
      p.seeds.push_back(static_cast<uint32_t>(req.seeds(i)));
    }
  } else if (req.count() != 0) {
    if (req.count() < 1 || req.count() > max_images) {
      return Invalid(absl::StrCat("count must be in [1, ", max_images, "], got ", req.count()));
    }
    if (req.base_seed() < 0 || req.base_seed() + req.count() - 1 > kMaxSeed) {
      return Invalid("base_seed + count - 1 must stay within [0, 4294967295]");
    }
    for (int i = 0; i < req.count(); ++i) p.seeds.push_back(static_cast<uint32_t>(req.base_seed() + i));
  } else {
    const v1::Latent& l = req.latents();
    switch (l.space()) {
      case v1::LATENT_SPACE_Z: p.space = LatentSpace::kZ; break;
      case v1::LATENT_SPACE_W: p.space = LatentSpace::kW; break;
      case v1::LATENT_SPACE_W_PLUS: p.space = LatentSpace::kWPlus; break;
      case v1::LATENT_SPACE_S: p.space = LatentSpace::kS; break;
      default: return Invalid("latents.space must be Z, W, W_PLUS or S");
    }
    const int64_t row = p.space == LatentSpace::kWPlus ? int64_t{cfg.n_latent} * cfg.style_dim
                        : p.space == LatentSpace::kS  ? cfg.s_dim
                                                      : cfg.style_dim;
    auto t = FromProto(l.values(), "latents.values", row * max_images);
    if (!t.ok()) return t.status();
    std::vector<int64_t> want = p.space == LatentSpace::kWPlus
                                    ? std::vector<int64_t>{t->shape[0], cfg.n_latent, cfg.style_dim}
                                    : std::vector<int64_t>{t->shape[0], row};
    if (t->shape != want) {
      return Invalid(absl::StrCat("latents.values has shape ", core::ShapeString(t->shape), "; model '", p.model,
                                  "' needs ", p.space == LatentSpace::kWPlus ? "[N, n_latent, style_dim] = " : "",
                                  core::ShapeString(want)));
    }
    if (t->shape[0] > max_images) {
      return Invalid(absl::StrCat("latents has ", t->shape[0], " rows; the limit is ", max_images));
    }
    p.latents = std::move(*t);
  }
  p.total = p.seeds.empty() ? static_cast<int>(p.latents.shape[0]) : static_cast<int>(p.seeds.size());

  if (req.batch_size() < 0 || req.batch_size() > opt.max_batch_size) {
    return Invalid(absl::StrCat("batch_size must be in [1, ", opt.max_batch_size, "] (0 = 8), got ", req.batch_size()));
  }
  p.batch_size = req.batch_size() == 0 ? 8 : req.batch_size();

  if (req.has_truncation()) {
    if (!std::isfinite(req.truncation()) || req.truncation() < 0 || req.truncation() > 2) {
      return Invalid(absl::StrCat("truncation must be in [0, 2], got ", req.truncation()));
    }
    p.truncation = req.truncation();
  } else {
    auto info = repo.Get(p.model);
    p.truncation = info.ok() ? info->default_truncation : 1.0f;
  }
  switch (req.noise()) {
    case v1::NOISE_MODE_UNSPECIFIED:
    case v1::NOISE_MODE_CONST: p.noise = NoiseMode::kConst; break;
    case v1::NOISE_MODE_RANDOM: p.noise = NoiseMode::kRandom; break;
    case v1::NOISE_MODE_NONE: p.noise = NoiseMode::kNone; break;
    default: return Invalid("noise must be CONST, RANDOM or NONE");
  }
  if (req.mix_seeds_size() > 0) {
    if (p.seeds.empty()) return Invalid("mix_seeds needs seeds or count (mixing works on z drawn from seeds)");
    if (req.mix_seeds_size() != p.total) {
      return Invalid(absl::StrCat("mix_seeds needs one seed per image: ", p.total, " images, ", req.mix_seeds_size(),
                                  " mix seeds"));
    }
    for (int i = 0; i < req.mix_seeds_size(); ++i) {
      if (req.mix_seeds(i) < 0 || req.mix_seeds(i) > kMaxSeed) {
        return Invalid(absl::StrCat("mix_seeds[", i, "] is outside [0, 4294967295]"));
      }
      p.mix_seeds.push_back(static_cast<uint32_t>(req.mix_seeds(i)));
    }
    if (req.inject_index() < 1 || req.inject_index() >= cfg.n_latent) {
      return Invalid(absl::StrCat("inject_index must be in [1, ", cfg.n_latent - 1, "] for model '", p.model,
                                  "', got ", req.inject_index()));
    }
    p.inject_index = req.inject_index();
  } else if (req.inject_index() != 0) {
    return Invalid("inject_index is only meaningful with mix_seeds");
  }
  switch (req.format()) {
    case v1::IMAGE_FORMAT_UNSPECIFIED:
    case v1::IMAGE_FORMAT_PNG: p.format = v1::IMAGE_FORMAT_PNG; break;
    case v1::IMAGE_FORMAT_JPEG: p.format = v1::IMAGE_FORMAT_JPEG; break;
    case v1::IMAGE_FORMAT_RAW_FLOAT: p.format = v1::IMAGE_FORMAT_RAW_FLOAT; break;
    default: return Invalid("format must be PNG, JPEG or RAW_FLOAT");
  }
  if (req.jpeg_quality() < 0 || req.jpeg_quality() > 100) {
    return Invalid(absl::StrCat("jpeg_quality must be in [1, 100] (0 = 90), got ", req.jpeg_quality()));
  }
  p.jpeg_quality = req.jpeg_quality() == 0 ? 90 : req.jpeg_quality();
  p.return_latents = req.return_latents();

  const int64_t per_image = ImageBytesBound(p, cfg.resolution, int64_t{cfg.n_latent} * cfg.style_dim);
  const int64_t limit = int64_t{opt.max_message_mb} << 20;
  const int64_t fits = std::max<int64_t>(0, limit / per_image);
  if (fits < 1) {
    return Invalid(absl::StrCat("one ", cfg.resolution, " px image in this format exceeds the ", opt.max_message_mb,
                                " MiB message limit; use PNG or JPEG"));
  }
  if (p.batch_size > fits) {
    return Invalid(absl::StrCat("batch_size ", p.batch_size, " could exceed the ", opt.max_message_mb,
                                " MiB message limit at ", cfg.resolution, " px; use batch_size <= ", fits));
  }
  return p;
}

absl::Status AppendImages(const core::stylegan2::GenerateResult& result, int first_index,
                          const std::vector<int64_t>& seeds, const EncodeOptions& o, v1::ImageBatch* batch) {
  const int64_t n = result.images.shape[0], h = result.images.shape[2], w = result.images.shape[3];
  for (int64_t i = 0; i < n; ++i) {
    v1::Image* im = batch->add_images();
    im->set_index(first_index + static_cast<int>(i));
    im->set_width(static_cast<int>(w));
    im->set_height(static_cast<int>(h));
    im->set_seed(i < static_cast<int64_t>(seeds.size()) ? seeds[i] : -1);
    im->set_format(o.format);
    if (o.format == v1::IMAGE_FORMAT_RAW_FLOAT) {
      for (int64_t d : {int64_t{1}, int64_t{3}, h, w}) im->mutable_raw()->add_shape(d);
      const float* src = result.images.data.data() + i * 3 * h * w;
      im->mutable_raw()->mutable_data()->Add(src, src + 3 * h * w);
    } else {
      auto rgb = core::FloatToRgb8(result.images, i);
      if (!rgb.ok()) return rgb.status();
      auto bytes = o.format == v1::IMAGE_FORMAT_JPEG ? core::EncodeJpeg(*rgb, o.jpeg_quality) : core::EncodePng(*rgb);
      if (!bytes.ok()) return bytes.status();
      im->set_data(std::move(*bytes));
    }
    if (o.return_latents && result.wplus.shape.size() == 3) {
      v1::Latent* l = im->mutable_latent();
      l->set_space(v1::LATENT_SPACE_W_PLUS);
      const int64_t rows = result.wplus.shape[1], sd = result.wplus.shape[2];
      for (int64_t d : {int64_t{1}, rows, sd}) l->mutable_values()->add_shape(d);
      const float* src = result.wplus.data.data() + i * rows * sd;
      l->mutable_values()->mutable_data()->Add(src, src + rows * sd);
    }
  }
  return absl::OkStatus();
}

BatchWork PrepareGenerateBatch(const GeneratePlan& p, int start, int count) {
  const auto& cfg = p.generator->config();
  BatchWork work;
  work.generator = p.generator;
  work.model = p.model;
  work.total = p.total;
  work.start = start;
  work.encode = {p.format, p.jpeg_quality, p.return_latents};
  core::stylegan2::GenerateParams& gp = work.params;
  gp.truncation = p.truncation;
  gp.noise = p.noise;
  gp.return_wplus = p.return_latents;
  if (!p.seeds.empty()) {
    gp.space = LatentSpace::kZ;
    gp.latents.shape = {count, cfg.style_dim};
    for (int i = 0; i < count; ++i) {
      auto z = core::stylegan2::SeedToZ(p.seeds[start + i], cfg.style_dim);
      gp.latents.data.insert(gp.latents.data.end(), z.begin(), z.end());
      gp.noise_seeds.push_back(p.seeds[start + i]);
    }
    if (!p.mix_seeds.empty()) {
      core::FloatTensor mix;
      mix.shape = gp.latents.shape;
      for (int i = 0; i < count; ++i) {
        auto z = core::stylegan2::SeedToZ(p.mix_seeds[start + i], cfg.style_dim);
        mix.data.insert(mix.data.end(), z.begin(), z.end());
      }
      gp.mix_latents = std::move(mix);
      gp.inject_index = p.inject_index;
    }
  } else {
    gp.space = p.space;
    gp.latents.shape = p.latents.shape;
    gp.latents.shape[0] = count;
    const int64_t row = p.latents.numel() / p.latents.shape[0];
    gp.latents.data.assign(p.latents.data.begin() + start * row, p.latents.data.begin() + (start + count) * row);
    for (int i = 0; i < count; ++i) gp.noise_seeds.push_back(static_cast<uint32_t>(start + i));
    gp.noise_maps = p.noise_maps;
  }
  for (int i = 0; i < count; ++i) {
    work.seeds.push_back(p.seeds.empty() ? -1 : static_cast<int64_t>(p.seeds[start + i]));
  }
  return work;
}

absl::StatusOr<v1::ImageBatch> EncodeBatch(const BatchWork& work, const core::stylegan2::GenerateResult& result) {
  v1::ImageBatch batch;
  batch.set_model(work.model);
  batch.set_total(work.total);
  batch.set_channels_moved(work.channels_moved);
  batch.set_done(work.start + static_cast<int>(result.images.shape.empty() ? 0 : result.images.shape[0]));
  absl::Status st = AppendImages(result, work.start, work.seeds, work.encode, &batch);
  if (!st.ok()) return st;
  return batch;
}

}  // namespace ganserve::server
