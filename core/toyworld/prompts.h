// Texts about toy-world scenes for training and measuring a CLIP model: captions with
// the claim each makes (so a contrastive batch knows every image a caption is true for,
// not only the one it was drawn for), and the zero-shot class prompts of the semantic
// tests. Torch-free; draws from std::mt19937_64's raw bits, so a seed gives the same
// texts everywhere.
#ifndef GANSERVE_CORE_TOYWORLD_PROMPTS_H_
#define GANSERVE_CORE_TOYWORLD_PROMPTS_H_

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/toyworld/scenes.h"

namespace ganserve::core::toyworld {

// What a caption says of a scene. Unset fields claim nothing; kind and colour are claimed
// of one shape of the scene (the same shape for both). `exact`: the scene's Key() must
// equal it (captions naming every shape).
struct Claim {
  std::optional<Style> style;
  std::optional<ShapeKind> kind;
  std::optional<ColourName> colour;
  std::string exact;
};

// Whether the claim is true of the scene.
bool Holds(const Claim& claim, const Scene& scene);

// The scene's style and shapes (kind and colour, sorted): equal for scenes any full
// caption describes alike.
std::string Key(const Scene& scene);

struct ClaimedCaption {
  std::string text;
  Claim claim;
};

// A training caption for `scene`, one of:
//  - a full caption (Captions(): style and every shape) with probability 0.4, and always
//    for a scene without shapes ("a pencil sketch of nothing");
//  - a partial phrase naming some of style, kind and colour (of one shape): "a red
//    shape", "circle", "a pencil sketch", "a painting of a star", "photo of a blue square";
//  - with probability 0.25 such a phrase put into one of `templates` (prompt templates
//    with "{}" where the phrase goes, e.g. StyleGAN-NADA's), so the encoder learns the
//    texts directional losses feed it.
ClaimedCaption DrawTrainingCaption(const Scene& scene, const std::vector<std::string>& templates, std::mt19937_64& rng);

// Zero-shot class prompts: "a circle", "a red shape", "a pencil sketch" (class order of
// AllShapeKinds / AllColours / AllStyles).
std::vector<std::string> ShapePrompts();
std::vector<std::string> ColourPrompts();
std::vector<std::string> StylePrompts();

// Every text DrawTrainingCaption and the class prompts can produce for `templates` for
// scenes with shapes (the corpus a vocabulary is learned from). The captions of empty
// scenes are left out so that the shipped vocabulary stays the one learned before they
// existed; byte-level BPE spells their words ("nothing", "empty") from smaller pieces.
std::vector<std::string> Corpus(const std::vector<std::string>& templates);

}  // namespace ganserve::core::toyworld

#endif  // GANSERVE_CORE_TOYWORLD_PROMPTS_H_
