// Job stores written before job records held specs: the checked-in store
// (tests/fixtures/legacy_store, written by the binaries of the previous version after a
// crash mid-training) migrates to the current schema and every stored protobuf request
// becomes its spec's JSON, field for field.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>
#include "core/jobs/sqlite_job_store.h"
#include "core/service/job_runners.h"
#include "core/service/request_upgrade.h"
#include "core/service/specs.h"
#include "server/api/api.h"

namespace ganserve::server {
namespace {

namespace fs = std::filesystem;
namespace cs = core::service;

std::unique_ptr<core::SqliteJobStore> OpenFixtureCopy(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / (name + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(fs::path(GANSERVE_SOURCE_DIR) / "tests/fixtures/legacy_store/jobs.db", dir / "jobs.db");
  auto store = core::SqliteJobStore::Open((dir / "jobs.db").string());
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

TEST(LegacyRequestsTest, PreviousVersionsStoreUpgradesToSpecs) {
  auto store = OpenFixtureCopy("legacy_upgrade_");
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->schema_version(), core::SqliteJobStore::kSchemaVersion);
  auto before = store->GetJob("job-704f8123052e9a71");
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->request_encoding, "proto-v1");  // what the migration marks old rows as

  auto report = cs::UpgradeStoredRequests(store.get(), api::DecodeLegacyRequest);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->converted, 4);
  EXPECT_EQ(report->failed, 0);

  // The running adaptation: what ganctl sent plus the defaults the old validation filled.
  auto running = store->GetJob("job-704f8123052e9a71");
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->request_encoding, cs::kSpecJsonEncoding);
  EXPECT_EQ(running->state, core::JobState::kRunning);
  EXPECT_EQ(running->step, before->step);
  auto adapt = cs::SpecFromJson<cs::AdaptSpec>(running->request);
  ASSERT_TRUE(adapt.ok()) << adapt.status();
  EXPECT_EQ(adapt->request_id, "legacy-running");
  EXPECT_EQ(adapt->model, "demo");
  EXPECT_EQ(adapt->target_text, "watercolor");
  EXPECT_EQ(adapt->output_name, "legacy-water");
  EXPECT_EQ(adapt->iterations, 30);
  EXPECT_EQ(adapt->seed, 7);
  EXPECT_EQ(adapt->preview_every, 10);
  EXPECT_EQ(adapt->batch_size, 2);
  EXPECT_FLOAT_EQ(adapt->lr_scale, 1.0f);
  ASSERT_EQ(adapt->clip_models.size(), 1u);
  EXPECT_EQ(adapt->clip_models[0].name, "demo-clip");
  EXPECT_FALSE(adapt->source_text.empty());

  // The queued inversion keeps its image bytes exactly.
  auto inv_job = store->GetJob("job-2d89f26cc57c36aa");
  ASSERT_TRUE(inv_job.ok());
  auto inv = cs::SpecFromJson<cs::InvertSpec>(inv_job->request);
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->steps, 20);
  EXPECT_EQ(inv->space, cs::LatentSpace::kWPlus);
  EXPECT_EQ(inv->image.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_GT(inv->image.size(), 1000u);

  auto stats_job = store->GetJob("job-567b798580c2068e");
  ASSERT_TRUE(stats_job.ok());
  auto stats = cs::SpecFromJson<cs::GlobalStatsSpec>(stats_job->request);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->num_samples, 100);
  EXPECT_EQ(stats->num_images, 1);
  EXPECT_EQ(stats->batch_size, 2);
  EXPECT_EQ(stats->clip_model, "demo-clip");

  // A second start finds nothing left to convert.
  auto again = cs::UpgradeStoredRequests(store.get(), api::DecodeLegacyRequest);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->converted, 0);
}

TEST(LegacyRequestsTest, UndecodableRequestsAreLeftAndCounted) {
  auto store = OpenFixtureCopy("legacy_broken_");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->RewriteRequest("job-2d89f26cc57c36aa", "\xff\xff\xff", "proto-v1").ok());
  auto report = cs::UpgradeStoredRequests(store.get(), api::DecodeLegacyRequest);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->converted, 3);
  EXPECT_EQ(report->failed, 1);
  auto job = store->GetJob("job-2d89f26cc57c36aa");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->request_encoding, "proto-v1");
}

