// The model repository: loading every kind with broken models recorded beside the
// good ones, names, publishing adapted models atomically, deleting, crash leftovers,
// serving LPIPS to the projector, and StarGAN v2's AlexNet LPIPS kept apart from it.
#include "core/registry/model_repository.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_writer.h"
#include "core/invert/projector.h"
#include "core/models/stylegan2/random_init.h"
#include "core/storage/shared_files.h"
#include "tests/testing/checkpoint_fixtures.h"

namespace ganserve::core {
namespace {

namespace fs = std::filesystem;
using stylegan2::Generator;

// A fresh repository folder with a 32 px random generator "base".
class ModelRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ganserve_repo_test_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "base");
    auto cfg = stylegan2::MakeConfig(32, 16, 2, 1, 8);
    weights_ = stylegan2::RandomGeneratorWeights(cfg, 1, 0.1f);
    ASSERT_TRUE(SaveSafetensors((root_ / "base/g.safetensors").string(), weights_, {}).ok());
    std::ofstream(root_ / "base/manifest.json")
        << R"({"kind": "generator", "checkpoint": "g.safetensors", "domain": "photo", "default_truncation": 0.6})";
  }
  void TearDown() override { fs::remove_all(root_); }

  // Publishes an adapted model of "base" whose delta moves one tensor.
  absl::StatusOr<ModelInfo> PublishAdapted(ModelRepository& repo, const std::string& name) {
    return repo.Publish(name, "job-" + name, [&](const std::string& folder) -> absl::Status {
      std::map<std::string, FloatTensor> delta;
      delta["convs.0.conv.weight"] = weights_.at("convs.0.conv.weight");
      for (float& v : delta["convs.0.conv.weight"].data) v += 0.5f;
      auto st = SaveSafetensors(folder + "/delta.safetensors", delta, {});
      if (!st.ok()) return st;
      std::ofstream(folder + "/manifest.json") << R"({"kind": "adapted_generator", "base_model": "base", )"
                                               << R"("delta": "delta.safetensors", "target_text": "sketch"})";
      return absl::OkStatus();
    });
  }

  fs::path root_;
  std::map<std::string, FloatTensor> weights_;
};

TEST_F(ModelRepositoryTest, BrokenModelsAreRecordedBesideTheGoodOnes) {
  fs::create_directories(root_ / "nofile");
  std::ofstream(root_ / "nofile/manifest.json") << R"({"kind": "generator", "checkpoint": "missing.pt"})";
  fs::create_directories(root_ / "oddkind");
  std::ofstream(root_ / "oddkind/manifest.json") << R"({"kind": "vae"})";
  fs::create_directories(root_ / "notjson");
  std::ofstream(root_ / "notjson/manifest.json") << "{";
  auto repo = ModelRepository::Create(root_.string(), {});
  ASSERT_TRUE(repo.ok()) << repo.status();
  EXPECT_EQ((*repo)->LoadAll(), 1);
  auto base = (*repo)->Get("base");
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->kind, ModelKind::kGenerator);
  EXPECT_EQ(base->state, ModelState::kReady);
  EXPECT_EQ(base->resolution, 32);
  EXPECT_EQ(base->domain, "photo");
  EXPECT_FLOAT_EQ(base->default_truncation, 0.6f);
  for (const char* name : {"nofile", "oddkind", "notjson"}) {
    auto info = (*repo)->Get(name);
    ASSERT_TRUE(info.ok()) << name;
    EXPECT_EQ(info->state, ModelState::kFailed) << name;
    EXPECT_FALSE(info->error.empty()) << name;
    EXPECT_EQ((*repo)->GetGenerator(name).status().code(), absl::StatusCode::kFailedPrecondition) << name;
  }
  EXPECT_NE((*repo)->Get("oddkind")->error.find("vae"), std::string::npos);
  auto missing = (*repo)->Get("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("base"), std::string::npos) << "names the available models";
  EXPECT_EQ((*repo)->GetClip("base").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*repo)->FirstLpips(), nullptr);
}

