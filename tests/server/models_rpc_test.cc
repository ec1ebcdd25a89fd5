// ListModels / GetModel / DeleteModel / ExportModel against the real server.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_file.h"
#include "core/io/image_codec.h"
#include "core/jobs/sqlite_job_store.h"
#include "core/models/stylegan2/generator.h"
#include "core/util/file_util.h"
#include "core/util/mapped_file.h"
#include "core/util/sha256.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/server/service_fixture.h"
#include "tests/testing/shared.h"

namespace ganserve::testing {
namespace {

TEST_F(GanServiceTest, ModelsListShowsReadyAndBrokenModels) {
  auto stub = server_->Stub();
  grpc::ClientContext ctx;
  v1::ListModelsResponse resp;
  ASSERT_TRUE(stub->ListModels(&ctx, v1::ListModelsRequest(), &resp).ok());
  std::map<std::string, v1::Model> by_name;
  for (const auto& m : resp.models()) by_name[m.name()] = m;
  ASSERT_EQ(by_name.count("broken"), 1u);
  EXPECT_EQ(by_name["broken"].state(), v1::MODEL_STATE_FAILED);
  EXPECT_NE(by_name["broken"].error().find("missing.pt"), std::string::npos) << by_name["broken"].error();
  ASSERT_EQ(by_name.count("tiny"), 1u);
  EXPECT_EQ(by_name["tiny"].state(), v1::MODEL_STATE_READY);
  EXPECT_EQ(by_name["tiny"].resolution(), 32);
  EXPECT_EQ(by_name["tiny"].n_latent(), 8);
  if (!SharedDir().empty()) {
    ASSERT_EQ(by_name.count("clip-tiny"), 1u);
    EXPECT_EQ(by_name["clip-tiny"].kind(), v1::MODEL_KIND_CLIP);
    EXPECT_EQ(by_name["clip-tiny"].state(), v1::MODEL_STATE_READY) << by_name["clip-tiny"].error();
    EXPECT_EQ(by_name["clip-tiny"].resolution(), 224);
  }

  grpc::ClientContext c2;
  v1::GetModelRequest get;
  get.set_name("nope");
  v1::Model m;
  auto s = stub->GetModel(&c2, get, &m);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("tiny"), std::string::npos) << s.error_message();

