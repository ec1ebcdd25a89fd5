// The toy world: determinism (committed hashes), the spread of random scenes, pixel
// statistics later semantic tests rely on (style saturation and texture, dominant hue,
// filled area), and captions that are true to their scene.
#include "core/toyworld/scenes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/util/sha256.h"

namespace ganserve::core::toyworld {
namespace {

struct Hsv {
  double h = 0, s = 0, v = 0;  // h in degrees
};

Hsv ToHsv(const uint8_t* p) {
  const double r = p[0] / 255.0, g = p[1] / 255.0, b = p[2] / 255.0;
  const double hi = std::max({r, g, b}), lo = std::min({r, g, b});
  Hsv out;
  out.v = hi;
  out.s = hi > 0 ? (hi - lo) / hi : 0;
  if (hi == lo) return out;
  if (hi == r) {
    out.h = 60 * std::fmod((g - b) / (hi - lo) + 6, 6.0);
  } else if (hi == g) {
    out.h = 60 * ((b - r) / (hi - lo) + 2);
  } else {
    out.h = 60 * ((r - g) / (hi - lo) + 4);
  }
  return out;
}

double HueDistance(double a, double b) {
  const double d = std::fabs(a - b);
  return std::min(d, 360 - d);
}

double MeanSaturation(const Rgb8Image& im) {
  double sum = 0;
  for (size_t i = 0; i < im.pixels.size(); i += 3) sum += ToHsv(&im.pixels[i]).s;
  return sum / (im.pixels.size() / 3.0);
}

// The canonical colour whose hue is nearest to most pixels of at least `min_saturation`;
// -1 when there are none.
int DominantColour(const Rgb8Image& im, double min_saturation) {
  std::vector<double> hues;
  for (ColourName c : AllColours()) {
    const Rgb rgb = CanonicalRgb(c);
    const uint8_t p[3] = {rgb.r, rgb.g, rgb.b};
    hues.push_back(ToHsv(p).h);
  }
  std::vector<int> votes(hues.size(), 0);
  for (size_t i = 0; i < im.pixels.size(); i += 3) {
    const Hsv hsv = ToHsv(&im.pixels[i]);
    if (hsv.s < min_saturation || hsv.v < 0.15) continue;
    size_t best = 0;
    for (size_t c = 1; c < hues.size(); ++c) {
      if (HueDistance(hsv.h, hues[c]) < HueDistance(hsv.h, hues[best])) best = c;
    }
    ++votes[best];
  }
  const auto top = std::max_element(votes.begin(), votes.end());
  return *top == 0 ? -1 : static_cast<int>(top - votes.begin());
}

int ColourIndex(ColourName c) {
  const std::vector<ColourName> all = AllColours();
  return static_cast<int>(std::find(all.begin(), all.end(), c) - all.begin());
}

double SaturatedFraction(const Rgb8Image& im, double min_saturation) {
  int n = 0;
  for (size_t i = 0; i < im.pixels.size(); i += 3) n += ToHsv(&im.pixels[i]).s >= min_saturation ? 1 : 0;
  return n / (im.pixels.size() / 3.0);
}

// Mean absolute second difference along rows inside shapes (five saturated pixels in a
// row): the fill's texture, blind to smooth lighting gradients.
double FillTexture(const Rgb8Image& im) {
  double sum = 0;
  int n = 0;
  for (int y = 0; y < im.height; ++y) {
    for (int x = 2; x + 2 < im.width; ++x) {
      const uint8_t* p = &im.pixels[(static_cast<size_t>(y) * im.width + x) * 3];
      bool inside = true;
      for (ptrdiff_t k = -2; k <= 2; ++k) inside &= ToHsv(p + 3 * k).s >= 0.35;
      if (!inside) continue;
      for (int c = 0; c < 3; ++c) sum += std::abs(p[c - 3] - 2 * p[c] + p[c + 3]);
      ++n;
    }
  }
  return n == 0 ? 0 : sum / (3.0 * n);
}

std::string Sha(const Rgb8Image& im) {
  return Sha256Hex(absl::string_view(reinterpret_cast<const char*>(im.pixels.data()), im.pixels.size()));
}

std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> out;
  std::string w;
  for (char ch : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(ch))) {
      w.push_back(ch);
    } else if (!w.empty()) {
      out.push_back(w);
      w.clear();
    }
  }
  return out;
}

