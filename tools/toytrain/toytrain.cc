// ganserve-toytrain: trains the toy world's models with the project's own code (the
// toy-world renderer, the StyleGAN2 generator and discriminator, GanTrainer, ClipTrainer,
// the BPE learner) and measures them. scripts/train-toy-pack.sh runs the whole recipe
// from one seed; docs/toy-world.md describes it.
//
//   vocab     learn the BPE vocabulary of the world's captions and prompt templates
//   clip      train the CLIP model contrastively on scenes of every style
//   gan       train the generator adversarially on "photo" scenes of one shape
//   classify  zero-shot classify PNGs (shape, colour, style) with a trained CLIP: JSON lines
//   evaluate  held-out zero-shot accuracy of a CLIP model: JSON
//   direction StyleGAN-NADA's directional cosine of (source, target) image pairs
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/adapt/gan_trainer.h"
#include "core/adapt/text_templates.h"
#include "core/checkpoint/safetensors.h"
#include "core/edit/global_directions.h"
#include "core/io/image_codec.h"
#include "core/models/clip/bpe_learner.h"
#include "core/models/clip/clip_model.h"
#include "core/models/clip/preprocess.h"
#include "core/models/clip/tokenizer.h"
#include "core/models/stylegan2/random_init.h"
#include "core/runtime/torch_setup.h"
#include "core/toyworld/prompts.h"
#include "core/toyworld/scenes.h"
#include "core/toyworld/toy_models.h"
#include "core/train/clip_trainer.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace ganserve::tools {
namespace {

namespace tw = core::toyworld;
namespace fs = std::filesystem;
using core::FloatTensor;
using core::Rgb8Image;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Scenes i = 0..count-1 of a base seed, rendered at `size`.
struct Pool {
  std::vector<tw::Scene> scenes;
  std::vector<Rgb8Image> images;
};

Pool RenderPool(uint64_t seed, int count, const tw::SceneOptions& options, int size) {
  Pool p;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    p.scenes.push_back(tw::RandomScene(tw::SceneSeed(seed, i), options));
    p.images.push_back(tw::RenderScene(p.scenes.back(), size, tw::NoiseSeed(seed, i)));
  }
  std::fprintf(stderr, "rendered %d scenes (%d px, base seed %llu) in %.1f s\n", count, size,
               static_cast<unsigned long long>(seed), Seconds(start));
  return p;
}

absl::Status WritePng(const std::string& path, const Rgb8Image& image) {
  ASSIGN_OR_RETURN(std::string png, core::EncodePng(image));
  return core::WriteFileAtomic(path, png);
}

// ---------------------------------------------------------------------------------------

struct VocabArgs {
  std::string out;
  int merges = 2000;
};

