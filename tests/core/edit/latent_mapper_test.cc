// StyleCLIP's latent mapper and its Ranger optimizer against the official code: the
// official-format checkpoints and reference.json of tests/fixtures/latent_mapper (made
// by its make_fixture.py from orpatashnik/StyleCLIP). Also the tensor-name contract,
// refusals, and mapper training on a tiny generator and CLIP.
#include "core/edit/latent_mapper.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/checkpoint/torch_writer.h"
#include "core/edit/latent_mapper_impl.h"
#include "core/edit/mapper_trainer.h"
#include "core/models/arcface/arcface.h"
#include "core/models/arcface/random_init.h"
#include "core/models/common/ranger.h"
#include "core/models/common/torch_convert.h"
#include "core/util/file_util.h"
#include "core/util/np_random.h"
#include "tests/testing/shared.h"
#include "tests/testing/tiny_models.h"

namespace ganserve::core::edit {
namespace {

const std::string kFixtureDir = std::string(GANSERVE_SOURCE_DIR) + "/tests/fixtures/latent_mapper";

// Float32 forward passes of a few 16-wide layers with outputs up to ~10: LibTorch may
// sum the matmuls in another order than PyTorch's kernels, a few ulps per layer.
constexpr double kAbs = 2e-5, kRel = 1e-5;

std::optional<nlohmann::json> Reference() {
  const std::string path = kFixtureDir + "/reference.json";
  if (!std::filesystem::exists(path)) return std::nullopt;
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

FloatTensor Flat(const nlohmann::json& v, std::vector<int64_t> shape) {
  return FloatTensor{std::move(shape), v.get<std::vector<float>>()};
}

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, double rel, double abs,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], abs + rel * std::fabs(want[i])) << what << " [" << i << "]";
  }
}

class LatentMapperReferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ref = Reference();
    if (!ref) GTEST_SKIP() << "tests/fixtures/latent_mapper/reference.json not found (make_fixture.py makes it)";
    ref_ = *ref;
    shape_ = {ref_["batch"].get<int64_t>(), ref_["n_latent"].get<int64_t>(), ref_["dim"].get<int64_t>()};
  }
  std::unique_ptr<LatentMapper> Load(const std::string& file, OfficialMapperFile* out = nullptr) {
    auto f = ReadOfficialMapperFile(kFixtureDir + "/" + file);
    EXPECT_TRUE(f.ok()) << f.status();
    if (!f.ok()) return nullptr;
    auto m = LatentMapper::FromTensors(f->mapper, f->config, "cpu");
    EXPECT_TRUE(m.ok()) << m.status();
    if (out != nullptr) *out = *f;
    return m.ok() ? std::move(*m) : nullptr;
  }
  nlohmann::json ref_;
  std::vector<int64_t> shape_;
};

TEST_F(LatentMapperReferenceTest, OfficialCheckpointsMatchTheOfficialForward) {
  for (const auto& c : ref_["configs"]) {
    const std::string name = c["name"];
    OfficialMapperFile file;
    auto m = Load(c["file"], &file);
    ASSERT_NE(m, nullptr) << name;
    // The configuration comes from the tensor names and agrees with the official opts.
    const auto& opts = c["opts"];
    EXPECT_EQ(file.config.type == MapperType::kSingle, opts["mapper_type"] == "SingleMapper") << name;
    if (file.config.type == MapperType::kLevels) {
      EXPECT_EQ(file.config.coarse, !opts["no_coarse_mapper"].get<bool>()) << name;
      EXPECT_EQ(file.config.medium, !opts["no_medium_mapper"].get<bool>()) << name;
      EXPECT_EQ(file.config.fine, !opts["no_fine_mapper"].get<bool>()) << name;
    }
    EXPECT_EQ(file.config.dim, shape_[2]);
    EXPECT_EQ(file.config.depth, 4);
    EXPECT_EQ(file.description, opts["description"]);
    EXPECT_TRUE(file.decoder.empty());
    // The names the official state dict has, in its order.
    EXPECT_EQ(MapperTensorNames(file.config), c["keys"].get<std::vector<std::string>>()) << name;
    const FloatTensor w = Flat(c["input"], shape_);
    auto residual = m->Residual(w);
    ASSERT_TRUE(residual.ok()) << residual.status();
    ExpectNear(residual->data, c["output"].get<std::vector<float>>(), kRel, kAbs, name + " mapper(w)");
    auto edited = m->Apply(w, 1.0f);
    ASSERT_TRUE(edited.ok());
    ExpectNear(edited->data, c["edited"].get<std::vector<float>>(), kRel, kAbs, name + " w + 0.1 mapper(w)");
    // Strength scales the residual; 0 gives the input back.
    auto same = m->Apply(w, 0.0f);
    ASSERT_TRUE(same.ok());
    EXPECT_EQ(same->data, w.data);
  }
}

