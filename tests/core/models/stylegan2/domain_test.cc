// Lightweight domains on a base generator: the parameter layout at the official sizes,
// what each kind means (checked against equivalent renders: edited S codes, edited
// weights), zero domains render the base, and a batch mixing domains renders each image
// as its solo render does.
#include <gtest/gtest.h>

#include <cmath>

#include "core/io/npy.h"
#include "core/models/stylegan2/generator.h"
#include "core/models/stylegan2/generator_impl.h"
#include "core/models/stylegan2/random_init.h"
#include "core/util/np_random.h"
#include "tests/testing/shared.h"
#include "tests/testing/tensor_compare.h"
#include "tests/testing/tiny_models.h"

namespace ganserve::core::stylegan2 {
namespace {

using ::ganserve::testing::MaxAbsDiff;

// Renders of one batch composition on one machine agree bit for bit; across batch
// compositions grouped convolutions may round differently (a few 1e-6 on these images,
// |x| < 5): 2e-5 is a tenth of what the smallest effect below changes.
constexpr float kBatchTol = 2e-5f;

int64_t Count(const std::map<std::string, std::vector<int64_t>>& shapes) {
  int64_t n = 0;
  for (const auto& [name, shape] : shapes) {
    int64_t k = 1;
    for (int64_t s : shape) k *= s;
    n += k;
  }
  return n;
}

DomainTensors RandomDomain(const GeneratorConfig& c, DomainKind kind, uint32_t seed, float scale) {
  DomainTensors d;
  d.kind = kind;
  NumpyRandomState rng(seed);
  for (const auto& [name, shape] : DomainTensorShapes(c, kind)) {
    FloatTensor t;
    t.shape = shape;
    t.data = rng.Randn(static_cast<size_t>(t.numel()));
    for (float& v : t.data) v *= scale;
    d.tensors[name] = std::move(t);
  }
  return d;
}

DomainTensors ZeroDomain(const GeneratorConfig& c, DomainKind kind) {
  DomainTensors d = RandomDomain(c, kind, 1, 0.0f);
  for (auto& [name, t] : d.tensors) std::fill(t.data.begin(), t.data.end(), 0.0f);
  return d;
}

FloatTensor Row(const FloatTensor& t, int64_t r) {
  FloatTensor out;
  out.shape = t.shape;
  out.shape[0] = 1;
  const int64_t n = out.numel();
  out.data.assign(t.data.begin() + r * n, t.data.begin() + (r + 1) * n);
  return out;
}

// S codes [N, s_dim] with each conv layer's channels changed by `change(s, d)`, d from
// the domain tensor "<module><suffix>".
template <typename Change>
FloatTensor EditConvStyles(const GeneratorConfig& c, FloatTensor s, const DomainTensors& t, const std::string& suffix,
                           Change change) {
  for (const StyleLayer& l : c.style_layers) {
    if (!l.demodulate) continue;
    const FloatTensor& d = t.tensors.at(l.module + suffix);
    for (int64_t r = 0; r < s.shape[0]; ++r) {
      for (int i = 0; i < l.in_channel; ++i) {
        float& v = s.data[r * c.s_dim + l.offset + i];
        v = change(v, d.data[i]);
      }
    }
  }
  return s;
}

class DomainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    gen_ = ::ganserve::testing::TinyGenerator(64, 16, 5);
    ASSERT_NE(gen_, nullptr);
    NumpyRandomState rng(11);
    z_.shape = {4, 16};
    z_.data = rng.Randn(64);
  }
  std::shared_ptr<const Domain> Make(const DomainTensors& t) {
    auto d = gen_->MakeDomain(t);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *d : nullptr;
  }
  FloatTensor Render(const std::shared_ptr<const Generator>& g, GenerateParams p) {
    auto r = g->Generate(p);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->images : FloatTensor{};
  }
  GenerateParams Params(const FloatTensor& z) {
    GenerateParams p;
    p.latents = z;
    p.truncation = 0.8f;
    return p;
  }
  std::shared_ptr<const Generator> gen_;
  FloatTensor z_;
};