// Writes an AlexNet LPIPS model folder as scripts/fetch-weights.sh installs it: a random
// torchvision AlexNet state dict (features.* only) and random StarGAN v2 1x1 layers, both
// torch.save files, with `lin` naming the second file in the manifest.
void WriteAlexLpipsFolder(const fs::path& dir, const std::string& lin = "lpips_weights.ckpt") {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  auto random = [&](std::vector<int64_t> shape) {
    FloatTensor t;
    t.shape = std::move(shape);
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    t.data.resize(static_cast<size_t>(n));
    for (float& v : t.data) v = std::fabs(normal(rng));
    return t;
  };
  struct Conv {
    int index;
    int64_t out, in, k;
  };
  const Conv convs[] = {{0, 64, 3, 11}, {3, 192, 64, 5}, {6, 384, 192, 3}, {8, 256, 384, 3}, {10, 256, 256, 3}};
  std::vector<TorchSaveEntry> alexnet, weights;
  for (int i = 0; i < 5; ++i) {
    const Conv& c = convs[i];
    alexnet.push_back({"features." + std::to_string(c.index) + ".weight", random({c.out, c.in, c.k, c.k})});
    alexnet.push_back({"features." + std::to_string(c.index) + ".bias", random({c.out})});
    weights.push_back({"lpips_weights." + std::to_string(i) + ".main.1.weight", random({1, c.out, 1, 1})});
  }
  fs::create_directories(dir);
  std::ofstream(dir / "alexnet-owt-7be5be79.pth", std::ios::binary) << EncodeTorchSave(alexnet);
  std::ofstream(dir / "lpips_weights.ckpt", std::ios::binary) << EncodeTorchSave(weights);
  std::ofstream(dir / "manifest.json") << R"({"kind": "lpips", "variant": "alex_stargan", )"
                                       << R"("alexnet": "alexnet-owt-7be5be79.pth", "lin": ")" << lin << R"("})";
}

TEST_F(ModelRepositoryTest, AlexLpipsLoadsAsItsOwnVariantAndNeverAsTheProjectorsLpips) {
  auto repo = ModelRepository::Create(root_.string(), {});
  ASSERT_TRUE(repo.ok());
  ASSERT_EQ((*repo)->LoadAll(), 1);
  // None installed: the error names both files and the script that installs them.
  auto none = (*repo)->FirstAlexLpips();
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  for (const char* want : {"alexnet-owt-7be5be79.pth", "lpips_weights.ckpt", "scripts/fetch-weights.sh"}) {
    EXPECT_NE(none.status().message().find(want), std::string::npos) << want << ": " << none.status();
  }

  // A VGG manifest (no "variant") whose files are absent, and an AlexNet one.
  fs::create_directories(root_ / "a-vgg");
  std::ofstream(root_ / "a-vgg/manifest.json") << R"({"kind": "lpips", "vgg16": "vgg16.pth", "lin": "vgg.pth"})";
  WriteAlexLpipsFolder(root_ / "lpips-alex");
  EXPECT_EQ((*repo)->Rescan().added, (std::vector<std::string>{"a-vgg", "lpips-alex"}));
  auto info = (*repo)->Get("lpips-alex");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->kind, ModelKind::kLpips);
  EXPECT_EQ(info->variant, kLpipsAlexStargan);
  EXPECT_EQ(info->state, ModelState::kUnloaded);
  EXPECT_EQ((*repo)->Get("a-vgg")->variant, kLpipsVgg);

  // The AlexNet variant loads on first use, without touching the VGG one.
  auto alex = (*repo)->FirstAlexLpips();
  ASSERT_TRUE(alex.ok()) << alex.status();
  ASSERT_NE(*alex, nullptr);
  EXPECT_EQ((*repo)->Get("a-vgg")->state, ModelState::kUnloaded);
  FloatTensor a{{2, 3, 32, 32}, std::vector<float>(size_t{2} * 3 * 32 * 32, 0.2f)};
  FloatTensor b = a;
  for (size_t i = 0; i < b.data.size(); i += 3) b.data[i] = -0.4f;
  auto d = (*alex)->Distance(a, b);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->shape, std::vector<int64_t>{2});
  EXPECT_GT(d->data[0], 0.0f);
  // Listed as READY with what its weights hold: AlexNet's five convolutions (2,469,696
  // floats) and the 1x1 layers (1,152).
  bool listed = false;
  for (const auto& m : (*repo)->List()) {
    if (m.name != "lpips-alex") continue;
    listed = true;
    EXPECT_EQ(m.state, ModelState::kReady);
    EXPECT_EQ(m.variant, kLpipsAlexStargan);
    EXPECT_GE(m.resident.host_bytes, int64_t{2470848} * 4);
  }
  EXPECT_TRUE(listed);

  // The projector's accessor takes only the VGG variant: here the broken one (which
  // fails for its missing files), never the AlexNet one.
  EXPECT_EQ((*repo)->FirstLpips(), nullptr);
  EXPECT_EQ((*repo)->Get("a-vgg")->state, ModelState::kFailed);
  auto again = (*repo)->FirstAlexLpips();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *alex) << "the resident model is shared";
}

