#include "server/edit_request.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/adapt/text_templates.h"
#include "core/util/status_macros.h"
#include "server/convert.h"
#include "server/invert_job.h"

namespace ganserve::server {
namespace {

using core::stylegan2::LatentSpace;

absl::Status Invalid(const std::string& m) { return absl::InvalidArgumentError(m); }

// Repeats each row of [N, D] w into [N, n_latent, D].
core::FloatTensor Broadcast(const core::FloatTensor& w, int n_latent) {
  core::FloatTensor out;
  const int64_t n = w.shape[0], d = w.shape[1];
  out.shape = {n, n_latent, d};
  for (int64_t i = 0; i < n; ++i) {
    for (int r = 0; r < n_latent; ++r) out.data.insert(out.data.end(), w.data.begin() + i * d, w.data.begin() + (i + 1) * d);
  }
  return out;
}

// The edit's generator (its latent space) and the one that renders (it, or a model
// sharing its latent space, e.g. adapted from it).
struct EditModels {
  std::shared_ptr<const core::stylegan2::Generator> gen, render;
  std::string render_model;
};
absl::StatusOr<EditModels> ResolveEditModels(const v1::EditRequest& req, const core::ModelRepository& repo) {
  EditModels m;
  if (req.model().empty()) return Invalid("model is required: name the generator whose latent space you edit in");
  if (!core::IsValidModelName(req.model())) return Invalid("model is not a valid model name");
  ASSIGN_OR_RETURN(m.gen, repo.GetGenerator(req.model()));
  m.render_model = req.render_model().empty() ? req.model() : req.render_model();
  if (!core::IsValidModelName(m.render_model)) return Invalid("render_model is not a valid model name");
  ASSIGN_OR_RETURN(m.render, repo.GetGenerator(m.render_model));
  const auto& cfg = m.gen->config();
  const auto& rc = m.render->config();
  if (rc.style_dim != cfg.style_dim || rc.n_latent != cfg.n_latent || rc.s_dim != cfg.s_dim) {
    return absl::FailedPreconditionError(absl::StrCat("render_model '", m.render_model, "' does not share model '",
                                                      req.model(), "''s latent space"));
  }
  return m;
}

// The starting points of an edit: seeds, caller latents or an inversion, mapped (with
// the request's or the model's truncation) to w+ and, when asked, S. At most
// `max_inputs` inputs.
absl::StatusOr<EditInputs> ResolveEditInputs(const v1::EditRequest& req, const core::ModelRepository& repo,
                                             const ServerOptions& opt, const core::stylegan2::Generator& gen,
                                             int max_inputs, bool with_s) {
  const auto& cfg = gen.config();
  EditInputs out;
  // Starting latents.
  const int sources = (req.seeds_size() > 0) + req.has_latents() + !req.inversion_id().empty();
  if (sources != 1) return Invalid("give exactly one of seeds, latents or inversion_id");
  float psi = 1.0f;
  if (req.has_truncation()) {
    if (!std::isfinite(req.truncation()) || req.truncation() < 0 || req.truncation() > 2) {
      return Invalid("truncation must be in [0, 2]");
    }
    psi = req.truncation();
  } else if (auto info = repo.Get(req.model()); info.ok()) {
    psi = info->default_truncation;
  }
  core::stylegan2::GenerateParams gp;  // computes the starting points
  gp.render_images = false;
  gp.return_wplus = true;
  gp.return_s = with_s;
  if (req.seeds_size() > 0) {
    if (req.seeds_size() > max_inputs) return Invalid(absl::StrCat("seeds: at most ", max_inputs, " here"));
    gp.latents.shape = {req.seeds_size(), cfg.style_dim};
    for (int64_t seed : req.seeds()) {
      if (seed < 0 || seed > 0xffffffffLL) return Invalid("seeds must be in [0, 4294967295]");
      auto z = core::stylegan2::SeedToZ(static_cast<uint32_t>(seed), cfg.style_dim);
      gp.latents.data.insert(gp.latents.data.end(), z.begin(), z.end());
      out.seeds.push_back(seed);
    }
    gp.truncation = psi;
  } else if (req.has_latents()) {
    auto t = FromProto(req.latents().values(), "latents.values", int64_t{max_inputs} * cfg.n_latent * cfg.style_dim);
    if (!t.ok()) return t.status();
    switch (req.latents().space()) {
      case v1::LATENT_SPACE_Z: gp.space = LatentSpace::kZ; gp.truncation = psi; break;
      case v1::LATENT_SPACE_W: gp.space = LatentSpace::kW; break;
      case v1::LATENT_SPACE_W_PLUS: gp.space = LatentSpace::kWPlus; break;
      default: return Invalid("latents.space must be Z, W or W_PLUS");
    }
    gp.latents = std::move(*t);
    out.seeds.assign(static_cast<size_t>(gp.latents.shape[0]), -1);
  } else {
    auto inv = LoadInversionFor(opt.data_dir, req.inversion_id(), repo, req.model(),
                                req.noise() == v1::NOISE_MODE_UNSPECIFIED);
    if (!inv.ok()) return inv.status();
    gp.space = LatentSpace::kWPlus;
    gp.latents = std::move(inv->wplus);
    out.noise_maps = std::move(inv->noise_maps);
    out.seeds = {-1};
  }
  auto start = gen.Generate(gp);  // shape errors surface here with their message
  if (!start.ok()) return start.status();
  out.start = std::move(*start);
  return out;
}

// Direction arithmetic: the caller's direction as one row of the edit space.
absl::Status SetDirection(const v1::DirectionEdit& d, const core::stylegan2::GeneratorConfig& cfg,
                          const core::stylegan2::GenerateResult& start, EditPlan* out) {
  EditPlan& p = *out;
  auto dir = FromProto(d.direction().values(), "direction.direction.values", cfg.s_dim + int64_t{cfg.n_latent} * cfg.style_dim);
  if (!dir.ok()) return dir.status();
  switch (d.direction().space()) {
    case v1::LATENT_SPACE_W:
      if (dir->numel() != cfg.style_dim) return Invalid(absl::StrCat("a w direction has ", cfg.style_dim, " values"));
      p.space = LatentSpace::kWPlus;
      p.base = start.wplus;
      p.direction = Broadcast(core::FloatTensor{{1, cfg.style_dim}, dir->data}, cfg.n_latent);
      break;
    case v1::LATENT_SPACE_W_PLUS:
      if (dir->numel() != int64_t{cfg.n_latent} * cfg.style_dim) {
        return Invalid(absl::StrCat("a w+ direction has ", cfg.n_latent, " x ", cfg.style_dim, " values"));
      }
      p.space = LatentSpace::kWPlus;
      p.base = start.wplus;
      p.direction = core::FloatTensor{{1, cfg.n_latent, cfg.style_dim}, dir->data};
      break;
    case v1::LATENT_SPACE_S:
      if (dir->numel() != cfg.s_dim) return Invalid(absl::StrCat("an S direction has ", cfg.s_dim, " values"));
      p.space = LatentSpace::kS;
      p.base = start.s;
      p.direction = core::FloatTensor{{1, cfg.s_dim}, dir->data};
      break;
    default: return Invalid("direction.direction.space must be W, W_PLUS or S");
  }
  return absl::OkStatus();
}

// Global directions: the S-space direction for the request's texts and beta.
absl::StatusOr<core::edit::GlobalDirection> GlobalDirectionFor(const v1::EditRequest& req,
                                                               const core::ModelRepository& repo,
                                                               const core::stylegan2::GeneratorConfig& cfg,
                                                               const EditResources& res, float beta) {
  const v1::GlobalDirectionEdit& g = req.global_direction();
  ASSIGN_OR_RETURN(std::string clip_name, ResolveClipModel(repo, g.clip_model()));
  ASSIGN_OR_RETURN(auto stats, res.stats->Get(repo, req.model(), clip_name));
  if (stats->s_mean.numel() != cfg.s_dim) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the global-direction statistics of model '", req.model(), "' do not fit it (", stats->s_mean.numel(),
        " S channels, the model has ", cfg.s_dim, "); run PrepareGlobalDirections with recompute"));
  }
  ASSIGN_OR_RETURN(core::ModelRepository::Clip clip, repo.GetClip(clip_name));
  auto embed = [&](const std::string& text) {
    return res.text_cache->Encode(clip_name, *clip.model, *clip.tokenizer, core::adapt::ApplyTemplates(text));
  };
  ASSIGN_OR_RETURN(core::FloatTensor neutral, embed(g.neutral_text()));
  ASSIGN_OR_RETURN(core::FloatTensor target, embed(g.target_text()));
  ASSIGN_OR_RETURN(core::edit::GlobalDirection dir,
                   core::edit::MakeGlobalDirection(*stats, core::edit::TextDirection(neutral, target), beta));
  if (dir.channels_moved == 0) {
    return Invalid(absl::StrCat("beta ", beta, " keeps no channel: the largest relevance of this text direction is ",
                                dir.max_relevance, "; use a beta below that"));
  }
  return dir;
}

}  // namespace

