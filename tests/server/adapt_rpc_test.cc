// AdaptDomain: request contract, training with streamed progress, cancellation.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <nlohmann/json.hpp>
#include "core/io/image_codec.h"
#include "core/jobs/sqlite_job_store.h"
#include "core/models/stylegan2/generator.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/server/service_fixture.h"
#include "tests/testing/shared.h"

namespace ganserve::testing {
namespace {

std::vector<v1::JobEvent> Adapt(v1::GanService::Stub* stub, const v1::AdaptDomainRequest& req, grpc::Status* st,
                                std::function<void(const v1::JobEvent&)> on_event = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = stub->AdaptDomain(&ctx, req);
  std::vector<v1::JobEvent> out;
  v1::JobEvent e;
  while (reader->Read(&e)) {
    out.push_back(e);
    if (on_event) on_event(e);
  }
  *st = reader->Finish();
  return out;
}

v1::AdaptDomainRequest GoodAdapt() {
  v1::AdaptDomainRequest r;
  r.set_model("tiny");
  r.set_source_text("photo");
  r.set_target_text("sketch");
  r.set_iterations(3);
  r.set_preview_every(2);
  return r;
}

// The AdaptDomain request contract: each bad field gets its code and a message naming it.
TEST_F(GanServiceTest, AdaptRejectsBadRequests) {
  struct Case {
    const char* name;
    std::function<void(v1::AdaptDomainRequest*)> edit;
    grpc::StatusCode code;
    const char* part;
  };
  const Case cases[] = {
      {"no model", [](auto* r) { r->clear_model(); }, grpc::StatusCode::INVALID_ARGUMENT, "model is required"},
      {"unknown model", [](auto* r) { r->set_model("nope"); }, grpc::StatusCode::NOT_FOUND, "no model named"},
      {"clip as base", [](auto* r) { r->set_model("clip-demo"); }, grpc::StatusCode::FAILED_PRECONDITION,
       "adapt from a base generator"},
      {"no target", [](auto* r) { r->clear_target_text(); }, grpc::StatusCode::INVALID_ARGUMENT, "target_text"},
      {"long target", [](auto* r) { r->set_target_text(std::string(301, 'a')); }, grpc::StatusCode::INVALID_ARGUMENT,
       "limit is 300"},
      {"same texts", [](auto* r) { r->set_target_text("photo"); }, grpc::StatusCode::INVALID_ARGUMENT, "the same"},
      {"iterations", [](auto* r) { r->set_iterations(5001); }, grpc::StatusCode::INVALID_ARGUMENT, "iterations"},
      {"batch", [](auto* r) { r->set_batch_size(17); }, grpc::StatusCode::INVALID_ARGUMENT, "batch_size"},
      {"lr", [](auto* r) { r->set_lr_scale(-1); }, grpc::StatusCode::INVALID_ARGUMENT, "lr_scale"},
      {"mixing", [](auto* r) { r->set_mixing(2); }, grpc::StatusCode::INVALID_ARGUMENT, "mixing"},
      {"layer k", [](auto* r) { r->set_auto_layer_k(99); }, grpc::StatusCode::INVALID_ARGUMENT, "auto_layer_k"},
      {"unknown clip", [](auto* r) { r->add_clip_models()->set_name("nope"); }, grpc::StatusCode::NOT_FOUND,
       "no model named 'nope'"},
      {"clip weight",
       [](auto* r) {
         auto* c = r->add_clip_models();
         c->set_name("clip-demo");
         c->set_weight(11);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "weight"},
      {"corrupt image", [](auto* r) { r->add_target_images("x"); }, grpc::StatusCode::INVALID_ARGUMENT,
       "target_images[0]"},
      {"images with selection and no text",
       [](auto* r) {
         r->clear_target_text();
         r->add_target_images(std::string("\x89PNG\r\n\x1a\n", 8));
       },
       grpc::StatusCode::INVALID_ARGUMENT, "target_images[0]"},
      {"output name", [](auto* r) { r->set_output_name("Bad Name"); }, grpc::StatusCode::INVALID_ARGUMENT,
       "output_name"},
      {"output exists", [](auto* r) { r->set_output_name("tiny"); }, grpc::StatusCode::ALREADY_EXISTS, "exists"},
      {"request id", [](auto* r) { r->set_request_id("has space"); }, grpc::StatusCode::INVALID_ARGUMENT, "request_id"},
      {"snapshots past the end", [](auto* r) { r->set_snapshot_every(4); }, grpc::StatusCode::INVALID_ARGUMENT,
       "snapshot_every"},
      {"negative snapshots", [](auto* r) { r->set_snapshot_every(-1); }, grpc::StatusCode::INVALID_ARGUMENT,
       "snapshot_every"},
      {"too many snapshots",
       [](auto* r) {
         r->set_iterations(200);
         r->set_snapshot_every(2);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "at most 50"},
  };
  auto stub = server_->Stub();
  for (const Case& c : cases) {
    v1::AdaptDomainRequest r = GoodAdapt();
    c.edit(&r);
    grpc::Status st;
    auto events = Adapt(stub.get(), r, &st);
    EXPECT_EQ(st.error_code(), c.code) << c.name << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(c.part), std::string::npos) << c.name << ": " << st.error_message();
    EXPECT_TRUE(events.empty()) << c.name;
  }
}

TEST_F(GanServiceTest, AdaptTrainsStreamsAndServesTheResult) {
  auto stub = server_->Stub();
  v1::AdaptDomainRequest r = GoodAdapt();
  r.set_request_id("adapt-once");
  r.set_output_name("tiny-sketch");
  grpc::Status st;
  auto events = Adapt(stub.get(), r, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(events.empty());
  int progress = 0, previews = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq(), static_cast<int64_t>(i + 1));
    progress += events[i].has_progress();
    previews += events[i].has_preview();
  }
  EXPECT_EQ(progress, 3);
  EXPECT_EQ(previews, 2);  // steps 2 and 3 (the last)
  EXPECT_EQ(events.back().job().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(events.back().job().result(), "tiny-sketch");
  // Same request_id, same payload: the same job, replayed; another payload: ALREADY_EXISTS.
  auto again = Adapt(stub.get(), r, &st);
  ASSERT_TRUE(st.ok());
  ASSERT_FALSE(again.empty());
  EXPECT_EQ(again.back().job().id(), events.back().job().id());
  r.set_target_text("watercolor");
  Adapt(stub.get(), r, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  // The new model renders through GenerateSamples.
  v1::GenerateSamplesRequest g;
  g.set_model("tiny-sketch");
  g.add_seeds(1);
  Generate(stub.get(), g, &st);
  EXPECT_TRUE(st.ok()) << st.error_message();
  grpc::ClientContext ctx;
  v1::GetModelRequest gm;
  gm.set_name("tiny-sketch");
  v1::Model m;
  ASSERT_TRUE(stub->GetModel(&ctx, gm, &m).ok());
  EXPECT_EQ(m.kind(), v1::MODEL_KIND_ADAPTED_GENERATOR);
  EXPECT_EQ(m.base_model(), "tiny");
  EXPECT_EQ(m.target_text(), "sketch");

  // An S-space edit of the base's latent rendered through the adapted model: at strength
  // 0 it is exactly what the adapted model generates (S comes from the adapted model's
  // own style affines, which NADA trains). Both render one image per batch.
  g.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  g.set_truncation(0.6f);
  g.set_has_truncation(true);
  auto adapted = Generate(stub.get(), g, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  v1::EditRequest e;
  e.set_model("tiny");
  e.set_render_model("tiny-sketch");
  e.add_seeds(1);
  e.set_truncation(0.6f);
  e.set_has_truncation(true);
  e.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  auto* dir = e.mutable_direction();
  dir->mutable_direction()->set_space(v1::LATENT_SPACE_S);
  dir->mutable_direction()->mutable_values()->add_shape(1);
  dir->mutable_direction()->mutable_values()->add_shape(m.s_dim());
  for (int i = 0; i < m.s_dim(); ++i) dir->mutable_direction()->mutable_values()->add_data(i == 0 ? 1.0f : 0.0f);
  dir->add_strengths(0.0f);
  auto edited = EditCall(stub.get(), e, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const auto& want = adapted[0].images(0).raw().data();
  const auto& got = edited[0].images(0).raw().data();
  ASSERT_EQ(got.size(), want.size());
  for (int i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << i;
}

// Snapshots: an adaptation that keeps every 2nd step leaves OUTPUT@2 beside its result;
// the snapshot renders (differently from the final model), exports, and is promoted into
// a model that outlives the job; it cannot be deleted by hand.
TEST_F(GanServiceTest, AdaptKeepsSnapshotsThatRenderExportAndPromote) {
  auto stub = server_->Stub();
  v1::AdaptDomainRequest r = GoodAdapt();
  r.set_iterations(4);
  r.set_snapshot_every(2);
  r.set_output_name("snap-sketch");
  grpc::Status st;
  auto events = Adapt(stub.get(), r, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(events.back().job().state(), v1::JOB_STATE_SUCCEEDED);
  const std::string job_id = events.back().job().id();

  grpc::ClientContext lctx;
  v1::ListModelsResponse list;
  ASSERT_TRUE(stub->ListModels(&lctx, v1::ListModelsRequest(), &list).ok());
  std::vector<std::string> snapshots;
  for (const auto& m : list.models()) {
    if (!m.snapshot_job().empty()) {
      snapshots.push_back(m.name());
      EXPECT_EQ(m.snapshot_job(), job_id);
      EXPECT_EQ(m.snapshot_step(), 2);
      EXPECT_EQ(m.kind(), v1::MODEL_KIND_ADAPTED_GENERATOR);
    }
  }
  EXPECT_EQ(snapshots, std::vector<std::string>{"snap-sketch@2"}) << "step 4 is the result itself";

  auto render = [&](const std::string& model) {
    v1::GenerateSamplesRequest g;
    g.set_model(model);
    g.add_seeds(5);
    g.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
    grpc::Status gs;
    auto b = Generate(stub.get(), g, &gs);
    EXPECT_TRUE(gs.ok()) << model << ": " << gs.error_message();
    return b.empty() ? std::vector<float>()
                     : std::vector<float>(b[0].images(0).raw().data().begin(), b[0].images(0).raw().data().end());
  };
  auto max_diff = [](const std::vector<float>& a, const std::vector<float>& b) {
    float m = a.size() == b.size() ? 0.0f : INFINITY;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
  };
  const std::vector<float> at2 = render("snap-sketch@2");
  const std::vector<float> at4 = render("snap-sketch");
  ASSERT_FALSE(at2.empty());
  EXPECT_GT(max_diff(at2, at4), 1e-4f) << "two more steps of training change the render";

  grpc::ClientContext ectx;
  v1::ExportModelRequest ex;
  ex.set_name("snap-sketch@2");
  auto chunks = ReadAll<v1::ExportModelChunk>(stub->ExportModel(&ectx, ex), &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks[0].filename(), "snap-sketch@2.pt");

  grpc::ClientContext dctx;
  v1::DeleteModelRequest del;
  del.set_name("snap-sketch@2");
  v1::DeleteModelResponse dr;
  st = stub->DeleteModel(&dctx, del, &dr);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("PromoteSnapshot"), std::string::npos) << st.error_message();

  grpc::ClientContext pctx;
  v1::PromoteSnapshotRequest promote;
  promote.set_snapshot("snap-sketch@2");
  promote.set_name("snap-sketch-early");
  v1::Model promoted;
  st = stub->PromoteSnapshot(&pctx, promote, &promoted);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(promoted.kind(), v1::MODEL_KIND_ADAPTED_GENERATOR);
  EXPECT_TRUE(promoted.snapshot_job().empty());
  // The same weights in another generator instance: equal up to kernel choices.
  EXPECT_LE(max_diff(render("snap-sketch-early"), at2), 1e-5f) << "the promoted model is the snapshot";
  grpc::ClientContext pctx2;
  st = stub->PromoteSnapshot(&pctx2, promote, &promoted);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();
}

// delta_dtype: the same training stored as float16 / bfloat16 differences from the base is
// half the size on disk and renders within rounding of the float32 result.
TEST_F(GanServiceTest, AdaptStoresHalfPrecisionDeltasThatRenderAlike) {
  auto stub = server_->Stub();
  std::map<int, std::string> images;
  std::map<int, int64_t> sizes;
  for (int dtype : {v1::DELTA_DTYPE_FLOAT32, v1::DELTA_DTYPE_FLOAT16, v1::DELTA_DTYPE_BFLOAT16}) {
    v1::AdaptDomainRequest r = GoodAdapt();
    r.set_seed(11);
    r.set_delta_dtype(static_cast<v1::DeltaDtype>(dtype));
    r.set_output_name("tiny-dtype-" + std::to_string(dtype));
    grpc::Status st;
    auto events = Adapt(stub.get(), r, &st);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(events.back().job().state(), v1::JOB_STATE_SUCCEEDED) << events.back().job().error_message();
    sizes[dtype] = static_cast<int64_t>(
        std::filesystem::file_size(server_->repo() + "/" + r.output_name() + "/delta.safetensors"));
    v1::GenerateSamplesRequest g;
    g.set_model(r.output_name());
    for (int seed : {1, 2, 3}) g.add_seeds(seed);
    g.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
    auto batches = Generate(stub.get(), g, &st);
    ASSERT_TRUE(st.ok()) << st.error_message();
    for (const auto& b : batches) {
      for (const auto& img : b.images()) {
        for (float v : img.raw().data()) images[dtype].append(reinterpret_cast<const char*>(&v), sizeof(v));
      }
    }
  }
  auto max_diff = [&](int a, int b) {
    const auto* x = reinterpret_cast<const float*>(images[a].data());
    const auto* y = reinterpret_cast<const float*>(images[b].data());
    float m = 0;
    for (size_t i = 0; i < images[a].size() / sizeof(float); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
    return m;
  };
  ASSERT_EQ(images[v1::DELTA_DTYPE_FLOAT32].size(), images[v1::DELTA_DTYPE_FLOAT16].size());
  const float f16 = max_diff(v1::DELTA_DTYPE_FLOAT32, v1::DELTA_DTYPE_FLOAT16);
  const float bf16 = max_diff(v1::DELTA_DTYPE_FLOAT32, v1::DELTA_DTYPE_BFLOAT16);
  std::printf(
      "delta bytes f32 %lld, f16 %lld, bf16 %lld; max abs image difference from f32 (images in [-1, 1]): "
      "f16 %.2e, bf16 %.2e\n",
      static_cast<long long>(sizes[v1::DELTA_DTYPE_FLOAT32]), static_cast<long long>(sizes[v1::DELTA_DTYPE_FLOAT16]),
      static_cast<long long>(sizes[v1::DELTA_DTYPE_BFLOAT16]), f16, bf16);
  EXPECT_LT(sizes[v1::DELTA_DTYPE_FLOAT16], sizes[v1::DELTA_DTYPE_FLOAT32] * 6 / 10);
  EXPECT_LT(sizes[v1::DELTA_DTYPE_BFLOAT16], sizes[v1::DELTA_DTYPE_FLOAT32] * 6 / 10);
  // Rounding differences of a few training steps: float16 keeps 11 significant bits,
  // bfloat16 8, of the difference, not of the weight.
  EXPECT_LT(f16, 1e-2f);
  EXPECT_LT(bf16, 5e-2f);
}

// Settings whose zero means something are accepted as zero: a global-loss-only run (the
// paper's Fig. 13), explicit mixing 0, with the newer preset and Adam counting.
TEST_F(GanServiceTest, AdaptAcceptsZerosThatMeanSomething) {
  auto stub = server_->Stub();
  v1::AdaptDomainRequest r = GoodAdapt();
  r.set_output_name("tiny-global-only");
  r.set_lambda_direction(0);
  r.set_lambda_global(1);
  r.set_mixing(0);
  r.set_layer_preset(v1::LAYER_PRESET_SHAPE_EXPANDED);
  r.set_adam_steps(v1::ADAM_STEPS_PER_PARAMETER);
  // A CLIP model with weight 0 (the Colab's [1.0, 0.0]) stays 0 instead of becoming 1.
  auto* on = r.add_clip_models();
  on->set_name("clip-demo");
  on->set_weight(1);
  auto* off = r.add_clip_models();
  off->set_name("clip-demo");
  off->set_weight(0);
  grpc::Status st;
  auto events = Adapt(stub.get(), r, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().job().state(), v1::JOB_STATE_SUCCEEDED) << events.back().job().error_message();
  bool global_only = false;
  for (const auto& e : events) {
    if (e.has_progress())
      global_only = e.progress().losses().count("global") == 1 && e.progress().losses().count("direction") == 0;
  }
  EXPECT_TRUE(global_only) << "the progress should report the global loss and no directional loss";
  // The manifest records the settings as trained.
  std::ifstream in(server_->repo() + "/tiny-global-only/manifest.json");
  const auto training = nlohmann::json::parse(in).at("training");
  EXPECT_EQ(training.at("lambda_direction"), 0.0);
  EXPECT_EQ(training.at("mixing"), 0.0);
  EXPECT_EQ(training.at("adam_steps"), "per_parameter");
  EXPECT_EQ(training.at("layer_preset"), "shape_expanded");
  ASSERT_EQ(training.at("clip_models").size(), 2u);
  EXPECT_EQ(training.at("clip_models")[1].at("weight"), 0.0);
}

TEST_F(GanServiceTest, CancelStopsARunningAdaptation) {
  auto stub = server_->Stub();
  v1::AdaptDomainRequest r = GoodAdapt();
  r.set_iterations(5000);
  r.set_output_name("never");
  std::string id;
  std::thread canceller;
  grpc::Status st;
  auto events = Adapt(stub.get(), r, &st, [&](const v1::JobEvent& e) {
    if (e.has_progress() && e.progress().step() == 2 && id.empty()) {
      id = e.job().id();
      canceller = std::thread([&stub, id] {
        grpc::ClientContext ctx;
        v1::CancelJobRequest c;
        c.set_id(id);
        v1::Job j;
        EXPECT_TRUE(stub->CancelJob(&ctx, c, &j).ok());
      });
    }
  });
  if (canceller.joinable()) canceller.join();
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().job().state(), v1::JOB_STATE_CANCELLED);
  EXPECT_LT(events.back().job().step(), 10);
}

}  // namespace
}  // namespace ganserve::testing