TEST(DomainShapesTest, ParameterCountsAtTheOfficialSizes) {
  // HyperDomainNet's 6,048 at 1024 px; AffineLight+ 637,824 / 629,504 / 285,696 at 1024,
  // 512 and paper256 (= rosinality 256 px, channel multiplier 1) in StyleDomain.
  const auto c1024 = MakeConfig(1024, 512, 8, 2);
  EXPECT_EQ(Count(DomainTensorShapes(c1024, DomainKind::kDomainModulation)), 6048);
  EXPECT_EQ(Count(DomainTensorShapes(c1024, DomainKind::kStyleSpaceDirection)), 6048);
  EXPECT_EQ(Count(DomainTensorShapes(MakeConfig(512, 512, 8, 2), DomainKind::kDomainModulation)), 5952);
  EXPECT_EQ(Count(DomainTensorShapes(MakeConfig(256, 512, 8, 2), DomainKind::kDomainModulation)), 5760);
  EXPECT_EQ(Count(DomainTensorShapes(MakeConfig(256, 512, 8, 1), DomainKind::kDomainModulation)), 4928);
  EXPECT_EQ(Count(DomainTensorShapes(c1024, DomainKind::kAffineLight)), 637824);
  EXPECT_EQ(Count(DomainTensorShapes(MakeConfig(512, 512, 8, 2), DomainKind::kAffineLight)), 629504);
  EXPECT_EQ(Count(DomainTensorShapes(MakeConfig(256, 512, 8, 1), DomainKind::kAffineLight)), 285696);
  EXPECT_EQ(AffineLightKernelBlock(c1024), 3);
  EXPECT_EQ(AffineLightKernelBlock(MakeConfig(32, 512, 8, 2)), 2);
  for (DomainKind k : {DomainKind::kDomainModulation, DomainKind::kStyleSpaceDirection, DomainKind::kAffineLight}) {
    EXPECT_EQ(ParseDomainKind(DomainKindName(k)), k);
  }
  EXPECT_FALSE(ParseDomainKind("full").has_value());
}

TEST_F(DomainTest, ZeroDomainsRenderTheBaseBitForBit) {
  const FloatTensor base = Render(gen_, Params(z_));
  for (DomainKind k : {DomainKind::kDomainModulation, DomainKind::kStyleSpaceDirection, DomainKind::kAffineLight}) {
    auto view = Generator::WithDomain(gen_, Make(ZeroDomain(gen_->config(), k)));
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ(Render(*view, Params(z_)).data, base.data) << DomainKindName(k);
  }
}

TEST_F(DomainTest, StyleSpaceDirectionAddsToTheConvStyles) {
  const DomainTensors t = RandomDomain(gen_->config(), DomainKind::kStyleSpaceDirection, 3, 0.3f);
  auto view = Generator::WithDomain(gen_, Make(t));
  ASSERT_TRUE(view.ok());
  GenerateParams p = Params(z_);
  p.return_s = true;
  auto base = gen_->Generate(p);
  ASSERT_TRUE(base.ok());
  GenerateParams ps;
  ps.space = LatentSpace::kS;
  ps.latents = EditConvStyles(gen_->config(), base->s, t, ".style_offset", [](float s, float d) { return s + d; });
  const FloatTensor want = Render(gen_, ps);
  const FloatTensor got = Render(*view, Params(z_));
  EXPECT_LT(MaxAbsDiff(got, want), kBatchTol);
  EXPECT_GT(MaxAbsDiff(got, base->images), 1e-2f);
}

TEST_F(DomainTest, DomainModulationActsAfterDemodulation) {
  // s * (1 + d) before demodulation (StyleDomain's s_mod) is a different generator: the
  // placement must show.
  const DomainTensors t = RandomDomain(gen_->config(), DomainKind::kDomainModulation, 4, 0.3f);
  auto view = Generator::WithDomain(gen_, Make(t));
  ASSERT_TRUE(view.ok());
  GenerateParams p = Params(z_);
  p.return_s = true;
  auto base = gen_->Generate(p);
  ASSERT_TRUE(base.ok());
  GenerateParams ps;
  ps.space = LatentSpace::kS;
  ps.latents = EditConvStyles(gen_->config(), base->s, t, ".domain", [](float s, float d) { return s * (1 + d); });
  const FloatTensor pre_demod = Render(gen_, ps);
  const FloatTensor got = Render(*view, Params(z_));
  EXPECT_GT(MaxAbsDiff(got, pre_demod), 1e-2f);
  EXPECT_GT(MaxAbsDiff(got, base->images), 1e-2f);

  // The scaled (fused=False) form computes the same thing.
  auto cfg = MakeConfig(64, 16, 2, 1, 8);
  LoadOptions scaled;
  scaled.modconv = ModConvMode::kScaled;
  auto g2 = Generator::FromTensors(
      ViewsOf(std::make_shared<const std::map<std::string, FloatTensor>>(RandomGeneratorWeights(cfg, 5, 0.1f))),
      nullptr, scaled);
  ASSERT_TRUE(g2.ok());
  std::shared_ptr<const Generator> sg(std::move(*g2));
  auto d2 = sg->MakeDomain(t);
  ASSERT_TRUE(d2.ok());
  auto view2 = Generator::WithDomain(sg, *d2);
  ASSERT_TRUE(view2.ok());
  EXPECT_LT(MaxAbsDiff(Render(*view2, Params(z_)), got), 1e-4f);
}

