// Translations of the model RPCs (ListModels, GetModel, DeleteModel).
#include "server/api/api.h"

namespace ganserve::server::api {

void ToProto(const core::ModelInfo& m, v1::Model* out) {
  out->set_name(m.name);
  out->set_kind(static_cast<v1::ModelKind>(m.kind));
  out->set_state(static_cast<v1::ModelState>(m.state));
  out->set_error(m.error);
  out->set_domain(m.domain);
  out->set_resolution(m.resolution);
  out->set_style_dim(m.style_dim);
  out->set_n_mlp(m.n_mlp);
  out->set_n_latent(m.n_latent);
  out->set_s_dim(static_cast<int32_t>(m.s_dim));
  out->set_default_truncation(m.default_truncation);
  out->set_base_model(m.base_model);
  out->set_source_text(m.source_text);
  out->set_target_text(m.target_text);
  out->set_size_bytes(m.size_bytes);
  out->set_create_time_unix(m.create_time_unix);
  out->set_pinned(m.pinned);
  out->set_snapshot_job(m.snapshot_job);
  out->set_snapshot_step(m.snapshot_step);
  out->set_resident_host_bytes(m.resident.host_bytes);
  out->set_resident_device_bytes(m.resident.device_bytes);
  out->set_parameterization(
      static_cast<v1::Parameterization>(core::service::ParameterizationNamed(m.parameterization)));
  out->set_trained_parameters(m.trained_parameters);
}

}  // namespace ganserve::server::api
