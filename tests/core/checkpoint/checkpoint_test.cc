// Loading the checkpoint shapes real users have: legacy and zip formats, extra entries
// (g, d, optimizer states, argparse Namespace), bare state dicts, parameters and
// non-contiguous tensors, changing widths, and broken files.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_file.h"
#include "core/io/npy.h"
#include "core/invert/projector.h"
#include "core/models/lpips/lpips.h"
#include "core/models/stylegan2/discriminator.h"
#include "core/models/stylegan2/generator.h"
#include "core/registry/model_repository.h"
#include "core/util/file_util.h"
#include "tests/testing/shared.h"
#include "tests/testing/tensor_compare.h"

namespace ganserve::core {
namespace {

using stylegan2::GenerateParams;
using stylegan2::Generator;
using stylegan2::LoadReport;

std::string FixtureDir() { return std::string(GANSERVE_BINARY_DIR) + "/test_fixtures/checkpoints"; }

using ::ganserve::testing::MaxAbsDiff;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    shared_ = ::ganserve::testing::SharedDir();
    if (shared_.empty()) GTEST_SKIP() << "shared/ fixtures not found (set GANSERVE_SHARED_DIR)";
    if (!std::filesystem::exists(FixtureDir() + "/legacy_full.pt")) {
      GTEST_SKIP() << "checkpoint fixtures not built: run ctest (fixture make_checkpoint_fixtures)";
    }
  }
  // Renders the reference z through `gen` and compares with the official output.
  void ExpectReferenceImages(const Generator& gen) {
    auto z = ReadNpyFloat(shared_ + "/fixtures/stylegan2/a1/z.npy");
    auto ref = ReadNpyFloat(shared_ + "/fixtures/stylegan2/a1/img_trunc07.npy");
    ASSERT_TRUE(z.ok() && ref.ok());
    GenerateParams p;
    p.latents = *z;
    p.truncation = 0.7f;
    auto r = gen.Generate(p);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_LE(MaxAbsDiff(r->images, *ref), 1e-4f);
  }
  std::string shared_;
};

TEST_F(CheckpointTest, LegacyFormatWithExtraEntries) {
  LoadReport rep;
  auto g = Generator::Load(FixtureDir() + "/legacy_full.pt", {}, &rep);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(rep.format, "legacy");
  EXPECT_EQ(rep.source_key, "g_ema");
  EXPECT_EQ(rep.mean_latent_source, "checkpoint");
  EXPECT_EQ(rep.entries.count("d"), 1u);
  EXPECT_EQ(rep.entries.at("args"), "object argparse.Namespace");
  ExpectReferenceImages(**g);
}

TEST_F(CheckpointTest, ExplicitKeyAndGOnly) {
  stylegan2::LoadOptions opt;
  opt.key = "g";
  auto g = Generator::Load(FixtureDir() + "/legacy_full.pt", opt);
  ASSERT_TRUE(g.ok()) << g.status();
  LoadReport rep;
  auto g2 = Generator::Load(FixtureDir() + "/zip_g_only.pt", {}, &rep);
  ASSERT_TRUE(g2.ok()) << g2.status();
  EXPECT_EQ(rep.source_key, "g");
  EXPECT_EQ(rep.format, "zip");
  // No latent_avg: computed, so truncated images differ slightly from the reference.
  EXPECT_EQ(rep.mean_latent_source, "computed (4096 samples, seed 0)");
  opt.key = "d";
  auto bad = Generator::Load(FixtureDir() + "/zip_g_only.pt", opt);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'d'"), std::string::npos) << bad.status();
}

TEST_F(CheckpointTest, BareStateDictAndSingleEntryDict) {
  LoadReport rep;
  auto g = Generator::Load(FixtureDir() + "/bare_state.pt", {}, &rep);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(rep.source_key, "");
  auto g1 = Generator::Load(FixtureDir() + "/one_entry.pt", {});
  ASSERT_TRUE(g1.ok()) << g1.status();
}

