#include "client/local.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/util.h"
#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_writer.h"
#include "core/io/image_codec.h"
#include "core/io/npy.h"
#include "core/models/clip/clip_model.h"
#include "core/models/clip/preprocess.h"
#include "core/models/clip/random_init.h"
#include "core/models/clip/tokenizer.h"
#include "core/models/lpips/random_init.h"
#include "core/models/stylegan2/discriminator.h"
#include "core/models/stylegan2/generator.h"
#include "core/models/stylegan2/random_init.h"
#include "core/service/specs.h"
#include "core/toyworld/scenes.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace ganserve::client {

using core::FloatTensor;
namespace sg = core::stylegan2;

absl::Status LocalInspect(const LocalInspectArgs& args) {
  sg::LoadReport report;
  sg::LoadOptions opt;
  opt.key = args.key;
  ASSIGN_OR_RETURN(auto gen, sg::Generator::Load(args.checkpoint, opt, &report));
  nlohmann::json j = nlohmann::json::parse(gen->config().ToJson());
  j["checkpoint"] = args.checkpoint;
  j["format"] = report.format;
  j["source_key"] = report.source_key;
  j["entries"] = report.entries;
  j["mean_latent"] = report.mean_latent_source;
  j["ignored_tensors"] = report.ignored_tensors;
  if (!report.notes.empty()) j["notes"] = report.notes;
  // Training checkpoints also carry the discriminator.
  if (report.entries.count("d") != 0) {
    auto d = sg::Discriminator::Load(args.checkpoint, "cpu");
    j["discriminator"] = d.ok() ? nlohmann::json::parse((*d)->config().ToJson())
                                : nlohmann::json{{"error", std::string(d.status().message())}};
  }
  std::printf("%s\n", j.dump(2).c_str());
  return absl::OkStatus();
}

