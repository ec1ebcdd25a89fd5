// Translations of the job RPCs: AdaptDomain, InvertImage, PrepareGlobalDirections,
// TrainMapper, ListJobs, WatchJob, the Job snapshot and its events.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "server/api/api.h"

namespace ganserve::server::api {
namespace cs = core::service;

cs::AdaptSpec ToSpec(const v1::AdaptDomainRequest& r) {
  cs::AdaptSpec s;
  s.request_id = r.request_id();
  s.model = r.model();
  s.output_name = r.output_name();
  s.source_text = r.source_text();
  s.target_text = r.target_text();
  s.target_images.assign(r.target_images().begin(), r.target_images().end());
  for (const auto& c : r.clip_models()) {
    s.clip_models.push_back({c.name(), c.has_weight() ? std::optional<float>(c.weight()) : std::nullopt});
  }
  s.iterations = r.iterations();
  s.batch_size = r.batch_size();
  s.lr_scale = r.lr_scale();
  if (r.has_mixing()) s.mixing = r.mixing();
  s.auto_layer_k = r.auto_layer_k();
  s.auto_layer_iters = r.auto_layer_iters();
  s.auto_layer_batch = r.auto_layer_batch();
  s.layer_mapping = static_cast<cs::LayerMapping>(r.layer_mapping());
  s.layer_preset = static_cast<cs::LayerPreset>(r.layer_preset());
  s.lambda_global = r.lambda_global();
  s.lambda_manifold = r.lambda_manifold();
  if (r.has_lambda_direction()) s.lambda_direction = r.lambda_direction();
  s.adam_steps = static_cast<cs::AdamSteps>(r.adam_steps());
  s.preview_every = r.preview_every();
  s.preview_count = r.preview_count();
  s.seed = r.seed();
  s.max_run_seconds = r.max_run_seconds();
  s.priority = r.priority();
  s.preview_format = static_cast<cs::ImageFormat>(r.preview_format());
  s.snapshot_every = r.snapshot_every();
  s.delta_dtype = static_cast<cs::DeltaDtype>(r.delta_dtype());
  s.parameterization = static_cast<cs::Parameterization>(r.parameterization());
  if (r.has_lambda_indomain()) s.lambda_indomain = r.lambda_indomain();
  s.notify_url = r.notify_url();
  s.method = static_cast<cs::AdaptMethod>(r.method());
  const v1::OneShotSettings& o = r.one_shot();
  s.reference_steps = o.reference_steps();
  s.skip_reference_search = o.skip_reference_search();
  s.w_ref.assign(o.w_ref().begin(), o.w_ref().end());
  if (o.has_lambda_const()) s.lambda_const = o.lambda_const();
  if (o.has_lambda_patch()) s.lambda_patch = o.lambda_patch();
  s.ref_every = o.ref_every();
  return s;
}

cs::InvertSpec ToSpec(const v1::InvertImageRequest& r) {
  cs::InvertSpec s;
  s.request_id = r.request_id();
  s.model = r.model();
  s.image = r.image();
  s.aligned = r.aligned();
  for (const auto& p : r.landmarks()) {
    s.landmarks.push_back(p.x());
    s.landmarks.push_back(p.y());
  }
  s.space = static_cast<cs::LatentSpace>(r.space());
  s.steps = r.steps();
  s.lr = r.lr();
  if (r.has_noise_regularize()) s.noise_regularize = r.noise_regularize();
  s.mse = r.mse();
  s.preview_every = r.preview_every();
  s.seed = r.seed();
  s.max_run_seconds = r.max_run_seconds();
  s.priority = r.priority();
  s.pin = r.pin();
  s.notify_url = r.notify_url();
  s.method = static_cast<cs::InvertMethod>(r.method());
  s.encoder = r.encoder();
  s.refine_steps = r.refine_steps();
  s.align = r.align();
  return s;
}

cs::GlobalStatsSpec ToSpec(const v1::PrepareGlobalDirectionsRequest& r) {
  cs::GlobalStatsSpec s;
  s.request_id = r.request_id();
  s.model = r.model();
  s.clip_model = r.clip_model();
  s.num_samples = r.num_samples();
  s.num_images = r.num_images();
  s.batch_size = r.batch_size();
  s.preview_every = r.preview_every();
  s.max_run_seconds = r.max_run_seconds();
  s.priority = r.priority();
  s.recompute = r.recompute();
  s.clamping = static_cast<cs::ChannelClamping>(r.clamping());
  if (r.has_truncation_cutoff()) s.truncation_cutoff = r.truncation_cutoff();
  s.render_resolution = r.render_resolution();
  s.notify_url = r.notify_url();
  return s;
}

cs::MapperSpec ToSpec(const v1::TrainMapperRequest& r) {
  cs::MapperSpec s;
  s.request_id = r.request_id();
  s.model = r.model();
  s.text = r.text();
  s.output_name = r.output_name();
  s.mapper_type = static_cast<cs::MapperKind>(r.mapper_type());
  s.no_coarse = r.no_coarse();
  s.no_medium = r.no_medium();
  s.no_fine = r.no_fine();
  s.steps = r.steps();
  s.lr = r.lr();
  s.batch_size = r.batch_size();
  if (r.has_clip_lambda()) s.clip_lambda = r.clip_lambda();
  if (r.has_latent_l2_lambda()) s.latent_l2_lambda = r.latent_l2_lambda();
  if (r.has_id_lambda()) s.id_lambda = r.id_lambda();
  s.inversion_ids.assign(r.inversion_ids().begin(), r.inversion_ids().end());
  s.train_latents = r.train_latents();
  s.clip_model = r.clip_model();
  s.preview_every = r.preview_every();
  s.preview_count = r.preview_count();
  s.seed = r.seed();
  s.max_run_seconds = r.max_run_seconds();
  s.priority = r.priority();
  s.notify_url = r.notify_url();
  return s;
}

cs::ListJobsSpec ToSpec(const v1::ListJobsRequest& r) {
  return cs::ListJobsSpec{r.kind(), r.state(), r.page_size(), r.page_token()};
}

cs::WatchJobSpec ToSpec(const v1::WatchJobRequest& r) {
  return cs::WatchJobSpec{r.id(), r.after_seq(), r.skip_preview_replay()};
}

void ToProto(const core::JobRecord& j, v1::Job* out) {
  out->set_id(j.id);
  out->set_kind(static_cast<v1::JobKind>(j.kind));
  out->set_state(static_cast<v1::JobState>(j.state));
  out->set_request_id(j.request_id);
  out->set_step(j.step);
  out->set_total_steps(j.total_steps);
  for (const auto& [k, v] : j.losses) (*out->mutable_losses())[k] = v;
  out->set_eta_seconds(j.eta_seconds);
  out->set_create_time_unix(j.create_time_ms / 1000);
  out->set_start_time_unix(j.start_time_ms / 1000);
  out->set_end_time_unix(j.end_time_ms / 1000);
  out->set_result(j.result);
  out->set_error_code(j.error_code);
  out->set_error_message(j.error_message);
  out->set_model(j.model);
  out->set_cancel_requested(j.cancel_requested && !core::IsTerminal(j.state));
  out->set_priority(j.priority);
  out->set_queue_position(j.queue_position);
}

namespace {

void ImagesToProto(const std::vector<core::EncodedImage>& in, google::protobuf::RepeatedPtrField<v1::Image>* out) {
  int index = 0;
  for (const auto& im : in) {
    v1::Image* p = out->Add();
    p->set_data(im.png);
    p->set_format(v1::IMAGE_FORMAT_PNG);
    p->set_width(im.width);
    p->set_height(im.height);
    p->set_seed(-1);
    p->set_index(index++);
  }
}

}  // namespace

v1::JobEvent ToProtoEvent(const core::JobEvent& e) {
  v1::JobEvent out;
  out.set_seq(e.seq);
  out.set_time_unix_ms(e.time_ms);
  ToProto(e.job, out.mutable_job());
  switch (e.type) {
    case core::JobEvent::Type::kState: out.set_state_changed(true); break;
    case core::JobEvent::Type::kHeartbeat: out.set_heartbeat(true); break;
    case core::JobEvent::Type::kProgress: {
      auto* p = out.mutable_progress();
      p->set_step(e.job.step);
      p->set_total_steps(e.job.total_steps);
      for (const auto& [k, v] : e.losses) (*p->mutable_losses())[k] = v;
      p->set_steps_per_second(e.steps_per_second);
      p->set_eta_seconds(e.job.eta_seconds);
      p->set_phase(e.phase);
      break;
    }
    case core::JobEvent::Type::kPreview: {
      auto* p = out.mutable_preview();
      p->set_step(e.job.step);
      ImagesToProto(e.preview_source, p->mutable_source());
      ImagesToProto(e.preview_current, p->mutable_current());
      break;
    }
  }
  return out;
}

std::string EncodeJobEvent(const core::JobEvent& e) { return ToProtoEvent(e).SerializeAsString(); }

std::string LegacyRequestHash(const google::protobuf::Message& req) {
  std::unique_ptr<google::protobuf::Message> copy(req.New());
  copy->CopyFrom(req);
  if (const auto* field = copy->GetDescriptor()->FindFieldByName("request_id"); field != nullptr) {
    copy->GetReflection()->ClearField(copy.get(), field);
  }
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    copy->SerializeToCodedStream(&coded);
  }
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return absl::StrCat(absl::Hex(h, absl::kZeroPad16), "-", bytes.size());
}

absl::StatusOr<std::string> DecodeLegacyRequest(core::JobKind kind, const std::string& encoding,
                                                const std::string& bytes) {
  if (encoding != "proto-v1") return absl::DataLossError(absl::StrCat("unknown request encoding '", encoding, "'"));
  // Older versions stored the request after validation, defaults filled in.
  auto decode = [&bytes](auto message) -> absl::StatusOr<std::string> {
    if (!message.ParseFromString(bytes)) return absl::DataLossError("the stored protobuf request does not parse");
    return cs::SpecToJson(ToSpec(message));
  };
  switch (kind) {
    case core::JobKind::kAdapt: return decode(v1::AdaptDomainRequest());
    case core::JobKind::kInvert: return decode(v1::InvertImageRequest());
    case core::JobKind::kEditStats: return decode(v1::PrepareGlobalDirectionsRequest());
    default: return absl::DataLossError(absl::StrCat("unknown job kind ", static_cast<int>(kind)));
  }
}

}  // namespace ganserve::server::api
