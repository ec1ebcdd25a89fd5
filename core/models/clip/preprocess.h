// CLIP image preprocessing for user images, as OpenAI's `preprocess` does it with PIL:
// Resize(shorter side -> size, BICUBIC), CenterCrop(size), RGB, /255, Normalize.
// The bicubic resize reproduces Pillow's algorithm exactly (a = -0.5, support widened
// by the downscale factor, i.e. antialiased; separable passes horizontal then
// vertical, each rounded to 8 bits with 22-bit fixed-point weights).
//
// Training losses use a different path: generator output in [-1, 1] goes through
// (x + 1) / 2, torch bicubic interpolation (a = -0.75, no antialias) and the same
// normalisation, differentiably, as StyleGAN-NADA does. The two paths give different
// pixels (by design of the reference code); this file is the user-image path.
#ifndef GANSERVE_CORE_MODELS_CLIP_PREPROCESS_H_
#define GANSERVE_CORE_MODELS_CLIP_PREPROCESS_H_

#include "core/io/image_codec.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::clip {

inline constexpr float kClipMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
inline constexpr float kClipStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};

// Pillow's resampling filters (both antialiased on downscale: the support widens with
// the scale factor).
enum class PilFilter {
  kBicubic,   // Image.BICUBIC: CLIP's preprocess
  kBilinear,  // Image.BILINEAR: torchvision Resize's default on PIL images
  kLanczos,   // Image.LANCZOS (ANTIALIAS): FFHQ face alignment
};

// Pillow's Image.resize((width, height), filter) for an RGB image.
Rgb8Image PilResize(const Rgb8Image& in, int width, int height, PilFilter filter);
inline Rgb8Image PilResizeBicubic(const Rgb8Image& in, int width, int height) {
  return PilResize(in, width, height, PilFilter::kBicubic);
}

// torchvision Resize(size, interpolation) (shorter side to `size`) then CenterCrop(size)
// on a PIL image. CLIP passes BICUBIC; torchvision's default is BILINEAR.
Rgb8Image ResizeAndCenterCrop(const Rgb8Image& in, int size, PilFilter filter = PilFilter::kBicubic);

// [1, 3, H, W] float32: pixel / 255, then (x - mean) / std per channel.
FloatTensor NormalizeForClip(const Rgb8Image& image);

// The full user-image path: ResizeAndCenterCrop then NormalizeForClip.
FloatTensor PreprocessForClip(const Rgb8Image& image, int size);

}  // namespace ganserve::core::clip

#endif  // GANSERVE_CORE_MODELS_CLIP_PREPROCESS_H_