TEST_F(LatentMapperReferenceTest, RangerStepsMatchTheOfficialOptimizer) {
  const auto& r = ref_["ranger"];
  const nlohmann::json* config = nullptr;
  for (const auto& c : ref_["configs"]) {
    if (c["name"] == r["config"]) config = &c;
  }
  ASSERT_NE(config, nullptr);
  auto m = Load((*config)["file"]);
  ASSERT_NE(m, nullptr);
  auto& params = m->mutable_impl().params;
  for (auto& p : params) p.requires_grad_(true);
  Ranger ranger(params);
  const at::Tensor w = ToTorch(Flat((*config)["input"], shape_), c10::kCPU);
  const at::Tensor goal = ToTorch(Flat(r["goal"], shape_), c10::kCPU);
  const auto losses = r["losses"].get<std::vector<float>>();
  ASSERT_EQ(static_cast<int64_t>(losses.size()), r["steps"].get<int64_t>());
  for (size_t step = 0; step < losses.size(); ++step) {
    const at::Tensor loss = (w + kMapperResidualScale * m->impl().Forward(w) - goal).pow(2).mean();
    EXPECT_NEAR(loss.item<float>(), losses[step], 1e-6 * std::fabs(losses[step])) << "step " << step;
    loss.backward();
    ranger.Step(params, r["lr"].get<double>());
  }
  // The parameters after warm-up steps, adaptive steps and two Lookahead syncs, and the
  // optimizer state a checkpoint keeps. Gradients are ~1e-5: the moments' relative
  // error grows with the float32 rounding of such small numbers.
  const auto& names = m->impl().names;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& n = names[i];
    ExpectNear(FromTorch(params[i].detach()).data, r["params"][n].get<std::vector<float>>(), kRel, kAbs, n);
    const auto& st = ranger.state()[i];
    EXPECT_EQ(st.step, r["step"].get<int64_t>());
    ExpectNear(FromTorch(st.slow).data, r["slow_buffer"][n].get<std::vector<float>>(), kRel, kAbs, n + " slow");
    ExpectNear(FromTorch(st.exp_avg).data, r["exp_avg"][n].get<std::vector<float>>(), 1e-4, 1e-10, n + " exp_avg");
    ExpectNear(FromTorch(st.exp_avg_sq).data, r["exp_avg_sq"][n].get<std::vector<float>>(), 1e-4, 1e-16,
               n + " exp_avg_sq");
  }
}

TEST(LatentMapperTest, NamesFollowTheOfficialStateDict) {
  MapperConfig c;
  c.fine = false;
  const auto names = MapperTensorNames(c);
  ASSERT_EQ(names.size(), 16u);
  EXPECT_EQ(names.front(), "course_mapping.mapping.1.weight");
  EXPECT_EQ(names.back(), "medium_mapping.mapping.4.bias");
  c.type = MapperType::kSingle;
  EXPECT_EQ(MapperTensorNames(c).front(), "mapping.mapping.1.weight");
}

