#include "core/toyworld/toy_models.h"

#include <gtest/gtest.h>

#include "core/models/clip/bpe_learner.h"
#include "core/models/clip/random_init.h"
#include "core/models/stylegan2/random_init.h"
#include "core/toyworld/prompts.h"

namespace ganserve::core::toyworld {
namespace {

std::unique_ptr<clip::ClipModel> RandomClip(int vocab) {
  std::map<std::string, TensorView> views;
  for (const auto& [k, t] : clip::RandomClipWeights(ToyClipConfig(vocab), 3)) {
    views[k] = ViewOf(std::make_shared<const FloatTensor>(t));
  }
  return *clip::ClipModel::FromTensors(views, "cpu");
}

TEST(ToyModelsTest, ArchitecturesFitTheirFormats) {
  const auto g = ToyGeneratorConfig();
  EXPECT_EQ(g.resolution, 64);
  EXPECT_EQ(g.n_latent, 10);
  EXPECT_EQ(g.channels.at(64), 32);
  // Generator weights of this config load back as the same architecture.
  std::map<std::string, TensorView> views;
  for (const auto& [k, t] : stylegan2::RandomGeneratorWeights(g, 1)) {
    views[k] = ViewOf(std::make_shared<const FloatTensor>(t));
  }
  auto inferred = stylegan2::InferGeneratorConfig(views);
  ASSERT_TRUE(inferred.ok()) << inferred.status();
  EXPECT_EQ(inferred->channels, g.channels);
  EXPECT_EQ(inferred->n_mlp, 4);
  const SceneOptions scenes = ToyGeneratorScenes();
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const Scene s = RandomScene(seed, scenes);
    EXPECT_EQ(s.style, Style::kPhoto);
    EXPECT_EQ(s.shapes.size(), 1u);
  }
}

TEST(ToyModelsTest, ClassifierGivesADistributionPerAttribute) {
  auto vocab = clip::LearnBpeVocabulary(Corpus({}), 2000);
  ASSERT_TRUE(vocab.ok());
  auto tok = clip::Tokenizer::FromText(*vocab);
  ASSERT_TRUE(tok.ok());
  const auto model = RandomClip(static_cast<int>((*tok)->vocab_size()));
  auto classifier = ToyClassifier::Create(*model, **tok);
  ASSERT_TRUE(classifier.ok()) << classifier.status();
  auto c = classifier->Classify({RenderScene(RandomScene(1), 64, 1), RenderScene(RandomScene(2), 96, 2)});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 2u);
  for (const Classification& x : *c) {
    for (const auto* s : {&x.shape, &x.colour, &x.style}) {
      float sum = 0;
      for (float p : s->probabilities) sum += p;
      EXPECT_NEAR(sum, 1.0f, 1e-5);
      EXPECT_EQ(s->probabilities[static_cast<size_t>(s->best)], s->best_probability);
    }
    EXPECT_EQ(x.shape.probabilities.size(), 4u);
    EXPECT_EQ(x.colour.probabilities.size(), 6u);
    EXPECT_EQ(x.style.probabilities.size(), 3u);
  }
  EXPECT_EQ(ToJson((*c)[0])["style"]["all"].size(), 3u);
  // A model of another vocabulary is refused.
  const auto other = RandomClip(600);
  EXPECT_EQ(ToyClassifier::Create(*other, **tok).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ganserve::core::toyworld