absl::Status LocalGenerate(const LocalGenerateArgs& a) {
  sg::LoadOptions opt;
  opt.key = a.key;
  opt.device = a.device;
  ASSIGN_OR_RETURN(auto gen, sg::Generator::Load(a.checkpoint, opt));
  // The request checks of GenerateSamples (seed range, latent shapes and values,
  // truncation), against this checkpoint; no message limit applies to local files.
  core::service::GenerateSpec spec;
  spec.model = a.checkpoint;
  const int sources = !a.z_npy.empty() + !a.w_npy.empty() + !a.wplus_npy.empty() + !a.s_npy.empty() + !a.seeds.empty();
  if (sources != 1) {
    return absl::InvalidArgumentError("give exactly one of --z-npy, --w-npy, --wplus-npy, --s-npy, --seeds");
  }
  if (!a.seeds.empty()) {
    ASSIGN_OR_RETURN(spec.seeds, ParseSeeds(a.seeds, 4096));
  } else {
    using Space = core::service::LatentSpace;
    const auto [space, path] = !a.z_npy.empty()       ? std::pair{Space::kZ, a.z_npy}
                               : !a.w_npy.empty()     ? std::pair{Space::kW, a.w_npy}
                               : !a.wplus_npy.empty() ? std::pair{Space::kWPlus, a.wplus_npy}
                                                      : std::pair{Space::kS, a.s_npy};
    ASSIGN_OR_RETURN(FloatTensor values, core::ReadNpyFloat(path));
    spec.latents = core::service::LatentInput{space, std::move(values)};
  }
  spec.truncation = a.truncation;
  if (a.noise == "const") {
    spec.noise = core::service::NoiseMode::kConst;
  } else if (a.noise == "random") {
    spec.noise = core::service::NoiseMode::kRandom;
  } else if (a.noise == "none") {
    spec.noise = core::service::NoiseMode::kNone;
  } else {
    return absl::InvalidArgumentError("--noise must be const, random or none");
  }
  core::service::Limits limits;
  limits.max_images_per_request = 4096;
  limits.max_message_mb = 1 << 16;
  RETURN_IF_ERROR(spec.ValidateFor(gen->config(), limits));

  const int sd = gen->config().style_dim;
  sg::GenerateParams p;
  std::vector<int64_t> seeds = spec.seeds;
  if (!seeds.empty()) {
    p.space = sg::LatentSpace::kZ;
    p.latents.shape = {static_cast<int64_t>(seeds.size()), sd};
    for (int64_t s : seeds) {
      auto z = sg::SeedToZ(static_cast<uint32_t>(s), sd);
      p.latents.data.insert(p.latents.data.end(), z.begin(), z.end());
    }
  } else {
    switch (spec.latents->space) {
      case core::service::LatentSpace::kW: p.space = sg::LatentSpace::kW; break;
      case core::service::LatentSpace::kWPlus: p.space = sg::LatentSpace::kWPlus; break;
      case core::service::LatentSpace::kS: p.space = sg::LatentSpace::kS; break;
      default: p.space = sg::LatentSpace::kZ;
    }
    p.latents = std::move(spec.latents->values);
  }
  p.truncation = *spec.truncation;
  p.noise = spec.noise == core::service::NoiseMode::kRandom ? sg::NoiseMode::kRandom
            : spec.noise == core::service::NoiseMode::kNone ? sg::NoiseMode::kNone
                                                            : sg::NoiseMode::kConst;
  if (p.noise == sg::NoiseMode::kRandom) {
    const int64_t n = p.latents.shape.empty() ? 0 : p.latents.shape[0];
    for (int64_t i = 0; i < n; ++i) {
      p.noise_seeds.push_back(seeds.empty() ? static_cast<uint32_t>(i) : static_cast<uint32_t>(seeds[i]));
    }
  }
  if (!a.mix_z_npy.empty()) {
    ASSIGN_OR_RETURN(FloatTensor mix, core::ReadNpyFloat(a.mix_z_npy));
    p.mix_latents = std::move(mix);
    p.inject_index = a.inject_index;
  }
  p.return_s = !a.s_space_out_npz.empty();
  p.return_wplus = !a.wplus_out_npy.empty();
  ASSIGN_OR_RETURN(sg::GenerateResult r, gen->Generate(p));
  RETURN_IF_ERROR(core::WriteNpy(a.out_npy, r.images));
  if (!a.wplus_out_npy.empty()) RETURN_IF_ERROR(core::WriteNpy(a.wplus_out_npy, r.wplus));
  if (!a.s_space_out_npz.empty()) {
    std::vector<std::pair<std::string, FloatTensor>> arrays{{"s", r.s}};
    const int64_t n = r.s.shape[0];
    for (const auto& l : gen->config().style_layers) {
      FloatTensor t;
      t.shape = {n, l.in_channel};
      for (int64_t i = 0; i < n; ++i) {
        const float* row = r.s.data.data() + i * r.s.shape[1] + l.offset;
        t.data.insert(t.data.end(), row, row + l.in_channel);
      }
      arrays.emplace_back(l.module, std::move(t));
    }
    RETURN_IF_ERROR(core::WriteNpz(a.s_space_out_npz, arrays));
  }
  if (!a.out_png_dir.empty()) {
    RETURN_IF_ERROR(core::MakeDirs(a.out_png_dir));
    for (int64_t i = 0; i < r.images.shape[0]; ++i) {
      ASSIGN_OR_RETURN(core::Rgb8Image rgb, core::FloatToRgb8(r.images, i));
      ASSIGN_OR_RETURN(std::string png, core::EncodePng(rgb));
      const std::string name =
          seeds.empty() ? absl::StrCat("image", i, ".png") : absl::StrCat("seed", seeds[i], ".png");
      RETURN_IF_ERROR(WriteBinary((std::filesystem::path(a.out_png_dir) / name).string(), png));
    }
  }
  std::fprintf(stderr, "wrote %lld images %s to %s\n", static_cast<long long>(r.images.shape[0]),
               core::ShapeString(r.images.shape).c_str(), a.out_npy.c_str());
  return absl::OkStatus();
}