TEST_F(CheckpointTest, ParametersAndNonContiguousTensors) {
  auto g = Generator::Load(FixtureDir() + "/params.pt", {});
  ASSERT_TRUE(g.ok()) << g.status();
  ExpectReferenceImages(**g);
}

TEST_F(CheckpointTest, MissingTensorIsNamed) {
  auto g = Generator::Load(FixtureDir() + "/missing_key.pt", {});
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("convs.3.conv.weight"), std::string::npos) << g.status();
}

TEST_F(CheckpointTest, WrongShapeIsNamed) {
  auto g = Generator::Load(FixtureDir() + "/wrong_shape.pt", {});
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("to_rgbs.1.bias is [1, 4, 1, 1], expected [1, 3, 1, 1]"), std::string::npos)
      << g.status();
}

TEST_F(CheckpointTest, WidthsChangeBetweenResolutions) {
  auto g = Generator::Load(FixtureDir() + "/widths.pt", {});
  ASSERT_TRUE(g.ok()) << g.status();
  const auto& c = (*g)->config();
  EXPECT_EQ(c.resolution, 64);
  EXPECT_EQ(c.style_dim, 64);
  EXPECT_EQ(c.n_mlp, 4);
  EXPECT_EQ(c.n_latent, 10);
  EXPECT_EQ(c.channels, (std::map<int, int>{{4, 16}, {8, 16}, {16, 12}, {32, 8}, {64, 4}}));
  GenerateParams p;
  p.latents.shape = {2, 64};
  p.latents.data = stylegan2::SeedToZ(1, 64);
  auto z2 = stylegan2::SeedToZ(2, 64);
  p.latents.data.insert(p.latents.data.end(), z2.begin(), z2.end());
  auto r = (*g)->Generate(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->images.shape, (std::vector<int64_t>{2, 3, 64, 64}));
  for (float v : r->images.data) ASSERT_TRUE(std::isfinite(v));
}

TEST_F(CheckpointTest, SafetensorsRoundTripRendersTheSame) {
  auto g = Generator::Load(shared_ + "/fixtures/stylegan2/a1_g32_sd512_zip.pt", {});
  ASSERT_TRUE(g.ok()) << g.status();
  auto sd = (*g)->StateDict();
  sd["latent_avg"] = (*g)->mean_latent();
  const std::string path = ::testing::TempDir() + "/g.safetensors";
  ASSERT_TRUE(SaveSafetensors(path, sd, {{"format", "ganserve-generator"}}).ok());
  LoadReport rep;
  auto g2 = Generator::Load(path, {}, &rep);
  ASSERT_TRUE(g2.ok()) << g2.status();
  EXPECT_EQ(rep.format, "safetensors");
  ExpectReferenceImages(**g2);
  auto st = LoadSafetensors(path);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->metadata.at("format"), "ganserve-generator");
}

// Every prefix of a real checkpoint either fails with a clear error or (for a prefix
// that happens to be complete) loads; none may crash.
TEST_F(CheckpointTest, TruncatedFilesFailCleanly) {
  for (const std::string name : {"legacy_full.pt", "one_entry.pt"}) {
    auto bytes = ReadFile(FixtureDir() + "/" + name);
    ASSERT_TRUE(bytes.ok());
    for (double frac : {0.0, 0.001, 0.01, 0.3, 0.5, 0.9, 0.999}) {
      auto file = MappedFile::FromString(bytes->substr(0, static_cast<size_t>(bytes->size() * frac)));
      auto parsed = ParseTorchFile(file);
      if (parsed.ok()) {
        auto sd = StateDictTensors(parsed->root->Get("g_ema"));
        if (!sd.ok()) continue;
        auto g = Generator::FromTensors(*sd, nullptr, {});
        EXPECT_FALSE(g.ok()) << name << " at " << frac;
      } else {
        EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
      }
    }
  }
}