TEST_F(DomainTest, AffineLightEqualsTheEditedWeights) {
  const GeneratorConfig& c = gen_->config();
  const DomainTensors t = RandomDomain(c, DomainKind::kAffineLight, 6, 0.2f);
  auto view = Generator::WithDomain(gen_, Make(t));
  ASSERT_TRUE(view.ok());
  // A full generator with A + U V and W + D (broadcast over the window).
  auto sd = gen_->StateDict();
  for (const StyleLayer& l : c.style_layers) {
    const FloatTensor& u = t.tensors.at(l.module + ".affine_u");
    const FloatTensor& v = t.tensors.at(l.module + ".affine_v");
    FloatTensor& a = sd.at(l.module + ".conv.modulation.weight");  // [in, style_dim]
    const int64_t r = u.shape[1];
    for (int i = 0; i < l.in_channel; ++i) {
      for (int j = 0; j < c.style_dim; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < r; ++k) acc += double(u.data[i * r + k]) * v.data[k * c.style_dim + j];
        a.data[i * c.style_dim + j] += static_cast<float>(acc);
      }
    }
    auto it = t.tensors.find(l.module + ".weight_offset");
    if (it == t.tensors.end()) continue;
    FloatTensor& w = sd.at(l.module + ".conv.weight");  // [1, out, in, k, k]
    const int64_t kk = int64_t{l.kernel_size} * l.kernel_size;
    for (int64_t o = 0; o < l.out_channel; ++o) {
      for (int64_t i = 0; i < l.in_channel; ++i) {
        for (int64_t q = 0; q < kk; ++q)
          w.data[(o * l.in_channel + i) * kk + q] += it->second.data[o * l.in_channel + i];
      }
    }
  }
  const TensorView avg = ViewOf(std::make_shared<const FloatTensor>(gen_->mean_latent()));
  auto edited =
      Generator::FromTensors(ViewsOf(std::make_shared<const std::map<std::string, FloatTensor>>(sd)), &avg, {});
  ASSERT_TRUE(edited.ok()) << edited.status();
  std::shared_ptr<const Generator> eg(std::move(*edited));
  const FloatTensor got = Render(*view, Params(z_));
  // The mapping is the base's in both, so the same w and truncation.
  EXPECT_LT(MaxAbsDiff(got, Render(eg, Params(z_))), kBatchTol);
  EXPECT_GT(MaxAbsDiff(got, Render(gen_, Params(z_))), 1e-2f);
  EXPECT_EQ(t.tensors.count(absl::StrCat("convs.", 2 * AffineLightKernelBlock(c), ".weight_offset")), 1u);

  GenerateParams ps;
  ps.space = LatentSpace::kS;
  ps.latents = FloatTensor{{1, c.s_dim}, std::vector<float>(static_cast<size_t>(c.s_dim), 1.0f)};
  auto s_input = (*view)->Generate(ps);
  EXPECT_EQ(s_input.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DomainTest, MixedBatchRendersEachImageAsItsSoloRender) {
  const GeneratorConfig& c = gen_->config();
  std::vector<std::shared_ptr<const Domain>> domains = {
      Make(RandomDomain(c, DomainKind::kDomainModulation, 21, 0.3f)),
      nullptr,
      Make(RandomDomain(c, DomainKind::kStyleSpaceDirection, 22, 0.3f)),
      Make(RandomDomain(c, DomainKind::kAffineLight, 23, 0.2f)),
      Make(RandomDomain(c, DomainKind::kDomainModulation, 24, 0.3f)),
  };
  domains.push_back(domains[0]);  // two images of one domain
  NumpyRandomState rng(12);
  FloatTensor z{{6, 16}, rng.Randn(96)};
  GenerateParams p = Params(z);
  p.domains = domains;
  const FloatTensor batch = Render(gen_, p);
  ASSERT_EQ(batch.shape, (std::vector<int64_t>{6, 3, 64, 64}));
  for (int64_t r = 0; r < 6; ++r) {
    std::shared_ptr<const Generator> solo_gen = gen_;
    if (domains[r] != nullptr) {
      auto v = Generator::WithDomain(gen_, domains[r]);
      ASSERT_TRUE(v.ok());
      solo_gen = *v;
    }
    const FloatTensor solo = Render(solo_gen, Params(Row(z, r)));
    EXPECT_LT(MaxAbsDiff(Row(batch, r), solo), kBatchTol) << "row " << r;
  }
  // The same domains from views override per image: an explicit null renders the base.
  auto view = Generator::WithDomain(gen_, domains[0]);
  ASSERT_TRUE(view.ok());
  GenerateParams base_rows = Params(Row(z, 1));
  base_rows.domains = {nullptr};
  EXPECT_LT(MaxAbsDiff(Render(*view, base_rows), Row(batch, 1)), kBatchTol);
}