absl::StatusOr<EditPlan> PlanEdit(const v1::EditRequest& req, const core::ModelRepository& repo,
                                  const ServerOptions& opt, const EditResources& res) {
  EditPlan p;
  ASSIGN_OR_RETURN(EditModels models, ResolveEditModels(req, repo));
  const auto* gen = &models.gen;
  const auto& cfg = models.gen->config();
  p.render_model = models.render_model;
  p.render = models.render;

  const bool global = req.method_case() == v1::EditRequest::kGlobalDirection;
  float beta = 0.15f;
  switch (req.method_case()) {
    case v1::EditRequest::kGlobalDirection: {
      const v1::GlobalDirectionEdit& g = req.global_direction();
      for (const std::string* t : {&g.neutral_text(), &g.target_text()}) {
        if (t->empty() || t->size() > 300) {
          return Invalid("global_direction.neutral_text and target_text need 1 to 300 characters each");
        }
      }
      if (g.alphas_size() > 16) return Invalid("global_direction.alphas takes at most 16 values");
      for (float a : g.alphas()) {
        if (!std::isfinite(a) || a < -20 || a > 20) return Invalid("global_direction.alphas must be in [-20, 20]");
        p.strengths.push_back(a);
      }
      if (p.strengths.empty()) p.strengths.push_back(4.0f);
      if (!std::isfinite(g.beta()) || g.beta() < 0 || g.beta() >= 1) {
        return Invalid("global_direction.beta must be in [0, 1) (0 = 0.15)");
      }
      if (g.beta() > 0) beta = g.beta();
      if (res.stats == nullptr || res.text_cache == nullptr) {
        return absl::UnimplementedError("global directions are not available on this server");
      }
      break;
    }
    case v1::EditRequest::kLatentOptimization:
      return Invalid("latent_optimization edits are planned by PlanOptimize");
    case v1::EditRequest::kDirection: {
      const v1::DirectionEdit& d = req.direction();
      if (d.strengths_size() < 1 || d.strengths_size() > 16) return Invalid("direction.strengths needs 1 to 16 values");
      for (float s : d.strengths()) {
        if (!std::isfinite(s) || s < -100 || s > 100) return Invalid("direction.strengths must be in [-100, 100]");
        p.strengths.push_back(s);
      }
      break;
    }
    default: return Invalid("give an edit method: direction, global_direction or latent_optimization");
  }

  const int max_inputs = std::max(1, opt.max_images_per_request / static_cast<int>(p.strengths.size()));
  const bool s_space = global || req.direction().direction().space() == v1::LATENT_SPACE_S;
  ASSIGN_OR_RETURN(EditInputs in, ResolveEditInputs(req, repo, opt, **gen, max_inputs, s_space));
  p.seeds = std::move(in.seeds);
  p.noise_maps = std::move(in.noise_maps);
  const core::stylegan2::GenerateResult* start = &in.start;

  if (global) {
    ASSIGN_OR_RETURN(core::edit::GlobalDirection dir, GlobalDirectionFor(req, repo, cfg, res, beta));
    p.space = LatentSpace::kS;
    p.base = start->s;
    p.direction = std::move(dir.delta_s);
    p.channels_moved = dir.channels_moved;
  } else {
    RETURN_IF_ERROR(SetDirection(req.direction(), cfg, *start, &p));
  }
  p.total = static_cast<int>(p.base.shape[0]) * static_cast<int>(p.strengths.size());
  if (!v1::ImageFormat_IsValid(req.format())) return Invalid("unknown format");
  p.encode.format = req.format() == v1::IMAGE_FORMAT_UNSPECIFIED ? v1::IMAGE_FORMAT_PNG : req.format();
  p.encode.return_latents = req.return_latents() && p.space == LatentSpace::kWPlus;
  switch (req.noise()) {
    case v1::NOISE_MODE_UNSPECIFIED:
    case v1::NOISE_MODE_CONST: p.noise = core::stylegan2::NoiseMode::kConst; break;
    case v1::NOISE_MODE_NONE: p.noise = core::stylegan2::NoiseMode::kNone; break;
    default: return Invalid("noise must be CONST or NONE for edits (random noise would change every strength)");
  }
  return p;
}