TEST_F(ModelRepositoryTest, BrokenAlexLpipsFoldersSayWhatIsWrong) {
  // A missing file fails the model with its name; an unknown variant fails the scan.
  WriteAlexLpipsFolder(root_ / "alex-missing", "lpips_weights_missing.ckpt");
  fs::create_directories(root_ / "odd-variant");
  std::ofstream(root_ / "odd-variant/manifest.json") << R"({"kind": "lpips", "variant": "squeeze"})";
  auto repo = ModelRepository::Create(root_.string(), {});
  ASSERT_TRUE(repo.ok());
  EXPECT_EQ((*repo)->LoadAll(), 1);
  auto missing = (*repo)->Get("alex-missing");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->state, ModelState::kFailed);
  EXPECT_NE(missing->error.find("lpips_weights_missing.ckpt"), std::string::npos) << missing->error;
  auto odd = (*repo)->Get("odd-variant");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->state, ModelState::kFailed);
  EXPECT_NE(odd->error.find("squeeze"), std::string::npos) << odd->error;
  // The accessor says what to install and why the installed one does not serve.
  auto none = (*repo)->FirstAlexLpips();
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  for (const char* want : {"alexnet-owt-7be5be79.pth", "lpips_weights.ckpt", "scripts/fetch-weights.sh", "alex-missing",
                           "lpips_weights_missing.ckpt"}) {
    EXPECT_NE(none.status().message().find(want), std::string::npos) << want << ": " << none.status();
  }
  // A good one beside it is found (after the broken one by name, which is skipped).
  WriteAlexLpipsFolder(root_ / "lpips-alex");
  (*repo)->Rescan();
  auto alex = (*repo)->FirstAlexLpips();
  ASSERT_TRUE(alex.ok()) << alex.status();
  EXPECT_EQ((*repo)->FirstLpips(), nullptr);
}

// Latent mappers: a folder with its tensors loads (configuration from the names), is
// served only as a mapper, counts its memory, can be deleted; a manifest without its
// generator, or tensors of no mapper, fail with the reason.
TEST_F(ModelRepositoryTest, MappersLoadUnderTheirGenerator) {
  edit::MapperConfig cfg;
  cfg.dim = 16;
  cfg.fine = false;
  auto mapper = edit::LatentMapper::Random(cfg, 3, "cpu");
  ASSERT_TRUE(mapper.ok());
  fs::create_directories(root_ / "smile");
  ASSERT_TRUE(SaveSafetensors((root_ / "smile/mapper.safetensors").string(), (*mapper)->StateDict(), {}).ok());
  std::ofstream(root_ / "smile/manifest.json") << R"({"kind": "mapper", "base_model": "base",
      "target_text": "a smile", "mapper_file": "mapper.safetensors"})";
  fs::create_directories(root_ / "orphan");
  std::ofstream(root_ / "orphan/manifest.json") << R"({"kind": "mapper", "mapper_file": "mapper.safetensors"})";
  fs::create_directories(root_ / "junk");
  ASSERT_TRUE(
      SaveSafetensors((root_ / "junk/mapper.safetensors").string(), {{"x", weights_.begin()->second}}, {}).ok());
  std::ofstream(root_ / "junk/manifest.json") << R"({"kind": "mapper", "base_model": "base",
      "mapper_file": "mapper.safetensors"})";
  auto repo = ModelRepository::Create(root_.string(), {});
  ASSERT_TRUE(repo.ok());
  (*repo)->LoadAll();
  auto info = (*repo)->Get("smile");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, ModelState::kReady) << info->error;
  EXPECT_EQ(info->kind, ModelKind::kMapper);
  EXPECT_EQ(info->base_model, "base");
  EXPECT_EQ(info->target_text, "a smile");
  EXPECT_EQ(info->trained_parameters, (*mapper)->parameter_count());
  EXPECT_GT(info->resident.host_bytes + info->resident.device_bytes, 0);
  auto got = (*repo)->GetMapper("smile");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE((*got)->config().fine);
  EXPECT_EQ((*got)->StateDict().at("course_mapping.mapping.1.weight").data,
            (*mapper)->StateDict().at("course_mapping.mapping.1.weight").data);
  EXPECT_EQ((*repo)->GetMapper("base").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*repo)->GetGenerator("smile").status().code(), absl::StatusCode::kFailedPrecondition);
  auto orphan = (*repo)->Get("orphan");
  ASSERT_TRUE(orphan.ok());
  EXPECT_EQ(orphan->state, ModelState::kFailed);
  EXPECT_NE(orphan->error.find("base_model"), std::string::npos) << orphan->error;
  auto junk = (*repo)->Get("junk");
  ASSERT_TRUE(junk.ok());
  EXPECT_EQ(junk->state, ModelState::kFailed);
  EXPECT_NE(junk->error.find("LevelsMapper"), std::string::npos) << junk->error;
  // The generator a mapper names cannot go first; the mapper can.
  EXPECT_FALSE((*repo)->Delete("base").ok());
  EXPECT_TRUE((*repo)->Delete("smile").ok());
  EXPECT_FALSE(fs::exists(root_ / "smile"));
}

