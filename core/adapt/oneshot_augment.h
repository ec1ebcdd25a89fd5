// The image augmentations of OneshotCLIP's reference search (cyclomon/OneshotCLIP
// train_oneshot.py), the torchvision 0.14 pipeline
//   Compose([RandomAffine(degrees=15, translate=[0.1, 0.1], shear=5),
//            RandomPerspective(distortion_scale=0.7, p=1.0),
//            ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1),
//            RandomErasing(scale=(.1, .4), ratio=(.3, 1/.3), p=0.7), Resize([224, 224])])
// applied to fake_img.repeat(8, 1, 1, 1), written in ATen with torchvision's tensor
// arithmetic (float32 grids, the same operation order) so that fixed parameters give
// torchvision's values (tests/fixtures/oneshot_augment/make_fixture.py). Differentiable
// w.r.t. the images and device-agnostic. Internal to core/adapt (LibTorch).
//
// Quirks of the official code, kept on purpose:
// - torchvision draws one parameter set per call, so the 8 repeated copies are
//   augmented identically (ApplyOneshotAugment takes one OneshotAugmentParams per batch).
// - The generator's images lie in about [-1, 1] and are not clamped, but every colour
//   blend (brightness, contrast, saturation) clamps to [0, 1], the range of a float image
//   in torchvision: after the first of them the negative half of the image is black. Hue,
//   when drawn first, sees the unclamped image; its HSV round trip clamps the derived
//   channels p, q, t to [0, 1] but not V, so negative values can survive it.
// - The perspective warp samples bilinearly and then multiplies by a bilinearly sampled
//   mask of ones (torchvision's fill path, taken since RandomPerspective passes fill as a
//   list): pixels near the warped border are attenuated twice. The affine warp samples
//   the nearest pixel, where the same mask path changes nothing for fill 0.
// - Translations and erased sizes are rounded half to even (Python's round()).
// - Resize of a tensor in torchvision 0.14 is bilinear without antialiasing
//   (antialias=None means False for tensors), skipped when the size already matches.
#ifndef GANSERVE_CORE_ADAPT_ONESHOT_AUGMENT_H_
#define GANSERVE_CORE_ADAPT_ONESHOT_AUGMENT_H_

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <random>

namespace ganserve::core::adapt {

// One draw of the official augmentation's parameters (torchvision draws one set per batch).
struct OneshotAugmentParams {
  double angle = 0;                          // RandomAffine degrees, uniform(-15, 15)
  int64_t translate_x = 0, translate_y = 0;  // pixels, as torchvision rounds them
  double shear_x = 0;                        // degrees, uniform(-5, 5); shear_y is 0
  // (x, y): top-left, top-right, bottom-right, bottom-left
  std::array<std::array<int64_t, 2>, 4> perspective_end{};
  std::array<int, 4> jitter_order{0, 1, 2, 3};  // 0 brightness, 1 contrast, 2 saturation, 3 hue
  double brightness = 1, contrast = 1, saturation = 1, hue = 0;
  bool erase = false;
  int64_t erase_top = 0, erase_left = 0, erase_height = 0, erase_width = 0;
};

// Draws with torchvision 0.14's distributions and ranges (not its RNG stream), in its
// order: affine, perspective (always applied, p = 1), colour jitter, erasing (p = 0.7, up
// to 10 tries at a rectangle that fits, none if all fail). `perspective_end` of an
// untransformed image is the corners {0, 0}, {W-1, 0}, {W-1, H-1}, {0, H-1}.
OneshotAugmentParams DrawOneshotAugmentParams(int64_t height, int64_t width, std::mt19937_64& rng);

// images [N, 3, H, W] float (any range) -> [N, 3, out_size, out_size], differentiable
// w.r.t. images: affine, perspective, the colour ops in p.jitter_order, erasing, resize.
at::Tensor ApplyOneshotAugment(const at::Tensor& images, const OneshotAugmentParams& p, int64_t out_size = 224);

// The single operations, exposed for tests. All take [N, C, H, W] (C = 3 for the colour
// ops) and return a new tensor.
// Rotation by `angle` degrees and x-shear by `shear_x` degrees about the image centre,
// then translation by (tx, ty) pixels; nearest sampling, zeros outside.
at::Tensor AffineNearest(const at::Tensor& img, double angle, int64_t tx, int64_t ty, double shear_x);
// Maps the image corners (start, as torchvision: {0, 0}, {W-1, 0}, {W-1, H-1}, {0, H-1})
// to `end`; bilinear sampling, zeros outside, then the fill mask (see above).
at::Tensor PerspectiveBilinear(const at::Tensor& img, const std::array<std::array<int64_t, 2>, 4>& end);
at::Tensor AdjustBrightness(const at::Tensor& img, double f);
at::Tensor AdjustContrast(const at::Tensor& img, double f);
at::Tensor AdjustSaturation(const at::Tensor& img, double f);
at::Tensor AdjustHue(const at::Tensor& img, double f);  // f in [-0.5, 0.5]
// Zeros rows [top, top+h) and columns [left, left+w), out of place.
at::Tensor EraseRect(const at::Tensor& img, int64_t top, int64_t left, int64_t h, int64_t w);
// The four colour ops in p.jitter_order with p's factors.
at::Tensor ApplyColorJitter(const at::Tensor& img, const OneshotAugmentParams& p);

// Helpers the warps use, exposed for tests.
// The inverse affine matrix [a, b, c, d, e, f] that torchvision builds for a tensor
// (centre 0, scale 1, shear (shear_x, 0)): the output pixel at centred coordinates
// (X, Y) = (x - W/2 + 0.5, y - H/2 + 0.5) samples centred source (aX + bY + c, dX + eY + f).
std::array<double, 6> InverseAffineMatrix(double angle, int64_t tx, int64_t ty, double shear_x);
// The 8 coefficients that map the output point (x, y) to the source point ((c0 x + c1 y +
// c2) / (c6 x + c7 y + 1), (c3 x + c4 y + c5) / (c6 x + c7 y + 1)), where pixel i's centre
// is at i + 0.5 (torchvision's grid), solved as torchvision does (float32 least squares
// on the CPU) from `end` to the corners of a width x height image.
std::array<double, 8> PerspectiveCoefficients(int64_t height, int64_t width,
                                              const std::array<std::array<int64_t, 2>, 4>& end);

}  // namespace ganserve::core::adapt

#endif  // GANSERVE_CORE_ADAPT_ONESHOT_AUGMENT_H_
