#include "core/toyworld/toy_models.h"

#include <algorithm>
#include <cmath>

#include "core/models/clip/preprocess.h"
#include "core/models/stylegan2/random_init.h"
#include "core/toyworld/prompts.h"
#include "core/util/status_macros.h"

namespace ganserve::core::toyworld {
namespace {

void NormalizeRows(FloatTensor* t) {
  const int64_t d = t->shape[1];
  for (int64_t i = 0; i < t->shape[0]; ++i) {
    float* row = t->data.data() + i * d;
    double n = 0;
    for (int64_t j = 0; j < d; ++j) n += static_cast<double>(row[j]) * row[j];
    const float inv = static_cast<float>(1.0 / std::sqrt(std::max(n, 1e-24)));
    for (int64_t j = 0; j < d; ++j) row[j] *= inv;
  }
}

ClassScores Score(const float* image, const FloatTensor& prompts, float scale) {
  const int64_t k = prompts.shape[0], d = prompts.shape[1];
  ClassScores s;
  std::vector<double> logits(static_cast<size_t>(k));
  for (int64_t c = 0; c < k; ++c) {
    double dot = 0;
    for (int64_t j = 0; j < d; ++j) dot += static_cast<double>(image[j]) * prompts.data[c * d + j];
    logits[c] = scale * dot;
  }
  const double top = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (double& l : logits) sum += (l = std::exp(l - top));
  for (int64_t c = 0; c < k; ++c) {
    s.probabilities.push_back(static_cast<float>(logits[c] / sum));
    if (s.probabilities[c] > s.best_probability) {
      s.best_probability = s.probabilities[c];
      s.best = static_cast<int>(c);
    }
  }
  return s;
}

}  // namespace

stylegan2::GeneratorConfig ToyGeneratorConfig() {
  return stylegan2::MakeConfigWithChannels(64, 128, 4, {{4, 128}, {8, 128}, {16, 128}, {32, 64}, {64, 32}});
}

SceneOptions ToyGeneratorScenes() {
  SceneOptions o;
  o.styles = {Style::kPhoto};
  o.max_shapes = 1;
  return o;
}

clip::ClipConfig ToyClipConfig(int vocab_size) {
  clip::ClipConfig c;
  c.embed_dim = 128;
  c.image_resolution = 64;
  c.vision_layers = 4;
  c.vision_width = 128;
  c.vision_patch_size = 8;
  c.vision_heads = 2;  // width / 64, as OpenAI's build_model infers
  c.context_length = 32;
  c.vocab_size = vocab_size;
  c.transformer_width = 128;
  c.transformer_heads = 2;
  c.transformer_layers = 4;
  return c;
}

nlohmann::json ToJson(const Classification& c) {
  auto one = [](const ClassScores& s, const std::vector<std::string>& names) {
    nlohmann::json p = nlohmann::json::object();
    for (size_t i = 0; i < names.size(); ++i) p[names[i]] = s.probabilities[i];
    return nlohmann::json{{"best", names[static_cast<size_t>(s.best)]}, {"p", s.best_probability}, {"all", p}};
  };
  return {{"shape", one(c.shape, ShapeNames())},
          {"colour", one(c.colour, ColourNames())},
          {"style", one(c.style, StyleNames())}};
}

absl::StatusOr<ToyClassifier> ToyClassifier::Create(const clip::ClipModel& model, const clip::Tokenizer& tokenizer) {
  RETURN_IF_ERROR(tokenizer.CheckModelVocabulary(model.config().vocab_size));
  std::vector<FloatTensor> prompts;
  for (const auto& texts : {ShapePrompts(), ColourPrompts(), StylePrompts()}) {
    std::vector<std::vector<int>> rows;
    for (const std::string& t : texts) {
      ASSIGN_OR_RETURN(std::vector<int> ids, tokenizer.Tokenize(t, false, model.config().context_length));
      rows.push_back(std::move(ids));
    }
    ASSIGN_OR_RETURN(FloatTensor e, model.EncodeText(rows));
    NormalizeRows(&e);
    prompts.push_back(std::move(e));
  }
  return ToyClassifier(&model, std::move(prompts));
}

absl::StatusOr<std::vector<Classification>> ToyClassifier::Classify(const std::vector<Rgb8Image>& images) const {
  std::vector<Classification> out;
  if (images.empty()) return out;
  const int r = model_->config().image_resolution;
  FloatTensor batch;
  batch.shape = {0, 3, r, r};
  for (const Rgb8Image& img : images) {
    const FloatTensor x = clip::PreprocessForClip(img, r);
    batch.data.insert(batch.data.end(), x.data.begin(), x.data.end());
    batch.shape[0] += 1;
  }
  ASSIGN_OR_RETURN(FloatTensor e, model_->EncodeImage(batch));
  NormalizeRows(&e);
  const float scale = std::exp(model_->logit_scale());
  const int64_t d = e.shape[1];
  for (int64_t i = 0; i < e.shape[0]; ++i) {
    const float* row = e.data.data() + i * d;
    out.push_back({Score(row, prompts_[0], scale), Score(row, prompts_[1], scale), Score(row, prompts_[2], scale)});
  }
  return out;
}

}  // namespace ganserve::core::toyworld