TEST(PickleTest, ReferenceCyclesAreRefused) {
  // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP: a list that contains itself.
  const std::string cyclic("\x80\x02]q\x00h\x00" "a.", 9);
  size_t pos = 0;
  auto v = Unpickle(cyclic, &pos, nullptr);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("cycle"), std::string::npos) << v.status();
  // The same list appended to another list, once: shared, not cyclic, accepted.
  const std::string shared("\x80\x02](]q\x00h\x00" "e.", 11);
  pos = 0;
  auto ok = Unpickle(shared, &pos, nullptr);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->items.size(), 2u);
}

TEST(PickleTest, UnreachableCyclesAreFreedAndDoNotFailTheLoad) {
  // A list that contains itself, popped off the stack; the result is None. The cycle
  // never escapes, so the load succeeds (the fuzz corpus checks it is freed).
  const std::string s("\x80\x02]q\x00h\x00" "a0N.", 11);
  size_t pos = 0;
  auto v = Unpickle(s, &pos, nullptr);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ((*v)->kind, PyValue::Kind::kNone);
}

using stylegan2::Discriminator;

TEST_F(CheckpointTest, DiscriminatorMatchesAnIndependentForward) {
  auto d = Discriminator::Load(FixtureDir() + "/legacy_full.pt", "cpu");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->config().resolution, 32);
  const std::map<int, int> widths = {{4, 16}, {8, 16}, {16, 12}, {32, 8}};
  EXPECT_EQ((*d)->config().channels, widths);
  auto images = ReadNpyFloat(FixtureDir() + "/disc_images.npy");
  auto ref4 = ReadNpyFloat(FixtureDir() + "/disc_logits4.npy");
  auto ref2 = ReadNpyFloat(FixtureDir() + "/disc_logits2.npy");
  ASSERT_TRUE(images.ok() && ref4.ok() && ref2.ok());
  auto all = (*d)->Score(*images);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->shape, std::vector<int64_t>{8});
  EXPECT_LE(MaxAbsDiff(*all, *ref4), 1e-5f);
  // Two images form one group of two: different minibatch statistics, other logits.
  FloatTensor two;
  two.shape = {2, 3, 32, 32};
  two.data.assign(images->data.begin(), images->data.begin() + 2 * 3 * 32 * 32);
  auto pair = (*d)->Score(two);
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_LE(MaxAbsDiff(*pair, *ref2), 1e-5f);
  EXPECT_GT(std::fabs(pair->data[0] - all->data[0]), 1e-5f);
}

TEST_F(CheckpointTest, DiscriminatorRejectsBadBatchesAndMissingEntries) {
  auto d = Discriminator::Load(FixtureDir() + "/legacy_full.pt", "cpu");
  ASSERT_TRUE(d.ok()) << d.status();
  FloatTensor six;
  six.shape = {6, 3, 32, 32};
  six.data.assign(6 * 3 * 32 * 32, 0.0f);
  auto r = (*d)->Score(six);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("multiple of 4"), std::string::npos) << r.status();
  FloatTensor wrong;
  wrong.shape = {1, 3, 64, 64};
  wrong.data.assign(3 * 64 * 64, 0.0f);
  EXPECT_EQ((*d)->Score(wrong).status().code(), absl::StatusCode::kInvalidArgument);

  auto none = Discriminator::Load(FixtureDir() + "/zip_g_only.pt", "cpu");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("no 'd' entry"), std::string::npos) << none.status();

  auto file = LoadTorchFile(FixtureDir() + "/legacy_full.pt");
  ASSERT_TRUE(file.ok()) << file.status();
  auto tensors = StateDictTensors(file->root->Get("d"));
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  tensors->erase("convs.2.skip.1.weight");
  auto broken = Discriminator::FromTensors(*tensors, "cpu");
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(broken.status().message().find("convs.2.skip.1.weight"), std::string::npos) << broken.status();
}

