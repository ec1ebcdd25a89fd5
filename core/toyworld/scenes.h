// The toy world: seeded procedural scenes of one or two coloured shapes in one of three
// rendering styles, with captions built from their attributes. It is the data the project's
// own small generator and CLIP are trained and measured on, so it has no LibTorch and no
// data files, and a seed gives the same scene, the same pixels and the same captions on
// every machine: random draws come from std::mt19937_64's raw bits (no standard library
// distributions), and rendering is integer arithmetic (a fixed sine table, integer square
// roots, hashed noise).
//
// Styles:
//  - photo: a solid fill lit from the top left (a soft gradient and a highlight), a soft
//    drop shadow on the background, mild per-pixel noise.
//  - pencil_sketch: paper-white grain with graphite strokes: a doubled, wobbly outline that
//    overshoots at corners and diagonal hatching inside. The hatching keeps a faint tint of
//    the shape's colour (a coloured-pencil touch), so that captions naming the colour stay
//    true; the image as a whole stays far less saturated than a photo. The scene's
//    background is not drawn: a sketch is always on paper.
//  - painting: the colour is kept; fill and background carry directional brush streaks,
//    colour mottling and a rough, darker painted edge.
#ifndef GANSERVE_CORE_TOYWORLD_SCENES_H_
#define GANSERVE_CORE_TOYWORLD_SCENES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/io/image_codec.h"

namespace ganserve::core::toyworld {

enum class ShapeKind { kCircle, kSquare, kTriangle, kStar };
enum class ColourName { kRed, kGreen, kBlue, kYellow, kPurple, kOrange };
enum class Style { kPhoto, kPencilSketch, kPainting };
enum class BackgroundKind { kPlain, kGradient, kVignette };

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

struct Shape {
  ShapeKind kind = ShapeKind::kCircle;
  ColourName colour = ColourName::kRed;
  // Centre in image fractions, (0, 0) the top-left corner.
  float cx = 0.5f, cy = 0.5f;
  // Half extent in image fractions: the circle's radius, the square's half side, the
  // triangle's and the star's outer (circumscribed) radius.
  float size = 0.25f;
  // Degrees, clockwise; 0 is upright (triangle and star point up). Rendered at whole degrees.
  float rotation = 0;
};

// Neutral (low-saturation) backdrop of photo and painting scenes.
struct Background {
  BackgroundKind kind = BackgroundKind::kPlain;
  Rgb tone{200, 200, 200};
};

struct Scene {
  std::vector<Shape> shapes;  // 0 (an empty scene), 1 or 2, drawn in order (the second on top)
  Style style = Style::kPhoto;
  Background background;
};

// Restrictions of RandomScene; an empty list allows every value.
struct SceneOptions {
  std::vector<Style> styles;
  std::vector<ShapeKind> kinds;
  std::vector<ColourName> colours;
  int min_shapes = 1;
  int max_shapes = 2;
  // Chance that a two-shape scene holds two identical shapes (same kind and colour),
  // the scenes captioned "two blue squares".
  double identical_pair_probability = 0.25;
  // Chance that a scene holds no shape at all: the background (photo, painting) or bare
  // paper (sketch), captioned "a pencil sketch of nothing", "an empty background in a
  // photo". A CLIP that has seen such scenes does not take blank paper for a sketch of a
  // shape. At 0 (the default) nothing is drawn for it, so seeds give the scenes they gave
  // before the option existed.
  double empty_probability = 0;
};

// A scene drawn from `seed`: style, kinds and colours uniformly from the allowed values,
// sizes, positions and small rotations such that each shape lies inside the frame and two
// shapes hardly overlap (single shapes have size 0.20-0.30, pairs 0.12-0.18).
Scene RandomScene(uint64_t seed, const SceneOptions& options = {});

// Renders a square RGB image of `size` pixels (clamped to [8, 1024]), anti-aliased by 4x4
// supersampling. `noise_seed` drives grain, strokes and brush texture; the same scene, size
// and noise seed give the same bytes everywhere.
Rgb8Image RenderScene(const Scene& scene, int size = 64, uint64_t noise_seed = 0);

// `count` varied captions (distinct while the scene's phrasings last), chosen by `seed`.
// Every caption names the style, and every shape's kind and colour; "two"/"pair" only for
// two identical shapes, "one"/"single" only for a single shape.
std::vector<std::string> Captions(const Scene& scene, uint64_t seed, int count);
// The canonical caption: "a photo of a red circle", "a pencil sketch of two blue squares",
// "a painting of a yellow triangle and a green star" (shapes in scene order).
std::string Describe(const Scene& scene);

// Per-index seeds of a data set made from one base seed (scene and noise).
uint64_t SceneSeed(uint64_t base_seed, uint64_t index);
uint64_t NoiseSeed(uint64_t base_seed, uint64_t index);

// Names and class-prompt helpers.
std::vector<ShapeKind> AllShapeKinds();
std::vector<ColourName> AllColours();
std::vector<Style> AllStyles();
absl::string_view Name(ShapeKind kind);       // "circle", "square", "triangle", "star"
absl::string_view Plural(ShapeKind kind);     // "circles", ...
absl::string_view Name(ColourName colour);    // "red", "green", "blue", "yellow", "purple", "orange"
absl::string_view Name(Style style);          // identifier: "photo", "pencil_sketch", "painting"
absl::string_view Name(BackgroundKind kind);  // "plain", "gradient", "vignette"
absl::string_view StylePhrase(Style style);   // caption words: "photo", "pencil sketch", "painting"
std::vector<std::string> ShapeNames();
std::vector<std::string> ColourNames();
std::vector<std::string> StyleNames();  // identifiers
std::vector<std::string> StylePhrases();
// The words any caption of the style may use for it (a caption holds at least one of its
// style's words and none of another style's): photo: photo, photograph; pencil_sketch:
// pencil, sketch, drawing; painting: painting, painted, oil.
std::vector<std::string> StyleWords(Style style);
Rgb CanonicalRgb(ColourName colour);
// "a red circle" -> itself, "orange star" -> "an orange star".
std::string WithArticle(absl::string_view phrase);

// Inverse of Name (identifiers; StyleFromName also takes the phrase, "pencil sketch").
std::optional<ShapeKind> ShapeKindFromName(absl::string_view name);
std::optional<ColourName> ColourFromName(absl::string_view name);
std::optional<Style> StyleFromName(absl::string_view name);

}  // namespace ganserve::core::toyworld

#endif  // GANSERVE_CORE_TOYWORLD_SCENES_H_
