// Edit: direction arithmetic, latent optimization, global directions and latent mappers
// (TrainMapper, imported official mappers).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_writer.h"
#include "core/edit/latent_mapper.h"
#include "core/invert/projector.h"
#include "core/io/image_codec.h"
#include "core/jobs/sqlite_job_store.h"
#include "core/models/stylegan2/generator.h"
#include "core/service/storage.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/server/service_fixture.h"
#include "tests/testing/shared.h"

namespace ganserve::testing {
namespace {

TEST_F(GanServiceTest, DirectionEditsStartAtTheInputAndMoveWithStrength) {
  auto stub = server_->Stub();
  v1::EditRequest e;
  e.set_model("tiny");
  e.add_seeds(7);
  e.set_truncation(0.5f);
  e.set_has_truncation(true);
  e.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  auto* d = e.mutable_direction();
  d->mutable_direction()->set_space(v1::LATENT_SPACE_S);
  d->mutable_direction()->mutable_values()->add_shape(1);
  // s_dim of the tiny model: from GetModel.
  grpc::ClientContext mc;
  v1::GetModelRequest gm;
  gm.set_name("tiny");
  v1::Model m;
  ASSERT_TRUE(stub->GetModel(&mc, gm, &m).ok());
  d->mutable_direction()->mutable_values()->add_shape(m.s_dim());
  for (int i = 0; i < m.s_dim(); ++i) d->mutable_direction()->mutable_values()->add_data(i == 3 ? 1.0f : 0.0f);
  d->add_strengths(0.0f);
  grpc::Status st;
  auto zero = EditCall(stub.get(), e, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  // Strength 0 reproduces GenerateSamples exactly (both render a batch of one image).
  v1::GenerateSamplesRequest g;
  g.set_model("tiny");
  g.add_seeds(7);
  g.set_truncation(0.5f);
  g.set_has_truncation(true);
  g.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  auto gen = Generate(stub.get(), g, &st);
  ASSERT_TRUE(st.ok());
  const auto& ref = gen[0].images(0).raw().data();
  ASSERT_EQ(zero[0].images(0).raw().data_size(), ref.size());
  for (int i = 0; i < ref.size(); ++i) ASSERT_EQ(zero[0].images(0).raw().data(i), ref[i]) << i;
  // A sweep: larger strengths move the image further from the input. (Rendered as one
  // batch of three, so strength 0 matches only up to float rounding here.)
  for (float a : {2.0f, 4.0f}) d->add_strengths(a);
  auto edits = EditCall(stub.get(), e, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::vector<v1::Image> images;
  for (const auto& b : edits) images.insert(images.end(), b.images().begin(), b.images().end());
  ASSERT_EQ(images.size(), 3u);
  auto dist = [&](const v1::Image& im) {
    double sum = 0;
    for (int i = 0; i < ref.size(); ++i) sum += std::pow(im.raw().data(i) - ref[i], 2);
    return sum;
  };
  EXPECT_LT(dist(images[0]), 1e-8);
  EXPECT_GT(dist(images[1]), 1e-4);
  EXPECT_GT(dist(images[2]), dist(images[1]));

  // Contract: wrong sizes, unknown render model, unsupported methods.
  v1::EditRequest bad = e;
  bad.mutable_direction()->mutable_direction()->mutable_values()->set_shape(1, 5);
  bad.mutable_direction()->mutable_direction()->mutable_values()->mutable_data()->Truncate(5);
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  bad = e;
  bad.set_render_model("nope");
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  bad = e;
  bad.clear_direction();
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  bad = e;
  bad.mutable_direction()->set_strengths(0, NAN);
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GanServiceTest, LatentOptimizationStreamsProgressThenEachResult) {
  auto stub = server_->Stub();
  v1::EditRequest req;
  req.set_model("tiny");
  req.add_seeds(5);
  req.add_seeds(6);
  req.set_return_latents(true);
  auto* l = req.mutable_latent_optimization();
  l->set_target_text("a smiling face");
  l->set_steps(6);
  l->set_clip_model("clip-demo");
  grpc::Status st;
  auto batches = EditCall(stub.get(), req, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  int progress_only = 0;
  std::vector<v1::Image> results;
  for (const auto& b : batches) {
    ASSERT_TRUE(b.has_progress());
    EXPECT_EQ(b.progress().total_steps(), 6);
    EXPECT_GT(b.progress().losses().at("clip"), 0.0f);
    if (b.images_size() == 0) {
      ++progress_only;
      continue;
    }
    EXPECT_EQ(b.progress().step(), 6);  // results come after the last step
    results.insert(results.end(), b.images().begin(), b.images().end());
  }
  EXPECT_EQ(progress_only, 2 * 5);  // every step but the last, per input
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].index(), 0);
  EXPECT_EQ(results[1].index(), 1);
  EXPECT_EQ(results[1].seed(), 6);
  EXPECT_EQ(results[0].latent().values().shape_size(), 3);  // the optimised w+
  EXPECT_FALSE(results[0].data().empty());

  v1::EditRequest bad = req;
  bad.mutable_latent_optimization()->set_id_lambda(0.1f);
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(st.error_message().find("ArcFace"), std::string::npos) << st.error_message();
  bad = req;
  bad.mutable_latent_optimization()->set_steps(5000);
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  bad = req;
  for (int s = 0; s < 5; ++s) bad.add_seeds(10 + s);
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
}

std::vector<v1::JobEvent> PrepareCall(v1::GanService::Stub* stub, const v1::PrepareGlobalDirectionsRequest& req,
                                      grpc::Status* st) {
  grpc::ClientContext ctx;
  return ReadAll<v1::JobEvent>(stub->PrepareGlobalDirections(&ctx, req), st);
}

TEST_F(GanServiceTest, GlobalDirectionEditsAfterPreparingStatistics) {
  auto stub = server_->Stub();
  v1::EditRequest e;
  e.set_model("tiny");
  e.add_seeds(11);
  e.add_seeds(12);
  e.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  auto* g = e.mutable_global_direction();
  g->set_neutral_text("a face");
  g->set_target_text("a smiling face");
  g->set_beta(0.001f);
  for (float a : {0.0f, 2.0f, 4.0f}) g->add_alphas(a);
  grpc::Status st;
  // Before the statistics exist: a precondition naming the RPC that makes them.
  EditCall(stub.get(), e, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(st.error_message().find("PrepareGlobalDirections"), std::string::npos) << st.error_message();

  v1::PrepareGlobalDirectionsRequest prep;
  prep.set_model("tiny");
  prep.set_num_samples(100);
  prep.set_num_images(2);
  prep.set_batch_size(4);
  auto events = PrepareCall(stub.get(), prep, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(events.empty());
  const v1::Job& job = events.back().job();
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error_message();
  EXPECT_EQ(job.kind(), v1::JOB_KIND_EDIT_STATS);
  EXPECT_EQ(job.step(), job.total_steps());
  EXPECT_EQ(events.front().job().total_steps(), job.total_steps());  // known from the start
  EXPECT_EQ(job.result(), "tiny/clip-demo");
  // Once made, asking again without recompute says they exist.
  PrepareCall(stub.get(), prep, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();

  auto batches = EditCall(stub.get(), e, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::vector<v1::Image> images;
  for (const auto& b : batches) {
    EXPECT_GT(b.channels_moved(), 0);
    images.insert(images.end(), b.images().begin(), b.images().end());
  }
  ASSERT_EQ(images.size(), 6u);  // 2 seeds x 3 alphas, seed-major
  // Alpha 0 is the unedited image (up to batch rounding); larger alphas move further.
  v1::GenerateSamplesRequest gr;
  gr.set_model("tiny");
  gr.add_seeds(11);
  gr.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  auto ref = Generate(stub.get(), gr, &st);
  ASSERT_TRUE(st.ok());
  const auto& r = ref[0].images(0).raw().data();
  auto dist = [&](const v1::Image& im) {
    double sum = 0;
    for (int i = 0; i < r.size(); ++i) sum += std::pow(im.raw().data(i) - r[i], 2);
    return sum;
  };
  EXPECT_LT(dist(images[0]), 1e-8);
  EXPECT_GT(dist(images[1]), 1e-6);
  EXPECT_GT(dist(images[2]), dist(images[1]));
  EXPECT_EQ(images[3].seed(), 12);

  // A beta above every relevance keeps nothing: said with the largest relevance.
  v1::EditRequest strict = e;
  strict.mutable_global_direction()->set_beta(0.999f);
  EditCall(stub.get(), strict, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("largest relevance"), std::string::npos) << st.error_message();
  // Field limits.
  v1::EditRequest bad = e;
  bad.mutable_global_direction()->set_neutral_text("");
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  bad = e;
  bad.mutable_global_direction()->set_alphas(0, 50.0f);
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  bad = e;
  bad.mutable_global_direction()->set_clip_model("nope");
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  v1::PrepareGlobalDirectionsRequest bad_prep = prep;
  bad_prep.set_batch_size(3);
  PrepareCall(stub.get(), bad_prep, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  bad_prep = prep;
  bad_prep.set_model("nope");
  PrepareCall(stub.get(), bad_prep, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
}

std::vector<v1::JobEvent> TrainMapperCall(v1::GanService::Stub* stub, const v1::TrainMapperRequest& req,
                                          grpc::Status* st) {
  grpc::ClientContext ctx;
  return ReadAll<v1::JobEvent>(stub->TrainMapper(&ctx, req), st);
}

double RawDistance(const v1::Image& a, const v1::Image& b) {
  double sum = 0;
  for (int i = 0; i < a.raw().data_size(); ++i) sum += std::pow(a.raw().data(i) - b.raw().data(i), 2);
  return sum;
}

// TrainMapper as a job (the identity loss refused without ArcFace, progress with its loss
// terms, previews, the mapper published as a model), then Edit with it: strength 0 is
// the unedited image and larger strengths move further.
TEST_F(GanServiceTest, TrainMapperThenEditWithIt) {
  auto stub = server_->Stub();
  v1::TrainMapperRequest req;
  req.set_model("tiny");
  req.set_text("a smiling face");
  req.set_clip_model("clip-demo");
  req.set_output_name("tiny-mapper-smile");
  req.set_steps(6);
  req.set_train_latents(4);
  req.set_preview_every(3);
  req.set_preview_count(2);
  req.set_lr(50);
  req.set_request_id("mapper-1");
  grpc::Status st;
  // The official identity-loss weight needs ArcFace: refused, naming the weights file.
  TrainMapperCall(stub.get(), req, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(st.error_message().find("model_ir_se50.pth"), std::string::npos) << st.error_message();
  req.set_id_lambda(0);
  auto events = TrainMapperCall(stub.get(), req, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(events.empty());
  const v1::Job& job = events.back().job();
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error_message();
  EXPECT_EQ(job.kind(), v1::JOB_KIND_TRAIN_MAPPER);
  EXPECT_EQ(job.result(), "tiny-mapper-smile");
  EXPECT_EQ(job.step(), 6);
  int progress = 0, previews = 0;
  for (const auto& e : events) {
    if (e.has_progress()) {
      ++progress;
      for (const char* term : {"total", "clip", "l2"}) EXPECT_EQ(e.progress().losses().count(term), 1u) << term;
    }
    if (e.has_preview()) {
      ++previews;
      EXPECT_EQ(e.preview().current_size(), 2);
    }
  }
  EXPECT_EQ(progress, 6);
  EXPECT_GE(previews, 1);
  // The same request again is the same job.
  auto again = TrainMapperCall(stub.get(), req, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(again.back().job().id(), job.id());

  grpc::ClientContext mc;
  v1::GetModelRequest gm;
  gm.set_name("tiny-mapper-smile");
  v1::Model m;
  ASSERT_TRUE(stub->GetModel(&mc, gm, &m).ok());
  EXPECT_EQ(m.kind(), v1::MODEL_KIND_MAPPER);
  EXPECT_EQ(m.base_model(), "tiny");
  EXPECT_EQ(m.target_text(), "a smiling face");

  v1::EditRequest e;
  e.set_model("tiny");
  e.add_seeds(11);
  e.add_seeds(12);
  e.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  e.set_return_latents(true);
  e.mutable_mapper()->set_mapper("tiny-mapper-smile");
  for (float a : {0.0f, 1.0f, 4.0f}) e.mutable_mapper()->add_strengths(a);
  auto batches = EditCall(stub.get(), e, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::vector<v1::Image> images;
  for (const auto& b : batches) images.insert(images.end(), b.images().begin(), b.images().end());
  ASSERT_EQ(images.size(), 6u);  // 2 seeds x 3 strengths, seed-major
  v1::GenerateSamplesRequest gr;
  gr.set_model("tiny");
  gr.add_seeds(11);
  gr.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  auto ref = Generate(stub.get(), gr, &st);
  ASSERT_TRUE(st.ok());
  // Strength 0 renders the input (one batch of six here: float rounding of the batch).
  EXPECT_LT(RawDistance(images[0], ref[0].images(0)), 1e-8);
  EXPECT_GT(RawDistance(images[1], images[0]), 1e-8);
  EXPECT_GT(RawDistance(images[2], images[0]), RawDistance(images[1], images[0]));
  EXPECT_EQ(images[3].seed(), 12);
  EXPECT_EQ(images[1].latent().values().shape_size(), 3);
  // The default strength is the official edit (1).
  v1::EditRequest official = e;
  official.mutable_mapper()->clear_strengths();
  auto one = EditCall(stub.get(), official, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(one.size(), 1u);
  EXPECT_LT(RawDistance(one[0].images(0), images[1]), 1e-8);

  // Refusals: a mapper of another model, a model that is not a mapper, strengths out of
  // range, a missing mapper.
  v1::EditRequest bad = e;
  bad.mutable_mapper()->set_mapper("tiny");
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  bad = e;
  bad.mutable_mapper()->set_strengths(0, 50.0f);
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  bad = e;
  bad.mutable_mapper()->set_mapper("nope");
  EditCall(stub.get(), bad, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  v1::TrainMapperRequest taken = req;
  taken.set_request_id("mapper-2");
  TrainMapperCall(stub.get(), taken, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();

  // A mapper can be deleted; edits with it then say it is gone.
  grpc::ClientContext dc;
  v1::DeleteModelRequest del;
  del.set_name("tiny-mapper-smile");
  v1::DeleteModelResponse dr;
  ASSERT_TRUE(stub->DeleteModel(&dc, del, &dr).ok());
  EditCall(stub.get(), e, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
}

// An official mapper checkpoint imports for the generator its decoder matches (only the
// mapper is kept) and edits like a trained one; a decoder of other weights is refused.
TEST_F(GanServiceTest, ImportsOfficialMapperFilesForTheirGenerator) {
  auto stub = server_->Stub();
  auto file = core::LoadSafetensors(server_->repo() + "/tiny/g.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  auto gen = std::make_optional<std::map<std::string, core::FloatTensor>>();
  for (const auto& [k, v] : file->tensors) (*gen)[k] = *core::ToFloatTensor(v);
  core::edit::MapperConfig cfg;
  cfg.dim = gen->at("style.1.weight").shape[1];
  cfg.fine = false;
  auto mapper = core::edit::LatentMapper::Random(cfg, 4, "cpu");
  ASSERT_TRUE(mapper.ok()) << mapper.status();
  auto file_of = [&](float decoder_offset) {
    std::map<std::string, core::FloatTensor> sd;
    for (const auto& [k, v] : (*mapper)->StateDict()) sd["mapper." + k] = v;
    for (auto [k, v] : *gen) {
      for (float& x : v.data) x += decoder_offset;
      sd["decoder." + k] = v;
    }
    return core::EncodeTorchSave({{"state_dict", sd}});
  };
  auto import = [&](const std::string& name, std::string bytes, grpc::Status* st) {
    Upload up;
    up.name = name;
    up.kind = v1::MODEL_KIND_MAPPER;
    up.base_model = "tiny";
    up.files.emplace_back("smile.pt", std::move(bytes));
    v1::Model m;
    *st = Import(stub.get(), up, &m);
    return m;
  };
  grpc::Status st;
  import("tiny-other-mapper", file_of(0.5f), &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(st.error_message().find("another generator"), std::string::npos) << st.error_message();
  const v1::Model m = import("tiny-imported-mapper", file_of(0.0f), &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(m.kind(), v1::MODEL_KIND_MAPPER);
  EXPECT_EQ(m.base_model(), "tiny");
  EXPECT_FALSE(std::filesystem::exists(server_->repo() + "/tiny-imported-mapper/smile.pt"));
  v1::EditRequest e;
  e.set_model("tiny");
  e.add_seeds(3);
  e.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  e.set_return_latents(true);
  e.mutable_mapper()->set_mapper("tiny-imported-mapper");
  auto out = EditCall(stub.get(), e, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(out.size(), 1u);
  // The edited w+ is the seed's w+ plus 0.1 * mapper(w+), which the core computes too.
  v1::GenerateSamplesRequest gr;
  gr.set_model("tiny");
  gr.add_seeds(3);
  gr.set_return_latents(true);
  auto ref = Generate(stub.get(), gr, &st);
  ASSERT_TRUE(st.ok());
  const auto& w = ref[0].images(0).latent().values();
  core::FloatTensor wplus{{w.shape().begin(), w.shape().end()}, {w.data().begin(), w.data().end()}};
  auto edited = (*mapper)->Apply(wplus, 1.0f);
  ASSERT_TRUE(edited.ok());
  const auto& got = out[0].images(0).latent().values().data();
  ASSERT_EQ(got.size(), static_cast<int>(edited->data.size()));
  for (int i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], edited->data[static_cast<size_t>(i)], 1e-5) << i;
}

// StyleCLIP's CLIP model when a request names none is the configured default (ViT-B/32 in
// production), not the first CLIP in name order; without it installed, the error says
// what to do.
TEST(StyleClipDefaultTest, TheNamedDefaultIsUsedAndItsAbsenceExplained) {
  TestServerOptions with;
  with.styleclip_clip_model = "clip-vit-b-32";
  with.prepare_repo = [](const std::string& repo) {
    // The demo CLIP again under the default's name, which sorts after "clip-demo".
    std::filesystem::copy(repo + "/clip-demo", repo + "/clip-vit-b-32");
  };
  {
    TestServer server(Root("styleclip_default"), with);
    auto stub = server.Stub();
    v1::PrepareGlobalDirectionsRequest prep;
    prep.set_model("tiny");
    prep.set_num_samples(100);
    prep.set_num_images(1);
    prep.set_batch_size(2);
    grpc::Status st;
    auto events = PrepareCall(stub.get(), prep, &st);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().job().result(), "tiny/clip-vit-b-32");
  }
  TestServerOptions without;
  without.styleclip_clip_model = "clip-vit-b-32";
  TestServer server(Root("styleclip_missing"), without);
  auto stub = server.Stub();
  v1::EditRequest req;
  req.set_model("tiny");
  req.add_seeds(5);
  req.mutable_latent_optimization()->set_target_text("a smiling face");
  req.mutable_latent_optimization()->set_steps(1);
  grpc::Status st;
  EditCall(stub.get(), req, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  for (const char* part : {"clip-vit-b-32", "clip-demo", "clip_model"}) {
    EXPECT_NE(st.error_message().find(part), std::string::npos) << part << ": " << st.error_message();
  }
  // Naming one works; 0 is a valid l2_lambda (free optimisation).
  req.mutable_latent_optimization()->set_clip_model("clip-demo");
  req.mutable_latent_optimization()->set_l2_lambda(0.0f);
  EditCall(stub.get(), req, &st);
  EXPECT_TRUE(st.ok()) << st.error_message();

  // The inversion's CLIP image loss (used without LPIPS) is not StyleCLIP's: with the
  // StyleCLIP default missing, an installed CLIP still serves.
  v1::GenerateSamplesRequest g;
  g.set_model("tiny");
  g.add_seeds(4);
  auto png = Generate(stub.get(), g, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  v1::InvertImageRequest inv;
  inv.set_model("tiny");
  inv.set_image(png[0].images(0).data());
  inv.set_steps(2);
  grpc::ClientContext ctx;
  auto events = ReadAll<v1::JobEvent>(stub->InvertImage(&ctx, inv), &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(events.empty());
  ASSERT_EQ(events.back().job().state(), v1::JOB_STATE_SUCCEEDED) << events.back().job().error_message();
  auto path = core::service::InversionPath(server.data(), events.back().job().result());
  ASSERT_TRUE(path.ok()) << path.status();
  std::string model;
  auto stored = core::invert::LoadInversion(*path, &model);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->loss, "mse+clip");
}

}  // namespace
}  // namespace ganserve::testing