absl::StatusOr<OptimizePlan> PlanOptimize(const v1::EditRequest& req, const core::ModelRepository& repo,
                                          const ServerOptions& opt, const EditResources& res) {
  if (req.method_case() != v1::EditRequest::kLatentOptimization) return Invalid("not a latent_optimization edit");
  const v1::LatentOptimizationEdit& l = req.latent_optimization();
  OptimizePlan p;
  ASSIGN_OR_RETURN(EditModels models, ResolveEditModels(req, repo));
  p.render_model = models.render_model;
  p.render = models.render;
  if (l.target_text().empty() || l.target_text().size() > 300) {
    return Invalid("latent_optimization.target_text needs 1 to 300 characters");
  }
  if (l.steps() < 0 || l.steps() > 1000) return Invalid("latent_optimization.steps must be in [1, 1000] (0 = 300)");
  p.options.steps = l.steps() == 0 ? 300 : l.steps();
  if (!std::isfinite(l.lr()) || l.lr() < 0 || l.lr() > 1) return Invalid("latent_optimization.lr must be in (0, 1] (0 = 0.1)");
  if (l.lr() > 0) p.options.lr = l.lr();
  if (!std::isfinite(l.l2_lambda()) || l.l2_lambda() < 0 || l.l2_lambda() > 10) {
    return Invalid("latent_optimization.l2_lambda must be in [0, 10] (0 = 0.008)");
  }
  if (l.l2_lambda() > 0) p.options.l2_lambda = l.l2_lambda();
  if (!std::isfinite(l.id_lambda()) || l.id_lambda() < 0 || l.id_lambda() > 10) {
    return Invalid("latent_optimization.id_lambda must be in [0, 10]");
  }
  if (l.id_lambda() > 0) {
    return absl::FailedPreconditionError(
        "the identity loss needs ArcFace IR-SE50 weights, which this server does not load; send id_lambda 0");
  }
  if (res.text_cache == nullptr) return absl::UnimplementedError("latent optimization is not available on this server");
  ASSIGN_OR_RETURN(std::string clip_name, ResolveClipModel(repo, l.clip_model()));
  ASSIGN_OR_RETURN(core::ModelRepository::Clip clip, repo.GetClip(clip_name));
  p.clip = clip.model;
  // Each input is a full optimisation: a few per request.
  ASSIGN_OR_RETURN(EditInputs in, ResolveEditInputs(req, repo, opt, *models.gen, kMaxOptimizedInputs, false));
  p.starts = std::move(in.start.wplus);
  p.seeds = std::move(in.seeds);
  p.noise_maps = std::move(in.noise_maps);
  ASSIGN_OR_RETURN(core::FloatTensor text,
                   res.text_cache->Encode(clip_name, *clip.model, *clip.tokenizer, {l.target_text()}));
  p.text_embedding = core::FloatTensor{{text.shape[1]}, std::move(text.data)};
  // Check the optimiser accepts this generator and CLIP before streaming starts.
  core::FloatTensor first{{1, p.starts.shape[1], p.starts.shape[2]},
                          std::vector<float>(p.starts.data.begin(), p.starts.data.begin() + p.starts.numel() / p.starts.shape[0])};
  RETURN_IF_ERROR(
      core::edit::LatentOptimizer::Create(p.render, p.clip, first, p.text_embedding, p.noise_maps, p.options).status());
  p.progress_every = std::max(1, p.options.steps / 20);
  if (!v1::ImageFormat_IsValid(req.format())) return Invalid("unknown format");
  p.encode.format = req.format() == v1::IMAGE_FORMAT_UNSPECIFIED ? v1::IMAGE_FORMAT_PNG : req.format();
  p.encode.return_latents = req.return_latents();
  if (req.noise() != v1::NOISE_MODE_UNSPECIFIED && req.noise() != v1::NOISE_MODE_CONST) {
    return Invalid("latent optimization keeps the noise fixed: noise must be CONST");
  }
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
  core::stylegan2::GenerateParams& gp = work.params;
  gp.space = p.space;
  gp.noise = p.noise;
  gp.return_wplus = p.encode.return_latents;
  gp.noise_maps = p.noise_maps;
  gp.latents.shape = p.base.shape;
  gp.latents.shape[0] = count;
  for (int k = start; k < start + count; ++k) {
    const int input = k / ns;
    const float strength = p.strengths[k % ns];
    for (int64_t j = 0; j < row; ++j) {
      gp.latents.data.push_back(p.base.data[input * row + j] + strength * p.direction.data[j]);
    }
    work.seeds.push_back(p.seeds[input]);
  }
  return work;
}

}  // namespace ganserve::server