// An official mapper checkpoint as published (how fetch-weights installs them) loads as
// the mapper its tensor names describe.
TEST_F(ModelRepositoryTest, OfficialMapperFilesLoadAsPublished) {
  const fs::path official = fs::path(GANSERVE_SOURCE_DIR) / "tests/fixtures/latent_mapper/levels_no_fine.pt";
  fs::create_directories(root_ / "purple");
  fs::copy_file(official, root_ / "purple/purple_hair.pt");
  std::ofstream(root_ / "purple/manifest.json") << R"({"kind": "mapper", "base_model": "base",
      "target_text": "purple hair", "mapper_file": "purple_hair.pt"})";
  auto repo = ModelRepository::Create(root_.string(), {});
  ASSERT_TRUE(repo.ok());
  (*repo)->LoadAll();
  auto got = (*repo)->GetMapper("purple");
  ASSERT_TRUE(got.ok()) << got.status();
  auto file = edit::ReadOfficialMapperFile(official.string());
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*got)->config().fine, file->config.fine);
  EXPECT_FALSE((*got)->config().fine);
  EXPECT_EQ((*got)->config().dim, file->config.dim);
}

// Encoders: found for their generator and for generators adapted from it; without one
// the lookup says how to add one.
TEST_F(ModelRepositoryTest, EncodersAreFoundThroughTheBaseChain) {
  auto repo = ModelRepository::Create(root_.string(), {});
  ASSERT_TRUE(repo.ok());
  (*repo)->LoadAll();
  auto none = (*repo)->EncoderFor("base");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("ImportModel kind ENCODER"), std::string::npos) << none.status();
  fs::create_directories(root_ / "base-e4e");
  std::ofstream(root_ / "base-e4e/manifest.json")
      << R"({"kind": "encoder", "base_model": "base", "encoder_file": "e4e.safetensors"})";
  fs::create_directories(root_ / "stray");
  std::ofstream(root_ / "stray/manifest.json") << R"({"kind": "encoder", "encoder_file": "e4e.safetensors"})";
  ASSERT_TRUE(PublishAdapted(**repo, "sketch").ok());
  (*repo)->Rescan();
  EXPECT_EQ(*(*repo)->EncoderFor("base"), "base-e4e");
  EXPECT_EQ(*(*repo)->EncoderFor("sketch"), "base-e4e");
  auto info = (*repo)->Get("base-e4e");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->kind, ModelKind::kEncoder);
  // Its weights file is missing: using it fails with the reason.
  auto load = (*repo)->GetEncoder("base-e4e");
  EXPECT_EQ(load.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*repo)->GetEncoder("base").status().code(), absl::StatusCode::kFailedPrecondition);
  auto stray = (*repo)->Get("stray");
  ASSERT_TRUE(stray.ok());
  EXPECT_EQ(stray->state, ModelState::kFailed);
  EXPECT_NE(stray->error.find("base_model"), std::string::npos) << stray->error;
}

