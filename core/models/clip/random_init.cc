#include "core/models/clip/random_init.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/util/np_random.h"

namespace ganserve::core::clip {

ClipConfig VitB32Config() {
  ClipConfig c;
  c.embed_dim = 512;
  c.image_resolution = 224;
  c.vision_layers = 12;
  c.vision_width = 768;
  c.vision_patch_size = 32;
  c.vision_heads = 12;
  c.context_length = 77;
  c.vocab_size = 49408;
  c.transformer_width = 512;
  c.transformer_heads = 8;
  c.transformer_layers = 12;
  return c;
}

ClipConfig TinyClipConfig() {
  ClipConfig c = VitB32Config();
  c.embed_dim = 64;
  c.vision_layers = 1;
  c.vision_width = 64;
  c.vision_heads = 1;
  c.transformer_width = 64;
  c.transformer_heads = 1;
  c.transformer_layers = 1;
  return c;
}

std::map<std::string, FloatTensor> RandomClipWeights(const ClipConfig& c, uint32_t seed) {
  NumpyRandomState rng(seed);
  std::map<std::string, FloatTensor> out;
  auto randn = [&](const std::string& name, std::vector<int64_t> shape) {
    FloatTensor t;
    t.shape = shape;
    t.data = rng.Randn(static_cast<size_t>(NumElements(shape)));
    for (auto& v : t.data) v *= 0.02f;
    out[name] = std::move(t);
  };
  auto fill = [&](const std::string& name, std::vector<int64_t> shape, float v) {
    out[name] = FloatTensor{shape, std::vector<float>(static_cast<size_t>(NumElements(shape)), v)};
  };
  const int64_t vw = c.vision_width, tw = c.transformer_width, e = c.embed_dim;
  const int64_t grid = c.image_resolution / c.vision_patch_size;
  randn("visual.conv1.weight", {vw, 3, c.vision_patch_size, c.vision_patch_size});
  randn("visual.class_embedding", {vw});
  randn("visual.positional_embedding", {grid * grid + 1, vw});
  fill("visual.ln_pre.weight", {vw}, 1);
  fill("visual.ln_pre.bias", {vw}, 0);
  fill("visual.ln_post.weight", {vw}, 1);
  fill("visual.ln_post.bias", {vw}, 0);
  randn("visual.proj", {vw, e});
  randn("token_embedding.weight", {c.vocab_size, tw});
  randn("positional_embedding", {c.context_length, tw});
  fill("ln_final.weight", {tw}, 1);
  fill("ln_final.bias", {tw}, 0);
  randn("text_projection", {tw, e});
  fill("logit_scale", {}, static_cast<float>(std::log(100.0)));
  auto blocks = [&](const std::string& p, int n, int64_t w) {
    for (int i = 0; i < n; ++i) {
      const std::string b = absl::StrCat(p, i, ".");
      randn(b + "attn.in_proj_weight", {3 * w, w});
      fill(b + "attn.in_proj_bias", {3 * w}, 0);
      randn(b + "attn.out_proj.weight", {w, w});
      fill(b + "attn.out_proj.bias", {w}, 0);
      fill(b + "ln_1.weight", {w}, 1);
      fill(b + "ln_1.bias", {w}, 0);
      fill(b + "ln_2.weight", {w}, 1);
      fill(b + "ln_2.bias", {w}, 0);
      randn(b + "mlp.c_fc.weight", {4 * w, w});
      fill(b + "mlp.c_fc.bias", {4 * w}, 0);
      randn(b + "mlp.c_proj.weight", {w, 4 * w});
      fill(b + "mlp.c_proj.bias", {w}, 0);
    }
  };
  blocks("visual.transformer.resblocks.", c.vision_layers, vw);
  blocks("transformer.resblocks.", c.transformer_layers, tw);
  return out;
}

std::string SyntheticVocabulary() {
  // The 256 stand-in characters of the byte-level BPE, in byte order.
  std::vector<std::string> chars;
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const int cp = printable ? b : 256 + n++;
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    chars.push_back(s);
  }
  std::string out = "#version: 0.2 (ganserve synthetic vocabulary: not CLIP's)\n";
  int lines = 0;
  for (int i = 0; i < 256 && lines < 48894; ++i) {
    for (int j = 0; j < 256 && lines < 48894; ++j, ++lines) absl::StrAppend(&out, chars[i], " ", chars[j], "\n");
  }
  return out;
}

}  // namespace ganserve::core::clip
