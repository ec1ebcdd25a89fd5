// Translations of GenerateSamples and Edit, and of the image batches they stream.
#include "server/api/api.h"

namespace ganserve::server::api {
namespace cs = core::service;
namespace {

core::FloatTensor FromProto(const v1::Tensor& t) {
  return core::FloatTensor{{t.shape().begin(), t.shape().end()}, {t.data().begin(), t.data().end()}};
}

cs::LatentInput FromProto(const v1::Latent& l) {
  return cs::LatentInput{static_cast<cs::LatentSpace>(l.space()), FromProto(l.values())};
}

void ToProto(const core::FloatTensor& t, v1::Tensor* out) {
  out->mutable_shape()->Assign(t.shape.begin(), t.shape.end());
  out->mutable_data()->Assign(t.data.begin(), t.data.end());
}

}  // namespace

cs::GenerateSpec ToSpec(const v1::GenerateSamplesRequest& r) {
  cs::GenerateSpec s;
  s.model = r.model();
  s.seeds.assign(r.seeds().begin(), r.seeds().end());
  s.count = r.count();
  s.base_seed = r.base_seed();
  if (r.has_latents()) s.latents = FromProto(r.latents());
  s.inversion_id = r.inversion_id();
  s.batch_size = r.batch_size();
  if (r.has_truncation()) s.truncation = r.truncation();
  s.noise = static_cast<cs::NoiseMode>(r.noise());
  s.mix_seeds.assign(r.mix_seeds().begin(), r.mix_seeds().end());
  s.inject_index = r.inject_index();
  if (r.has_mean_rows_from()) s.mean_rows_from = r.mean_rows_from();
  s.format = static_cast<cs::ImageFormat>(r.format());
  s.jpeg_quality = r.jpeg_quality();
  s.return_latents = r.return_latents();
  return s;
}

cs::EditSpec ToSpec(const v1::EditRequest& r) {
  cs::EditSpec s;
  s.model = r.model();
  s.render_model = r.render_model();
  s.seeds.assign(r.seeds().begin(), r.seeds().end());
  if (r.has_latents()) s.latents = FromProto(r.latents());
  s.inversion_id = r.inversion_id();
  if (r.has_truncation()) s.truncation = r.truncation();
  switch (r.method_case()) {
    case v1::EditRequest::kGlobalDirection: {
      const auto& g = r.global_direction();
      s.global_direction = cs::GlobalDirectionSpec{
          g.neutral_text(), g.target_text(), {g.alphas().begin(), g.alphas().end()}, g.beta(), g.clip_model()};
      break;
    }
    case v1::EditRequest::kLatentOptimization: {
      const auto& l = r.latent_optimization();
      s.latent_optimization =
          cs::LatentOptimizationSpec{l.target_text(), l.steps(), l.lr(), std::nullopt, l.id_lambda(), l.clip_model()};
      if (l.has_l2_lambda()) s.latent_optimization->l2_lambda = l.l2_lambda();
      break;
    }
    case v1::EditRequest::kDirection: {
      const auto& d = r.direction();
      s.direction = cs::DirectionSpec{FromProto(d.direction()), {d.strengths().begin(), d.strengths().end()}};
      break;
    }
    case v1::EditRequest::kMapper: {
      const auto& m = r.mapper();
      s.mapper = cs::MapperEditSpec{m.mapper(), {m.strengths().begin(), m.strengths().end()}};
      break;
    }
    default: break;
  }
  s.format = static_cast<cs::ImageFormat>(r.format());
  s.return_latents = r.return_latents();
  s.noise = static_cast<cs::NoiseMode>(r.noise());
  return s;
}

void ToProto(const cs::ImageBatchResult& b, v1::ImageBatch* out) {
  out->set_model(b.model);
  out->set_total(b.total);
  out->set_done(b.done);
  out->set_channels_moved(b.channels_moved);
  for (const cs::RenderedImage& im : b.images) {
    v1::Image* p = out->add_images();
    p->set_index(im.index);
    p->set_width(im.width);
    p->set_height(im.height);
    p->set_seed(im.seed);
    p->set_format(static_cast<v1::ImageFormat>(im.format));
    if (!im.data.empty()) p->set_data(im.data);
    if (!im.raw.shape.empty()) ToProto(im.raw, p->mutable_raw());
    if (!im.latent.shape.empty()) {
      p->mutable_latent()->set_space(v1::LATENT_SPACE_W_PLUS);
      ToProto(im.latent, p->mutable_latent()->mutable_values());
    }
  }
  if (b.progress.has_value()) {
    auto* p = out->mutable_progress();
    p->set_input(b.progress->input);
    p->set_step(b.progress->step);
    p->set_total_steps(b.progress->total_steps);
    for (const auto& [k, v] : b.progress->losses) (*p->mutable_losses())[k] = v;
  }
}

}  // namespace ganserve::server::api
