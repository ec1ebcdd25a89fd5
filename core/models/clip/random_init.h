// Seeded random CLIP weights and a synthetic BPE vocabulary, for the built-in demo
// pack, benchmarks and tests. The real vocabulary ships with OpenAI's weights and is
// not ganserve's to distribute; the synthetic one has the same format and size (49408
// tokens) but its merges are arbitrary byte pairs, so it tokenizes without meaning.
#ifndef GANSERVE_CORE_MODELS_CLIP_RANDOM_INIT_H_
#define GANSERVE_CORE_MODELS_CLIP_RANDOM_INIT_H_

#include <cstdint>
#include <map>
#include <string>

#include "core/models/clip/clip_model.h"
#include "core/util/tensor_data.h"

namespace ganserve::core::clip {

// ViT-B/32 sizes: embed 512, vision 768 x 12 (patch 32, 224 px), text 512 x 12.
ClipConfig VitB32Config();
// A small ViT for demos: embed 64, vision 64 x 1 (patch 32, 224 px), text 64 x 1.
ClipConfig TinyClipConfig();

// N(0, 0.02) weights (layer norms at 1 / 0, logit_scale ln(100)) in OpenAI's key names.
std::map<std::string, FloatTensor> RandomClipWeights(const ClipConfig& config, uint32_t seed);

// "#version: 0.2" plus 48894 merge lines over byte pairs.
std::string SyntheticVocabulary();

}  // namespace ganserve::core::clip

#endif  // GANSERVE_CORE_MODELS_CLIP_RANDOM_INIT_H_
