#include "core/service/render.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/adapt/text_templates.h"
#include "core/edit/global_directions.h"
#include "core/io/image_codec.h"
#include "core/util/status_macros.h"

namespace ganserve::core::service {
namespace {

using stylegan2::GenerateParams;
using stylegan2::GenerateResult;

absl::Status Invalid(const std::string& m) { return absl::InvalidArgumentError(m); }

stylegan2::LatentSpace ToModelSpace(LatentSpace s) {
  switch (s) {
    case LatentSpace::kW: return stylegan2::LatentSpace::kW;
    case LatentSpace::kWPlus: return stylegan2::LatentSpace::kWPlus;
    case LatentSpace::kS: return stylegan2::LatentSpace::kS;
    default: return stylegan2::LatentSpace::kZ;
  }
}

stylegan2::NoiseMode ToModelNoise(NoiseMode n) {
  switch (n) {
    case NoiseMode::kRandom: return stylegan2::NoiseMode::kRandom;
    case NoiseMode::kNone: return stylegan2::NoiseMode::kNone;
    default: return stylegan2::NoiseMode::kConst;
  }
}

// Truncation: the spec's, else the model's default.
float TruncationOf(const std::optional<float>& psi, const ModelRepository& repo, const std::string& model) {
  if (psi.has_value()) return *psi;
  auto info = repo.Get(model);
  return info.ok() ? info->default_truncation : 1.0f;
}

// Repeats each row of [N, D] w into [N, n_latent, D].
FloatTensor Broadcast(const FloatTensor& w, int n_latent) {
  FloatTensor out;
  const int64_t n = w.shape[0], d = w.shape[1];
  out.shape = {n, n_latent, d};
  for (int64_t i = 0; i < n; ++i) {
    for (int r = 0; r < n_latent; ++r) {
      out.data.insert(out.data.end(), w.data.begin() + i * d, w.data.begin() + (i + 1) * d);
    }
  }
  return out;
}

// The edit's generator (its latent space) and the one that renders (it, or a model
// sharing its latent space, e.g. adapted from it).
struct EditModels {
  std::shared_ptr<const stylegan2::Generator> gen, render;
  std::string render_model;
};
absl::StatusOr<EditModels> ResolveEditModels(const EditSpec& spec, const ModelRepository& repo) {
  EditModels m;
  ASSIGN_OR_RETURN(m.gen, repo.GetGenerator(spec.model));
  m.render_model = spec.render_model;
  ASSIGN_OR_RETURN(m.render, repo.GetGenerator(m.render_model));
  const auto& cfg = m.gen->config();
  const auto& rc = m.render->config();
  if (rc.style_dim != cfg.style_dim || rc.n_latent != cfg.n_latent || rc.s_dim != cfg.s_dim) {
    return absl::FailedPreconditionError(
        absl::StrCat("render_model '", m.render_model, "' does not share model '", spec.model, "''s latent space"));
  }
  return m;
}

// The mapper an edit names, checked against the edit's model: it must have been trained
// on that generator (render_model may be one adapted from it).
absl::StatusOr<std::shared_ptr<const edit::LatentMapper>> MapperFor(const EditSpec& spec, const ModelRepository& repo,
                                                                    const stylegan2::GeneratorConfig& cfg) {
  const std::string& name = spec.mapper->mapper;
  ASSIGN_OR_RETURN(ModelInfo info, repo.Get(name));
  if (info.kind != ModelKind::kMapper) {
    return absl::FailedPreconditionError(absl::StrCat("model '", name, "' is a ", ModelKindName(info.kind),
                                                      ", not a latent mapper (ListModels kind MAPPER)"));
  }
  if (info.base_model != spec.model) {
    return absl::FailedPreconditionError(absl::StrCat("mapper '", name, "' was trained on model '", info.base_model,
                                                      "', not '", spec.model, "': send model '", info.base_model,
                                                      "' (and render_model for a model adapted from it)"));
  }
  ASSIGN_OR_RETURN(auto m, repo.GetMapper(name));
  if (m->config().dim != cfg.style_dim) {
    return absl::FailedPreconditionError(absl::StrCat("mapper '", name, "' works on ", m->config().dim,
                                                      "-wide latents; model '", spec.model, "' has ", cfg.style_dim));
  }
  return m;
}

// An edit's starting points: seeds, caller latents or an inversion, mapped (with the
// spec's or the model's truncation) to w+ and, when asked, S.
struct EditInputs {
  GenerateResult start;        // wplus [N, n_latent, sd], s [N, s_dim] when asked
  std::vector<int64_t> seeds;  // per input, -1 when not from a seed
  std::vector<FloatTensor> noise_maps;
};
absl::StatusOr<EditInputs> ResolveEditInputs(const EditSpec& spec, const ModelRepository& repo,
                                             const std::string& data_dir, const stylegan2::Generator& gen,
                                             int max_inputs, bool with_s) {
  const auto& cfg = gen.config();
  EditInputs out;
  const float psi = TruncationOf(spec.truncation, repo, spec.model);
  GenerateParams gp;
  gp.render_images = false;
  gp.return_wplus = true;
  gp.return_s = with_s;
  if (!spec.seeds.empty()) {
    gp.latents.shape = {static_cast<int64_t>(spec.seeds.size()), cfg.style_dim};
    for (int64_t seed : spec.seeds) {
      auto z = stylegan2::SeedToZ(static_cast<uint32_t>(seed), cfg.style_dim);
      gp.latents.data.insert(gp.latents.data.end(), z.begin(), z.end());
      out.seeds.push_back(seed);
    }
    gp.truncation = psi;
  } else if (spec.latents.has_value()) {
    RETURN_IF_ERROR(
        CheckLatentTensor(spec.latents->values, "latents.values", int64_t{max_inputs} * cfg.n_latent * cfg.style_dim));
    gp.space = ToModelSpace(spec.latents->space);
    if (gp.space == stylegan2::LatentSpace::kZ) gp.truncation = psi;
    gp.latents = spec.latents->values;
    out.seeds.assign(static_cast<size_t>(gp.latents.shape[0]), -1);
  } else {
    ASSIGN_OR_RETURN(StoredInversion inv, LoadInversionFor(data_dir, spec.inversion_id, repo, spec.model,
                                                           spec.noise == NoiseMode::kUnspecified));
    gp.space = stylegan2::LatentSpace::kWPlus;
    gp.latents = std::move(inv.wplus);
    out.noise_maps = std::move(inv.noise_maps);
    out.seeds = {-1};
  }
  ASSIGN_OR_RETURN(out.start, gen.Generate(gp));  // shape errors surface here with their message
  return out;
}

// Direction arithmetic: the caller's direction as one row of the edit space.
absl::Status SetDirection(const DirectionSpec& d, const stylegan2::GeneratorConfig& cfg, const GenerateResult& start,
                          EditPlan* p) {
  const FloatTensor& dir = d.direction.values;
  RETURN_IF_ERROR(
      CheckLatentTensor(dir, "direction.direction.values", cfg.s_dim + int64_t{cfg.n_latent} * cfg.style_dim));
  switch (d.direction.space) {
    case LatentSpace::kW:
      if (dir.numel() != cfg.style_dim) return Invalid(absl::StrCat("a w direction has ", cfg.style_dim, " values"));
      p->space = stylegan2::LatentSpace::kWPlus;
      p->base = start.wplus;
      p->direction = Broadcast(FloatTensor{{1, cfg.style_dim}, dir.data}, cfg.n_latent);
      break;
    case LatentSpace::kWPlus:
      if (dir.numel() != int64_t{cfg.n_latent} * cfg.style_dim) {
        return Invalid(absl::StrCat("a w+ direction has ", cfg.n_latent, " x ", cfg.style_dim, " values"));
      }
      p->space = stylegan2::LatentSpace::kWPlus;
      p->base = start.wplus;
      p->direction = FloatTensor{{1, cfg.n_latent, cfg.style_dim}, dir.data};
      break;
    default:  // S; Validate admits nothing else
      if (dir.numel() != cfg.s_dim) return Invalid(absl::StrCat("an S direction has ", cfg.s_dim, " values"));
      p->space = stylegan2::LatentSpace::kS;
      p->base = start.s;
      p->direction = FloatTensor{{1, cfg.s_dim}, dir.data};
  }
  return absl::OkStatus();
}

// Global directions: the S-space direction for the spec's texts and beta.
absl::StatusOr<edit::GlobalDirection> GlobalDirectionFor(const EditSpec& spec, const ModelRepository& repo,
                                                         const stylegan2::GeneratorConfig& cfg,
                                                         const EditResources& res) {
  const GlobalDirectionSpec& g = *spec.global_direction;
  ASSIGN_OR_RETURN(std::string clip_name, ResolveClipModel(repo, g.clip_model));
  ASSIGN_OR_RETURN(auto stats, res.stats->Get(repo, spec.model, clip_name));
  if (stats->s_mean.numel() != cfg.s_dim) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the global-direction statistics of model '", spec.model, "' do not fit it (", stats->s_mean.numel(),
        " S channels, the model has ", cfg.s_dim, "); run PrepareGlobalDirections with recompute"));
  }
  ASSIGN_OR_RETURN(ModelRepository::Clip clip, repo.GetClip(clip_name));
  auto embed = [&](const std::string& text) {
    return res.text_cache->Encode(clip_name, *clip.model, *clip.tokenizer, adapt::ApplyTemplates(text));
  };
  ASSIGN_OR_RETURN(FloatTensor neutral, embed(g.neutral_text));
  ASSIGN_OR_RETURN(FloatTensor target, embed(g.target_text));
  ASSIGN_OR_RETURN(edit::GlobalDirection dir,
                   edit::MakeGlobalDirection(*stats, edit::TextDirection(neutral, target), g.beta));
  if (dir.channels_moved == 0) {
    return Invalid(absl::StrCat("beta ", g.beta, " keeps no channel: the largest relevance of this text direction is ",
                                dir.max_relevance, "; use a beta below that"));
  }
  return dir;
}