absl::Status MakeDemoModel(const MakeDemoArgs& a) {
  if (a.resolution < 8 || a.resolution > 1024 || (a.resolution & (a.resolution - 1)) != 0) {
    return absl::InvalidArgumentError("--resolution must be a power of two in [8, 1024]");
  }
  const sg::GeneratorConfig cfg = sg::MakeConfig(a.resolution, a.style_dim, a.n_mlp, 2, a.max_channels);
  auto weights = sg::RandomGeneratorWeights(cfg, a.seed, 0.1f);
  const std::filesystem::path dir = std::filesystem::path(a.out) / a.name;
  RETURN_IF_ERROR(core::MakeDirs(dir.string()));
  RETURN_IF_ERROR(core::SaveSafetensors(
      (dir / "generator.safetensors").string(), weights,
      {{"format", "ganserve-stylegan2"}, {"note", "random weights: the demo pack's pictures mean nothing"}}));
  // What a one-shot adaptation fine-tunes from: the training generator (here the served
  // weights themselves) and a discriminator.
  RETURN_IF_ERROR(
      core::SaveSafetensors((dir / "discriminator.safetensors").string(),
                            sg::RandomDiscriminatorWeights(sg::MakeDiscriminatorConfig(cfg), a.seed + 1, 0.1f),
                            {{"format", "ganserve-stylegan2-discriminator"}, {"note", "random weights"}}));
  nlohmann::json m = {{"kind", "generator"},
                      {"checkpoint", "generator.safetensors"},
                      {"train_g", "generator.safetensors"},
                      {"train_d", "discriminator.safetensors"},
                      {"domain", "demo (random weights)"},
                      {"default_truncation", 0.7}};
  RETURN_IF_ERROR(core::WriteFileAtomic((dir / "manifest.json").string(), m.dump(2) + "\n"));
  std::fprintf(stderr, "wrote demo generator '%s' (%d px, random weights) to %s\n", a.name.c_str(), a.resolution,
               dir.c_str());
  if (a.with_clip) {
    const std::filesystem::path cdir = std::filesystem::path(a.out) / (a.name + "-clip");
    RETURN_IF_ERROR(core::MakeDirs(cdir.string()));
    RETURN_IF_ERROR(core::SaveSafetensors((cdir / "clip.safetensors").string(),
                                          core::clip::RandomClipWeights(core::clip::TinyClipConfig(), a.seed),
                                          {{"note", "random weights: not a trained CLIP"}}));
    RETURN_IF_ERROR(core::WriteFileAtomic((cdir / "vocab.txt").string(), core::clip::SyntheticVocabulary()));
    nlohmann::json cm = {{"kind", "clip"},
                         {"checkpoint", "clip.safetensors"},
                         {"vocab", "vocab.txt"},
                         {"domain", "demo (random weights, synthetic vocabulary)"}};
    RETURN_IF_ERROR(core::WriteFileAtomic((cdir / "manifest.json").string(), cm.dump(2) + "\n"));
    std::fprintf(stderr, "wrote demo CLIP '%s-clip' (random weights, synthetic vocabulary) to %s\n", a.name.c_str(),
                 cdir.c_str());
    // The AlexNet LPIPS one-shot adaptation needs, in the files fetch-weights.sh installs.
    const std::filesystem::path ldir = std::filesystem::path(a.out) / (a.name + "-lpips-alex");
    RETURN_IF_ERROR(core::MakeDirs(ldir.string()));
    auto entries = [](const std::map<std::string, core::FloatTensor>& tensors) {
      std::vector<core::TorchSaveEntry> e;
      e.reserve(tensors.size());
      for (const auto& [name, t] : tensors) e.push_back({name, t});
      return core::EncodeTorchSave(e);
    };
    RETURN_IF_ERROR(
        core::WriteFileAtomic((ldir / "alexnet.pth").string(), entries(core::lpips::RandomAlexNetFeatures(a.seed))));
    RETURN_IF_ERROR(core::WriteFileAtomic((ldir / "lpips_weights.ckpt").string(),
                                          entries(core::lpips::RandomAlexLpipsLayers(a.seed + 1))));
    nlohmann::json lm = {{"kind", "lpips"},
                         {"variant", "alex_stargan"},
                         {"alexnet", "alexnet.pth"},
                         {"lin", "lpips_weights.ckpt"},
                         {"domain", "demo (random weights)"}};
    RETURN_IF_ERROR(core::WriteFileAtomic((ldir / "manifest.json").string(), lm.dump(2) + "\n"));
    std::fprintf(stderr, "wrote demo AlexNet LPIPS '%s-lpips-alex' (random weights) to %s\n", a.name.c_str(),
                 ldir.c_str());
  }
  return absl::OkStatus();
}