Scene Single(ShapeKind kind, ColourName colour, Style style, float size = 0.25f) {
  Scene s;
  s.style = style;
  s.background = {BackgroundKind::kPlain, {160, 160, 160}};
  s.shapes.push_back({kind, colour, 0.5f, 0.5f, size, 0});
  return s;
}

TEST(ToyWorldScenes, SameSeedSameSceneBytesAndCaptions) {
  for (uint64_t seed : {1u, 2u, 77u, 123456u}) {
    const Scene a = RandomScene(seed);
    const Scene b = RandomScene(seed);
    ASSERT_EQ(a.shapes.size(), b.shapes.size());
    for (size_t i = 0; i < a.shapes.size(); ++i) {
      EXPECT_EQ(a.shapes[i].cx, b.shapes[i].cx);
      EXPECT_EQ(a.shapes[i].cy, b.shapes[i].cy);
      EXPECT_EQ(a.shapes[i].size, b.shapes[i].size);
      EXPECT_EQ(a.shapes[i].rotation, b.shapes[i].rotation);
    }
    EXPECT_EQ(Describe(a), Describe(b));
    EXPECT_EQ(Captions(a, 5, 6), Captions(b, 5, 6));
    const Rgb8Image ia = RenderScene(a, 64, 9);
    EXPECT_EQ(ia.width, 64);
    EXPECT_EQ(ia.height, 64);
    EXPECT_EQ(ia.pixels, RenderScene(b, 64, 9).pixels);
    EXPECT_NE(ia.pixels, RenderScene(a, 64, 10).pixels) << "the noise seed changes the texture";
  }
  std::set<std::string> descriptions;
  for (uint64_t seed = 0; seed < 20; ++seed) descriptions.insert(Describe(RandomScene(seed)));
  EXPECT_GE(descriptions.size(), 15u) << "seeds give different scenes";
  const Rgb8Image big = RenderScene(RandomScene(3), 96, 1);
  EXPECT_EQ(big.width, 96);
  EXPECT_EQ(big.pixels.size(), 96u * 96u * 3u);
}

// A change in scene drawing or rendering shows here; update the values only on purpose.
TEST(ToyWorldScenes, CommittedHashes) {
  struct Case {
    Style style;
    uint64_t seed;
    const char* description;
    const char* sha256;
  };
  const Case cases[] = {
      {Style::kPhoto, 2026, "a photo of a purple square and a red star",
       "884043a49fd07d88b7282c6e2acc5b8941f32594503fa450d4f38e5986f4c590"},
      {Style::kPencilSketch, 2029, "a pencil sketch of a yellow triangle and a red triangle",
       "5c4d81c7d249fdb5c374c5a6c8e455a0c13c647358486d68fb5fec00bdc58d43"},
      {Style::kPainting, 2033, "a painting of two yellow stars",
       "5e603109765c6b9e296ed505ba61d5d44cf91717e27d9060ac91eb5ea0ef568d"},
  };
  for (const Case& c : cases) {
    SceneOptions options;
    options.styles = {c.style};
    const Scene scene = RandomScene(c.seed, options);
    EXPECT_EQ(Describe(scene), c.description);
    EXPECT_EQ(Sha(RenderScene(scene, 64, c.seed)), c.sha256) << Name(c.style);
  }
}

TEST(ToyWorldScenes, EveryValueAppearsWithPlausibleFrequency) {
  constexpr int kScenes = 600;
  std::map<ShapeKind, int> kinds;
  std::map<ColourName, int> colours;
  std::map<Style, int> styles;
  std::map<BackgroundKind, int> backgrounds;
  int shapes = 0, pairs = 0, identical = 0;
  for (int i = 0; i < kScenes; ++i) {
    const Scene s = RandomScene(SceneSeed(42, i));
    ++styles[s.style];
    ++backgrounds[s.background.kind];
    ASSERT_GE(s.shapes.size(), 1u);
    ASSERT_LE(s.shapes.size(), 2u);
    for (const Shape& shape : s.shapes) {
      ++kinds[shape.kind];
      ++colours[shape.colour];
      ++shapes;
    }
    if (s.shapes.size() == 2) {
      ++pairs;
      identical += s.shapes[0].kind == s.shapes[1].kind && s.shapes[0].colour == s.shapes[1].colour ? 1 : 0;
    }
  }
  // Expected counts with generous bounds (binomial deviations are about 5-10 %).
  for (Style st : AllStyles()) EXPECT_NEAR(styles[st], kScenes / 3.0, kScenes / 3.0 * 0.2) << Name(st);
  for (ShapeKind k : AllShapeKinds()) EXPECT_NEAR(kinds[k], shapes / 4.0, shapes / 4.0 * 0.2) << Name(k);
  for (ColourName c : AllColours()) EXPECT_NEAR(colours[c], shapes / 6.0, shapes / 6.0 * 0.25) << Name(c);
  EXPECT_EQ(backgrounds.size(), 3u);
  EXPECT_NEAR(pairs, kScenes / 2.0, kScenes * 0.08);
  // 0.25 chosen identical plus chance matches (1/24 of the rest).
  EXPECT_NEAR(identical, pairs * (0.25 + 0.75 / 24), pairs * 0.1);
}