// Input `i` of [N, n_latent, sd] starting points, as [1, n_latent, sd].
FloatTensor InputRow(const FloatTensor& starts, int64_t i) {
  const int64_t row = starts.numel() / starts.shape[0];
  return FloatTensor{{1, starts.shape[1], starts.shape[2]},
                     std::vector<float>(starts.data.begin() + i * row, starts.data.begin() + (i + 1) * row)};
}

}  // namespace

absl::StatusOr<ImageBatchResult> EncodeBatch(const BatchWork& work, const GenerateResult& result) {
  ImageBatchResult batch;
  batch.model = work.model;
  batch.total = work.total;
  batch.channels_moved = work.channels_moved;
  const int64_t n = result.images.shape.empty() ? 0 : result.images.shape[0];
  batch.done = work.start + static_cast<int>(n);
  if (n == 0) return batch;
  const int64_t h = result.images.shape[2], w = result.images.shape[3];
  const EncodeOptions& o = work.encode;
  for (int64_t i = 0; i < n; ++i) {
    RenderedImage im;
    im.index = work.start + static_cast<int>(i);
    im.width = static_cast<int>(w);
    im.height = static_cast<int>(h);
    im.seed = i < static_cast<int64_t>(work.seeds.size()) ? work.seeds[i] : -1;
    im.format = o.format;
    if (o.format == ImageFormat::kRawFloat) {
      const float* src = result.images.data.data() + i * 3 * h * w;
      im.raw = FloatTensor{{1, 3, h, w}, std::vector<float>(src, src + 3 * h * w)};
    } else {
      ASSIGN_OR_RETURN(Rgb8Image rgb, FloatToRgb8(result.images, i));
      if (o.format == ImageFormat::kJpeg) {
        ASSIGN_OR_RETURN(im.data, EncodeJpeg(rgb, o.jpeg_quality));
      } else {
        ASSIGN_OR_RETURN(im.data, EncodePng(rgb));
      }
    }
    if (o.return_latents && result.wplus.shape.size() == 3) {
      const int64_t rows = result.wplus.shape[1], sd = result.wplus.shape[2];
      const float* src = result.wplus.data.data() + i * rows * sd;
      im.latent = FloatTensor{{1, rows, sd}, std::vector<float>(src, src + rows * sd)};
    }
    batch.images.push_back(std::move(im));
  }
  return batch;
}