  grpc::ClientContext c3;
  v1::DeleteModelRequest del;
  del.set_name("tiny");
  v1::DeleteModelResponse dr;
  EXPECT_EQ(stub->DeleteModel(&c3, del, &dr).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

// Reassembles an ExportModel stream; checks offsets, size and SHA-256.
std::string Export(v1::GanService::Stub* stub, const std::string& name, v1::ExportFormat format, grpc::Status* st,
                   std::string* filename = nullptr) {
  grpc::ClientContext ctx;
  v1::ExportModelRequest req;
  req.set_name(name);
  req.set_format(format);
  auto chunks = ReadAll<v1::ExportModelChunk>(stub->ExportModel(&ctx, req), st);
  std::string bytes;
  for (const auto& c : chunks) {
    EXPECT_EQ(c.offset(), static_cast<int64_t>(bytes.size()));
    bytes += c.data();
  }
  if (!chunks.empty()) {
    EXPECT_EQ(chunks[0].total_bytes(), static_cast<int64_t>(bytes.size()));
    EXPECT_EQ(chunks[0].sha256(), core::Sha256Hex(bytes));
    if (filename != nullptr) *filename = chunks[0].filename();
  }
  return bytes;
}

// Every tensor of `got` bit-equal to the same-named one in `want`, and no key missing.
void ExpectSameTensors(const std::map<std::string, core::TensorView>& got,
                       const std::map<std::string, core::TensorView>& want) {
  EXPECT_EQ(got.size(), want.size());
  for (const auto& [name, w] : want) {
    auto it = got.find(name);
    ASSERT_NE(it, got.end()) << name;
    auto a = core::ToFloatTensor(it->second);
    auto b = core::ToFloatTensor(w);
    ASSERT_TRUE(a.ok() && b.ok()) << name;
    EXPECT_EQ(a->shape, b->shape) << name;
    EXPECT_EQ(a->data, b->data) << name;
  }
}

TEST_F(GanServiceTest, ExportModelWritesTheGeneratorInRosinalityLayout) {
  auto stub = server_->Stub();
  auto original = core::LoadSafetensors(server_->repo() + "/tiny/g.safetensors");
  ASSERT_TRUE(original.ok()) << original.status();

  grpc::Status st;
  std::string filename;
  const std::string pt = Export(stub.get(), "tiny", v1::EXPORT_FORMAT_UNSPECIFIED, &st, &filename);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(filename, "tiny.pt");
  auto parsed = core::ParseTorchFile(core::MappedFile::FromString(pt));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->format, core::TorchFileFormat::kZip);
  auto g_ema = core::StateDictTensors(parsed->root->Get("g_ema"));
  ASSERT_TRUE(g_ema.ok()) << g_ema.status();
  ExpectSameTensors(*g_ema, original->tensors);
  core::PyRef avg = parsed->root->Get("latent_avg");
  ASSERT_NE(avg, nullptr);
  ASSERT_EQ(avg->kind, core::PyValue::Kind::kTensor);
  EXPECT_EQ(avg->tensor->shape, original->tensors.at("style.1.bias").shape);  // [style_dim]

  const std::string st_bytes = Export(stub.get(), "tiny", v1::EXPORT_FORMAT_SAFETENSORS, &st, &filename);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(filename, "tiny.safetensors");
  auto sf = core::ParseSafetensors(core::MappedFile::FromString(st_bytes));
  ASSERT_TRUE(sf.ok()) << sf.status();
  EXPECT_EQ(sf->metadata["layout"], "rosinality-stylegan2");
  auto from_st = sf->tensors;
  ASSERT_EQ(from_st.erase("latent_avg"), 1u);
  ExpectSameTensors(from_st, original->tensors);
}

TEST_F(GanServiceTest, ExportModelRefusesWhatIsNotAnExportableGenerator) {
  auto stub = server_->Stub();
  struct Case {
    std::string name;
    int format;
    grpc::StatusCode code;
    std::string words;
  };
  std::vector<Case> cases = {
      {"nope", 1, grpc::StatusCode::NOT_FOUND, "nope"},
      {"broken", 1, grpc::StatusCode::FAILED_PRECONDITION, "missing.pt"},
      {"tiny", 7, grpc::StatusCode::INVALID_ARGUMENT, "format 7 is unknown"},
      {"../tiny", 1, grpc::StatusCode::INVALID_ARGUMENT, "name"},
  };
  if (!SharedDir().empty()) {
    cases.push_back({"clip-tiny", 1, grpc::StatusCode::FAILED_PRECONDITION, "only generators and adapted generators"});
  }
  for (const auto& c : cases) {
    grpc::Status st;
    const std::string bytes = Export(stub.get(), c.name, static_cast<v1::ExportFormat>(c.format), &st);
    EXPECT_EQ(st.error_code(), c.code) << c.name << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(c.words), std::string::npos) << c.name << ": " << st.error_message();
    EXPECT_TRUE(bytes.empty()) << c.name;
  }
  // The server still serves.
  grpc::Status st;
  EXPECT_FALSE(Export(stub.get(), "tiny", v1::EXPORT_FORMAT_TORCH, &st).empty());
  EXPECT_TRUE(st.ok()) << st.error_message();
}

Upload Up(std::string name, std::string filename, std::string bytes, int kind = v1::MODEL_KIND_GENERATOR,
          int64_t total = -1, std::string sha256 = "") {
  Upload u;
  u.name = std::move(name);
  u.kind = kind;
  u.files.push_back({std::move(filename), std::move(bytes), total, std::move(sha256)});
  return u;
}

Upload UpMany(std::string name, int kind, std::vector<UpFile> files) {
  Upload u;
  u.name = std::move(name);
  u.kind = kind;
  u.files = std::move(files);
  return u;
}

bool Listed(v1::GanService::Stub* stub, const std::string& name) {
  grpc::ClientContext ctx;
  v1::GetModelRequest req;
  req.set_name(name);
  v1::Model m;
  return stub->GetModel(&ctx, req, &m).ok();
}

TEST_F(GanServiceTest, ImportModelPublishesAGeneratorThatLoads) {
  auto stub = server_->Stub();
  auto bytes = core::ReadFile(server_->repo() + "/tiny/g.safetensors");
  ASSERT_TRUE(bytes.ok());
  v1::Model m;
  grpc::Status st = Import(stub.get(), Up("tiny-copy", "g.safetensors", *bytes), &m);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(m.name(), "tiny-copy");
  EXPECT_EQ(m.state(), v1::MODEL_STATE_READY);
  EXPECT_EQ(m.resolution(), 32);
  v1::GenerateSamplesRequest gen;
  gen.set_model("tiny-copy");
  gen.add_seeds(1);
  grpc::Status gst;
  EXPECT_EQ(Generate(stub.get(), gen, &gst).size(), 1u);
  EXPECT_TRUE(gst.ok()) << gst.error_message();
  // An NVIDIA network pickle, as users have them.
  auto pkl = core::ReadFile(std::string(GANSERVE_SOURCE_DIR) + "/tests/fixtures/nvidia/tiny_2ada_p4.pkl");
  ASSERT_TRUE(pkl.ok());
  st = Import(stub.get(), Up("nvidia-tiny", "network-snapshot-000000.pkl", *pkl), &m);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(m.style_dim(), 64);
  // What the API added, the API may delete.
  grpc::ClientContext dctx;
  v1::DeleteModelRequest del;
  del.set_name("nvidia-tiny");
  v1::DeleteModelResponse dr;
  st = stub->DeleteModel(&dctx, del, &dr);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_FALSE(Listed(stub.get(), "nvidia-tiny"));
}

// A CLIP model (checkpoint and vocabulary, either order) and LPIPS (its two files, either
// order) arrive as two files of one upload and are used as installed ones are.
TEST_F(GanServiceTest, ImportModelTakesClipAndLpipsAsTwoFiles) {
  auto stub = server_->Stub();
  auto ckpt = core::ReadFile(server_->repo() + "/clip-demo/clip.safetensors");
  auto vocab = core::ReadFile(server_->repo() + "/clip-demo/vocab.txt");
  ASSERT_TRUE(ckpt.ok() && vocab.ok());
  v1::Model m;
  grpc::Status st = Import(
      stub.get(), UpMany("clip-up", v1::MODEL_KIND_CLIP, {{"vocab.txt", *vocab}, {"clip.safetensors", *ckpt}}), &m);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(m.kind(), v1::MODEL_KIND_CLIP);
  EXPECT_EQ(m.state(), v1::MODEL_STATE_READY);
  // It serves: an adaptation guided by the imported CLIP alone.
  grpc::ClientContext actx;
  v1::AdaptDomainRequest a;
  a.set_model("tiny");
  a.set_source_text("photo");
  a.set_target_text("sketch");
  a.set_iterations(1);
  a.add_clip_models()->set_name("clip-up");
  a.set_output_name("tiny-clip-up");
  auto events = ReadAll<v1::JobEvent>(stub->AdaptDomain(&actx, a), &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().job().state(), v1::JOB_STATE_SUCCEEDED) << events.back().job().error_message();

  const std::string fixtures = std::string(GANSERVE_BINARY_DIR) + "/test_fixtures/checkpoints";
  auto vgg = core::ReadFile(fixtures + "/vgg16_features.pt");
  auto lin = core::ReadFile(fixtures + "/lpips_vgg.pth");
  if (!vgg.ok() || !lin.ok()) {
    std::printf("LPIPS import not checked: checkpoint fixtures not built (ctest fixture make_checkpoint_fixtures)\n");
    return;
  }
  st = Import(stub.get(), UpMany("lpips-up", v1::MODEL_KIND_LPIPS, {{"vgg.pth", *lin}, {"vgg16.pth", *vgg}}), &m);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(m.kind(), v1::MODEL_KIND_LPIPS);
  EXPECT_EQ(m.state(), v1::MODEL_STATE_READY);
}

TEST_F(GanServiceTest, ImportModelRefusesBadUploadsAndPublishesNothing) {
  auto stub = server_->Stub();
  auto good = core::ReadFile(server_->repo() + "/tiny/g.safetensors");
  ASSERT_TRUE(good.ok());
  struct Case {
    const char* what;
    Upload upload;
    grpc::StatusCode code;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"a name that exists", Up("tiny", "g.safetensors", *good), grpc::StatusCode::ALREADY_EXISTS, "exists"},
      {"a path as name", Up("../x", "g.safetensors", *good), grpc::StatusCode::INVALID_ARGUMENT, "name"},
      {"a path as file name", Up("up1", "../g.safetensors", *good), grpc::StatusCode::INVALID_ARGUMENT, "plain file"},
      {"an unknown suffix", Up("up2", "g.bin", *good), grpc::StatusCode::INVALID_ARGUMENT, ".safetensors"},
      {"a CLIP checkpoint without its vocabulary", Up("up3", "clip.pt", *good, v1::MODEL_KIND_CLIP),
       grpc::StatusCode::INVALID_ARGUMENT, "needs 2 files"},
      {"a generator as a CLIP checkpoint",
       UpMany("up10", v1::MODEL_KIND_CLIP, {{"clip.safetensors", *good}, {"vocab.txt", "a b\n"}}),
       grpc::StatusCode::INVALID_ARGUMENT, "not a CLIP model"},
      {"two vocabularies for CLIP", UpMany("up11", v1::MODEL_KIND_CLIP, {{"a.txt", "a b\n"}, {"b.txt", "a b\n"}}),
       grpc::StatusCode::INVALID_ARGUMENT, "one vocabulary"},
      {"a third file", UpMany("up12", v1::MODEL_KIND_LPIPS, {{"a.pth", "x"}, {"b.pth", "y"}, {"c.pth", "z"}}),
       grpc::StatusCode::INVALID_ARGUMENT, "one too many"},
      {"the second file truncated", UpMany("up13", v1::MODEL_KIND_LPIPS, {{"a.pth", "xx"}, {"b.pth", "y", 5}}),
       grpc::StatusCode::INVALID_ARGUMENT, "truncated"},
      {"a second file with the first's name", UpMany("up14", v1::MODEL_KIND_LPIPS, {{"a.pth", "xx"}, {"a.pth", "y"}}),
       grpc::StatusCode::INVALID_ARGUMENT, "two files are named"},
      {"LPIPS files that are not LPIPS", UpMany("up15", v1::MODEL_KIND_LPIPS, {{"a.pth", "xx"}, {"b.pth", "y"}}),
       grpc::StatusCode::INVALID_ARGUMENT, "not LPIPS"},
      {"an adapted generator", Up("up16", "g.safetensors", *good, v1::MODEL_KIND_ADAPTED_GENERATOR),
       grpc::StatusCode::INVALID_ARGUMENT, "AdaptDomain"},
      {"truncated",
       Up("up4", "g.safetensors", good->substr(0, 5000), v1::MODEL_KIND_GENERATOR, static_cast<int64_t>(good->size())),
       grpc::StatusCode::INVALID_ARGUMENT, "truncated"},
      {"longer than stated", Up("up5", "g.safetensors", *good, v1::MODEL_KIND_GENERATOR, 100),
       grpc::StatusCode::INVALID_ARGUMENT, "longer"},
      {"a sha256 mismatch", Up("up6", "g.safetensors", *good, v1::MODEL_KIND_GENERATOR, -1, std::string(64, '0')),
       grpc::StatusCode::INVALID_ARGUMENT, "sha256 mismatch"},
      {"over the size limit", Up("up7", "g.safetensors", "x", v1::MODEL_KIND_GENERATOR, int64_t{1} << 50),
       grpc::StatusCode::INVALID_ARGUMENT, "max_import_mb"},
      {"not a generator", Up("up8", "g.pt", std::string(3000, 'z')), grpc::StatusCode::INVALID_ARGUMENT,
       "not a generator"},
      {"a state dict with a tensor missing", Up("up9", "g.safetensors", good->substr(0, good->size() / 2) + "junk"),
       grpc::StatusCode::INVALID_ARGUMENT, "not a generator"},
  };
  for (const auto& c : cases) {
    v1::Model m;
    grpc::Status st = Import(stub.get(), c.upload, &m);
    EXPECT_EQ(st.error_code(), c.code) << c.what << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(c.says), std::string::npos) << c.what << ": " << st.error_message();
    if (c.upload.name != "tiny") {
      EXPECT_FALSE(Listed(stub.get(), c.upload.name)) << c.what;
    }
  }
  // Nothing staged is left behind.
  for (const auto& e : std::filesystem::directory_iterator(server_->repo())) {
    EXPECT_EQ(e.path().filename().string().rfind(".tmp-", 0), std::string::npos) << e.path();
  }
}

