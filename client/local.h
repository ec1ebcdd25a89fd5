// `ganctl local ...`: runs the core in-process, no server (checkpoint checks, parity
// runs, the demo model pack, the toy world's scenes).
#ifndef GANSERVE_CLIENT_LOCAL_H_
#define GANSERVE_CLIENT_LOCAL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ganserve::client {

struct LocalInspectArgs {
  std::string checkpoint;
  std::string key;
};
absl::Status LocalInspect(const LocalInspectArgs& args);

struct LocalGenerateArgs {
  std::string checkpoint;
  std::string key;
  std::string device = "cpu";
  std::string z_npy, w_npy, wplus_npy, s_npy, seeds;
  float truncation = 1.0f;
  std::string noise = "const";
  std::string mix_z_npy;
  int inject_index = 0;
  std::string out_npy;
  std::string out_png_dir;
  std::string s_space_out_npz;
  std::string wplus_out_npy;
};
absl::Status LocalGenerate(const LocalGenerateArgs& args);

struct MakeDemoArgs {
  std::string out;  // model repository root
  std::string name = "demo";
  int resolution = 64;
  int style_dim = 128;
  int n_mlp = 4;
  int max_channels = 64;
  uint32_t seed = 1;
  bool with_clip = true;  // also a small random CLIP with a synthetic vocabulary
};
// Writes a random-initialised generator (safetensors + manifest) into the repository.
absl::Status MakeDemoModel(const MakeDemoArgs& args);

struct MakeWorldArgs {
  std::string out;  // folder for the PNGs, captions.jsonl and sheet.png
  int count = 16;
  uint64_t seed = 1;
  std::string style = "any";  // photo | pencil_sketch | painting | any
  int size = 64;
  int captions = 5;    // phrasings per image besides the canonical one
  int max_shapes = 2;  // 1: single-shape scenes only
};
// Writes `count` toy-world scenes (core/toyworld): image i is scene SceneSeed(seed, i)
// rendered with NoiseSeed(seed, i), as NNNNNN.png, one captions.jsonl line per image
// (file, canonical caption, captions, attributes) and a contact sheet of the first 64.
absl::Status MakeWorld(const MakeWorldArgs& args);

struct TokenizeArgs {
  std::string vocab;
  std::vector<std::string> texts;
  std::string texts_json;
  bool truncate = false;
  std::string out_json;
};
// Writes a JSON list of context_length-id lists.
absl::Status LocalTokenize(const TokenizeArgs& args);

struct EncodeTextArgs {
  std::string clip, vocab, texts_json, tokens_npy, out_npy, device = "cpu";
  bool truncate = false;
};
absl::Status LocalEncodeText(const EncodeTextArgs& args);

struct EncodeImageArgs {
  std::string clip, images_npy, out_npy, device = "cpu";
  std::vector<std::string> pngs;
};
absl::Status LocalEncodeImage(const EncodeImageArgs& args);

}  // namespace ganserve::client

#endif  // GANSERVE_CLIENT_LOCAL_H_