TEST(ToyWorldScenes, OptionsRestrictTheWorld) {
  SceneOptions options;
  options.styles = {Style::kPhoto};
  options.kinds = {ShapeKind::kStar, ShapeKind::kSquare};
  options.colours = {ColourName::kBlue};
  options.min_shapes = options.max_shapes = 2;
  for (int i = 0; i < 50; ++i) {
    const Scene s = RandomScene(SceneSeed(7, i), options);
    EXPECT_EQ(s.style, Style::kPhoto);
    ASSERT_EQ(s.shapes.size(), 2u);
    for (const Shape& shape : s.shapes) {
      EXPECT_TRUE(shape.kind == ShapeKind::kStar || shape.kind == ShapeKind::kSquare);
      EXPECT_EQ(shape.colour, ColourName::kBlue);
    }
  }
  options.min_shapes = options.max_shapes = 1;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(RandomScene(SceneSeed(8, i), options).shapes.size(), 1u);
}

// Empty scenes come at about the asked rate, render as bare background or paper, and are
// captioned as holding nothing; at rate 0 the option draws nothing, so seeds keep their scenes.
TEST(ToyWorldScenes, EmptyScenesAtTheAskedRate) {
  SceneOptions options;
  options.empty_probability = 0.25;
  int empty = 0;
  for (int i = 0; i < 400; ++i) {
    const Scene s = RandomScene(SceneSeed(5, i), options);
    if (!s.shapes.empty()) continue;
    ++empty;
    if (empty > 12) continue;
    for (const std::string& c : Captions(s, i, 6)) {
      EXPECT_TRUE(absl::StrContains(c, "nothing") || absl::StrContains(c, "empty") || absl::StrContains(c, "no shape"))
          << c;
    }
    const Rgb8Image image = RenderScene(s, 32, i);
    const auto [lo, hi] = std::minmax_element(image.pixels.begin(), image.pixels.end());
    EXPECT_GT(*hi, 0);  // something is drawn: paper or background
    if (s.style == Style::kPencilSketch) {
      EXPECT_GT(*lo, 150);  // bare paper, no graphite
    }
  }
  EXPECT_GT(empty, 70);  // 100 expected; binomial sd 8.7
  EXPECT_LT(empty, 130);
  const Scene before = RandomScene(SceneSeed(5, 3));
  options.empty_probability = 0;
  EXPECT_EQ(RenderScene(RandomScene(SceneSeed(5, 3), options), 16).pixels, RenderScene(before, 16).pixels);
  EXPECT_EQ(Describe(Scene{{}, Style::kPencilSketch, {}}), "a pencil sketch of nothing");
}

TEST(ToyWorldScenes, ShapesLieInsideTheFrameAndApart) {
  for (int i = 0; i < 600; ++i) {
    const Scene s = RandomScene(SceneSeed(11, i));
    for (const Shape& shape : s.shapes) {
      const float reach = shape.kind == ShapeKind::kSquare ? shape.size * 1.3f : shape.size;
      EXPECT_GE(shape.cx - reach, 0.0f);
      EXPECT_LE(shape.cx + reach, 1.0f);
      EXPECT_GE(shape.cy - reach, 0.0f);
      EXPECT_LE(shape.cy + reach, 1.0f);
      EXPECT_GE(shape.size, s.shapes.size() == 1 ? 0.19f : 0.08f);
      EXPECT_LE(std::fabs(shape.rotation), 20.0f);
    }
    if (s.shapes.size() == 2) {
      const Shape& a = s.shapes[0];
      const Shape& b = s.shapes[1];
      EXPECT_GE(std::hypot(a.cx - b.cx, a.cy - b.cy), 0.9f * (a.size + b.size)) << Describe(s);
    }
  }
}

