// libFuzzer target for the operation specs (core/service/specs.h): arbitrary bytes (the
// first byte picks the operation) become a spec and run through its validation against
// a repository with a tiny generator and CLIP. GenerateSamples and Edit arrive as v1
// request bytes translated by the gRPC edge (server/api); the job specs arrive as the
// JSON that job records store. Beyond "no crash", a GenerateSamples or Edit spec that
// validation accepts must render: its plan is executed for the first batch, and any
// failure there aborts.
//
// FUZZ_WRITE_CORPUS=DIR writes valid seed requests into DIR and exits.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "core/checkpoint/safetensors.h"
#include "core/models/clip/random_init.h"
#include "core/models/stylegan2/random_init.h"
#include "core/registry/model_repository.h"
#include "core/service/render.h"
#include "core/service/specs.h"
#include "server/api/api.h"

namespace gc = ganserve::core;
namespace gs = ganserve::core::service;
namespace api = ganserve::server::api;
namespace v1 = ganserve::v1;

namespace {

struct World {
  std::unique_ptr<gc::ModelRepository> repo;
  gs::Limits limits;
  std::string data_dir;
  gc::clip::TextEmbeddingCache text_cache{256};
  gs::GlobalStatsCache stats;
};
World* world = nullptr;

// A batch of an accepted request renders and encodes, or the target aborts.
void MustRender(const gs::BatchWork& w, const char* rpc) {
  auto out = w.generator->Generate(w.params);
  absl::Status st = out.ok() ? gs::EncodeBatch(w, *out).status() : out.status();
  if (!st.ok()) {
    std::fprintf(stderr, "an accepted %s request failed to render: %s\n", rpc, st.ToString().c_str());
    std::abort();
  }
}

void WriteSeeds(const std::string& dir) {
  std::filesystem::create_directories(dir);
  auto put_bytes = [&](const char* name, char kind, const std::string& bytes) {
    std::ofstream(dir + "/" + name, std::ios::binary) << kind << bytes;
  };
  auto put = [&](const char* name, char kind, const google::protobuf::Message& m) {
    put_bytes(name, kind, m.SerializeAsString());
  };
  v1::GenerateSamplesRequest g;
  g.set_model("tiny");
  g.add_seeds(1);
  g.add_seeds(2);
  g.set_truncation(0.7f);
  g.set_has_truncation(true);
  put("generate_seeds", 0, g);
  g.clear_seeds();
  g.set_count(3);
  g.set_noise(v1::NOISE_MODE_RANDOM);
  g.set_format(v1::IMAGE_FORMAT_RAW_FLOAT);
  put("generate_count", 0, g);
  v1::EditRequest e;
  e.set_model("tiny");
  e.add_seeds(3);
  auto* d = e.mutable_direction();
  d->mutable_direction()->set_space(v1::LATENT_SPACE_W);
  d->mutable_direction()->mutable_values()->add_shape(1);
  d->mutable_direction()->mutable_values()->add_shape(32);
  for (int i = 0; i < 32; ++i) d->mutable_direction()->mutable_values()->add_data(0.1f);
  d->add_strengths(-1);
  d->add_strengths(1);
  put("edit_direction", 1, e);
  e.clear_direction();
  e.mutable_global_direction()->set_neutral_text("a face");
  e.mutable_global_direction()->set_target_text("a smiling face");
  put("edit_global", 1, e);
  v1::AdaptDomainRequest a;
  a.set_model("tiny");
  a.set_source_text("photo");
  a.set_target_text("pencil sketch");
  a.set_iterations(10);
  put_bytes("adapt", 2, gs::SpecToJson(api::ToSpec(a)));
  a.add_target_images(std::string("\x89PNG\r\n\x1a\n", 8));
  a.set_lambda_global(1);
  put_bytes("adapt_images", 2, gs::SpecToJson(api::ToSpec(a)));
  v1::InvertImageRequest inv;
  inv.set_model("tiny");
  inv.set_image(std::string("\x89PNG\r\n\x1a\n", 8));
  put_bytes("invert", 3, gs::SpecToJson(api::ToSpec(inv)));
  v1::PrepareGlobalDirectionsRequest p;
  p.set_model("tiny");
  p.set_num_samples(200);
  put_bytes("prepare", 4, gs::SpecToJson(api::ToSpec(p)));
  v1::TrainMapperRequest m;
  m.set_model("tiny");
  m.set_text("a smiling face");
  m.set_id_lambda(0);
  m.add_inversion_ids("inv-0123456789abcdef");
  put_bytes("train_mapper", 5, gs::SpecToJson(api::ToSpec(m)));
  e.clear_global_direction();
  e.mutable_mapper()->set_mapper("nope");
  e.mutable_mapper()->add_strengths(2);
  put("edit_mapper", 1, e);
  inv.add_landmarks()->set_x(3);
  put_bytes("invert_landmarks", 3, gs::SpecToJson(api::ToSpec(inv)));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 in strings is expected here
  if (const char* dir = std::getenv("FUZZ_WRITE_CORPUS")) {
    WriteSeeds(dir);
    std::exit(0);
  }
  const std::string root =
      std::filesystem::temp_directory_path() / ("ganserve_fuzz_requests_" + std::to_string(getpid()));
  std::filesystem::create_directories(root + "/models/tiny");
  std::filesystem::create_directories(root + "/models/clip");
  auto cfg = gc::stylegan2::MakeConfig(16, 32, 2, 1, 8);
  if (!gc::SaveSafetensors(root + "/models/tiny/g.safetensors", gc::stylegan2::RandomGeneratorWeights(cfg, 1, 0.1f), {})
           .ok() ||
      !gc::SaveSafetensors(root + "/models/clip/clip.safetensors",
                           gc::clip::RandomClipWeights(gc::clip::TinyClipConfig(), 2), {})
           .ok()) {
    std::abort();
  }
  std::ofstream(root + "/models/tiny/manifest.json")
      << R"({"kind": "generator", "checkpoint": "g.safetensors", "default_truncation": 0.8})";
  std::ofstream(root + "/models/clip/vocab.txt") << gc::clip::SyntheticVocabulary();
  std::ofstream(root + "/models/clip/manifest.json")
      << R"({"kind": "clip", "checkpoint": "clip.safetensors", "vocab": "vocab.txt"})";
  world = new World();
  auto repo = gc::ModelRepository::Create(root + "/models", {});
  if (!repo.ok() || (*repo)->LoadAll() != 2) std::abort();
  world->repo = std::move(*repo);
  world->data_dir = root + "/data";
  world->limits.max_images_per_request = 16;
  world->limits.max_batch_size = 8;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const gc::ModelRepository& repo = *world->repo;
  switch (data[0] % 6) {
    case 0: {
      v1::GenerateSamplesRequest r;
      if (!r.ParseFromString(bytes)) return 0;
      auto plan = gs::PlanGenerate(api::ToSpec(r), repo, world->limits, world->data_dir);
      if (!plan.ok()) return 0;
      MustRender(gs::PrepareGenerateBatch(*plan, 0, std::min(plan->batch_size, plan->total)), "GenerateSamples");
      break;
    }
    case 1: {
      v1::EditRequest r;
      if (!r.ParseFromString(bytes)) return 0;
      auto plan =
          gs::PlanEdit(api::ToSpec(r), repo, world->limits, world->data_dir, {&world->text_cache, &world->stats});
      if (!plan.ok()) return 0;
      MustRender(gs::PrepareEditBatch(*plan, 0, std::min(plan->batch_size, plan->total)), "Edit");
      break;
    }
    case 2: {
      auto spec = gs::SpecFromJson<gs::AdaptSpec>(bytes);
      if (spec.ok()) (void)spec->Validate(repo);
      break;
    }
    case 3: {
      auto spec = gs::SpecFromJson<gs::InvertSpec>(bytes);
      if (spec.ok()) (void)spec->Validate(repo);
      break;
    }
    case 4: {
      auto spec = gs::SpecFromJson<gs::GlobalStatsSpec>(bytes);
      if (spec.ok()) (void)spec->Validate(repo);
      break;
    }
    default: {
      auto spec = gs::SpecFromJson<gs::MapperSpec>(bytes);
      if (spec.ok()) (void)spec->Validate(repo, world->data_dir);
      break;
    }
  }
  return 0;
}
