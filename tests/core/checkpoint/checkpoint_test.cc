// Loading the checkpoint shapes real users have: legacy and zip formats, extra entries
// (g, d, optimizer states, argparse Namespace), bare state dicts, parameters and
// non-contiguous tensors, changing widths, and broken files.
#include <gtest/gtest.h>

#include <random>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_file.h"
#include "core/io/npy.h"
#include "core/models/stylegan2/generator.h"
#include "core/util/file_util.h"
#include "tests/testing/checkpoint_fixtures.h"
#include "tests/testing/tensor_compare.h"

namespace ganserve::core {
namespace {

using stylegan2::GenerateParams;
using stylegan2::Generator;
using stylegan2::LoadReport;

using ::ganserve::testing::CheckpointFixtureDir;
using ::ganserve::testing::MaxAbsDiff;

std::string FixtureDir() { return CheckpointFixtureDir(); }

class CheckpointTest : public ::ganserve::testing::CheckpointFixtureTest {
 protected:
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

// Half-precision writes: float16 and bfloat16 round to nearest even, saturate to
// infinity, keep subnormals and NaN, and read back through the loader.
TEST(SafetensorsHalfTest, Float16AndBFloat16RoundToNearestEven) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);
  EXPECT_EQ(FloatToHalf(5.9604645e-8f), 0x0001);  // the smallest subnormal
  EXPECT_EQ(FloatToHalf(1.0f + 1.0f / 2048), 0x3c00) << "a tie rounds to the even neighbour";
  EXPECT_EQ(FloatToHalf(1.0f + 3.0f / 2048), 0x3c02);
  EXPECT_EQ(FloatToHalf(std::nanf("")) & 0x7c00, 0x7c00);
  EXPECT_NE(FloatToHalf(std::nanf("")) & 0x3ff, 0);
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBFloat16(1.0f + 1.0f / 256), 0x3f80) << "a tie rounds to the even neighbour";
  EXPECT_EQ(FloatToBFloat16(1.0f + 3.0f / 256), 0x3f82);
  EXPECT_NE(FloatToBFloat16(std::nanf("")) & 0x7f, 0);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::map<std::string, FloatTensor> t{{"w", FloatTensor{{64, 33}, {}}}};
  for (int i = 0; i < 64 * 33; ++i) t["w"].data.push_back(normal(rng));
  for (DType d : {DType::kFloat16, DType::kBFloat16}) {
    auto parsed = ParseSafetensors(MappedFile::FromString(EncodeSafetensors(t, {}, d)));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->tensors.at("w").dtype, d);
    auto back = ToFloatTensor(parsed->tensors.at("w"));
    ASSERT_TRUE(back.ok());
    const float rel = d == DType::kFloat16 ? 1.0f / 2048 : 1.0f / 256;
    for (size_t i = 0; i < t["w"].data.size(); ++i) {
      const float v = t["w"].data[i];
      ASSERT_LE(std::fabs(back->data[i] - v), std::max(std::fabs(v) * rel, 6e-8f)) << i;
    }
  }
}

TEST(PickleTest, ReferenceCyclesAreRefused) {
  // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP: a list that contains itself.
  const std::string cyclic(
      "\x80\x02]q\x00h\x00"
      "a.",
      9);
  size_t pos = 0;
  auto v = Unpickle(cyclic, &pos, nullptr);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("cycle"), std::string::npos) << v.status();
  // The same list appended to another list, once: shared, not cyclic, accepted.
  const std::string shared(
      "\x80\x02](]q\x00h\x00"
      "e.",
      11);
  pos = 0;
  auto ok = Unpickle(shared, &pos, nullptr);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->items.size(), 2u);
}

TEST(PickleTest, UnreachableCyclesAreFreedAndDoNotFailTheLoad) {
  // A list that contains itself, popped off the stack; the result is None. The cycle
  // never escapes, so the load succeeds (the fuzz corpus checks it is freed).
  const std::string s(
      "\x80\x02]q\x00h\x00"
      "a0N.",
      11);
  size_t pos = 0;
  auto v = Unpickle(s, &pos, nullptr);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ((*v)->kind, PyValue::Kind::kNone);
}

TEST(TorchFileTest, NotACheckpoint) {
  auto r = ParseTorchFile(MappedFile::FromString("hello world, not a checkpoint"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  auto missing = LoadTorchFile("/nonexistent/x.pt");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ganserve::core