absl::StatusOr<GeneratePlan> PlanGenerate(GenerateSpec spec, const ModelRepository& repo, const Limits& limits,
                                          const std::string& data_dir) {
  RETURN_IF_ERROR(spec.Validate(repo, limits));
  GeneratePlan p;
  p.model = spec.model;
  ASSIGN_OR_RETURN(p.generator, repo.GetGenerator(spec.model));
  if (!spec.inversion_id.empty()) {
    // The w+ of a finished InvertImage job, rendered through its model or one adapted
    // from it; its optimised noise maps too unless a noise mode is asked for.
    ASSIGN_OR_RETURN(StoredInversion inv, LoadInversionFor(data_dir, spec.inversion_id, repo, p.model,
                                                           spec.noise == NoiseMode::kUnspecified));
    p.space = stylegan2::LatentSpace::kWPlus;
    p.latents = std::move(inv.wplus);
    p.noise_maps = std::move(inv.noise_maps);
  } else if (!spec.seeds.empty()) {
    for (int64_t s : spec.seeds) p.seeds.push_back(static_cast<uint32_t>(s));
  } else if (spec.count != 0) {
    for (int i = 0; i < spec.count; ++i) p.seeds.push_back(static_cast<uint32_t>(spec.base_seed + i));
  } else {
    p.space = ToModelSpace(spec.latents->space);
    p.latents = std::move(spec.latents->values);
  }
  p.total = p.seeds.empty() ? static_cast<int>(p.latents.shape[0]) : static_cast<int>(p.seeds.size());
  p.batch_size = spec.batch_size;
  p.truncation = TruncationOf(spec.truncation, repo, spec.model);
  p.noise = ToModelNoise(spec.noise);
  for (int64_t s : spec.mix_seeds) p.mix_seeds.push_back(static_cast<uint32_t>(s));
  p.inject_index = spec.inject_index;
  if (p.space == stylegan2::LatentSpace::kZ) {
    auto info = repo.Get(spec.model);
    p.mean_rows_from = static_cast<int>(spec.mean_rows_from.value_or(info.ok() ? info->mean_rows_from : 0));
  }
  p.encode = {spec.format, static_cast<int>(spec.jpeg_quality), spec.return_latents};
  return p;
}

