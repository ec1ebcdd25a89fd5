#include "core/adapt/oneshot_losses.h"

#include <c10/util/Exception.h>
#include <torch/csrc/autograd/autograd.h>

namespace ganserve::core::adapt {
namespace {

// Pairwise cosine similarities [B, B] of the rows of x, as F.cosine_similarity computes
// them (each row divided by its norm clamped to eps = 1e-8 first).
at::Tensor CosineMatrix(const at::Tensor& x) {
  const at::Tensor unit = x / at::linalg_vector_norm(x, 2, {1}, /*keepdim=*/true).clamp_min(1e-8);
  return at::matmul(unit, unit.transpose(0, 1));
}

}  // namespace

at::Tensor CrossDomainConsistencyLoss(const at::Tensor& target, const at::Tensor& source) {
  TORCH_CHECK(target.dim() == 2 && target.sizes() == source.sizes(), "CrossDomainConsistencyLoss: target ",
              target.sizes(), " and source ", source.sizes(), " must be the same [B, D]");
  const int64_t b = target.size(0);
  TORCH_CHECK(b >= 2, "CrossDomainConsistencyLoss: needs at least two embeddings, got ", b);
  // masked_select walks the [B, B] matrix row by row: pairs (i, j != i), i-major.
  const at::Tensor off_diagonal = at::eye(b, target.options().dtype(at::kBool)).logical_not();
  const at::Tensor target_sim = CosineMatrix(target).masked_select(off_diagonal);
  const at::Tensor source_sim = CosineMatrix(source.detach()).masked_select(off_diagonal);
  return (target_sim - source_sim).pow(2).mean();
}

at::Tensor PatchContrastiveLoss(const at::Tensor& target, const at::Tensor& source, int64_t groups, double tau) {
  TORCH_CHECK(target.dim() == 2 && target.sizes() == source.sizes(), "PatchContrastiveLoss: target ", target.sizes(),
              " and source ", source.sizes(), " must be the same [N, D]");
  const int64_t n = target.size(0);
  const int64_t d = target.size(1);
  TORCH_CHECK(groups > 0 && n % groups == 0, "PatchContrastiveLoss: ", groups, " groups do not divide ", n, " rows");
  const int64_t per_group = n / groups;
  const at::Tensor src = source.detach();
  const at::Tensor target_norm = at::linalg_vector_norm(target, 2, {1}, /*keepdim=*/true);  // [N, 1]
  const at::Tensor source_norm = at::linalg_vector_norm(src, 2, {1}, /*keepdim=*/true);
  // Positive: each row against its own source row.
  const at::Tensor positive = (target * src).sum(1, /*keepdim=*/true) / (target_norm * source_norm);  // [N, 1]
  // Negatives: every source row of the row's group (consecutive rows, crop-major input),
  // its own entry replaced by -10.
  const at::Tensor tg = target.view({groups, per_group, d});
  const at::Tensor sg = src.view({groups, per_group, d});
  const at::Tensor norms =
      at::bmm(target_norm.view({groups, per_group, 1}), source_norm.view({groups, per_group, 1}).transpose(1, 2));
  const at::Tensor diagonal = at::eye(per_group, target.options().dtype(at::kBool)).unsqueeze(0);
  const at::Tensor negative =
      (at::bmm(tg, sg.transpose(1, 2)) / norms).masked_fill(diagonal, -10.0).view({n, per_group});
  const at::Tensor logits = at::cat({positive, negative}, 1) / tau;
  // Cross entropy towards column 0, no reduction.
  return -at::log_softmax(logits, 1).select(1, 0);
}

at::Tensor DiscriminatorLogisticLoss(const at::Tensor& real_logits, const at::Tensor& fake_logits) {
  return at::softplus(-real_logits).mean() + at::softplus(fake_logits).mean();
}

at::Tensor NonSaturatingLoss(const at::Tensor& fake_logits) { return at::softplus(-fake_logits).mean(); }

at::Tensor R1Penalty(const at::Tensor& real_logits, const at::Tensor& real_images) {
  TORCH_CHECK(real_images.requires_grad(), "R1Penalty: real_images must require grad");
  const torch::autograd::variable_list grads =
      torch::autograd::grad({real_logits.sum()}, {real_images}, /*grad_outputs=*/{}, /*retain_graph=*/c10::nullopt,
                            /*create_graph=*/true);
  const at::Tensor& grad = grads.at(0);
  return grad.pow(2).reshape({grad.size(0), -1}).sum(1).mean();
}

std::vector<CropBox> DrawCropBoxes(int64_t image_size, int64_t size, int64_t count, std::mt19937_64& rng) {
  TORCH_CHECK(size > 0 && image_size > size, "DrawCropBoxes: a ", size, " crop needs an image wider than it, got ",
              image_size);
  TORCH_CHECK(count >= 0, "DrawCropBoxes: negative count ", count);
  std::uniform_int_distribution<int64_t> position(0, image_size - size - 1);  // randint(0, W - crop)
  std::vector<CropBox> boxes(static_cast<size_t>(count));
  for (CropBox& box : boxes) {
    box.left = position(rng);  // rand_bbox draws tx (x) first, then ty (y)
    box.top = position(rng);
  }
  return boxes;
}

at::Tensor GatherCrops(const at::Tensor& images, const std::vector<CropBox>& boxes, int64_t size) {
  TORCH_CHECK(images.dim() == 4, "GatherCrops: images must be [B, C, H, W], got ", images.sizes());
  TORCH_CHECK(!boxes.empty(), "GatherCrops: no crop boxes");
  std::vector<at::Tensor> crops;
  crops.reserve(boxes.size());
  for (const CropBox& box : boxes) {
    TORCH_CHECK(box.top >= 0 && box.left >= 0 && box.top + size <= images.size(2) && box.left + size <= images.size(3),
                "GatherCrops: a ", size, " crop at (", box.top, ", ", box.left, ") leaves the ", images.size(2), "x",
                images.size(3), " image");
    crops.push_back(images.slice(2, box.top, box.top + size).slice(3, box.left, box.left + size));
  }
  return at::cat(crops, 0);  // crop-major: crop 0 of every image, then crop 1, ...
}

}  // namespace ganserve::core::adapt
