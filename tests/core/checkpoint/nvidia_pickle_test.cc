// NVIDIA stylegan2-ada-pytorch network pickles: a tiny generator made, pickled and
// rendered by the official code (tests/fixtures/nvidia/make_nvidia_pickles.py) renders
// the same here; what has no rosinality equivalent is refused with a reason.
#include "core/checkpoint/nvidia_pickle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "core/checkpoint/torch_file.h"
#include "core/io/npy.h"
#include "core/models/stylegan2/generator.h"
#include "core/util/file_util.h"

namespace ganserve::core {
namespace {

// The official render is float32 on CPU like ours; products summed in another order.
// The output spans about +-7.5: 1e-4 absolute, as for the rosinality fixtures.
constexpr float kTol = 1e-4f;

std::string Dir() { return std::string(GANSERVE_SOURCE_DIR) + "/tests/fixtures/nvidia/"; }

FloatTensor Npy(const std::string& name) {
  auto t = ReadNpyFloat(Dir() + name);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : FloatTensor{};
}

float MaxAbsDiff(const FloatTensor& a, const FloatTensor& b) {
  EXPECT_EQ(a.shape, b.shape);
  float m = 0;
  for (size_t i = 0; i < std::min(a.data.size(), b.data.size()); ++i) m = std::max(m, std::fabs(a.data[i] - b.data[i]));
  return a.data.size() == b.data.size() ? m : INFINITY;
}

class NvidiaPickleTest : public ::testing::TestWithParam<const char*> {};

TEST_P(NvidiaPickleTest, RendersLikeTheOfficialCode) {
  stylegan2::LoadReport rep;
  auto g = stylegan2::Generator::Load(Dir() + GetParam(), {}, &rep);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(rep.format, "nvidia-pickle");
  EXPECT_EQ(rep.source_key, "G_ema");
  EXPECT_EQ(rep.entries.count("D"), 1u);
  EXPECT_EQ((*g)->config().resolution, 32);
  EXPECT_EQ((*g)->config().style_dim, 64);
  // The fixture's settings that rosinality's tools do not share are reported.
  ASSERT_EQ(rep.notes.size(), 3u);
  EXPECT_NE(rep.notes[2].find("conv_clamp 256"), std::string::npos) << rep.notes[2];

  const FloatTensor z = Npy("z.npy");
  auto w = (*g)->Map(z);
  ASSERT_TRUE(w.ok()) << w.status();
  const FloatTensor ws = Npy("ws.npy");  // [4, num_ws, 64]: every row is the mapping's w
  FloatTensor w0{{4, 64}, {}};
  for (int i = 0; i < 4; ++i) {
    w0.data.insert(w0.data.end(), ws.data.begin() + i * ws.shape[1] * 64, ws.data.begin() + i * ws.shape[1] * 64 + 64);
  }
  EXPECT_LE(MaxAbsDiff(*w, w0), kTol);

  for (const auto& [psi, ref] : {std::make_pair(1.0f, "img_psi1.npy"), std::make_pair(0.7f, "img_psi07.npy")}) {
    stylegan2::GenerateParams p;
    p.latents = z;
    p.truncation = psi;
    p.noise = stylegan2::NoiseMode::kConst;
    auto r = (*g)->Generate(p);
    ASSERT_TRUE(r.ok()) << r.status();
    const FloatTensor expected = Npy(ref);
    float scale = 0;
    for (float v : expected.data) scale = std::max(scale, std::fabs(v));
    EXPECT_GT(scale, 1.0f);
    EXPECT_LE(MaxAbsDiff(r->images, expected), kTol) << "psi " << psi;
  }
}

INSTANTIATE_TEST_SUITE_P(Protocols, NvidiaPickleTest, ::testing::Values("tiny_2ada_p4.pkl", "tiny_2ada_p3.pkl"));

// conv_clamp applied as the official code does: the same weights built with a clamp of
// 0.5 render (very differently from the unclamped fixture) like the official render, also
// through a generator rebuilt from the state dict with the clamp carried over (as an
// adapted model over this base is).
TEST(NvidiaPickleClampTest, ConvClampIsAppliedLikeTheOfficialCode) {
  stylegan2::LoadReport rep;
  auto g = stylegan2::Generator::Load(Dir() + "tiny_clamp_p4.pkl", {}, &rep);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_FLOAT_EQ((*g)->config().conv_clamp, 0.5f);
  EXPECT_NE(rep.notes.back().find("conv_clamp 0.5 is applied"), std::string::npos) << rep.notes.back();
  stylegan2::GenerateParams p;
  p.latents = Npy("z.npy");
  p.noise = stylegan2::NoiseMode::kConst;
  auto r = (*g)->Generate(p);
  ASSERT_TRUE(r.ok()) << r.status();
  const FloatTensor expected = Npy("img_clamp_psi1.npy");
  EXPECT_LE(MaxAbsDiff(r->images, expected), kTol);
  EXPECT_GT(MaxAbsDiff(r->images, Npy("img_psi1.npy")), 0.05f) << "the fixture's clamp must bite";

  auto sd = std::make_shared<const std::map<std::string, FloatTensor>>((*g)->StateDict());
  auto avg = ViewOf(std::make_shared<const FloatTensor>((*g)->mean_latent()));
  stylegan2::LoadOptions opt;
  opt.conv_clamp = (*g)->config().conv_clamp;
  auto rebuilt = stylegan2::Generator::FromTensors(ViewsOf(sd), &avg, opt);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  auto r2 = (*rebuilt)->Generate(p);
  ASSERT_TRUE(r2.ok());
  EXPECT_LE(MaxAbsDiff(r2->images, expected), kTol);
}

// The parsed fixture, to mutate into what other pickles hold.
PyRef Parsed() {
  auto f = LoadTorchFile(Dir() + "tiny_2ada_p4.pkl");
  EXPECT_TRUE(f.ok()) << f.status();
  if (!f.ok()) return nullptr;
  EXPECT_EQ(f->format, TorchFileFormat::kPickle);
  return f->root;
}

// The state dict of the persistent module at `path` ("G_ema", "synthesis", "b8", ...).
PyRef StateAt(const PyRef& root, const std::vector<std::string>& path) {
  PyRef obj = root->Get(path[0]);
  PyRef state = obj->items[0]->Get("state");
  for (size_t i = 1; i < path.size(); ++i) {
    obj = state->Get("_modules")->Get(path[i]);
    state = obj->items[0]->Get("state");
  }
  return state;
}

void SetEntry(const PyRef& dict, const std::string& key, PyRef value) {
  for (auto& [k, v] : dict->dict) {
    if (k->IsString() && k->s == key) {
      v = std::move(value);
      return;
    }
  }
  auto k = std::make_shared<PyValue>();
  k->kind = PyValue::Kind::kString;
  k->s = key;
  dict->dict.emplace_back(k, std::move(value));
}

PyRef Str(const std::string& s) {
  auto v = std::make_shared<PyValue>();
  v->kind = PyValue::Kind::kString;
  v->s = s;
  return v;
}

PyRef Int(int64_t i) {
  auto v = std::make_shared<PyValue>();
  v->kind = PyValue::Kind::kInt;
  v->i = i;
  return v;
}

void ExpectRefused(const PyRef& root, const std::string& words) {
  auto r = NvidiaGeneratorToRosinality(root);
  ASSERT_FALSE(r.ok()) << "accepted; expected a refusal naming: " << words;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().message();
}

TEST(NvidiaPickleRefusalTest, FixtureMapsToEveryRosinalityTensor) {
  PyRef root = Parsed();
  ASSERT_NE(root, nullptr);
  auto nv = NvidiaGeneratorToRosinality(root);
  ASSERT_TRUE(nv.ok()) << nv.status();
  // 32 px, 2 mapping layers: 4 style + const + conv1 (5) + to_rgb1 (4) + 3 blocks x
  // (2 convs x 5 + blur + to_rgb 4 + upsample) + 7 noises: rosinality's 69 keys.
  EXPECT_EQ(nv->tensors.size(), 69u);
  EXPECT_EQ(nv->tensors.at("convs.0.conv.blur.kernel").data[0], 4.0f / 64.0f);
  EXPECT_EQ(nv->tensors.at("noises.noise_6").shape, (std::vector<int64_t>{1, 1, 32, 32}));
  EXPECT_EQ(nv->conv_clamp, 256.0);
}

TEST(NvidiaPickleRefusalTest, StyleGan3IsRefused) {
  PyRef root = Parsed();
  ASSERT_NE(root, nullptr);
  PyRef modules = StateAt(root, {"G_ema", "synthesis"})->Get("_modules");
  // An alias-free synthesis network starts with an `input` layer instead of b4.
  SetEntry(modules, "input", modules->Get("b4"));
  ExpectRefused(root, "StyleGAN3 (alias-free");
}

TEST(NvidiaPickleRefusalTest, UnsupportedSettingsAreNamed) {
  {
    PyRef root = Parsed();
    SetEntry(StateAt(root, {"G_ema"}), "c_dim", Int(10));
    ExpectRefused(root, "conditional generators");
  }
  {
    PyRef root = Parsed();
    SetEntry(StateAt(root, {"G_ema", "synthesis", "b16"}), "architecture", Str("resnet"));
    ExpectRefused(root, "G_ema.synthesis.b16 has the 'resnet' architecture");
  }
  {
    PyRef root = Parsed();
    SetEntry(StateAt(root, {"G_ema", "synthesis", "b8", "conv0"}), "activation", Str("relu"));
    ExpectRefused(root, "G_ema.synthesis.b8.conv0 uses activation 'relu'");
  }
  {
    PyRef root = Parsed();
    SetEntry(StateAt(root, {"G_ema"}), "w_dim", Int(32));
    ExpectRefused(root, "z_dim and w_dim differ");
  }
  {
    PyRef root = Parsed();
    PyRef params = StateAt(root, {"G_ema", "synthesis", "b32", "conv1"})->Get("_parameters");
    params->dict.erase(std::remove_if(params->dict.begin(), params->dict.end(),
                                      [](const auto& kv) { return kv.first->s == "noise_strength"; }),
                       params->dict.end());
    ExpectRefused(root, "G_ema.synthesis.b32.conv1.noise_strength is missing");
  }
  {
    PyRef root = Parsed();
    PyRef params = StateAt(root, {"G_ema", "mapping", "fc0"})->Get("_parameters");
    auto& w = params->dict.front();  // weight [64, 64] -> claims [64, 32]
    ASSERT_EQ(w.first->s, "weight");
    auto shrunk = std::make_shared<PyValue>(*w.second);
    auto view = std::make_shared<TensorView>(*shrunk->tensor);
    view->shape = {64, 32};
    view->strides = {64, 1};
    shrunk->tensor = view;
    w.second = shrunk;
    ExpectRefused(root, "G_ema.mapping.fc0.weight has shape [64,32], expected [64,64]");
  }
}

TEST(NvidiaPickleRefusalTest, NonNetworkPicklesAndTruncatedFilesFailCleanly) {
  // A dict without networks.
  auto not_nv = NvidiaGeneratorToRosinality(Parsed()->Get("training_set_kwargs"));
  ASSERT_FALSE(not_nv.ok());
  EXPECT_NE(not_nv.status().message().find("not an NVIDIA network pickle"), std::string::npos);
  // Every truncation of the file fails with an error, never a crash.
  auto bytes = ReadFile(Dir() + "tiny_2ada_p4.pkl");
  ASSERT_TRUE(bytes.ok());
  const std::string tmp = ::testing::TempDir() + "/truncated.pkl";
  for (size_t cut : {size_t{1}, size_t{100}, bytes->size() / 3, bytes->size() / 2, bytes->size() - 1}) {
    ASSERT_TRUE(WriteFileAtomic(tmp, bytes->substr(0, cut)).ok());
    auto g = stylegan2::Generator::Load(tmp, {});
    EXPECT_FALSE(g.ok()) << "cut at " << cut;
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument) << g.status();
  }
}

}  // namespace
}  // namespace ganserve::core