absl::Status MakeWorld(const MakeWorldArgs& a) {
  namespace tw = core::toyworld;
  if (a.count < 1 || a.count > 100000) return absl::InvalidArgumentError("--count must be in [1, 100000]");
  if (a.size < 8 || a.size > 1024) return absl::InvalidArgumentError("--size must be in [8, 1024]");
  if (a.captions < 0 || a.captions > 64) return absl::InvalidArgumentError("--captions must be in [0, 64]");
  if (a.max_shapes < 1 || a.max_shapes > 2) return absl::InvalidArgumentError("--max-shapes must be 1 or 2");
  tw::SceneOptions options;
  options.max_shapes = a.max_shapes;
  if (a.style != "any") {
    const std::optional<tw::Style> style = tw::StyleFromName(a.style);
    if (!style) return absl::InvalidArgumentError("--style must be photo, pencil_sketch, painting or any");
    options.styles = {*style};
  }
  const std::filesystem::path dir(a.out);
  RETURN_IF_ERROR(core::MakeDirs(dir.string()));
  constexpr int kSheetImages = 64;
  std::vector<core::Rgb8Image> sheet;
  std::string jsonl;
  for (int i = 0; i < a.count; ++i) {
    const uint64_t scene_seed = tw::SceneSeed(a.seed, i);
    const uint64_t noise_seed = tw::NoiseSeed(a.seed, i);
    const tw::Scene scene = tw::RandomScene(scene_seed, options);
    core::Rgb8Image image = tw::RenderScene(scene, a.size, noise_seed);
    char name[32];
    std::snprintf(name, sizeof(name), "%06d.png", i);
    ASSIGN_OR_RETURN(std::string png, core::EncodePng(image));
    RETURN_IF_ERROR(WriteBinary((dir / name).string(), png));
    nlohmann::json shapes = nlohmann::json::array();
    for (const tw::Shape& s : scene.shapes) {
      shapes.push_back({{"kind", std::string(tw::Name(s.kind))},
                        {"colour", std::string(tw::Name(s.colour))},
                        {"cx", s.cx},
                        {"cy", s.cy},
                        {"size", s.size},
                        {"rotation", s.rotation}});
    }
    const tw::Rgb tone = scene.background.tone;
    const nlohmann::json line = {
        {"file", name},
        {"caption", tw::Describe(scene)},
        {"captions", tw::Captions(scene, noise_seed + 1, a.captions)},
        {"style", std::string(tw::Name(scene.style))},
        {"shapes", shapes},
        {"background", {{"kind", std::string(tw::Name(scene.background.kind))}, {"tone", {tone.r, tone.g, tone.b}}}},
        {"scene_seed", scene_seed},
        {"noise_seed", noise_seed}};
    absl::StrAppend(&jsonl, line.dump(), "\n");
    if (i < kSheetImages) sheet.push_back(std::move(image));
  }
  RETURN_IF_ERROR(core::WriteFileAtomic((dir / "captions.jsonl").string(), jsonl));
  ASSIGN_OR_RETURN(core::Rgb8Image grid, core::MakeGrid(sheet, std::min<int>(8, static_cast<int>(sheet.size()))));
  ASSIGN_OR_RETURN(std::string sheet_png, core::EncodePng(grid));
  RETURN_IF_ERROR(WriteBinary((dir / "sheet.png").string(), sheet_png));
  std::fprintf(stderr, "wrote %d scenes (%d px, style %s, seed %llu) with captions.jsonl and sheet.png to %s\n",
               a.count, a.size, a.style.c_str(), static_cast<unsigned long long>(a.seed), dir.c_str());
  return absl::OkStatus();
}