TEST(LatentMapperTest, SwitchedOffGroupsAndShortLatentsGiveZeroRows) {
  MapperConfig c;
  c.dim = 8;
  c.fine = false;
  auto m = LatentMapper::Random(c, 5, "cpu");
  ASSERT_TRUE(m.ok()) << m.status();
  // A 32 px generator's w+ has 8 rows: the fine group is empty.
  NumpyRandomState rs(1);
  const FloatTensor w{{2, 10, 8}, rs.Randn(160)};
  auto r = (*m)->Residual(w);
  ASSERT_TRUE(r.ok()) << r.status();
  for (int b = 0; b < 2; ++b) {
    for (int row = 0; row < 10; ++row) {
      double sum = 0;
      for (int j = 0; j < 8; ++j) sum += std::fabs(r->data[(b * 10 + row) * 8 + j]);
      if (row >= kMapperMediumEnd) {
        EXPECT_EQ(sum, 0.0) << "fine row " << row << " without a fine mapper";
      } else {
        EXPECT_GT(sum, 0.0) << "row " << row;
      }
    }
  }
  const FloatTensor short_w{{1, 6, 8}, rs.Randn(48)};
  auto rs6 = (*m)->Residual(short_w);
  ASSERT_TRUE(rs6.ok()) << rs6.status();
  EXPECT_EQ(rs6->shape, (std::vector<int64_t>{1, 6, 8}));
}

TEST(LatentMapperTest, RefusesBadTensorsAndShapes) {
  MapperConfig c;
  c.dim = 8;
  auto m = LatentMapper::Random(c, 1, "cpu");
  ASSERT_TRUE(m.ok());
  std::map<std::string, TensorView> views;
  for (const auto& [k, v] : (*m)->StateDict()) views[k] = ViewOf(std::make_shared<const FloatTensor>(v));
  auto missing = views;
  missing.erase("fine_mapping.mapping.4.bias");
  auto a = LatentMapper::FromTensors(missing, c, "cpu");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("fine_mapping.mapping.4.bias"), std::string::npos) << a.status();
  auto extra = views;
  extra["decoder.style.1.weight"] = views.begin()->second;
  EXPECT_FALSE(LatentMapper::FromTensors(extra, c, "cpu").ok());
  c.dim = 16;
  auto wrong = LatentMapper::FromTensors(views, c, "cpu");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("shape"), std::string::npos) << wrong.status();
  EXPECT_FALSE((*m)->Residual(FloatTensor{{1, 4, 16}, std::vector<float>(64)}).ok());
  MapperConfig none;
  none.coarse = none.medium = none.fine = false;
  EXPECT_FALSE(LatentMapper::Random(none, 1, "cpu").ok());
}