TEST_F(DomainTest, RejectsDomainsThatDoNotFit) {
  const GeneratorConfig& c = gen_->config();
  DomainTensors t = RandomDomain(c, DomainKind::kDomainModulation, 3, 0.1f);
  DomainTensors missing = t;
  missing.tensors.erase("conv1.domain");
  auto m = gen_->MakeDomain(missing);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("conv1.domain"), std::string::npos) << m.status();
  DomainTensors extra = t;
  extra.tensors["to_rgb1.domain"] = FloatTensor{{8}, std::vector<float>(8, 0.0f)};
  EXPECT_EQ(gen_->MakeDomain(extra).status().code(), absl::StatusCode::kInvalidArgument);
  DomainTensors wrong = t;
  wrong.tensors["convs.0.domain"].shape = {2, 4};
  EXPECT_EQ(gen_->MakeDomain(wrong).status().code(), absl::StatusCode::kInvalidArgument);
  DomainTensors nan = t;
  nan.tensors["convs.1.domain"].data[0] = NAN;
  EXPECT_EQ(gen_->MakeDomain(nan).status().code(), absl::StatusCode::kInvalidArgument);
  DomainTensors other_kind = t;
  other_kind.kind = DomainKind::kStyleSpaceDirection;
  EXPECT_EQ(gen_->MakeDomain(other_kind).status().code(), absl::StatusCode::kInvalidArgument);

  // A domain of another generator's weights.
  auto other = ::ganserve::testing::TinyGenerator(64, 16, 6);
  auto foreign = other->MakeDomain(t);
  ASSERT_TRUE(foreign.ok());
  EXPECT_FALSE(Generator::WithDomain(gen_, *foreign).ok());
  GenerateParams p = Params(z_);
  p.domains = {*foreign, nullptr, nullptr, nullptr};
  EXPECT_EQ(gen_->Generate(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.domains = {nullptr};
  EXPECT_EQ(gen_->Generate(p).status().code(), absl::StatusCode::kInvalidArgument);  // one per image
  // Rows sharing a prefix must share the domain.
  auto mine = Make(t);
  p.domains = {mine, nullptr, mine, mine};
  p.prefix_group = 2;
  p.prefix_layers = 1;
  EXPECT_EQ(gen_->Generate(p).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DomainTest, ExportsFoldWhatACheckpointCanHold) {
  const TensorView avg = ViewOf(std::make_shared<const FloatTensor>(gen_->mean_latent()));
  for (DomainKind k : {DomainKind::kStyleSpaceDirection, DomainKind::kAffineLight}) {
    auto view = Generator::WithDomain(gen_, Make(RandomDomain(gen_->config(), k, 8, 0.2f)));
    ASSERT_TRUE(view.ok());
    auto sd = (*view)->ExportStateDict();
    ASSERT_TRUE(sd.ok()) << sd.status();
    auto plain =
        Generator::FromTensors(ViewsOf(std::make_shared<const std::map<std::string, FloatTensor>>(*sd)), &avg, {});
    ASSERT_TRUE(plain.ok()) << plain.status();
    std::shared_ptr<const Generator> pg(std::move(*plain));
    EXPECT_LT(MaxAbsDiff(Render(pg, Params(z_)), Render(*view, Params(z_))), kBatchTol) << DomainKindName(k);
  }
  auto dm = Generator::WithDomain(gen_, Make(RandomDomain(gen_->config(), DomainKind::kDomainModulation, 8, 0.2f)));
  ASSERT_TRUE(dm.ok());
  EXPECT_EQ((*dm)->ExportStateDict().status().code(), absl::StatusCode::kFailedPrecondition);
  auto base = gen_->ExportStateDict();
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->size(), gen_->StateDict().size());
}

TEST_F(DomainTest, ViewsShareTheBaseWeights) {
  auto d = Make(RandomDomain(gen_->config(), DomainKind::kDomainModulation, 3, 0.1f));
  auto view = Generator::WithDomain(gen_, d);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ((*view)->weights_id(), gen_->weights_id());
  EXPECT_EQ((*view)->domain(), d);
  EXPECT_EQ(d->parameter_count(), 9 * 8);  // conv1 and eight convs, 8 channels each
  // The device copy and the host copy exports fold from (both host memory on a CPU).
  EXPECT_EQ((*view)->Footprint().host_bytes + (*view)->Footprint().device_bytes, 2 * 9 * 8 * 4);
  EXPECT_GT(gen_->Footprint().host_bytes, 100 * (*view)->Footprint().host_bytes);
}

// Parity with the official code (tests/fixtures/lightweight/make_lightweight_fixtures.py:
// HyperDomainNet's and StyleDomain's inference on the shared a1 generator, w+ input,
// stored noise), within the 1e-4 of the generator fixtures.
class OfficialDomainParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string shared = ::ganserve::testing::SharedDir();
    if (shared.empty()) GTEST_SKIP() << "shared/ fixtures not found: no a1 generator (set GANSERVE_SHARED_DIR)";
    auto g = Generator::Load(shared + "/fixtures/stylegan2/a1_g32_sd512_zip.pt", {});
    ASSERT_TRUE(g.ok()) << g.status();
    gen_ = std::move(*g);
    wplus_ = Npy(shared + "/fixtures/stylegan2/a1/wplus.npy");
    d_ = Npy(Dir() + "d.npy");
    ASSERT_EQ(d_.shape, (std::vector<int64_t>{7, 32}));
  }
  static std::string Dir() { return std::string(GANSERVE_SOURCE_DIR) + "/tests/fixtures/lightweight/"; }
  static FloatTensor Npy(const std::string& path) {
    auto t = ReadNpyFloat(path);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : FloatTensor{};
  }
  // d.npy row k is the official key conv_k: conv1, then convs.(k-1).
  DomainTensors FromRows(DomainKind kind, const std::string& suffix, float scale) const {
    DomainTensors t;
    t.kind = kind;
    for (int k = 0; k < 7; ++k) {
      FloatTensor row{{32}, std::vector<float>(d_.data.begin() + k * 32, d_.data.begin() + (k + 1) * 32)};
      for (float& v : row.data) v *= scale;
      t.tensors[(k == 0 ? std::string("conv1") : absl::StrCat("convs.", k - 1)) + suffix] = std::move(row);
    }
    return t;
  }
  FloatTensor Render(const DomainTensors* t) {
    GenerateParams p;
    p.space = LatentSpace::kWPlus;
    p.latents = wplus_;
    if (t != nullptr) {
      auto d = gen_->MakeDomain(*t);
      EXPECT_TRUE(d.ok()) << d.status();
      if (!d.ok()) return {};
      p.domains.assign(static_cast<size_t>(wplus_.shape[0]), *d);
    }
    auto r = gen_->Generate(p);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->images : FloatTensor{};
  }
  std::shared_ptr<const Generator> gen_;
  FloatTensor wplus_, d_;
};