// A repository larger than the budget: every model is served, loading on use and evicting
// the least recently used; LoadModel pins, UnloadModel frees, RescanRepository finds
// folders added on disk, and the metrics show the loads and evictions.
TEST(GanServerResidencyTest, ABudgetSmallerThanTheRepositoryServesEveryModel) {
  TestServerOptions opt;
  opt.prepare_repo = [](const std::string& repo) {
    for (const char* copy : {"tiny2", "tiny3"}) {
      std::filesystem::copy(repo + "/tiny", repo + "/" + copy, std::filesystem::copy_options::recursive);
    }
  };
  opt.residency.device_budget_bytes = 1;  // room for the model in use only
  opt.residency.preload = core::ResidencyOptions::Preload::kNone;
  TestServer server(Root("residency"), opt);
  auto stub = server.Stub();
  auto state_of = [&](const std::string& name) {
    grpc::ClientContext ctx;
    v1::GetModelRequest req;
    req.set_name(name);
    v1::Model m;
    EXPECT_TRUE(stub->GetModel(&ctx, req, &m).ok()) << name;
    return m;
  };
  EXPECT_EQ(state_of("tiny").state(), v1::MODEL_STATE_UNLOADED);
  for (const char* name : {"tiny", "tiny2", "tiny3", "tiny"}) {
    v1::GenerateSamplesRequest req;
    req.set_model(name);
    req.add_seeds(3);
    grpc::Status st;
    auto batches = Generate(stub.get(), req, &st);
    ASSERT_TRUE(st.ok()) << name << ": " << st.error_message();
    ASSERT_EQ(batches.size(), 1u);
    const v1::Model m = state_of(name);
    EXPECT_EQ(m.state(), v1::MODEL_STATE_READY) << name;
    EXPECT_GT(m.resident_host_bytes(), 0) << name;
  }
  EXPECT_EQ(state_of("tiny2").state(), v1::MODEL_STATE_UNLOADED);
  std::string body = HttpGet(server.metrics_port(), "/metrics");
  EXPECT_NE(body.find("ganserve_model_evictions_total{kind=\"generator\"} 3"), std::string::npos) << body;
  EXPECT_NE(body.find("ganserve_model_loads_total{kind=\"generator\",result=\"ok\"} 4"), std::string::npos) << body;
  EXPECT_NE(body.find("ganserve_models{state=\"unloaded\"}"), std::string::npos) << body;

  // Pinned, tiny2 survives other loads; unloaded, it is free again.
  grpc::ClientContext lctx;
  v1::LoadModelRequest load;
  load.set_name("tiny2");
  load.set_pin(true);
  v1::Model loaded;
  ASSERT_TRUE(stub->LoadModel(&lctx, load, &loaded).ok());
  EXPECT_EQ(loaded.state(), v1::MODEL_STATE_READY);
  EXPECT_TRUE(loaded.pinned());
  grpc::ClientContext lctx2;
  load.set_name("tiny3");
  load.set_pin(false);
  ASSERT_TRUE(stub->LoadModel(&lctx2, load, &loaded).ok());
  EXPECT_EQ(state_of("tiny2").state(), v1::MODEL_STATE_READY);
  grpc::ClientContext uctx;
  v1::UnloadModelRequest unload;
  unload.set_name("tiny2");
  v1::Model unloaded;
  ASSERT_TRUE(stub->UnloadModel(&uctx, unload, &unloaded).ok());
  EXPECT_EQ(unloaded.state(), v1::MODEL_STATE_UNLOADED);
  EXPECT_FALSE(unloaded.pinned());
  EXPECT_EQ(unloaded.resident_host_bytes(), 0);

  // A folder copied in while the server runs appears after a rescan.
  std::filesystem::copy(server.repo() + "/tiny", server.repo() + "/tiny4", std::filesystem::copy_options::recursive);
  grpc::ClientContext rctx;
  v1::RescanRepositoryResponse scan;
  ASSERT_TRUE(stub->RescanRepository(&rctx, v1::RescanRepositoryRequest(), &scan).ok());
  ASSERT_EQ(scan.added_size(), 1);
  EXPECT_EQ(scan.added(0), "tiny4");
  EXPECT_EQ(scan.removed_size(), 0);
  v1::GenerateSamplesRequest req;
  req.set_model("tiny4");
  req.add_seeds(1);
  grpc::Status st;
  Generate(stub.get(), req, &st);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

}  // namespace
}  // namespace ganserve::testing
