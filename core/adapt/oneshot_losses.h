// The training losses of OneshotCLIP (Kwon & Ye 2022, cyclomon/OneshotCLIP), on
// LibTorch tensors of any device, differentiable. Internal to core/adapt (LibTorch).
//
//  - CrossDomainConsistencyLoss follows losses.py ConstLoss: the mean squared difference
//    between the off-diagonal pairwise cosine similarities of the target batch and those
//    of the (detached) source batch, pairs in the official order (i-major, j != i).
//    Like the official code it needs at least two images (there it fails in torch.cat).
//  - PatchContrastiveLoss follows losses.py PatchLoss with nce_allbatch off: an InfoNCE
//    per crop row whose positive is the same row of the detached source and whose
//    negatives are the source rows of its group, the [N, D] rows being split into
//    `groups` (opt.batch) consecutive groups by view(groups, -1, D). Quirks kept: the
//    crops arrive crop-major (rand_sampling_mult concatenates crop 0 of every image, then
//    crop 1, ...), so a group mixes images and crop positions; the row's own source
//    entry among the negatives is set to -10 (then divided by tau), not removed; the
//    norms have no epsilon. Returns the per-row loss (train_oneshot.py takes its mean).
//  - DiscriminatorLogisticLoss, NonSaturatingLoss and R1Penalty follow train_oneshot.py
//    d_logistic_loss, g_nonsaturating_loss and d_r1_loss (means over every logit, so a
//    patch discriminator's [B, 1, h, w] maps average over patches too).
//  - DrawCropBoxes / GatherCrops follow train_oneshot.py rand_bbox / rand_sampling_mult:
//    x then y per crop, each uniform in [0, image_size - size) (np.random.randint's
//    exclusive bound, so a crop never touches the right or bottom edge and a full-size
//    crop is impossible), the same boxes for the source and the target images.
#ifndef GANSERVE_CORE_ADAPT_ONESHOT_LOSSES_H_
#define GANSERVE_CORE_ADAPT_ONESHOT_LOSSES_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <random>
#include <vector>

namespace ganserve::core::adapt {

// [B, D] embeddings (need not be unit), B >= 2 -> scalar; source is detached inside.
at::Tensor CrossDomainConsistencyLoss(const at::Tensor& target, const at::Tensor& source);

// [N, D] crop embeddings in crop-major order (N = crops * batch), `groups` = the official
// opt.batch (must divide N) -> per-row loss [N]; source is detached inside.
at::Tensor PatchContrastiveLoss(const at::Tensor& target, const at::Tensor& source, int64_t groups, double tau);

// mean(softplus(-real)) + mean(softplus(fake)) -> scalar.
at::Tensor DiscriminatorLogisticLoss(const at::Tensor& real_logits, const at::Tensor& fake_logits);

// mean(softplus(-fake)) -> scalar.
at::Tensor NonSaturatingLoss(const at::Tensor& fake_logits);

// Sum over pixels of squared d(sum real_logits)/d(real_images), mean over the batch;
// the gradient is taken with create_graph, so the penalty can be backpropagated.
// real_images must require grad and real_logits must depend on it.
at::Tensor R1Penalty(const at::Tensor& real_logits, const at::Tensor& real_images);

struct CropBox {
  int64_t top = 0, left = 0;
};

// `count` positions of size x size crops inside a square image of side `image_size`,
// x (left) then y (top) per crop, each uniform in [0, image_size - size) as the official
// rand_bbox draws; needs image_size > size.
std::vector<CropBox> DrawCropBoxes(int64_t image_size, int64_t size, int64_t count, std::mt19937_64& rng);

// images [B, C, H, W] -> [count * B, C, size, size], crop-major (crop 0 of every image,
// then crop 1, ...).
at::Tensor GatherCrops(const at::Tensor& images, const std::vector<CropBox>& boxes, int64_t size);

}  // namespace ganserve::core::adapt

#endif  // GANSERVE_CORE_ADAPT_ONESHOT_LOSSES_H_
