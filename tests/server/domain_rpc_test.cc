// Lightweight domains through the API: each parameterization trains as a job, is stored
// in kilobytes, renders through GenerateSamples and Edit, exports where a checkpoint can
// hold it, and the request contract names what does not apply.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/server/service_fixture.h"

namespace ganserve::testing {
namespace {

v1::AdaptDomainRequest DomainAdapt(v1::Parameterization p, const std::string& name) {
  v1::AdaptDomainRequest r;
  r.set_model("tiny");
  r.set_source_text("photo");
  r.set_target_text("sketch");
  r.set_iterations(3);
  r.set_preview_every(2);
  r.set_seed(5);
  r.set_parameterization(p);
  r.set_output_name(name);
  return r;
}

std::vector<v1::JobEvent> RunAdapt(v1::GanService::Stub* stub, const v1::AdaptDomainRequest& req, grpc::Status* st) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  return ReadAll<v1::JobEvent>(stub->AdaptDomain(&ctx, req), st);
}

std::vector<float> Raw(v1::GanService::Stub* stub, const std::string& model, const std::vector<int>& seeds) {
  v1::GenerateSamplesRequest g;
  g.set_model(model);
  g.set_truncation(0.5f);
  g.set_has_truncation(true);
  for (int s : seeds) g.add_seeds(s);
  g.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  grpc::Status st;
  auto batches = Generate(stub, g, &st);
  EXPECT_TRUE(st.ok()) << model << ": " << st.error_message();
  std::vector<float> out;
  for (const auto& b : batches) {
    for (const auto& img : b.images()) out.insert(out.end(), img.raw().data().begin(), img.raw().data().end());
  }
  return out;
}

float MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  if (a.size() != b.size()) return INFINITY;
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

TEST_F(GanServiceTest, LightweightDomainsTrainStoreAndRender) {
  auto stub = server_->Stub();
  const std::vector<float> base = Raw(stub.get(), "tiny", {1, 2});
  const int64_t base_bytes = static_cast<int64_t>(std::filesystem::file_size(server_->repo() + "/tiny/g.safetensors"));
  struct Case {
    v1::Parameterization p;
    const char* name;
    const char* kind;
  };
  for (const Case& c : {Case{v1::PARAMETERIZATION_DOMAIN_MODULATION, "tiny-dm", "domain_modulation"},
                        Case{v1::PARAMETERIZATION_STYLESPACE_DIRECTION, "tiny-sd", "stylespace_direction"},
                        Case{v1::PARAMETERIZATION_AFFINE_LIGHT, "tiny-al", "affine_light"}}) {
    grpc::Status st;
    auto events = RunAdapt(stub.get(), DomainAdapt(c.p, c.name), &st);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(events.back().job().state(), v1::JOB_STATE_SUCCEEDED) << events.back().job().error_message();
    bool saw_indomain = false;
    for (const auto& e : events) saw_indomain = saw_indomain || e.progress().losses().count("indomain") == 1;
    EXPECT_TRUE(saw_indomain) << c.kind;

    const std::string dir = server_->repo() + "/" + c.name;
    std::ifstream in(dir + "/manifest.json");
    const nlohmann::json m = nlohmann::json::parse(in);
    EXPECT_EQ(m["parameterization"], c.kind);
    EXPECT_FALSE(std::filesystem::exists(dir + "/delta.safetensors"));
    const int64_t bytes = static_cast<int64_t>(std::filesystem::file_size(dir + "/domain.safetensors"));

    grpc::ClientContext mc;
    v1::GetModelRequest gm;
    gm.set_name(c.name);
    v1::Model model;
    ASSERT_TRUE(stub->GetModel(&mc, gm, &model).ok());
    EXPECT_EQ(model.parameterization(), c.p);
    EXPECT_GT(model.trained_parameters(), 0);
    EXPECT_EQ(m["trained_parameters"].get<int64_t>(), model.trained_parameters());
    std::printf("%s: %lld trained numbers, %lld bytes on disk (base checkpoint %lld bytes)\n", c.kind,
                static_cast<long long>(model.trained_parameters()), static_cast<long long>(bytes),
                static_cast<long long>(base_bytes));
    if (c.p != v1::PARAMETERIZATION_AFFINE_LIGHT) {
      EXPECT_LT(bytes * 20, base_bytes) << c.kind;
    }

    // Renders in its domain, not as the base.
    const std::vector<float> img = Raw(stub.get(), c.name, {1, 2});
    EXPECT_GT(MaxDiff(img, base), 1e-4f) << c.kind;
  }

  // Edit renders in the domain: a zero-strength edit rendered through it is its sample.
  v1::EditRequest e;
  e.set_model("tiny");
  e.set_render_model("tiny-dm");
  e.add_seeds(1);
  e.set_truncation(0.5f);
  e.set_has_truncation(true);
  e.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  grpc::ClientContext mc;
  v1::GetModelRequest gm;
  gm.set_name("tiny");
  v1::Model tiny;
  ASSERT_TRUE(stub->GetModel(&mc, gm, &tiny).ok());
  auto* d = e.mutable_direction();
  d->mutable_direction()->set_space(v1::LATENT_SPACE_S);
  d->mutable_direction()->mutable_values()->add_shape(1);
  d->mutable_direction()->mutable_values()->add_shape(tiny.s_dim());
  for (int i = 0; i < tiny.s_dim(); ++i) d->mutable_direction()->mutable_values()->add_data(0.0f);
  d->add_strengths(0.0f);
  grpc::Status st;
  auto edited = EditCall(stub.get(), e, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::vector<float> edit_img(edited[0].images(0).raw().data().begin(), edited[0].images(0).raw().data().end());
  std::vector<float> dm = Raw(stub.get(), "tiny-dm", {1});
  EXPECT_LT(MaxDiff(edit_img, dm), 1e-5f);

  // Exports: a StyleSpace direction folds into a plain checkpoint; domain modulation cannot.
  for (const auto& [name, code] : {std::pair<std::string, grpc::StatusCode>{"tiny-sd", grpc::StatusCode::OK},
                                   {"tiny-dm", grpc::StatusCode::FAILED_PRECONDITION}}) {
    grpc::ClientContext ctx;
    v1::ExportModelRequest x;
    x.set_name(name);
    x.set_format(v1::EXPORT_FORMAT_SAFETENSORS);
    grpc::Status xs;
    ReadAll<v1::ExportModelChunk>(stub->ExportModel(&ctx, x), &xs);
    EXPECT_EQ(xs.error_code(), code) << name << ": " << xs.error_message();
  }
}

// Snapshots of a lightweight training are lightweight domains too: they render and
// promote like the final model.
TEST_F(GanServiceTest, LightweightSnapshotsRenderAndPromote) {
  auto stub = server_->Stub();
  v1::AdaptDomainRequest r = DomainAdapt(v1::PARAMETERIZATION_STYLESPACE_DIRECTION, "tiny-sd-snap");
  r.set_snapshot_every(2);
  grpc::Status st;
  auto events = RunAdapt(stub.get(), r, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(events.back().job().state(), v1::JOB_STATE_SUCCEEDED) << events.back().job().error_message();
  const std::vector<float> snap = Raw(stub.get(), "tiny-sd-snap@2", {3});
  const std::vector<float> last = Raw(stub.get(), "tiny-sd-snap", {3});
  EXPECT_GT(MaxDiff(snap, last), 0.0f) << "step 2 is not the final step 3";
  grpc::ClientContext ctx;
  v1::PromoteSnapshotRequest p;
  p.set_snapshot("tiny-sd-snap@2");
  p.set_name("tiny-sd-early");
  v1::Model promoted;
  st = stub->PromoteSnapshot(&ctx, p, &promoted);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(promoted.parameterization(), v1::PARAMETERIZATION_STYLESPACE_DIRECTION);
  EXPECT_LT(MaxDiff(Raw(stub.get(), "tiny-sd-early", {3}), snap), 1e-5f);
}

TEST_F(GanServiceTest, LightweightAdaptRejectsWhatDoesNotApply) {
  auto stub = server_->Stub();
  struct Case {
    const char* what;
    std::function<void(v1::AdaptDomainRequest*)> edit;
    const char* part;
  };
  const Case cases[] = {
      {"images", [](auto* r) { r->add_target_images("x"); }, "target_images need FULL"},
      {"batch 1", [](auto* r) { r->set_batch_size(1); }, "batch_size must be >= 2"},
      {"preset", [](auto* r) { r->set_layer_preset(v1::LAYER_PRESET_ALL); }, "FULL only"},
      {"layer selection", [](auto* r) { r->set_auto_layer_k(2); }, "FULL only"},
      {"delta dtype", [](auto* r) { r->set_delta_dtype(v1::DELTA_DTYPE_FLOAT16); }, "FULL only"},
      {"global loss", [](auto* r) { r->set_lambda_global(1); }, "FULL only"},
      {"indomain range", [](auto* r) { r->set_lambda_indomain(-1); }, "lambda_indomain"},
      {"nothing to train",
       [](auto* r) {
         r->set_lambda_direction(0);
         r->set_lambda_indomain(0);
       },
       "nothing would train"},
      {"indomain with FULL",
       [](auto* r) {
         r->set_parameterization(v1::PARAMETERIZATION_FULL);
         r->set_lambda_indomain(1);
       },
       "not FULL"},
      {"unknown", [](auto* r) { r->set_parameterization(static_cast<v1::Parameterization>(9)); },
       "unknown parameterization"},
  };
  for (const Case& c : cases) {
    v1::AdaptDomainRequest r = DomainAdapt(v1::PARAMETERIZATION_DOMAIN_MODULATION, "tiny-bad");
    c.edit(&r);
    grpc::Status st;
    RunAdapt(stub.get(), r, &st);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.what << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(c.part), std::string::npos) << c.what << ": " << st.error_message();
  }
}

}  // namespace
}  // namespace ganserve::testing
