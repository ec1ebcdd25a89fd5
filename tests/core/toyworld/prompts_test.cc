#include "core/toyworld/prompts.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "absl/strings/match.h"

namespace ganserve::core::toyworld {
namespace {

Scene OneShape(Style style, ShapeKind kind, ColourName colour) {
  Scene s;
  s.style = style;
  s.shapes = {Shape{kind, colour}};
  return s;
}

TEST(ClaimTest, PartialClaimsHoldOfEveryMatchingScene) {
  const Scene red_circle_photo = OneShape(Style::kPhoto, ShapeKind::kCircle, ColourName::kRed);
  const Scene red_circle_sketch = OneShape(Style::kPencilSketch, ShapeKind::kCircle, ColourName::kRed);
  Scene pair = OneShape(Style::kPhoto, ShapeKind::kStar, ColourName::kBlue);
  pair.shapes.push_back(Shape{ShapeKind::kCircle, ColourName::kGreen});

  const Claim red{std::nullopt, std::nullopt, ColourName::kRed, ""};
  EXPECT_TRUE(Holds(red, red_circle_photo));
  EXPECT_TRUE(Holds(red, red_circle_sketch));
  EXPECT_FALSE(Holds(red, pair));
  const Claim sketch{Style::kPencilSketch, std::nullopt, std::nullopt, ""};
  EXPECT_FALSE(Holds(sketch, red_circle_photo));
  EXPECT_TRUE(Holds(sketch, red_circle_sketch));
  // Kind and colour are claimed of one shape: the pair has a blue star and a green
  // circle, not a green star.
  EXPECT_TRUE(Holds(Claim{std::nullopt, ShapeKind::kStar, ColourName::kBlue, ""}, pair));
  EXPECT_FALSE(Holds(Claim{std::nullopt, ShapeKind::kStar, ColourName::kGreen, ""}, pair));
  // Full captions: the same style and shapes in any order.
  Scene swapped = pair;
  std::swap(swapped.shapes[0], swapped.shapes[1]);
  EXPECT_EQ(Key(pair), Key(swapped));
  EXPECT_TRUE(Holds(Claim{std::nullopt, std::nullopt, std::nullopt, Key(pair)}, swapped));
  EXPECT_FALSE(Holds(Claim{std::nullopt, std::nullopt, std::nullopt, Key(pair)}, red_circle_photo));
}

TEST(ClaimTest, DrawnCaptionsAreTrueOfTheirSceneAndSeeded) {
  const std::vector<std::string> templates = {"a photo of a {}.", "a drawing of the {}."};
  std::set<std::string> texts;
  int templated = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    const Scene scene = RandomScene(seed);
    std::mt19937_64 rng(seed), again(seed);
    const ClaimedCaption c = DrawTrainingCaption(scene, templates, rng);
    EXPECT_TRUE(Holds(c.claim, scene)) << c.text;
    EXPECT_EQ(DrawTrainingCaption(scene, templates, again).text, c.text);
    texts.insert(c.text);
    templated += absl::StrContains(c.text, "of the") || absl::StartsWith(c.text, "a photo of a ");
  }
  EXPECT_GT(texts.size(), 200u);  // varied
  EXPECT_GT(templated, 20);
}

TEST(PromptsTest, ClassPromptsFollowTheClassOrder) {
  EXPECT_EQ(ShapePrompts(), (std::vector<std::string>{"a circle", "a square", "a triangle", "a star"}));
  EXPECT_EQ(ColourPrompts().front(), "a red shape");
  EXPECT_EQ(ColourPrompts()[5], "an orange shape");
  EXPECT_EQ(StylePrompts(), (std::vector<std::string>{"a photo", "a pencil sketch", "a painting"}));
}

TEST(PromptsTest, CorpusHoldsCaptionsPromptsAndTemplatedPhrases) {
  const std::vector<std::string> corpus = Corpus({"a bad photo of a {}."});
  const std::set<std::string> all(corpus.begin(), corpus.end());
  EXPECT_TRUE(all.count("a pencil sketch"));
  EXPECT_TRUE(all.count("a bad photo of a pencil sketch."));
  EXPECT_TRUE(all.count("a photo of a red circle"));
  EXPECT_TRUE(all.count("an orange shape"));
}

// A caption of an empty scene claims exactly that: true of empty scenes of its style only,
// while a bare style phrase ("a pencil sketch") stays true of every sketch.
TEST(ClaimTest, EmptyScenesHaveTheirOwnCaptions) {
  const Scene empty{{}, Style::kPencilSketch, {}};
  std::mt19937_64 rng(3);
  const ClaimedCaption c = DrawTrainingCaption(empty, {}, rng);
  EXPECT_TRUE(Holds(c.claim, empty)) << c.text;
  Scene circle = empty;
  circle.shapes.push_back(Shape{ShapeKind::kCircle, ColourName::kRed});
  EXPECT_FALSE(Holds(c.claim, circle)) << c.text;
  EXPECT_FALSE(Holds(c.claim, Scene{{}, Style::kPhoto, {}})) << c.text;
  EXPECT_TRUE(Holds(Claim{Style::kPencilSketch, std::nullopt, std::nullopt, ""}, empty));
}

}  // namespace
}  // namespace ganserve::core::toyworld