TEST(SpecJsonTest, RoundTripsEveryJobSpecIncludingBinaryFields) {
  cs::AdaptSpec a;
  a.model = "m";
  a.target_images = {std::string("\0\x01\xff binary", 10)};
  a.clip_models = {{"c", 2.5f}};
  a.layer_preset = cs::LayerPreset::kNoFine;
  a.seed = 1LL << 40;
  auto back = cs::SpecFromJson<cs::AdaptSpec>(cs::SpecToJson(a));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->target_images, a.target_images);
  EXPECT_EQ(back->layer_preset, cs::LayerPreset::kNoFine);
  EXPECT_EQ(back->seed, a.seed);
  EXPECT_EQ(back->clip_models[0].weight, std::optional<float>(2.5f));
  // Settings whose zero is meaningful keep "unset" apart from 0 through JSON.
  a.mixing = 0.0f;
  a.lambda_direction = std::nullopt;
  a.adam_steps = cs::AdamSteps::kPerParameter;
  back = cs::SpecFromJson<cs::AdaptSpec>(cs::SpecToJson(a));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->mixing, std::optional<float>(0.0f));
  EXPECT_FALSE(back->lambda_direction.has_value());
  EXPECT_EQ(back->adam_steps, cs::AdamSteps::kPerParameter);
  // The one-shot settings travel too; at their defaults they leave the hash as it was
  // before they existed (a retry of an older request still finds its job).
  const std::string hash_before = cs::SpecHash(a);
  cs::AdaptSpec os = a;
  os.method = cs::AdaptMethod::kOneShot;
  os.skip_reference_search = true;
  os.w_ref = {0.25f, -1.5f};
  os.lambda_const = 0.0f;
  os.ref_every = 3;
  auto osb = cs::SpecFromJson<cs::AdaptSpec>(cs::SpecToJson(os));
  ASSERT_TRUE(osb.ok()) << osb.status();
  EXPECT_EQ(osb->method, cs::AdaptMethod::kOneShot);
  EXPECT_TRUE(osb->skip_reference_search);
  EXPECT_EQ(osb->w_ref, os.w_ref);
  EXPECT_EQ(osb->lambda_const, std::optional<float>(0.0f));
  EXPECT_FALSE(osb->lambda_patch.has_value());
  EXPECT_EQ(osb->ref_every, 3);
  EXPECT_NE(cs::SpecHash(os), hash_before);
  // A stored request written before the settings existed hashes as the same request.
  nlohmann::json old = nlohmann::json::parse(cs::SpecToJson(a));
  for (const char* k :
       {"method", "reference_steps", "skip_reference_search", "w_ref", "lambda_const", "lambda_patch", "ref_every"}) {
    ASSERT_TRUE(old.contains(k)) << k;
    old.erase(k);
  }
  auto from_old = cs::SpecFromJson<cs::AdaptSpec>(old.dump());
  ASSERT_TRUE(from_old.ok()) << from_old.status();
  EXPECT_EQ(cs::SpecHash(*from_old), hash_before);
  // The hash ignores the idempotency key and nothing else.
  cs::AdaptSpec b = a;
  b.request_id = "k";
  EXPECT_EQ(cs::SpecHash(a), cs::SpecHash(b));
  b.iterations = 7;
  EXPECT_NE(cs::SpecHash(a), cs::SpecHash(b));
  EXPECT_EQ(cs::SpecFromJson<cs::AdaptSpec>("[1]").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(cs::SpecFromJson<cs::AdaptSpec>(R"({"iterations": "many"})").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(cs::SpecFromJson<cs::InvertSpec>(R"({"image": "not base64!"})").status().code(),
            absl::StatusCode::kDataLoss);
  // Numbers beyond what the fields hold are refused, not cast (a fuzzer finding).
  EXPECT_EQ(cs::SpecFromJson<cs::AdaptSpec>(R"({"iterations": 1.02e102})").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(cs::SpecFromJson<cs::AdaptSpec>(R"({"lr_scale": -1e300})").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(cs::SpecFromJson<cs::AdaptSpec>(R"({"seed": 18446744073709551615})").status().code(),
            absl::StatusCode::kDataLoss);
  // A large integer is kept whole, for the spec's range check to see.
  auto big = cs::SpecFromJson<cs::AdaptSpec>(R"({"iterations": 4294967596})");
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->iterations, 4294967596LL);
}

// TrainMapper's spec: enums by name, loss weights whose zero is meaningful kept apart
// from unset, the inversion list; the record survives a JSON round trip with its hash.
TEST(SpecJsonTest, MapperSpecRoundTrips) {
  cs::MapperSpec m;
  m.model = "ffhq";
  m.text = "a person with purple hair";
  m.mapper_type = cs::MapperKind::kSingle;
  m.no_fine = true;
  m.latent_l2_lambda = 0.0f;
  m.id_lambda = 0.0f;
  m.inversion_ids = {"inv-1", "inv-2"};
  m.steps = 123;
  const std::string json = cs::SpecToJson(m);
  EXPECT_NE(json.find("\"single\""), std::string::npos) << json;
  auto back = cs::SpecFromJson<cs::MapperSpec>(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->mapper_type, cs::MapperKind::kSingle);
  EXPECT_TRUE(back->no_fine);
  EXPECT_EQ(back->latent_l2_lambda, std::optional<float>(0.0f));
  EXPECT_FALSE(back->clip_lambda.has_value());
  EXPECT_EQ(back->inversion_ids, m.inversion_ids);
  EXPECT_EQ(back->steps, 123);
  EXPECT_EQ(cs::SpecHash(*back), cs::SpecHash(m));
  cs::MapperSpec other = m;
  other.text = "a smiling face";
  EXPECT_NE(cs::SpecHash(other), cs::SpecHash(m));
}

// The encoder fields round-trip; at their defaults they leave the digest of requests
// stored before them alone, set they change it.
TEST(SpecJsonTest, InvertSpecEncoderFieldsRoundTrip) {
  cs::InvertSpec inv;
  inv.model = "ffhq";
  inv.image = "\x89PNG";
  inv.steps = 1000;
  const std::string before = cs::SpecHash(inv);
  const std::string old_json = cs::SpecToJson(inv);
  EXPECT_NE(old_json.find("\"method\":\"unspecified\""), std::string::npos) << old_json;
  inv.method = cs::InvertMethod::kEncoder;
  inv.encoder = "ffhq-e4e";
  inv.refine_steps = 50;
  inv.steps = 0;
  const std::string json = cs::SpecToJson(inv);
  EXPECT_NE(json.find("\"encoder\""), std::string::npos) << json;
  auto back = cs::SpecFromJson<cs::InvertSpec>(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->method, cs::InvertMethod::kEncoder);
  EXPECT_EQ(back->encoder, "ffhq-e4e");
  EXPECT_EQ(back->refine_steps, 50);
  EXPECT_EQ(back->TotalSteps(), 51);
  EXPECT_NE(cs::SpecHash(*back), before);
  // A request stored before these fields existed (no keys) reads back as optimisation.
  nlohmann::json legacy = nlohmann::json::parse(old_json);
  for (const char* k : {"method", "encoder", "refine_steps"}) legacy.erase(k);
  auto old = cs::SpecFromJson<cs::InvertSpec>(legacy.dump());
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->method, cs::InvertMethod::kUnspecified);
  EXPECT_EQ(old->TotalSteps(), 1000);
  EXPECT_EQ(cs::SpecHash(*old), before);
}

TEST(SpecJsonTest, RenderSpecsRoundTripWithOptionalFields) {
  cs::GenerateSpec g;
  g.model = "m";
  g.latents = cs::LatentInput{cs::LatentSpace::kWPlus, core::FloatTensor{{1, 2, 2}, {0.5f, -1, 2, 3}}};
  g.truncation = 0.7f;
  g.noise = cs::NoiseMode::kRandom;
  auto gb = cs::SpecFromJson<cs::GenerateSpec>(cs::SpecToJson(g));
  ASSERT_TRUE(gb.ok()) << gb.status();
  ASSERT_TRUE(gb->latents.has_value());
  EXPECT_EQ(gb->latents->space, cs::LatentSpace::kWPlus);
  EXPECT_EQ(gb->latents->values.shape, g.latents->values.shape);
  EXPECT_EQ(gb->latents->values.data, g.latents->values.data);
  ASSERT_TRUE(gb->truncation.has_value());
  EXPECT_FLOAT_EQ(*gb->truncation, 0.7f);
  EXPECT_EQ(gb->noise, cs::NoiseMode::kRandom);
  // Unset optionals stay unset.
  auto plain = cs::SpecFromJson<cs::GenerateSpec>(R"({"model": "m", "count": 3})");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->truncation.has_value());
  EXPECT_FALSE(plain->latents.has_value());
  EXPECT_EQ(plain->count, 3);

  cs::EditSpec e;
  e.model = "m";
  e.seeds = {1, 2};
  e.global_direction = cs::GlobalDirectionSpec{"a face", "a smiling face", {-2, 2}, 0.1f, ""};
  auto eb = cs::SpecFromJson<cs::EditSpec>(cs::SpecToJson(e));
  ASSERT_TRUE(eb.ok()) << eb.status();
  ASSERT_TRUE(eb->global_direction.has_value());
  EXPECT_FALSE(eb->latent_optimization.has_value());
  EXPECT_FALSE(eb->direction.has_value());
  EXPECT_EQ(eb->global_direction->alphas, (std::vector<float>{-2, 2}));
  EXPECT_EQ(eb->seeds, e.seeds);
}

}  // namespace
}  // namespace ganserve::server
