// The torch.save writer: our reader reads back what it wrote; PyTorch's torch.load reads
// it too (with weights_only=True), and an export of a rosinality checkpoint equals the
// original bit for bit; rosinality's own Generator renders it like ganserve when its
// checkout is given (GANSERVE_ROSINALITY_ROOT).
#include "core/checkpoint/torch_writer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/checkpoint/torch_file.h"
#include "core/io/npy.h"
#include "core/models/stylegan2/generator.h"
#include "core/util/file_util.h"
#include "core/util/mapped_file.h"
#include "tests/testing/shared.h"

namespace ganserve::core {
namespace {

TEST(TorchWriterTest, ReadsBackWithOurReader) {
  std::map<std::string, FloatTensor> sd;
  sd["a.weight"] = FloatTensor{{2, 3}, {1, 2, 3, 4, 5, 6}};
  sd["b.scalar"] = FloatTensor{{}, {7}};
  sd["c.empty"] = FloatTensor{{0, 4}, {}};
  const std::string bytes = EncodeTorchSave({{"g_ema", sd}, {"latent_avg", FloatTensor{{3}, {-1, 0.5f, 1e30f}}}});
  auto f = ParseTorchFile(MappedFile::FromString(bytes));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->format, TorchFileFormat::kZip);
  auto t = StateDictTensors(f->root->Get("g_ema"));
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 3u);
  for (const auto& [name, want] : sd) {
    auto got = ToFloatTensor(t->at(name));
    ASSERT_TRUE(got.ok()) << name;
    EXPECT_EQ(got->shape, want.shape) << name;
    EXPECT_EQ(got->data, want.data) << name;
  }
  PyRef avg = f->root->Get("latent_avg");
  ASSERT_NE(avg, nullptr);
  auto a = ToFloatTensor(*avg->tensor);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->data, (std::vector<float>{-1, 0.5f, 1e30f}));
}

TEST(TorchWriterTest, TorchLoadsTheExportAndRosinalityRendersIt) {
  const std::string shared = ::ganserve::testing::SharedDir();
  if (shared.empty()) GTEST_SKIP() << "shared/ fixtures not found (set GANSERVE_SHARED_DIR)";
  if (std::system("/usr/bin/python3 -c 'import torch, numpy' > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "Debian's python3-torch is not installed; torch.load cannot be checked";
  }
  const std::string original = shared + "/fixtures/stylegan2/a1_g32_sd512_zip.pt";
  auto g = stylegan2::Generator::Load(original, {});
  ASSERT_TRUE(g.ok()) << g.status();
  const std::string dir = ::testing::TempDir() + "/torch_export";
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomic(dir + "/export.pt",
                              EncodeTorchSave({{"g_ema", (*g)->StateDict()}, {"latent_avg", (*g)->mean_latent()}}))
                  .ok());
  // Our render of the reference z at truncation 0.7 with constant noise.
  auto z = ReadNpyFloat(shared + "/fixtures/stylegan2/a1/z.npy");
  ASSERT_TRUE(z.ok()) << z.status();
  stylegan2::GenerateParams p;
  p.latents = *z;
  p.truncation = 0.7f;
  auto r = (*g)->Generate(p);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(WriteNpy(dir + "/ours.npy", r->images).ok());

  std::string cmd = "/usr/bin/python3 " + std::string(GANSERVE_SOURCE_DIR) + "/tests/fixtures/check_torch_export.py " +
                    dir + "/export.pt " + original;
  if (const char* ros = std::getenv("GANSERVE_ROSINALITY_ROOT"); ros != nullptr && *ros != '\0') {
    cmd += std::string(" --rosinality-root ") + ros + " --z " + shared + "/fixtures/stylegan2/a1/z.npy --ours " + dir +
           "/ours.npy --truncation 0.7";
  } else {
    std::printf("GANSERVE_ROSINALITY_ROOT is not set: rosinality's render of the export is not checked\n");
  }
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

}  // namespace
}  // namespace ganserve::core