// ArcFace: without one (or with a broken one) the accessor names the weights file and
// what failed.
TEST_F(ModelRepositoryTest, ArcFaceAbsenceIsExplained) {
  auto repo = ModelRepository::Create(root_.string(), {});
  ASSERT_TRUE(repo.ok());
  (*repo)->LoadAll();
  auto none = (*repo)->FirstArcFace();
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("model_ir_se50.pth"), std::string::npos) << none.status();
  fs::create_directories(root_ / "arcface");
  std::ofstream(root_ / "arcface/manifest.json") << R"({"kind": "arcface", "checkpoint": "model_ir_se50.pth"})";
  (*repo)->Rescan();
  auto broken = (*repo)->FirstArcFace();
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(broken.status().message().find("model 'arcface' failed"), std::string::npos) << broken.status();
  auto info = (*repo)->Get("arcface");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->kind, ModelKind::kArcFace);
  EXPECT_EQ(info->state, ModelState::kFailed);
}

// A landmarks folder names dlib's predictor file; its absence, a broken folder and a
// working one (Debian's file, linked in) each answer FirstLandmarker as documented.
TEST_F(ModelRepositoryTest, LandmarksModelsLoadAndTheirAbsenceIsExplained) {
  auto repo = ModelRepository::Create(root_.string(), {});
  ASSERT_TRUE(repo.ok());
  (*repo)->LoadAll();
  auto none = (*repo)->FirstLandmarker();
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("shape_predictor_68_face_landmarks.dat"), std::string::npos) << none.status();
  fs::create_directories(root_ / "a-broken");
  std::ofstream(root_ / "a-broken/manifest.json") << R"({"kind": "landmarks", "predictor": "sp.dat"})";
  std::ofstream(root_ / "a-broken/sp.dat") << "not dlib";
  (*repo)->Rescan();
  auto broken = (*repo)->FirstLandmarker();
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(broken.status().message().find("not a dlib shape predictor"), std::string::npos) << broken.status();
  const fs::path debian = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";
  if (!fs::exists(debian)) GTEST_SKIP() << debian << " is missing (Debian's libdlib-data)";
  fs::create_directories(root_ / "dlib");
  fs::create_symlink(debian, root_ / "dlib/sp.dat");
  std::ofstream(root_ / "dlib/manifest.json") << R"({"kind": "landmarks", "predictor": "sp.dat"})";
  (*repo)->Rescan();
  auto found = (*repo)->FirstLandmarker();
  ASSERT_TRUE(found.ok()) << found.status();
  auto info = (*repo)->Get("dlib");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->kind, ModelKind::kLandmarks);
  EXPECT_EQ(info->state, ModelState::kReady);
  EXPECT_EQ(info->resident.host_bytes, static_cast<int64_t>(fs::file_size(debian)));
}