BatchWork PrepareGenerateBatch(const GeneratePlan& p, int start, int count) {
  const auto& cfg = p.generator->config();
  BatchWork work;
  work.generator = p.generator;
  work.model = p.model;
  work.total = p.total;
  work.start = start;
  work.encode = p.encode;
  GenerateParams& gp = work.params;
  gp.truncation = p.truncation;
  gp.mean_rows_from = p.mean_rows_from;
  gp.noise = p.noise;
  gp.return_wplus = p.encode.return_latents;
  if (!p.seeds.empty()) {
    gp.space = stylegan2::LatentSpace::kZ;
    gp.latents.shape = {count, cfg.style_dim};
    for (int i = 0; i < count; ++i) {
      auto z = stylegan2::SeedToZ(p.seeds[start + i], cfg.style_dim);
      gp.latents.data.insert(gp.latents.data.end(), z.begin(), z.end());
      gp.noise_seeds.push_back(p.seeds[start + i]);
    }
    if (!p.mix_seeds.empty()) {
      FloatTensor mix;
      mix.shape = gp.latents.shape;
      for (int i = 0; i < count; ++i) {
        auto z = stylegan2::SeedToZ(p.mix_seeds[start + i], cfg.style_dim);
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

absl::StatusOr<EditPlan> PlanEdit(EditSpec spec, const ModelRepository& repo, const Limits& limits,
                                  const std::string& data_dir, const EditResources& res) {
  RETURN_IF_ERROR(spec.Validate(repo, limits));
  if (spec.latent_optimization.has_value()) return Invalid("latent_optimization edits are planned by PlanOptimize");
  const bool global = spec.global_direction.has_value();
  if (global && (res.stats == nullptr || res.text_cache == nullptr)) {
    return absl::UnimplementedError("global directions are not available on this server");
  }
  EditPlan p;
  ASSIGN_OR_RETURN(EditModels models, ResolveEditModels(spec, repo));
  const auto& cfg = models.gen->config();
  p.render_model = models.render_model;
  p.render = models.render;
  const bool mapper = spec.mapper.has_value();
  p.strengths = global ? spec.global_direction->alphas : mapper ? spec.mapper->strengths : spec.direction->strengths;
  const int max_inputs = std::max(1, limits.max_images_per_request / static_cast<int>(p.strengths.size()));
  const bool s_space = global || (!mapper && spec.direction->direction.space == LatentSpace::kS);
  ASSIGN_OR_RETURN(EditInputs in, ResolveEditInputs(spec, repo, data_dir, *models.gen, max_inputs, s_space));
  if (s_space && models.render != models.gen) {
    // S is each layer's style affine of w: take the render model's own affines (NADA
    // trains them), so that strength 0 renders exactly what the render model generates.
    GenerateParams sp;
    sp.space = stylegan2::LatentSpace::kWPlus;
    sp.latents = in.start.wplus;
    sp.return_s = true;
    sp.render_images = false;
    ASSIGN_OR_RETURN(GenerateResult rs, models.render->Generate(sp));
    in.start.s = std::move(rs.s);
  }
  p.seeds = std::move(in.seeds);
  p.noise_maps = std::move(in.noise_maps);
  if (global) {
    ASSIGN_OR_RETURN(edit::GlobalDirection dir, GlobalDirectionFor(spec, repo, cfg, res));
    p.space = stylegan2::LatentSpace::kS;
    p.base = in.start.s;
    p.direction = std::move(dir.delta_s);
    p.channels_moved = dir.channels_moved;
  } else if (mapper) {
    // Each input's own residual: w + strength * 0.1 * mapper(w).
    ASSIGN_OR_RETURN(auto m, MapperFor(spec, repo, cfg));
    ASSIGN_OR_RETURN(FloatTensor residual, m->Residual(in.start.wplus));
    for (float& v : residual.data) v *= edit::kMapperResidualScale;
    p.space = stylegan2::LatentSpace::kWPlus;
    p.base = in.start.wplus;
    p.direction = std::move(residual);
  } else {
    RETURN_IF_ERROR(SetDirection(*spec.direction, cfg, in.start, &p));
  }
  p.total = static_cast<int>(p.base.shape[0]) * static_cast<int>(p.strengths.size());
  p.encode.format = spec.format;
  p.encode.return_latents = spec.return_latents && p.space == stylegan2::LatentSpace::kWPlus;
  p.noise = ToModelNoise(spec.noise);
  return p;
}

BatchWork PrepareEditBatch(const EditPlan& p, int start, int count) {
  const int64_t row = p.base.numel() / p.base.shape[0];
  const int ns = static_cast<int>(p.strengths.size());
  BatchWork work;
  work.generator = p.render;
  work.model = p.render_model;
  work.total = p.total;
  work.start = start;
  work.encode = p.encode;
  work.channels_moved = p.channels_moved;
  GenerateParams& gp = work.params;
  gp.space = p.space;
  gp.noise = p.noise;
  gp.return_wplus = p.encode.return_latents;
  gp.noise_maps = p.noise_maps;
  gp.latents.shape = p.base.shape;
  gp.latents.shape[0] = count;
  // One direction for every input, or one per input (mapper residuals).
  const bool per_input = p.direction.numel() == p.base.numel();
  for (int k = start; k < start + count; ++k) {
    const int input = k / ns;
    const float strength = p.strengths[k % ns];
    const float* dir = p.direction.data.data() + (per_input ? input * row : 0);
    for (int64_t j = 0; j < row; ++j) {
      gp.latents.data.push_back(p.base.data[input * row + j] + strength * dir[j]);
    }
    work.seeds.push_back(p.seeds[input]);
  }
  return work;
}

absl::StatusOr<OptimizePlan> PlanOptimize(EditSpec spec, const ModelRepository& repo, const Limits& limits,
                                          const std::string& data_dir, const EditResources& res) {
  RETURN_IF_ERROR(spec.Validate(repo, limits));
  if (!spec.latent_optimization.has_value()) return Invalid("not a latent_optimization edit");
  const LatentOptimizationSpec& l = *spec.latent_optimization;
  if (res.text_cache == nullptr) return absl::UnimplementedError("latent optimization is not available on this server");
  OptimizePlan p;
  ASSIGN_OR_RETURN(EditModels models, ResolveEditModels(spec, repo));
  p.render_model = models.render_model;
  p.render = models.render;
  p.options.steps = l.steps;
  p.options.lr = l.lr;
  p.options.l2_lambda = l.l2_lambda.value_or(p.options.l2_lambda);
  p.options.id_lambda = l.id_lambda;
  if (l.id_lambda > 0) {
    ASSIGN_OR_RETURN(p.arcface, repo.FirstArcFace());
  }
  ASSIGN_OR_RETURN(std::string clip_name, ResolveClipModel(repo, l.clip_model));
  ASSIGN_OR_RETURN(ModelRepository::Clip clip, repo.GetClip(clip_name));
  p.clip = clip.model;
  // Each input is a full optimisation: a few per request.
  ASSIGN_OR_RETURN(EditInputs in, ResolveEditInputs(spec, repo, data_dir, *models.gen, kMaxOptimizedInputs, false));
  p.starts = std::move(in.start.wplus);
  p.seeds = std::move(in.seeds);
  p.noise_maps = std::move(in.noise_maps);
  ASSIGN_OR_RETURN(FloatTensor text, res.text_cache->Encode(clip_name, *clip.model, *clip.tokenizer, {l.target_text}));
  p.text_embedding = FloatTensor{{text.shape[1]}, std::move(text.data)};
  // Check the optimiser accepts this generator and CLIP before streaming starts.
  RETURN_IF_ERROR(edit::LatentOptimizer::Create(p.render, p.clip, InputRow(p.starts, 0), p.text_embedding, p.noise_maps,
                                                p.options, p.arcface)
                      .status());
  p.progress_every = std::max(1, p.options.steps / 20);
  p.encode.format = spec.format;
  p.encode.return_latents = spec.return_latents;
  return p;
}

absl::StatusOr<std::optional<ImageBatchResult>> OptimizeSession::Step() {
  if (done()) return absl::FailedPreconditionError("every input is optimised already");
  const OptimizePlan& p = *plan_;
  if (opt_ == nullptr) {
    ASSIGN_OR_RETURN(opt_, edit::LatentOptimizer::Create(p.render, p.clip, InputRow(p.starts, input_), p.text_embedding,
                                                         p.noise_maps, p.options, p.arcface));
  }
  ASSIGN_OR_RETURN(auto losses, opt_->Step());
  EditProgress progress;
  progress.input = input_;
  progress.step = static_cast<int>(opt_->step());
  progress.total_steps = static_cast<int>(opt_->total_steps());
  progress.losses = std::move(losses);
  if (opt_->step() == opt_->total_steps()) {
    // The input's result: its optimised w+ rendered with the same noise.
    BatchWork w;
    w.generator = p.render;
    w.model = p.render_model;
    w.total = inputs();
    w.start = input_;
    w.seeds = {p.seeds[static_cast<size_t>(input_)]};
    w.encode = p.encode;
    GenerateParams gp;
    gp.space = stylegan2::LatentSpace::kWPlus;
    gp.latents = opt_->WPlus();
    gp.noise_maps = p.noise_maps;
    gp.return_wplus = p.encode.return_latents;
    ASSIGN_OR_RETURN(GenerateResult r, p.render->Generate(gp));
    ASSIGN_OR_RETURN(ImageBatchResult result, EncodeBatch(w, r));
    result.progress = std::move(progress);
    opt_.reset();
    ++input_;
    return std::optional<ImageBatchResult>(std::move(result));
  }
  if (opt_->step() % p.progress_every != 0) return std::optional<ImageBatchResult>();
  ImageBatchResult msg;
  msg.model = p.render_model;
  msg.total = inputs();
  msg.done = input_;
  msg.progress = std::move(progress);
  return std::optional<ImageBatchResult>(std::move(msg));
}

}  // namespace ganserve::core::service