// The same scenes drawn in each style: a sketch is far less saturated and mostly paper;
// a painting keeps the colour and has a textured fill.
TEST(ToyWorldSignals, StylesDifferMeasurably) {
  double sat[3] = {0, 0, 0};
  double texture[3] = {0, 0, 0};
  double bright_sketch = 0;
  constexpr int kScenes = 40;
  for (int i = 0; i < kScenes; ++i) {
    Scene s = RandomScene(SceneSeed(5, i));
    for (Style st : AllStyles()) {
      s.style = st;
      const Rgb8Image im = RenderScene(s, 64, NoiseSeed(5, i));
      const int k = static_cast<int>(st);
      sat[k] += MeanSaturation(im) / kScenes;
      texture[k] += FillTexture(im) / kScenes;
      if (st == Style::kPencilSketch) {
        int bright = 0;
        for (size_t p = 0; p < im.pixels.size(); p += 3) bright += ToHsv(&im.pixels[p]).v > 0.85 ? 1 : 0;
        bright_sketch += bright / (im.pixels.size() / 3.0) / kScenes;
      }
    }
  }
  const int photo = static_cast<int>(Style::kPhoto);
  const int sketch = static_cast<int>(Style::kPencilSketch);
  const int painting = static_cast<int>(Style::kPainting);
  RecordProperty("saturation", absl::StrCat(sat[photo], " ", sat[sketch], " ", sat[painting]));
  RecordProperty("texture", absl::StrCat(texture[photo], " ", texture[sketch], " ", texture[painting]));
  EXPECT_LT(sat[sketch], 0.35 * sat[photo]) << sat[sketch] << " vs " << sat[photo];
  EXPECT_GT(sat[painting], 0.7 * sat[photo]) << sat[painting] << " vs " << sat[photo];
  EXPECT_GT(bright_sketch, 0.75);
  EXPECT_GT(texture[painting], 2.0 * texture[photo]) << texture[painting] << " vs " << texture[photo];
}

// A single-shape image's most common saturated hue is its shape's colour: always for
// photos and paintings, almost always for the sketch's faint tint.
TEST(ToyWorldSignals, DominantHueIsTheShapeColour) {
  SceneOptions options;
  options.max_shapes = 1;
  int sketch_hits = 0;
  constexpr int kScenes = 60;
  for (int i = 0; i < kScenes; ++i) {
    Scene s = RandomScene(SceneSeed(6, i), options);
    const int want = ColourIndex(s.shapes[0].colour);
    for (Style st : AllStyles()) {
      s.style = st;
      const Rgb8Image im = RenderScene(s, 64, NoiseSeed(6, i));
      if (st == Style::kPencilSketch) {
        sketch_hits += DominantColour(im, 0.08) == want ? 1 : 0;
      } else {
        EXPECT_EQ(DominantColour(im, 0.35), want) << Describe(s);
      }
    }
  }
  EXPECT_GE(sketch_hits, kScenes * 9 / 10);
}

// At the same size a square fills more than a circle, a circle more than a triangle, a
// triangle more than a star; each near its analytic area (4, pi, 1.30, 1.12 times size^2).
TEST(ToyWorldSignals, FilledAreaFollowsTheShape) {
  constexpr float kSize = 0.25f;
  const std::map<ShapeKind, double> analytic = {{ShapeKind::kSquare, 4.0},
                                                {ShapeKind::kCircle, 3.14159265358979},
                                                {ShapeKind::kTriangle, 3 * std::sqrt(3.0) / 4},
                                                {ShapeKind::kStar, 1.1227}};
  std::map<ShapeKind, double> area;
  for (const auto& [kind, factor] : analytic) {
    const Rgb8Image im = RenderScene(Single(kind, ColourName::kBlue, Style::kPhoto, kSize), 64, 1);
    area[kind] = SaturatedFraction(im, 0.3);
    EXPECT_NEAR(area[kind], factor * kSize * kSize, 0.12 * factor * kSize * kSize) << Name(kind);
  }
  EXPECT_GT(area[ShapeKind::kSquare], area[ShapeKind::kCircle]);
  EXPECT_GT(area[ShapeKind::kCircle], area[ShapeKind::kTriangle]);
  EXPECT_GT(area[ShapeKind::kTriangle], area[ShapeKind::kStar]);
}