// Replicas sharing one model folder: a model another process published after this
// repository's scan is found on first use.
TEST_F(ModelRepositoryTest, AModelPublishedByAnotherProcessIsFoundOnFirstUse) {
  auto repo = ModelRepository::Create(root_.string(), {});
  ASSERT_TRUE(repo.ok());
  (*repo)->LoadAll();
  EXPECT_EQ((*repo)->Get("later").status().code(), absl::StatusCode::kNotFound);
  fs::create_directories(root_ / "later");
  fs::copy(root_ / "base", root_ / "later", fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  auto found = (*repo)->GetGenerator("later");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ((*repo)->Get("later")->kind, ModelKind::kGenerator);
  EXPECT_EQ((*repo)->Get("../base").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ModelRepositoryTest, ModelNames) {
  for (const char* ok : {"a", "ffhq", "ffhq-pencil-sketch", "m.v2_x", "0"}) EXPECT_TRUE(IsValidModelName(ok)) << ok;
  for (const char* bad : {"", "A", "-x", ".hidden", "a/b", "a b", "..", "ü"}) {
    EXPECT_FALSE(IsValidModelName(bad)) << bad;
  }
  EXPECT_FALSE(IsValidModelName(std::string(65, 'a')));
  EXPECT_TRUE(IsValidModelName(std::string(64, 'a')));
}

TEST_F(ModelRepositoryTest, PublishIsAtomicAndDeleteRemovesOnlyAdaptedModels) {
  auto repo = ModelRepository::Create(root_.string(), {});
  ASSERT_TRUE(repo.ok());
  ASSERT_EQ((*repo)->LoadAll(), 1);
  auto info = PublishAdapted(**repo, "sketch");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->kind, ModelKind::kAdaptedGenerator);
  EXPECT_EQ(info->base_model, "base");
  EXPECT_TRUE((*repo)->Exists("sketch"));
  // The adapted generator renders differently from its base.
  auto base = (*repo)->GetGenerator("base");
  auto adapted = (*repo)->GetGenerator("sketch");
  ASSERT_TRUE(base.ok() && adapted.ok());
  stylegan2::GenerateParams p;
  p.latents = FloatTensor{{1, 16}, std::vector<float>(16, 0.3f)};
  auto a = (*base)->Generate(p);
  auto b = (*adapted)->Generate(p);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->images.data, b->images.data);

  // A taken name is refused before anything is written.
  bool wrote = false;
  auto again = (*repo)->Publish("sketch", "job-2", [&](const std::string&) {
    wrote = true;
    return absl::OkStatus();
  });
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(wrote);
  // A writer that fails leaves neither the model nor its work folder.
  auto failed = (*repo)->Publish("half", "job-3", [](const std::string& folder) {
    std::ofstream(folder + "/delta.safetensors") << "partial";
    return absl::DataLossError("disk full");
  });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE((*repo)->Exists("half"));
  EXPECT_FALSE(fs::exists(root_ / "half"));
  EXPECT_FALSE(fs::exists(root_ / ".tmp-job-3"));

  EXPECT_EQ((*repo)->Delete("base").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*repo)->Delete("nope").code(), absl::StatusCode::kNotFound);
  // In-flight work keeps its generator after the model is deleted.
  std::shared_ptr<const Generator> held = *adapted;
  ASSERT_TRUE((*repo)->Delete("sketch").ok());
  EXPECT_FALSE((*repo)->Exists("sketch"));
  EXPECT_FALSE(fs::exists(root_ / "sketch"));
  EXPECT_TRUE(held->Generate(p).ok());
  // A new repository over the same folder sees what is on disk.
  auto reopened = ModelRepository::Create(root_.string(), {});
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->LoadAll(), 1);
}

TEST_F(ModelRepositoryTest, CrashLeftoversAreRemovedAtStartUp) {
  fs::create_directories(root_ / ".tmp-job-1");
  std::ofstream(root_ / ".tmp-job-1/delta.safetensors") << "half";
  fs::create_directories(root_ / ".deleted-old");
  auto repo = ModelRepository::Create(root_.string(), {});
  ASSERT_TRUE(repo.ok());
  EXPECT_EQ((*repo)->RemoveStaleWorkFolders(), 2);
  EXPECT_FALSE(fs::exists(root_ / ".tmp-job-1"));
  EXPECT_FALSE(fs::exists(root_ / ".deleted-old"));
  EXPECT_EQ((*repo)->LoadAll(), 1);
  for (const auto& m : (*repo)->List()) EXPECT_EQ(m.name[0] == '.', false);
}

using ::ganserve::testing::CheckpointFixtureDir;
std::string FixtureDir() { return CheckpointFixtureDir(); }
class RepositoryFixtureTest : public ::ganserve::testing::CheckpointFixtureTest {};