absl::Status Vocab(const VocabArgs& a) {
  ASSIGN_OR_RETURN(std::string text,
                   core::clip::LearnBpeVocabulary(tw::Corpus(core::adapt::ImagenetTemplates()), a.merges));
  RETURN_IF_ERROR(core::WriteFileAtomic(a.out, text));
  ASSIGN_OR_RETURN(auto tok, core::clip::Tokenizer::FromText(text));
  std::fprintf(stderr, "wrote %s: %zu tokens\n", a.out.c_str(), tok->vocab_size());
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------

struct ClipArgs {
  std::string vocab;
  std::string out;
  uint64_t seed = 1;
  int64_t steps = 4000;
  int batch = 128;
  int pool = 20000;
  int heldout = 600;
  float lr = 5e-4f;
  // Batches are made of groups of this many scenes that share the style and a colour, so
  // that telling a group's captions apart takes the shapes (1: every scene drawn alone).
  int group = 8;
  // Share of training scenes without any shape ("a pencil sketch of nothing").
  double empty = 0;
  // Start from these weights (a clip.safetensors of the same configuration) instead of
  // InitialClipWeights: fine-tuning.
  std::string init;
};

// Zero-shot accuracy of `model` on `pool` for each attribute (single-shape scenes only
// for shape and colour, every scene for style).
absl::StatusOr<nlohmann::json> ZeroShot(const core::clip::ClipModel& model, const core::clip::Tokenizer& tok,
                                        const Pool& pool) {
  ASSIGN_OR_RETURN(tw::ToyClassifier classifier, tw::ToyClassifier::Create(model, tok));
  nlohmann::json out;
  int n_single = 0;
  int correct[3] = {0, 0, 0};
  for (size_t i = 0; i < pool.images.size(); i += 64) {
    std::vector<Rgb8Image> batch(pool.images.begin() + i, pool.images.begin() + std::min(i + 64, pool.images.size()));
    ASSIGN_OR_RETURN(std::vector<tw::Classification> c, classifier.Classify(batch));
    for (size_t j = 0; j < c.size(); ++j) {
      const tw::Scene& s = pool.scenes[i + j];
      correct[2] += c[j].style.best == static_cast<int>(s.style);
      if (s.shapes.size() == 1) {
        ++n_single;
        correct[0] += c[j].shape.best == static_cast<int>(s.shapes[0].kind);
        correct[1] += c[j].colour.best == static_cast<int>(s.shapes[0].colour);
      }
    }
  }
  out["shape_accuracy"] = static_cast<double>(correct[0]) / std::max(1, n_single);
  out["colour_accuracy"] = static_cast<double>(correct[1]) / std::max(1, n_single);
  out["style_accuracy"] = static_cast<double>(correct[2]) / static_cast<double>(pool.images.size());
  out["single_shape_images"] = n_single;
  out["images"] = pool.images.size();
  return out;
}

// A scene's look without its shapes' kinds: the style and the first shape's colour.
std::pair<int, int> LookOf(const tw::Scene& s) {
  return {static_cast<int>(s.style), s.shapes.empty() ? -1 : static_cast<int>(s.shapes[0].colour)};
}

absl::Status TrainClip(const ClipArgs& a) {
  if (a.steps < 1 || a.batch < 2 || a.pool < 1 || a.heldout < 1 || a.group < 1 || a.group > a.batch ||
      !(a.empty >= 0 && a.empty < 1)) {
    return absl::InvalidArgumentError(
        "--steps and --pool and --heldout must be >= 1, --batch >= 2, --group in [1, --batch], --empty in [0, 1)");
  }
  ASSIGN_OR_RETURN(auto tok, core::clip::Tokenizer::Load(a.vocab));
  const core::clip::ClipConfig cfg = tw::ToyClipConfig(static_cast<int>(tok->vocab_size()));
  core::train::ClipTrainerOptions opt;
  opt.lr = a.lr;
  opt.total_steps = a.steps;
  opt.warmup_steps = static_cast<int>(std::min<int64_t>(200, std::max<int64_t>(1, a.steps / 10)));
  std::map<std::string, FloatTensor> weights;
  if (a.init.empty()) {
    weights = core::train::InitialClipWeights(cfg, static_cast<uint32_t>(a.seed));
  } else {
    ASSIGN_OR_RETURN(core::SafetensorsFile init, core::LoadSafetensors(a.init));
    for (const auto& [name, view] : init.tensors) {
      ASSIGN_OR_RETURN(weights[name], core::ToFloatTensor(view));
    }
    std::fprintf(stderr, "starting from %s\n", a.init.c_str());
  }
  ASSIGN_OR_RETURN(auto trainer, core::train::ClipTrainer::Create(weights, opt));
  tw::SceneOptions scenes;
  scenes.empty_probability = a.empty;
  const Pool pool = RenderPool(a.seed, a.pool, scenes, cfg.image_resolution);
  std::map<std::pair<int, int>, std::vector<size_t>> by_look;
  for (size_t i = 0; i < pool.scenes.size(); ++i) by_look[LookOf(pool.scenes[i])].push_back(i);
  const std::vector<std::string>& templates = core::adapt::ImagenetTemplates();
  const auto start = std::chrono::steady_clock::now();
  const int r = cfg.image_resolution;
  for (int64_t step = 0; step < a.steps; ++step) {
    std::mt19937_64 rng(a.seed * 1000003ULL + static_cast<uint64_t>(step));
    FloatTensor images;
    images.shape = {a.batch, 3, r, r};
    images.data.reserve(static_cast<size_t>(a.batch) * 3 * r * r);
    std::vector<const tw::Scene*> scenes;
    std::vector<std::vector<int>> tokens;
    std::vector<tw::Claim> claims;
    const std::vector<size_t>* look = nullptr;
    for (int b = 0; b < a.batch; ++b) {
      size_t i = static_cast<size_t>((rng() >> 11) % pool.images.size());
      if (b % a.group == 0) {
        look = &by_look[LookOf(pool.scenes[i])];
      } else {
        i = (*look)[static_cast<size_t>((rng() >> 11) % look->size())];
      }
      const FloatTensor x = core::clip::NormalizeForClip(pool.images[i]);
      images.data.insert(images.data.end(), x.data.begin(), x.data.end());
      scenes.push_back(&pool.scenes[i]);
      tw::ClaimedCaption caption = tw::DrawTrainingCaption(pool.scenes[i], templates, rng);
      ASSIGN_OR_RETURN(std::vector<int> ids, tok->Tokenize(caption.text, /*truncate=*/true, cfg.context_length));
      tokens.push_back(std::move(ids));
      claims.push_back(std::move(caption.claim));
    }
    std::vector<uint8_t> truth(static_cast<size_t>(a.batch) * a.batch);
    for (int b = 0; b < a.batch; ++b) {
      for (int t = 0; t < a.batch; ++t) truth[static_cast<size_t>(b) * a.batch + t] = tw::Holds(claims[t], *scenes[b]);
    }
    ASSIGN_OR_RETURN(auto losses, trainer->Step(images, tokens, truth));
    if (step % 50 == 0 || step + 1 == a.steps) {
      std::fprintf(stderr, "clip step %lld/%lld loss %.4f accuracy %.3f temperature %.1f (%.0f s)\n",
                   static_cast<long long>(step), static_cast<long long>(a.steps), losses["loss"], losses["accuracy"],
                   losses["temperature"], Seconds(start));
    }
  }
  RETURN_IF_ERROR(core::MakeDirs(a.out));
  const std::string ckpt = (fs::path(a.out) / "clip.safetensors").string();
  RETURN_IF_ERROR(core::SaveSafetensors(ckpt, trainer->Weights(), {{"format", "openai-clip-state-dict"}}));
  std::fprintf(stderr, "wrote %s after %lld steps in %.0f s\n", ckpt.c_str(), static_cast<long long>(a.steps),
               Seconds(start));
  ASSIGN_OR_RETURN(auto model, core::clip::ClipModel::Load(ckpt, "cpu"));
  const Pool held = RenderPool(a.seed + 1000003ULL, a.heldout, {}, r);
  ASSIGN_OR_RETURN(nlohmann::json acc, ZeroShot(*model, *tok, held));
  acc["steps"] = a.steps;
  acc["train_seconds"] = Seconds(start);
  std::printf("%s\n", acc.dump().c_str());
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------

struct GanArgs {
  std::string out;
  uint64_t seed = 1;
  int64_t steps = 3300;
  int batch = 32;
  int pool = 20000;
  float lr = 0.002f;  // rosinality's train.py
  float r1 = 10.0f;   // rosinality's train.py; gamma 0.05 and 1 let D win (losses ~0.05-0.2) and G wash out
  int snapshot_every = 250;
  std::string resume;
  std::string preview;  // with resume: write sample grids to PREVIEW-{ema,g}-psi{0.7,1}.png and stop
};

absl::Status WriteSampleGrid(const core::adapt::GanTrainer& trainer, const std::string& path, int style_dim,
                             float truncation = 0.7f, bool ema = true) {
  std::mt19937_64 rng(7);
  FloatTensor z;
  z.shape = {32, style_dim};
  std::normal_distribution<float> normal;
  for (int i = 0; i < 32 * style_dim; ++i) z.data.push_back(normal(rng));
  ASSIGN_OR_RETURN(FloatTensor images, trainer.Sample(z, truncation, ema));
  std::vector<Rgb8Image> tiles;
  for (int64_t i = 0; i < images.shape[0]; ++i) {
    ASSIGN_OR_RETURN(Rgb8Image t, core::FloatToRgb8(images, i));
    tiles.push_back(std::move(t));
  }
  ASSIGN_OR_RETURN(Rgb8Image grid, core::MakeGrid(tiles, 8));
  return WritePng(path, grid);
}

absl::Status TrainGan(const GanArgs& a) {
  if (a.steps < 1 || a.pool < 1 || a.snapshot_every < 1) {
    return absl::InvalidArgumentError("--steps, --pool and --snapshot-every must be >= 1");
  }
  const auto cfg = tw::ToyGeneratorConfig();
  core::adapt::GanTrainerOptions opt;
  opt.batch_size = a.batch;
  opt.g_lr = opt.d_lr = a.lr;
  opt.r1 = a.r1;
  opt.seed = a.seed;
  ASSIGN_OR_RETURN(auto trainer,
                   core::adapt::GanTrainer::Create(
                       cfg, core::stylegan2::RandomGeneratorWeights(cfg, static_cast<uint32_t>(a.seed)),
                       core::stylegan2::RandomDiscriminatorWeights(core::stylegan2::MakeDiscriminatorConfig(cfg),
                                                                   static_cast<uint32_t>(a.seed + 1)),
                       opt));
  RETURN_IF_ERROR(core::MakeDirs(a.out));
  const std::string ckpt = (fs::path(a.out) / "training.safetensors").string();
  if (!a.resume.empty()) {
    RETURN_IF_ERROR(trainer->RestoreCheckpoint(a.resume));
    std::fprintf(stderr, "resumed from %s at step %lld\n", a.resume.c_str(), static_cast<long long>(trainer->step()));
  }
  if (!a.preview.empty()) {
    const Pool reals = RenderPool(a.seed, 32, tw::ToyGeneratorScenes(), cfg.resolution);
    ASSIGN_OR_RETURN(Rgb8Image grid, core::MakeGrid(reals.images, 8));
    RETURN_IF_ERROR(WritePng(a.preview + "-reals.png", grid));
    for (const bool ema : {true, false}) {
      for (const float psi : {0.7f, 1.0f}) {
        RETURN_IF_ERROR(WriteSampleGrid(*trainer, absl::StrCat(a.preview, ema ? "-ema" : "-g", "-psi", psi, ".png"),
                                        cfg.style_dim, psi, ema));
      }
    }
    return absl::OkStatus();
  }
  const Pool pool = RenderPool(a.seed, a.pool, tw::ToyGeneratorScenes(), cfg.resolution);
  const auto start = std::chrono::steady_clock::now();
  const int64_t r = cfg.resolution;
  while (trainer->step() < a.steps) {
    const int64_t step = trainer->step();
    std::mt19937_64 rng(a.seed * 1000003ULL + static_cast<uint64_t>(step));
    FloatTensor reals;
    reals.shape = {a.batch, 3, r, r};
    reals.data.reserve(static_cast<size_t>(a.batch) * 3 * r * r);
    for (int b = 0; b < a.batch; ++b) {
      const FloatTensor x = core::Rgb8ToFloat(pool.images[static_cast<size_t>((rng() >> 11) % pool.images.size())]);
      reals.data.insert(reals.data.end(), x.data.begin(), x.data.end());
    }
    ASSIGN_OR_RETURN(auto losses, trainer->Step(reals));
    if (step % 50 == 0) {
      std::fprintf(stderr, "gan step %lld/%lld d %.3f g %.3f real %.2f fake %.2f%s (%.0f s)\n",
                   static_cast<long long>(step), static_cast<long long>(a.steps), losses["d"], losses["g"],
                   losses["real_score"], losses["fake_score"],
                   losses.count("r1") ? absl::StrCat(" r1 ", losses["r1"]).c_str() : "", Seconds(start));
    }
    if ((step + 1) % a.snapshot_every == 0 || step + 1 == a.steps) {
      RETURN_IF_ERROR(trainer->SaveCheckpoint(ckpt));
      RETURN_IF_ERROR(WriteSampleGrid(*trainer, (fs::path(a.out) / absl::StrCat("samples-", step + 1, ".png")).string(),
                                      cfg.style_dim));
    }
  }
  const fs::path out(a.out);
  RETURN_IF_ERROR(core::SaveSafetensors((out / "generator.safetensors").string(), trainer->GeneratorWeights(true),
                                        {{"format", "ganserve-stylegan2"}}));
  RETURN_IF_ERROR(core::SaveSafetensors((out / "generator_train.safetensors").string(),
                                        trainer->GeneratorWeights(false), {{"format", "ganserve-stylegan2"}}));
  RETURN_IF_ERROR(core::SaveSafetensors((out / "discriminator.safetensors").string(), trainer->DiscriminatorWeights(),
                                        {{"format", "ganserve-stylegan2-discriminator"}}));
  std::fprintf(stderr, "wrote the generator, its training copy and the discriminator to %s (%.0f s)\n", a.out.c_str(),
               Seconds(start));
  std::printf("%s\n", nlohmann::json{{"steps", trainer->step()},
                                     {"images", trainer->images_seen()},
                                     {"batch", a.batch},
                                     {"seconds_this_run", Seconds(start)}}
                          .dump()
                          .c_str());
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------

struct ClassifyArgs {
  std::string clip;
  std::string vocab;
  std::vector<std::string> pngs;
};

absl::Status Classify(const ClassifyArgs& a) {
  ASSIGN_OR_RETURN(auto model, core::clip::ClipModel::Load(a.clip, "cpu"));
  ASSIGN_OR_RETURN(auto tok, core::clip::Tokenizer::Load(a.vocab));
  ASSIGN_OR_RETURN(tw::ToyClassifier classifier, tw::ToyClassifier::Create(*model, *tok));
  std::vector<Rgb8Image> images;
  for (const std::string& p : a.pngs) {
    ASSIGN_OR_RETURN(std::string bytes, core::ReadFile(p, 64u << 20));
    ASSIGN_OR_RETURN(Rgb8Image img, core::DecodeImage(bytes));
    images.push_back(std::move(img));
  }
  ASSIGN_OR_RETURN(std::vector<tw::Classification> c, classifier.Classify(images));
  for (size_t i = 0; i < c.size(); ++i) {
    nlohmann::json line = tw::ToJson(c[i]);
    line["file"] = a.pngs[i];
    std::printf("%s\n", line.dump().c_str());
  }
  return absl::OkStatus();
}

struct DirectionArgs {
  std::string clip;
  std::string vocab;
  std::string from;
  std::string to;
  std::vector<std::string> pngs;
};

// Unit rows.
FloatTensor UnitRows(FloatTensor t) {
  const int64_t d = t.shape.back();
  for (size_t r = 0; r * d < t.data.size(); ++r) {
    double n = 0;
    for (int64_t j = 0; j < d; ++j) n += double(t.data[r * d + j]) * t.data[r * d + j];
    const float inv = 1.0f / static_cast<float>(std::max(std::sqrt(n), 1e-12));
    for (int64_t j = 0; j < d; ++j) t.data[r * d + j] *= inv;
  }
  return t;
}

// StyleGAN-NADA's directional CLIP loss, read back: for each (source, target) pair of
// images, the cosine between the image-embedding shift and the text direction from `from`
// to `to` (both under the 79 templates). 1 - cosine is what adaptation minimises, so this
// shows which of several candidate pictures a CLIP pulls the generator toward.
absl::Status Direction(const DirectionArgs& a) {
  if (a.pngs.empty() || a.pngs.size() % 2 != 0) return absl::InvalidArgumentError("give PNGs in source/target pairs");
  ASSIGN_OR_RETURN(auto model, core::clip::ClipModel::Load(a.clip, "cpu"));
  ASSIGN_OR_RETURN(auto tok, core::clip::Tokenizer::Load(a.vocab));
  std::vector<FloatTensor> texts;
  for (const std::string& t : {a.from, a.to}) {
    std::vector<std::vector<int>> ids;
    for (const std::string& line : core::adapt::ApplyTemplates(t)) {
      ASSIGN_OR_RETURN(std::vector<int> row, tok->Tokenize(line, /*truncate=*/true, model->config().context_length));
      ids.push_back(std::move(row));
    }
    ASSIGN_OR_RETURN(FloatTensor e, model->EncodeText(ids));
    texts.push_back(std::move(e));
  }
  const FloatTensor dt = core::edit::TextDirection(texts[0], texts[1]);
  FloatTensor images;
  const int r = model->config().image_resolution;
  images.shape = {static_cast<int64_t>(a.pngs.size()), 3, r, r};
  for (const std::string& p : a.pngs) {
    ASSIGN_OR_RETURN(std::string bytes, core::ReadFile(p, 64u << 20));
    ASSIGN_OR_RETURN(Rgb8Image img, core::DecodeImage(bytes));
    const FloatTensor x = core::clip::NormalizeForClip(img);
    images.data.insert(images.data.end(), x.data.begin(), x.data.end());
  }
  ASSIGN_OR_RETURN(FloatTensor e, model->EncodeImage(images));
  e = UnitRows(std::move(e));
  const int64_t d = e.shape.back();
  for (size_t i = 0; i + 1 < a.pngs.size(); i += 2) {
    FloatTensor shift;
    shift.shape = {1, d};
    for (int64_t j = 0; j < d; ++j) shift.data.push_back(e.data[(i + 1) * d + j] - e.data[i * d + j]);
    shift = UnitRows(std::move(shift));
    double cosine = 0;
    for (int64_t j = 0; j < d; ++j) cosine += double(shift.data[j]) * dt.data[j];
    std::printf("%s\n",
                nlohmann::json{{"source", a.pngs[i]}, {"target", a.pngs[i + 1]}, {"cosine", cosine}}.dump().c_str());
  }
  return absl::OkStatus();
}

struct EvaluateArgs {
  std::string clip;
  std::string vocab;
  uint64_t seed = 1;
  int count = 600;
};

absl::Status Evaluate(const EvaluateArgs& a) {
  if (a.count < 1) return absl::InvalidArgumentError("--count must be >= 1");
  ASSIGN_OR_RETURN(auto model, core::clip::ClipModel::Load(a.clip, "cpu"));
  ASSIGN_OR_RETURN(auto tok, core::clip::Tokenizer::Load(a.vocab));
  const Pool held = RenderPool(a.seed, a.count, {}, model->config().image_resolution);
  ASSIGN_OR_RETURN(nlohmann::json acc, ZeroShot(*model, *tok, held));
  std::printf("%s\n", acc.dump().c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace ganserve::tools

int main(int argc, char** argv) {
  using namespace ganserve::tools;  // NOLINT(google-build-using-namespace): the tool's own namespace
  CLI::App app{"ganserve-toytrain: train and measure the toy world's generator and CLIP"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "LibTorch threads (0: every available CPU)");
  std::function<absl::Status()> job;

  VocabArgs va;
  auto* vocab = app.add_subcommand("vocab", "learn the BPE vocabulary of the world's texts");
  vocab->add_option("--out", va.out)->required();
  vocab->add_option("--merges", va.merges, "most merges")->capture_default_str();
  vocab->callback([&] { job = [&] { return Vocab(va); }; });

  ClipArgs ca;
  auto* clip = app.add_subcommand("clip", "train the CLIP model");
  clip->add_option("--vocab", ca.vocab)->required()->check(CLI::ExistingFile);
  clip->add_option("--out", ca.out, "folder for clip.safetensors")->required();
  clip->add_option("--seed", ca.seed)->capture_default_str();
  clip->add_option("--steps", ca.steps)->capture_default_str();
  clip->add_option("--batch", ca.batch)->capture_default_str();
  clip->add_option("--pool", ca.pool, "training scenes")->capture_default_str();
  clip->add_option("--heldout", ca.heldout, "held-out scenes measured at the end")->capture_default_str();
  clip->add_option("--lr", ca.lr)->capture_default_str();
  clip->add_option("--empty", ca.empty, "share of training scenes without any shape")->capture_default_str();
  clip->add_option("--init", ca.init,
                   "start from this clip.safetensors (fine-tuning) instead of a fresh initialisation")
      ->check(CLI::ExistingFile);
  clip->add_option("--group", ca.group, "scenes per group sharing style and a colour (1: drawn alone)")
      ->capture_default_str();
  clip->callback([&] { job = [&] { return TrainClip(ca); }; });

  GanArgs ga;
  auto* gan = app.add_subcommand("gan", "train the generator");
  gan->add_option("--out", ga.out, "folder for the weights, checkpoints and sample grids")->required();
  gan->add_option("--seed", ga.seed)->capture_default_str();
  gan->add_option("--steps", ga.steps)->capture_default_str();
  gan->add_option("--batch", ga.batch)->capture_default_str();
  gan->add_option("--pool", ga.pool, "training scenes")->capture_default_str();
  gan->add_option("--lr", ga.lr)->capture_default_str();
  gan->add_option("--r1", ga.r1)->capture_default_str();
  gan->add_option("--snapshot-every", ga.snapshot_every)->capture_default_str();
  gan->add_option("--resume", ga.resume, "a training.safetensors to continue from")->check(CLI::ExistingFile);
  gan->add_option("--preview", ga.preview,
                  "with --resume: write sample grids (EMA and trained, psi 0.7 and 1) and stop");
  gan->callback([&] { job = [&] { return TrainGan(ga); }; });

  ClassifyArgs cl;
  auto* classify = app.add_subcommand("classify", "zero-shot classify PNGs: one JSON line each");
  classify->add_option("--clip", cl.clip)->required()->check(CLI::ExistingFile);
  classify->add_option("--vocab", cl.vocab)->required()->check(CLI::ExistingFile);
  classify->add_option("pngs", cl.pngs)->required();
  classify->callback([&] { job = [&] { return Classify(cl); }; });

  DirectionArgs di;
  auto* direction = app.add_subcommand(
      "direction", "StyleGAN-NADA's directional CLIP cosine of (source, target) PNG pairs: one JSON line each");
  direction->add_option("--clip", di.clip)->required()->check(CLI::ExistingFile);
  direction->add_option("--vocab", di.vocab)->required()->check(CLI::ExistingFile);
  direction->add_option("--from", di.from, "source domain text")->required();
  direction->add_option("--to", di.to, "target domain text")->required();
  direction->add_option("pngs", di.pngs, "source1 target1 source2 target2 ...")->required();
  direction->callback([&] { job = [&] { return Direction(di); }; });

  EvaluateArgs ev;
  auto* evaluate = app.add_subcommand("evaluate", "zero-shot accuracy on held-out scenes: JSON");
  evaluate->add_option("--clip", ev.clip)->required()->check(CLI::ExistingFile);
  evaluate->add_option("--vocab", ev.vocab)->required()->check(CLI::ExistingFile);
  evaluate->add_option("--seed", ev.seed, "base seed of the scenes")->capture_default_str();
  evaluate->add_option("--count", ev.count)->capture_default_str();
  evaluate->callback([&] { job = [&] { return Evaluate(ev); }; });

  CLI11_PARSE(app, argc, argv);
  ganserve::core::ConfigureTorch(threads);
  const absl::Status result = job();
  if (!result.ok()) {
    std::fprintf(stderr, "error: %s\n", result.ToString().c_str());
    return 1;
  }
  return 0;
}