TEST_F(CheckpointTest, LpipsMatchesAnIndependentForward) {
  auto lp = lpips::Lpips::Load(FixtureDir() + "/vgg16_features.pt", FixtureDir() + "/lpips_vgg.pth", "cpu");
  ASSERT_TRUE(lp.ok()) << lp.status();
  auto a = ReadNpyFloat(FixtureDir() + "/lpips_a.npy");
  auto b = ReadNpyFloat(FixtureDir() + "/lpips_b.npy");
  auto ref = ReadNpyFloat(FixtureDir() + "/lpips_d.npy");
  ASSERT_TRUE(a.ok() && b.ok() && ref.ok());
  auto d = (*lp)->Distance(*a, *b);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->shape, std::vector<int64_t>{2});
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(d->data[i], ref->data[i], 1e-5 + 1e-4 * ref->data[i]) << i;
  auto same = (*lp)->Distance(*a, *a);
  ASSERT_TRUE(same.ok());
  EXPECT_NEAR(same->data[0], 0.0f, 1e-7);
  FloatTensor small{{1, 3, 16, 16}, std::vector<float>(3 * 16 * 16, 0.0f)};
  EXPECT_EQ((*lp)->Distance(small, small).status().code(), absl::StatusCode::kInvalidArgument);
  // The linear layers' file in place of VGG16 names what is missing.
  auto swapped = lpips::Lpips::Load(FixtureDir() + "/lpips_vgg.pth", FixtureDir() + "/lpips_vgg.pth", "cpu");
  EXPECT_EQ(swapped.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(swapped.status().message().find("features.0.weight"), std::string::npos) << swapped.status();
}

TEST_F(CheckpointTest, RepositoryServesLpipsAndTheProjectorUsesIt) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("ganserve_lpips_repo_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "lpips");
  fs::create_symlink(FixtureDir() + "/vgg16_features.pt", root / "lpips/vgg16.pth");
  fs::create_symlink(FixtureDir() + "/lpips_vgg.pth", root / "lpips/vgg.pth");
  std::ofstream(root / "lpips/manifest.json") << R"({"kind": "lpips", "vgg16": "vgg16.pth", "lin": "vgg.pth"})";
  auto repo = ModelRepository::Create(root.string(), {});
  ASSERT_TRUE(repo.ok());
  EXPECT_EQ((*repo)->LoadAll(), 1);
  auto info = (*repo)->Get("lpips");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->kind, ModelKind::kLpips);
  auto lp = (*repo)->FirstLpips();
  ASSERT_NE(lp, nullptr);

  // A projection with LPIPS reports the term and names the loss.
  auto gen = Generator::Load(shared_ + "/fixtures/stylegan2/a1_g32_sd512_zip.pt", {});
  ASSERT_TRUE(gen.ok()) << gen.status();
  std::shared_ptr<const Generator> g(std::move(*gen));
  Rgb8Image target;
  target.width = target.height = 32;
  target.pixels.assign(32 * 32 * 3, 90);
  invert::ProjectorOptions o;
  o.steps = 4;
  o.mse = 0;
  auto proj = invert::Projector::Create(g, target, o, nullptr, lp);
  ASSERT_TRUE(proj.ok()) << proj.status();
  for (int i = 0; i < 4; ++i) {
    auto l = (*proj)->Step();
    ASSERT_TRUE(l.ok()) << l.status();
    EXPECT_GT(l->count("lpips"), 0u);
  }
  auto inv = (*proj)->Result();
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->loss, "lpips");
  EXPECT_GE(inv->lpips, 0.0f);
  fs::remove_all(root);
}

TEST(TorchFileTest, NotACheckpoint) {
  auto r = ParseTorchFile(MappedFile::FromString("hello world, not a checkpoint"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  auto missing = LoadTorchFile("/nonexistent/x.pt");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ganserve::core
