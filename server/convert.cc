#include "server/convert.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ganserve::server {

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
  out->set_queue_position(j.queue_position);
}

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
}

absl::StatusOr<core::FloatTensor> FromProto(const v1::Tensor& t, const std::string& field, int64_t max_elements) {
  if (t.shape_size() < 1 || t.shape_size() > 4) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".shape must have 1 to 4 dimensions, got ", t.shape_size()));
  }
  core::FloatTensor out;
  int64_t n = 1;
  for (int64_t d : t.shape()) {
    if (d < 1) return absl::InvalidArgumentError(absl::StrCat(field, ".shape entries must be >= 1"));
    if (n > max_elements / d) {
      return absl::InvalidArgumentError(absl::StrCat(field, " has more than ", max_elements, " elements"));
    }
    n *= d;
    out.shape.push_back(d);
  }
  if (n != t.data_size()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".shape ", core::ShapeString(out.shape), " needs ", n,
                                                   " values, data has ", t.data_size()));
  }
  out.data.assign(t.data().begin(), t.data().end());
  for (size_t i = 0; i < out.data.size(); ++i) {
    if (!std::isfinite(out.data[i])) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".data[", i, "] is ", out.data[i],
                                                     "; latents must be finite"));
    }
  }
  return out;
}

void ToProto(const core::FloatTensor& t, v1::Tensor* out) {
  out->mutable_shape()->Assign(t.shape.begin(), t.shape.end());
  out->mutable_data()->Assign(t.data.begin(), t.data.end());
}

}  // namespace ganserve::server
