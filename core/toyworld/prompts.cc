#include "core/toyworld/prompts.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace ganserve::core::toyworld {
namespace {

// Uniform in [0, n) from the engine's top 32 bits (as the scenes draw).
uint32_t Below(std::mt19937_64& rng, size_t n) {
  return static_cast<uint32_t>(((rng() >> 32) * static_cast<uint64_t>(n)) >> 32);
}
bool Chance(std::mt19937_64& rng, double p) { return static_cast<double>(rng() >> 11) < p * 9007199254740992.0; }

// Phrases naming the style alone, bare and with an article.
std::vector<std::string> StyleNouns(Style style) {
  std::vector<std::string> bare;
  switch (style) {
    case Style::kPhoto: bare = {"photo", "photograph"}; break;
    case Style::kPencilSketch: bare = {"pencil sketch", "pencil drawing", "sketch", "drawing"}; break;
    case Style::kPainting: bare = {"painting", "oil painting"}; break;
  }
  return bare;
}

// Every partial phrase about `shape` in `style`, with its claim: the subsets of {style,
// kind, colour} that are not empty, each in a few phrasings.
std::vector<std::vector<ClaimedCaption>> PartialPhrases(Style style, const Shape& shape) {
  const std::string kind(Name(shape.kind)), colour(Name(shape.colour));
  const Claim s{style, std::nullopt, std::nullopt, ""}, k{std::nullopt, shape.kind, std::nullopt, ""},
      c{std::nullopt, std::nullopt, shape.colour, ""}, ck{std::nullopt, shape.kind, shape.colour, ""},
      sk{style, shape.kind, std::nullopt, ""}, sc{style, std::nullopt, shape.colour, ""},
      sck{style, shape.kind, shape.colour, ""};
  std::vector<std::vector<ClaimedCaption>> groups(7);
  for (const std::string& n : StyleNouns(style)) {
    const std::string a = WithArticle(n);
    groups[0].push_back({n, s});
    groups[0].push_back({a, s});
    groups[4].push_back({absl::StrCat(a, " of a ", kind), sk});
    groups[5].push_back({absl::StrCat(a, " of a ", colour, " shape"), sc});
    groups[5].push_back({absl::StrCat(a, " of something ", colour), sc});
    groups[6].push_back({absl::StrCat(a, " of ", WithArticle(absl::StrCat(colour, " ", kind))), sck});
    groups[6].push_back({absl::StrCat(n, " of ", WithArticle(absl::StrCat(colour, " ", kind))), sck});
  }
  groups[1] = {{kind, k}, {WithArticle(kind), k}, {absl::StrCat("a ", kind, " shape"), k}};
  groups[2] = {{colour, c},
               {WithArticle(absl::StrCat(colour, " shape")), c},
               {absl::StrCat("something ", colour), c},
               {WithArticle(absl::StrCat(colour, " thing")), c}};
  groups[3] = {{absl::StrCat(colour, " ", kind), ck}, {WithArticle(absl::StrCat(colour, " ", kind)), ck}};
  return groups;
}

}  // namespace

std::string Key(const Scene& scene) {
  std::vector<std::string> shapes;
  for (const Shape& s : scene.shapes) shapes.push_back(absl::StrCat(Name(s.colour), " ", Name(s.kind)));
  std::sort(shapes.begin(), shapes.end());
  std::string key(Name(scene.style));
  for (const std::string& s : shapes) absl::StrAppend(&key, "|", s);
  return key;
}

bool Holds(const Claim& claim, const Scene& scene) {
  if (!claim.exact.empty()) return Key(scene) == claim.exact;
  if (claim.style.has_value() && *claim.style != scene.style) return false;
  if (!claim.kind.has_value() && !claim.colour.has_value()) return true;
  return std::any_of(scene.shapes.begin(), scene.shapes.end(), [&](const Shape& s) {
    return (!claim.kind.has_value() || *claim.kind == s.kind) &&
           (!claim.colour.has_value() || *claim.colour == s.colour);
  });
}

ClaimedCaption DrawTrainingCaption(const Scene& scene, const std::vector<std::string>& templates,
                                   std::mt19937_64& rng) {
  if (scene.shapes.empty() || Chance(rng, 0.4)) {
    return {Captions(scene, rng(), 1).front(), Claim{std::nullopt, std::nullopt, std::nullopt, Key(scene)}};
  }
  const Shape& shape = scene.shapes[Below(rng, scene.shapes.size())];
  const auto groups = PartialPhrases(scene.style, shape);
  const auto& group = groups[Below(rng, groups.size())];
  ClaimedCaption out = group[Below(rng, group.size())];
  if (!templates.empty() && Chance(rng, 0.25)) {
    out.text = absl::StrReplaceAll(templates[Below(rng, templates.size())], {{"{}", out.text}});
  }
  return out;
}

std::vector<std::string> ShapePrompts() {
  std::vector<std::string> out;
  for (ShapeKind k : AllShapeKinds()) out.push_back(WithArticle(Name(k)));
  return out;
}

std::vector<std::string> ColourPrompts() {
  std::vector<std::string> out;
  for (ColourName c : AllColours()) out.push_back(WithArticle(absl::StrCat(Name(c), " shape")));
  return out;
}

std::vector<std::string> StylePrompts() {
  std::vector<std::string> out;
  for (Style s : AllStyles()) out.push_back(WithArticle(StylePhrase(s)));
  return out;
}

std::vector<std::string> Corpus(const std::vector<std::string>& templates) {
  std::vector<std::string> out;
  std::vector<Shape> shapes;
  for (ShapeKind k : AllShapeKinds()) {
    for (ColourName c : AllColours()) shapes.push_back(Shape{k, c});
  }
  for (Style style : AllStyles()) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      for (const auto& group : PartialPhrases(style, shapes[i])) {
        for (const ClaimedCaption& p : group) {
          out.push_back(p.text);
          for (const std::string& t : templates) out.push_back(absl::StrReplaceAll(t, {{"{}", p.text}}));
        }
      }
      // Full captions of the scenes with this shape alone and with each other one.
      for (size_t j = 0; j <= shapes.size(); ++j) {
        Scene scene;
        scene.style = style;
        scene.shapes = {shapes[i]};
        if (j < shapes.size()) scene.shapes.push_back(shapes[j]);
        const std::vector<std::string> all = Captions(scene, 0, 64);
        out.insert(out.end(), all.begin(), all.end());
      }
    }
  }
  for (const auto& prompts : {ShapePrompts(), ColourPrompts(), StylePrompts()}) {
    out.insert(out.end(), prompts.begin(), prompts.end());
  }
  return out;
}

}  // namespace ganserve::core::toyworld