TEST_F(OfficialDomainParityTest, DomainModulationMatchesHyperDomainNet) {
  const DomainTensors t = FromRows(DomainKind::kDomainModulation, ".domain", 1.0f);
  const FloatTensor got = Render(&t);
  EXPECT_LT(MaxAbsDiff(got, Npy(Dir() + "img_cin_mult.npy")), 1e-4f);
  // The placement sentinel: StyleDomain's s * (1 + d) before demodulation is 0.47 away.
  EXPECT_GT(MaxAbsDiff(got, Npy(Dir() + "img_s_mod.npy")), 0.1f);
  EXPECT_LT(MaxAbsDiff(Render(nullptr), Npy(Dir() + "img_base.npy")), 1e-4f);
}

TEST_F(OfficialDomainParityTest, StyleSpaceDirectionMatchesStyleDomain) {
  const DomainTensors full = FromRows(DomainKind::kStyleSpaceDirection, ".style_offset", 1.0f);
  EXPECT_LT(MaxAbsDiff(Render(&full), Npy(Dir() + "img_s_delta.npy")), 1e-4f);
  // offset_power 0.5 is the same direction at half strength.
  const DomainTensors half = FromRows(DomainKind::kStyleSpaceDirection, ".style_offset", 0.5f);
  EXPECT_LT(MaxAbsDiff(Render(&half), Npy(Dir() + "img_s_delta_half.npy")), 1e-4f);
}

}  // namespace
}  // namespace ganserve::core::stylegan2