TEST(LatentMapperTest, ReadsTheDecoderAndRefusesFilesWithoutAMapper) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "ganserve_mapper_file_test";
  std::filesystem::create_directories(dir);
  MapperConfig c;
  c.dim = 8;
  c.type = MapperType::kSingle;
  auto m = LatentMapper::Random(c, 2, "cpu");
  ASSERT_TRUE(m.ok());
  std::map<std::string, FloatTensor> sd;
  for (const auto& [k, v] : (*m)->StateDict()) sd["mapper." + k] = v;
  sd["decoder.input.input"] = FloatTensor{{1, 8, 4, 4}, std::vector<float>(128, 0.5f)};
  const std::string path = (dir / "single.pt").string();
  ASSERT_TRUE(WriteFileAtomic(path, EncodeTorchSave({{"state_dict", sd}})).ok());
  auto f = ReadOfficialMapperFile(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->config.type, MapperType::kSingle);
  EXPECT_EQ(f->decoder.size(), 1u);
  EXPECT_EQ(f->decoder.count("input.input"), 1u);
  const std::string bare = (dir / "bare.pt").string();
  const std::map<std::string, FloatTensor> decoder_only{{"decoder.x", sd.begin()->second}};
  ASSERT_TRUE(WriteFileAtomic(bare, EncodeTorchSave({{"state_dict", decoder_only}})).ok());
  auto none = ReadOfficialMapperFile(bare);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("mapper"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// Options that train on one latent (every batch the same) without L2 or identity loss.
MapperTrainerOptions OneLatent(int64_t steps) {
  MapperTrainerOptions o;
  o.id_lambda = 0;
  o.steps = steps;
  o.train_latents = 1;
  o.batch_size = 1;
  o.latent_l2_lambda = 0;
  return o;
}

// Training on a tiny generator and CLIP: a checkpoint resumes bit for bit, previews
// render, bad inputs are refused.
TEST(MapperTrainerTest, TrainsResumesAndRefuses) {
  auto gen = testing::TinyGenerator(32, 32, 6);
  auto clip = testing::TinyClip(4);
  NumpyRandomState rng(11);
  const FloatTensor text{{64}, rng.Randn(64)};
  MapperTrainerOptions o = OneLatent(12);
  o.seed = 3;
  auto t = MapperTrainer::Create(gen, clip, text, FloatTensor{}, o);
  ASSERT_TRUE(t.ok()) << t.status();
  for (int i = 0; i < 6; ++i) {
    auto l = (*t)->Step();
    ASSERT_TRUE(l.ok()) << l.status();
  }
  const std::string ckpt = (std::filesystem::temp_directory_path() / "ganserve_mapper_ckpt.safetensors").string();
  ASSERT_TRUE((*t)->SaveCheckpoint(ckpt).ok());
  std::vector<float> first;
  for (int i = 0; i < 6; ++i) {
    auto l = (*t)->Step();
    ASSERT_TRUE(l.ok());
    first.push_back(l->at("total"));
  }
  auto resumed = MapperTrainer::Create(gen, clip, text, FloatTensor{}, o);
  ASSERT_TRUE(resumed.ok());
  ASSERT_TRUE((*resumed)->RestoreCheckpoint(ckpt).ok());
  EXPECT_EQ((*resumed)->step(), 6);
  for (int i = 0; i < 6; ++i) {
    auto l = (*resumed)->Step();
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l->at("total"), first[static_cast<size_t>(i)]) << "resumed step " << 6 + i;
  }
  EXPECT_EQ((*resumed)->mapper().StateDict().at("fine_mapping.mapping.4.weight").data,
            (*t)->mapper().StateDict().at("fine_mapping.mapping.4.weight").data);
  std::filesystem::remove(ckpt);
  // Previews: the source and the mapped latents, same shape.
  auto src = (*t)->Preview(true);
  auto cur = (*t)->Preview(false);
  ASSERT_TRUE(src.ok() && cur.ok());
  EXPECT_EQ(src->shape, (std::vector<int64_t>{1, 3, 32, 32}));
  EXPECT_NE(src->data, cur->data);
  // Caller latents of the wrong shape, too few latents, a bad text embedding.
  EXPECT_FALSE(MapperTrainer::Create(gen, clip, text, FloatTensor{{2, 3, 32}, std::vector<float>(192)}, o).ok());
  o.train_latents = 1;
  o.batch_size = 2;
  EXPECT_FALSE(MapperTrainer::Create(gen, clip, text, FloatTensor{}, o).ok());
  o.train_latents = 8;
  EXPECT_FALSE(MapperTrainer::Create(gen, clip, FloatTensor{{3}, {1, 2, 3}}, FloatTensor{}, o).ok());
}

// With a CLIP that tells images apart (the shared tiny fixture; random CLIP weights embed
// every image alike) the CLIP term falls: one training latent, so every batch is the same.
TEST(MapperTrainerTest, ClipTermFalls) {
  const std::string shared = ::ganserve::testing::SharedDir();
  if (shared.empty()) GTEST_SKIP() << "shared/ fixtures not found: no CLIP fixture that tells images apart";
  auto clip = clip::ClipModel::Load(shared + "/fixtures/clip/b2_clip_tiny_state_dict.pt", "cpu");
  ASSERT_TRUE(clip.ok()) << clip.status();
  std::shared_ptr<const clip::ClipModel> c = std::move(*clip);
  const int64_t res = c->config().image_resolution == 224 ? 32 : 0;
  if (res == 0) GTEST_SKIP() << "the shared tiny CLIP does not take 224 px input";
  auto gen = testing::TinyGenerator(32, 32, 6);
  NumpyRandomState rng(5);
  const FloatTensor text{{c->config().embed_dim}, rng.Randn(static_cast<size_t>(c->config().embed_dim))};
  MapperTrainerOptions o = OneLatent(30);
  o.lr = 50;  // lr_mul 0.01 makes the official 0.5 a crawl (it trains for 50,000 steps)
  auto t = MapperTrainer::Create(gen, c, text, FloatTensor{}, o);
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<float> clip_terms;
  for (int i = 0; i < 30; ++i) clip_terms.push_back((*t)->Step()->at("clip"));
  // This CLIP tells 32 px images apart only a little: the term falls by ~2.5e-4 over the
  // 30 steps, steadily between the Lookahead syncs (every 6th step pulls half way back).
  EXPECT_LT(clip_terms.back(), clip_terms.front() - 1e-4) << clip_terms.front() << " -> " << clip_terms.back();
  int falls = 0;
  for (size_t i = 6; i < clip_terms.size(); ++i) falls += clip_terms[i] < clip_terms[i - 1];
  EXPECT_GE(falls, 18) << "of 24 steps after the warm-up";
}