TEST_F(RepositoryFixtureTest, RepositoryServesLpipsAndTheProjectorUsesIt) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("ganserve_lpips_repo_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "lpips");
  fs::create_symlink(FixtureDir() + "/vgg16_features.pt", root / "lpips/vgg16.pth");
  fs::create_symlink(FixtureDir() + "/lpips_vgg.pth", root / "lpips/vgg.pth");
  std::ofstream(root / "lpips/manifest.json") << R"({"kind": "lpips", "vgg16": "vgg16.pth", "lin": "vgg.pth"})";
  // An AlexNet LPIPS first by name: the projector still gets the VGG one.
  WriteAlexLpipsFolder(root / "a-lpips-alex");
  auto repo = ModelRepository::Create(root.string(), {});
  ASSERT_TRUE(repo.ok());
  EXPECT_EQ((*repo)->LoadAll(), 2);
  auto info = (*repo)->Get("lpips");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->kind, ModelKind::kLpips);
  auto lp = (*repo)->FirstLpips();
  ASSERT_NE(lp, nullptr);
  auto alex = (*repo)->FirstAlexLpips();
  ASSERT_TRUE(alex.ok()) << alex.status();

  // A projection with LPIPS reports the term and names the loss.
  auto gen = Generator::Load(shared_ + "/fixtures/stylegan2/a1_g32_sd512_zip.pt", {});
  ASSERT_TRUE(gen.ok()) << gen.status();
  std::shared_ptr<const Generator> g(std::move(*gen));
  Rgb8Image target;
  target.width = target.height = 32;
  target.pixels.assign(size_t{32} * 32 * 3, 90);
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

// Replicas that share no folder: what one publishes reaches the others through the
// shared files, fetched on first use; a delete removes the shared copy too.
TEST_F(ModelRepositoryTest, PublishedModelsReachAReplicaWithoutTheFolder) {
  auto store = storage::NewLocalArtifactStore((root_ / "artifacts").string());
  storage::ArtifactCache cache(store.get(), (root_ / "cache").string(), 0);
  auto shared = storage::NewSharedFiles(store.get(), &cache);
  // Replica b has its own folder with the same base model.
  const fs::path b_root = root_ / "replica-b";
  fs::create_directories(b_root);
  fs::copy(root_ / "base", b_root / "base");
  auto a = ModelRepository::Create(root_.string(), {});
  auto b = ModelRepository::Create(b_root.string(), {});
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->SetSharedFiles(shared.get());
  (*b)->SetSharedFiles(shared.get());
  ASSERT_EQ((*a)->LoadAll(), 1);
  ASSERT_EQ((*b)->LoadAll(), 1);
  ASSERT_TRUE(PublishAdapted(**a, "sketch").ok());
  EXPECT_TRUE(*shared->HasSet("models/sketch"));

  auto on_b = (*b)->Get("sketch");
  ASSERT_TRUE(on_b.ok()) << on_b.status();
  EXPECT_EQ(on_b->kind, ModelKind::kAdaptedGenerator);
  EXPECT_TRUE(fs::exists(b_root / "sketch/delta.safetensors"));
  auto ga = (*a)->GetGenerator("sketch");
  auto gb = (*b)->GetGenerator("sketch");
  ASSERT_TRUE(ga.ok() && gb.ok()) << gb.status();
  stylegan2::GenerateParams p;
  p.latents = FloatTensor{{1, 16}, std::vector<float>(16, 0.3f)};
  EXPECT_EQ((*ga)->Generate(p)->images.data, (*gb)->Generate(p)->images.data) << "the same weights on both";

  // A name taken on another replica is taken here too.
  auto c = ModelRepository::Create((root_ / "replica-c").string(), {});
  ASSERT_TRUE(c.ok());
  (*c)->SetSharedFiles(shared.get());
  bool wrote = false;
  auto taken = (*c)->Publish("sketch", "job-c", [&](const std::string&) {
    wrote = true;
    return absl::OkStatus();
  });
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(wrote);

  // SyncShared brings what others published without a request naming it.
  EXPECT_FALSE((*c)->Exists("sketch"));
  auto synced = (*c)->SyncShared();
  EXPECT_EQ(synced.added, std::vector<std::string>{"sketch"});
  EXPECT_TRUE((*c)->Exists("sketch"));

  ASSERT_TRUE((*b)->Delete("sketch").ok());
  EXPECT_FALSE(*shared->HasSet("models/sketch"));
  // The other replicas drop their copies at their next sync; what they hold goes on.
  EXPECT_EQ((*a)->SyncShared().removed, std::vector<std::string>{"sketch"});
  EXPECT_EQ((*c)->SyncShared().removed, std::vector<std::string>{"sketch"});
  EXPECT_EQ((*a)->Get("sketch").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(root_ / "sketch"));
  EXPECT_TRUE((*ga)->Generate(p).ok());
  EXPECT_TRUE((*a)->Get("base").ok()) << "installed models are not shared copies: never dropped";
  EXPECT_EQ((*b)->Get("unknown").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ganserve::core