TEST(ToyWorldCaptions, CanonicalDescriptions) {
  EXPECT_EQ(Describe(Single(ShapeKind::kCircle, ColourName::kRed, Style::kPhoto)), "a photo of a red circle");
  EXPECT_EQ(Describe(Single(ShapeKind::kStar, ColourName::kOrange, Style::kPhoto)), "a photo of an orange star");
  Scene two = Single(ShapeKind::kSquare, ColourName::kBlue, Style::kPencilSketch, 0.15f);
  two.shapes.push_back(two.shapes[0]);
  EXPECT_EQ(Describe(two), "a pencil sketch of two blue squares");
  Scene mixed = Single(ShapeKind::kTriangle, ColourName::kYellow, Style::kPainting, 0.15f);
  mixed.shapes.push_back({ShapeKind::kStar, ColourName::kGreen, 0.7f, 0.7f, 0.15f, 0});
  EXPECT_EQ(Describe(mixed), "a painting of a yellow triangle and a green star");
}

// Every caption names the style with its own words only, exactly the scene's colours and
// shape kinds, and counts truthfully.
TEST(ToyWorldCaptions, EveryCaptionIsTrue) {
  std::set<std::string> seen;
  for (int i = 0; i < 400; ++i) {
    const Scene s = RandomScene(SceneSeed(9, i));
    std::vector<std::string> captions = Captions(s, i, 8);
    ASSERT_EQ(captions.size(), 8u);
    EXPECT_EQ(std::set<std::string>(captions.begin(), captions.end()).size(), 8u) << "distinct phrasings";
    captions.push_back(Describe(s));
    const bool pair = s.shapes.size() == 2;
    const bool identical = pair && s.shapes[0].kind == s.shapes[1].kind && s.shapes[0].colour == s.shapes[1].colour;
    std::set<std::string> want_colours, want_kinds;
    for (const Shape& shape : s.shapes) {
      want_colours.insert(std::string(Name(shape.colour)));
      want_kinds.insert(std::string(Name(shape.kind)));
    }
    for (const std::string& caption : captions) {
      seen.insert(caption);
      const std::vector<std::string> words = Words(caption);
      const std::set<std::string> word_set(words.begin(), words.end());
      for (Style st : AllStyles()) {
        bool mentioned = false;
        for (const std::string& w : StyleWords(st)) mentioned |= word_set.count(w) > 0;
        EXPECT_EQ(mentioned, st == s.style) << caption << " (" << Name(s.style) << ")";
      }
      std::set<std::string> colours, kinds;
      for (ColourName c : AllColours()) {
        if (word_set.count(std::string(Name(c)))) colours.insert(std::string(Name(c)));
      }
      for (ShapeKind k : AllShapeKinds()) {
        if (word_set.count(std::string(Name(k))) || word_set.count(std::string(Plural(k)))) {
          kinds.insert(std::string(Name(k)));
        }
      }
      EXPECT_EQ(colours, want_colours) << caption;
      EXPECT_EQ(kinds, want_kinds) << caption;
      const bool counts_two = word_set.count("two") || word_set.count("pair") || word_set.count("both");
      EXPECT_EQ(counts_two, identical) << caption;
      const bool counts_one = word_set.count("one") || word_set.count("single");
      EXPECT_TRUE(!counts_one || !pair) << caption;
      bool plural = false;
      for (ShapeKind k : AllShapeKinds()) plural |= word_set.count(std::string(Plural(k))) > 0;
      EXPECT_EQ(plural, identical) << caption;
    }
  }
  EXPECT_GT(seen.size(), 1500u) << "varied phrasings";
}

TEST(ToyWorldNames, PromptListsAndRoundTrips) {
  EXPECT_EQ(ShapeNames(), (std::vector<std::string>{"circle", "square", "triangle", "star"}));
  EXPECT_EQ(ColourNames(), (std::vector<std::string>{"red", "green", "blue", "yellow", "purple", "orange"}));
  EXPECT_EQ(StyleNames(), (std::vector<std::string>{"photo", "pencil_sketch", "painting"}));
  EXPECT_EQ(StylePhrases(), (std::vector<std::string>{"photo", "pencil sketch", "painting"}));
  for (ShapeKind k : AllShapeKinds()) EXPECT_EQ(ShapeKindFromName(Name(k)), k);
  for (ColourName c : AllColours()) EXPECT_EQ(ColourFromName(Name(c)), c);
  for (Style s : AllStyles()) {
    EXPECT_EQ(StyleFromName(Name(s)), s);
    EXPECT_EQ(StyleFromName(StylePhrase(s)), s);
  }
  EXPECT_FALSE(StyleFromName("any").has_value());
  EXPECT_EQ(WithArticle("orange star"), "an orange star");
  EXPECT_EQ(WithArticle("red circle"), "a red circle");
}

}  // namespace
}  // namespace ganserve::core::toyworld