// The L2 term holds the edit near its latent: with a large latent_l2_lambda the
// residual stays smaller than without.
TEST(MapperTrainerTest, LatentL2KeepsTheEditSmall) {
  auto gen = testing::TinyGenerator(32, 32, 6);
  auto clip = testing::TinyClip(4);
  NumpyRandomState rng(11);
  const FloatTensor text{{64}, rng.Randn(64)};
  auto run = [&](float l2) {
    MapperTrainerOptions o;
    o.id_lambda = 0;  // no ArcFace here
    o.steps = 10;
    o.train_latents = 6;
    o.latent_l2_lambda = l2;
    auto t = MapperTrainer::Create(gen, clip, text, FloatTensor{}, o);
    EXPECT_TRUE(t.ok());
    float last = 0;
    for (int i = 0; i < 10; ++i) last = (*t)->Step()->at("l2");
    return last;
  };
  EXPECT_LT(run(1000.0f), run(0.0f));
}

// The identity loss (a random ArcFace at 64 px): reported as "id", refused without an
// ArcFace or below 64 px, and trained alone it moves the mapper.
TEST(MapperTrainerTest, IdentityLossIsReportedAndHoldsTheFace) {
  auto gen = testing::TinyGenerator(64, 32, 6);
  auto clip = testing::TinyClip(4);
  auto arc = testing::RandomArcFace(7);
  ASSERT_NE(arc, nullptr);
  NumpyRandomState rng(11);
  const FloatTensor text{{64}, rng.Randn(64)};
  MapperTrainerOptions o = OneLatent(8);
  o.id_lambda = 0.1f;  // the official weight: refused below without an ArcFace
  EXPECT_EQ(MapperTrainer::Create(gen, clip, text, FloatTensor{}, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto small = testing::TinyGenerator(32, 32, 6);
  EXPECT_EQ(MapperTrainer::Create(small, clip, text, FloatTensor{}, o, arc).status().code(),
            absl::StatusCode::kInvalidArgument);
  // The identity term alone (no CLIP, no L2) trains the mapper: its gradient reaches the
  // mapper's weights. (Whether the term then falls step by step depends on the random
  // ArcFace's landscape and on the CPU's kernels, so that is not asserted.)
  o.clip_lambda = 0;
  o.id_lambda = 1;
  o.steps = 4;
  auto t = MapperTrainer::Create(gen, clip, text, FloatTensor{}, o, arc);
  ASSERT_TRUE(t.ok()) << t.status();
  const auto before = (*t)->mapper().StateDict();
  for (int i = 0; i < 4; ++i) {
    auto l = (*t)->Step();
    ASSERT_TRUE(l.ok()) << l.status();
    ASSERT_EQ(l->count("id"), 1u);
    EXPECT_GT(l->at("id"), 0.0f);  // the mapper's first residual already moves the face
    EXPECT_LE(l->at("id"), 2.0f);
    EXPECT_FLOAT_EQ(l->at("total"), l->at("id"));
  }
  const auto after = (*t)->mapper().StateDict();
  double moved = 0;
  for (const auto& [k, v] : after) {
    for (size_t i = 0; i < v.data.size(); ++i) moved += std::fabs(v.data[i] - before.at(k).data[i]);
  }
  EXPECT_GT(moved, 0.0);
}

}  // namespace
}  // namespace ganserve::core::edit