namespace {

absl::StatusOr<std::vector<std::string>> ReadTexts(const std::vector<std::string>& texts,
                                                   const std::string& json_path) {
  std::vector<std::string> out = texts;
  if (!json_path.empty()) {
    ASSIGN_OR_RETURN(std::string text, core::ReadFile(json_path, 64u << 20));
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_array()) return absl::InvalidArgumentError(absl::StrCat(json_path, ": expected a JSON list of strings"));
    for (const auto& e : j) {
      if (!e.is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(json_path, ": expected a JSON list of strings"));
      }
      out.push_back(e.get<std::string>());
    }
  }
  if (out.empty()) return absl::InvalidArgumentError("give --text or --texts-json");
  return out;
}

}  // namespace

absl::Status LocalTokenize(const TokenizeArgs& a) {
  ASSIGN_OR_RETURN(auto tok, core::clip::Tokenizer::Load(a.vocab));
  ASSIGN_OR_RETURN(auto texts, ReadTexts(a.texts, a.texts_json));
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : texts) {
    ASSIGN_OR_RETURN(std::vector<int> ids, tok->Tokenize(t, a.truncate));
    out.push_back(ids);
  }
  return core::WriteFileAtomic(a.out_json, out.dump() + "\n");
}

absl::Status LocalEncodeText(const EncodeTextArgs& a) {
  ASSIGN_OR_RETURN(auto model, core::clip::ClipModel::Load(a.clip, a.device));
  std::vector<std::vector<int>> rows;
  if (!a.tokens_npy.empty() == !a.texts_json.empty()) {
    return absl::InvalidArgumentError("give exactly one of --texts-json and --tokens-npy");
  }
  if (!a.tokens_npy.empty()) {
    ASSIGN_OR_RETURN(core::TensorView v, core::ReadNpy(a.tokens_npy));
    if (v.shape.size() != 2) return absl::InvalidArgumentError("--tokens-npy must be [N, context_length]");
    ASSIGN_OR_RETURN(std::vector<int64_t> ids, core::ToInt64Vector(v));
    rows.resize(static_cast<size_t>(v.shape[0]));
    for (size_t i = 0; i < ids.size(); ++i) rows[i / v.shape[1]].push_back(static_cast<int>(ids[i]));
  } else {
    if (a.vocab.empty()) return absl::InvalidArgumentError("--texts-json needs --vocab");
    ASSIGN_OR_RETURN(auto tok, core::clip::Tokenizer::Load(a.vocab));
    ASSIGN_OR_RETURN(auto texts, ReadTexts({}, a.texts_json));
    for (const auto& t : texts) {
      ASSIGN_OR_RETURN(std::vector<int> ids, tok->Tokenize(t, a.truncate, model->config().context_length));
      rows.push_back(std::move(ids));
    }
  }
  ASSIGN_OR_RETURN(FloatTensor emb, model->EncodeText(rows));
  return core::WriteNpy(a.out_npy, emb);
}

absl::Status LocalEncodeImage(const EncodeImageArgs& a) {
  ASSIGN_OR_RETURN(auto model, core::clip::ClipModel::Load(a.clip, a.device));
  FloatTensor images;
  if (!a.images_npy.empty() == !a.pngs.empty()) {
    return absl::InvalidArgumentError("give exactly one of --images-npy and --png");
  }
  if (!a.images_npy.empty()) {
    ASSIGN_OR_RETURN(images, core::ReadNpyFloat(a.images_npy));
  } else {
    const int r = model->config().image_resolution;
    images.shape = {0, 3, r, r};
    for (const auto& path : a.pngs) {
      ASSIGN_OR_RETURN(std::string bytes, core::ReadFile(path, 64u << 20));
      auto img = core::DecodeImage(bytes);
      if (!img.ok()) return absl::Status(img.status().code(), absl::StrCat(path, ": ", img.status().message()));
      FloatTensor t = core::clip::PreprocessForClip(*img, r);
      images.data.insert(images.data.end(), t.data.begin(), t.data.end());
      images.shape[0] += 1;
    }
  }
  ASSIGN_OR_RETURN(FloatTensor emb, model->EncodeImage(images));
  return core::WriteNpy(a.out_npy, emb);
}

}  // namespace ganserve::client
