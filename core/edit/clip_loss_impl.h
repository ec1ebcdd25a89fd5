// The CLIP loss StyleCLIP's latent optimization and mapper training share (the official
// criteria/clip_loss.py): the [-1, 1] image nearest-neighbour upsampled 7x and
// average-pooled by resolution/32 (1024 -> 7168 -> 224), without CLIP's mean/std
// normalisation; loss = 1 - logit / 100 = 1 - exp(logit_scale) * cos / 100, averaged over
// the batch.
#ifndef GANSERVE_CORE_EDIT_CLIP_LOSS_IMPL_H_
#define GANSERVE_CORE_EDIT_CLIP_LOSS_IMPL_H_

#include <ATen/ATen.h>

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/models/clip/clip_model_impl.h"

namespace ganserve::core::edit {

// InvalidArgument unless a `resolution` px image pools to the CLIP model's input size
// (at least 32 px).
inline absl::Status CheckStyleClipPooling(int64_t resolution, const clip::ClipModel& clip) {
  if (resolution < 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("StyleCLIP's CLIP loss needs a generator of at least 32 px (this one has ", resolution, ")"));
  }
  if (resolution * 7 / (resolution / 32) != clip.config().image_resolution) {
    return absl::InvalidArgumentError(absl::StrCat("a ", resolution, " px image does not pool to CLIP's ",
                                                   clip.config().image_resolution, " px input"));
  }
  return absl::OkStatus();
}

// text_unit: the unit text embedding [D].
inline at::Tensor StyleClipLoss(const clip::ClipModel& clip, const at::Tensor& img, const at::Tensor& text_unit) {
  const int64_t size = img.size(2);
  at::Tensor x = at::upsample_nearest2d(img, {size * 7, size * 7});
  x = at::avg_pool2d(x, {size / 32, size / 32});
  at::Tensor e = clip.impl().EncodeImage(x);
  e = e / e.norm(2, -1, true);
  return 1 - std::exp(clip.logit_scale()) * (e * text_unit).sum(-1).mean() / 100;
}

}  // namespace ganserve::core::edit

#endif  // GANSERVE_CORE_EDIT_CLIP_LOSS_IMPL_H_
