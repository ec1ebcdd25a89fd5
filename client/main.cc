// ganctl: the command-line client of ganserve.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "client/local.h"
#include "client/remote.h"
#include "client/util.h"
#include "core/adapt/nada_trainer.h"
#include "core/adapt/oneshot_trainer.h"
#include "core/edit/global_directions.h"
#include "core/edit/latent_optimizer.h"
#include "core/edit/mapper_trainer.h"
#include "core/invert/projector.h"
#include "core/runtime/torch_setup.h"
#include "core/service/specs.h"
#include "ganserve/v1/ganserve.pb.h"

namespace {

namespace cs = ganserve::core::service;
namespace ce = ganserve::core::edit;
namespace v1 = ganserve::v1;

constexpr char kSetHelp[] =
    "override any request field: FIELD=VALUE with the proto's field names, dotted into messages "
    "(e.g. --set lambda_direction=0 --set adam_steps=ADAM_STEPS_PER_PARAMETER); repeatable";

// " (default X)" for help texts, from the spec's source of truth.
template <typename T>
std::string Default(T v) {
  return absl::StrCat(" (default ", v, ")");
}
using ganserve::client::Connection;
using ganserve::client::EnumFlagName;
using ganserve::client::EnumFlagNames;

int Report(const absl::Status& s) {
  if (s.ok()) return 0;
  std::fprintf(stderr, "ganctl: %s: %s\n", absl::StatusCodeToString(s.code()).c_str(),
               std::string(s.message()).c_str());
  return ganserve::client::ExitCodeFor(s);
}

}  // namespace

int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape): CLI11 errors are caught where parsed
  CLI::App app("ganctl: command-line client for ganserve (StyleGAN2 adaptation, sampling, inversion, editing)");
  app.require_subcommand(1);
  app.fallthrough();  // --server/--timeout/--json may follow the subcommand
  Connection conn;
  app.add_option("--server", conn.server,
                 "ganserve address HOST:PORT, or a gRPC target of several replicas (dns:///SERVICE:PORT, "
                 "ipv4:HOST:PORT,HOST:PORT): calls go round-robin")
      ->envname("GANCTL_SERVER")
      ->capture_default_str();
  app.add_option("--timeout", conn.timeout_seconds, "seconds per call (0: none)")->capture_default_str();
  app.add_option("--busy_retries", conn.busy_retries,
                 "retries of generate/edit after a busy server's RetryInfo delay (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  app.add_flag("--json", conn.json, "machine-readable output (one JSON object per line)");
  app.add_option("--tls-ca", conn.tls_ca, "PEM CA of the server's certificate: connect with TLS")
      ->envname("GANCTL_TLS_CA")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-cert", conn.tls_cert, "PEM client certificate (mutual TLS)")
      ->envname("GANCTL_TLS_CERT")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", conn.tls_key, "PEM client key (mutual TLS)")
      ->envname("GANCTL_TLS_KEY")
      ->check(CLI::ExistingFile);
  app.add_option("--token", conn.token, "bearer token (prefer GANSERVE_TOKEN: command lines are visible to others)")
      ->envname("GANSERVE_TOKEN");
  absl::Status result;

  auto* health = app.add_subcommand("health", "exit 0 only if the server is SERVING");
  std::string health_service;
  health->add_option("--service", health_service, "health service: '' (server), liveness, readiness");
  health->callback([&] { result = ganserve::client::Health(conn, health_service); });

  auto* models =
      app.add_subcommand("models", "list, show, delete, load, unload, rescan, promote, import or export models");
  models->require_subcommand(1);
  models->add_subcommand("list", "list models")->callback([&] { result = ganserve::client::ModelsList(conn); });
  std::string model_name;
  auto* mget = models->add_subcommand("get", "show one model");
  mget->add_option("name", model_name)->required();
  mget->callback([&] { result = ganserve::client::ModelsGet(conn, model_name); });
  auto* mdel = models->add_subcommand("delete", "delete an adapted or imported model");
  mdel->add_option("name", model_name)->required();
  mdel->callback([&] { result = ganserve::client::ModelsDelete(conn, model_name); });
  bool load_pin = false;
  auto* mload = models->add_subcommand("load", "load a model into memory now (it loads on first use anyway)");
  mload->add_option("name", model_name)->required();
  mload->add_flag("--pin", load_pin, "keep it resident: never evicted under the memory budget until unloaded");
  mload->callback([&] { result = ganserve::client::ModelsLoad(conn, model_name, load_pin); });
  auto* munload = models->add_subcommand("unload", "unpin a model and free its memory");
  munload->add_option("name", model_name)->required();
  munload->callback([&] { result = ganserve::client::ModelsUnload(conn, model_name); });
  models->add_subcommand("rescan", "pick up model folders added or removed on disk")->callback([&] {
    result = ganserve::client::ModelsRescan(conn);
  });
  std::string promote_snapshot;
  auto* mpromote = models->add_subcommand("promote", "keep a training snapshot (NAME@STEP) as a model");
  mpromote->add_option("snapshot", promote_snapshot)->required();
  mpromote->add_option("--name", model_name, "the new model's name")->required();
  mpromote->callback([&] { result = ganserve::client::ModelsPromote(conn, promote_snapshot, model_name); });
  std::vector<std::string> import_files;
  std::string import_domain, import_kind = "generator", import_base;
  auto* mimp = models->add_subcommand(
      "import",
      "add a model to the running server: a generator file (.pt, .pkl, .safetensors); a CLIP checkpoint and its "
      "vocabulary (.txt/.gz); LPIPS's VGG16 features and linear layers; an official StyleCLIP mapper (.pt); or an "
      "official e4e / pSp encoder (.pt, e4e_ffhq_encode.pt)");
  mimp->add_option("files", import_files)->required()->check(CLI::ExistingFile);
  mimp->add_option("--name", model_name, "the new model's name")->required();
  mimp->add_option("--kind", import_kind,
                   "generator (default) | clip | lpips | mapper | arcface | encoder | landmarks");
  mimp->add_option("--base", import_base,
                   "mapper, encoder: the generator the file was made for (its decoder must match)");
  mimp->add_option("--domain", import_domain, "free text for the manifest, e.g. 'photo of a face'");
  mimp->callback([&] {
    result = ganserve::client::ModelsImport(conn, import_files, model_name, import_kind, import_domain, import_base);
  });
  std::string export_out, export_format = "torch";
  auto* mexp = models->add_subcommand(
      "export", "write a generator as a file the official tools load (rosinality torch.save zip, or safetensors)");
  mexp->add_option("name", model_name)->required();
  mexp->add_option("-o,--out", export_out, "output file")->required();
  mexp->add_option("--format", export_format, "torch (default) | safetensors");
  mexp->callback([&] { result = ganserve::client::ModelsExport(conn, model_name, export_format, export_out); });

  auto* jobs = app.add_subcommand("jobs", "list, show, watch or cancel jobs");
  jobs->require_subcommand(1);
  std::string job_kind, job_state, page_token, job_id;
  int page_size = 0;
  int64_t after_seq = 0;
  auto* jlist = jobs->add_subcommand("list", "list jobs, newest first");
  jlist->add_option("--kind", job_kind, "adapt | invert | edit_stats | train_mapper");
  jlist->add_option("--state", job_state, "queued | running | succeeded | failed | cancelled");
  jlist->add_option("--page-size", page_size, absl::StrCat("1..500 (default ", cs::Defaults::kListPageSize, ")"));
  jlist->add_option("--page-token", page_token);
  jlist->callback([&] { result = ganserve::client::JobsList(conn, job_kind, job_state, page_size, page_token); });
  auto* jget = jobs->add_subcommand("get", "show a job");
  jget->add_option("id", job_id)->required();
  jget->callback([&] { result = ganserve::client::JobsGet(conn, job_id); });
  auto* jwatch = jobs->add_subcommand("watch", "replay and follow a job's events");
  jwatch->add_option("id", job_id)->required();
  jwatch->add_option("--after-seq", after_seq, "replay events after this seq");
  jwatch->callback([&] { result = ganserve::client::JobsWatch(conn, job_id, after_seq); });
  auto* jcancel = jobs->add_subcommand("cancel", "cancel a job (idempotent)");
  jcancel->add_option("id", job_id)->required();
  jcancel->callback([&] { result = ganserve::client::JobsCancel(conn, job_id); });

  ganserve::client::GenerateArgs gen;
  auto* generate = app.add_subcommand("generate", "sample a generator; writes images and grid.png");
  generate->add_option("--model", gen.model)->required();
  auto* seeds_opt = generate->add_option("--seeds", gen.seeds, "e.g. 1-16 or 1,5,9");
  generate->add_option("--count", gen.count, "images from --base-seed on")->excludes(seeds_opt);
  generate->add_option("--base-seed", gen.base_seed);
  generate->add_option("--truncation", gen.truncation, "psi in [0, 2] (default: the model's)");
  generate->add_option("--noise", gen.noise, "const | random | none")->capture_default_str();
  generate->add_option("--batch-size", gen.batch_size, "images per streamed batch");
  generate->add_option("--format", gen.format, "png | jpeg")->capture_default_str();
  generate->add_option("--out", gen.out, "output folder")->capture_default_str();
  generate->add_flag("--return-latents", gen.return_latents, "also write each image's w+ as .npy");
  generate->add_option("--grid-columns", gen.grid_columns, "contact sheet columns (default sqrt(n))");
  generate->add_option("--inversion", gen.inversion, "render an InvertImage result (inv-...)")->excludes(seeds_opt);
  generate->add_option("--set", gen.sets, kSetHelp);
  generate->callback([&] {
    if (gen.seeds.empty() && gen.count == 0 && gen.inversion.empty()) gen.seeds = "0-7";
    result = ganserve::client::Generate(conn, gen);
  });

  ganserve::client::AdaptArgs adapt;
  auto* adapt_cmd =
      app.add_subcommand("adapt", "adapt a generator to a new domain (StyleGAN-NADA, or OneshotCLIP with --one-shot)");
  adapt_cmd->add_option("--model", adapt.model)->required();
  adapt_cmd->add_option("--from", adapt.from, "source domain text, e.g. photo (default: the model's domain)");
  adapt_cmd->add_option("--to", adapt.to, "target domain text, e.g. pencil sketch (or give --images)");
  adapt_cmd->add_option("--images", adapt.images, "target-domain example images");
  const ganserve::core::adapt::OneshotOptions oneshot;
  adapt_cmd->add_option("--one-shot", adapt.one_shot,
                        "adapt to the domain of this one image (OneshotCLIP: reference search, then a GAN fine-tune)");
  adapt_cmd->add_option("--reference-steps", adapt.reference_steps,
                        "--one-shot reference-search steps" + Default(oneshot.reference_steps));
  const ganserve::core::adapt::NadaOptions nada;
  adapt_cmd->add_option("--iterations", adapt.iterations, "training steps" + Default(nada.iterations));
  adapt_cmd->add_option("--name", adapt.name, "name of the new model");
  adapt_cmd->add_option("--out", adapt.out, "folder for preview grids")->capture_default_str();
  adapt_cmd->add_option("--batch-size", adapt.batch_size, "latents per step" + Default(nada.batch_size));
  adapt_cmd->add_option("--seed", adapt.seed);
  adapt_cmd->add_option("--preview-every", adapt.preview_every, "steps between previews (default: the server's)");
  adapt_cmd->add_option("--parameterization", adapt.parameterization,
                        "what trains: " + EnumFlagNames(v1::Parameterization_descriptor()) +
                            " (default: full; the others are lightweight domains of a few KB that render on the "
                            "base's weights, with their own recipe's batch size, learning rate and mixing)");
  adapt_cmd->add_option("--lambda-indomain", adapt.lambda_indomain,
                        "in-domain angle-consistency weight (lightweight parameterizations; default: the recipe's)");
  adapt_cmd->add_option("--delta-dtype", adapt.delta_dtype,
                        "float32 (default) | float16 | bfloat16: half-precision deltas are half the size on disk");
  adapt_cmd->add_option("--snapshot-every", adapt.snapshot_every,
                        "keep the model every K steps as NAME@STEP (render, export, promote); expires with the job");
  adapt_cmd->add_option("--preview-count", adapt.preview_count, "preview grid size" + Default(nada.preview_count));
  adapt_cmd->add_option("--auto-layer-k", adapt.auto_layer_k, "train the k most relevant layers (0: the preset)");
  adapt_cmd->add_option("--auto-layer-iters", adapt.auto_layer_iters,
                        "layer-selection SGD steps" + Default(nada.auto_layer_iters));
  adapt_cmd->add_option("--auto-layer-batch", adapt.auto_layer_batch,
                        "layer-selection samples" + Default(nada.auto_layer_batch));
  adapt_cmd->add_option(
      "--layer-mapping", adapt.layer_mapping,
      EnumFlagNames(v1::LayerMapping_descriptor()) +
          Default(EnumFlagName(v1::LayerMapping_descriptor(), static_cast<int>(cs::Defaults::kLayerMapping))));
  adapt_cmd->add_option(
      "--preset", adapt.preset,
      "layers trained without selection: " + EnumFlagNames(v1::LayerPreset_descriptor()) +
          Default(EnumFlagName(v1::LayerPreset_descriptor(), static_cast<int>(cs::Defaults::kLayerPreset))));
  adapt_cmd->add_option(
      "--adam-steps", adapt.adam_steps,
      "Adam step counting under selection: " + EnumFlagNames(v1::AdamSteps_descriptor()) +
          Default(EnumFlagName(v1::AdamSteps_descriptor(), static_cast<int>(cs::Defaults::kAdamSteps))));
  adapt_cmd->add_option(
      "--lr-scale", adapt.lr_scale,
      absl::StrCat("multiplier of the reference's learning rate ", nada.lr, Default(cs::Defaults::kLrScale)));
  adapt_cmd->add_option("--mixing", adapt.mixing, "style-mixing probability" + Default(nada.mixing));
  adapt_cmd->add_option("--lambda-direction", adapt.lambda_direction,
                        "directional CLIP loss weight" + Default(nada.lambda_direction));
  adapt_cmd->add_option("--lambda-global", adapt.lambda_global,
                        "global CLIP loss weight" + Default(nada.lambda_global));
  adapt_cmd->add_option("--lambda-manifold", adapt.lambda_manifold,
                        "manifold-angle loss weight" + Default(nada.lambda_manifold));
  adapt_cmd->add_option("--clip", adapt.clip_models,
                        "CLIP model NAME[:WEIGHT], weight 0 allowed (repeatable; default: all, weight " +
                            absl::StrCat(cs::Defaults::kClipWeight) + ")");
  adapt_cmd->add_option("--max-run-seconds", adapt.max_run_seconds, "wall-clock limit (default: the server's)");
  adapt_cmd->add_option("--priority", adapt.priority,
                        "claim order among queued jobs: higher first (0 = default; the server states the range)");
  adapt_cmd->add_option("--request-id", adapt.request_id, "idempotency key");
  adapt_cmd->add_option("--set", adapt.sets, kSetHelp);
  adapt_cmd->callback([&] { result = ganserve::client::Adapt(conn, adapt); });

  ganserve::client::InvertArgs inv;
  ganserve::client::PrepareGlobalArgs pg;
  auto* prep = app.add_subcommand("prepare-global",
                                  "compute a generator's StyleCLIP global-direction statistics (once per model)");
  prep->add_option("--model", pg.model)->required();
  prep->add_option("--clip", pg.clip, "CLIP model (default: the server's StyleCLIP default, ViT-B/32)");
  prep->add_option("--samples", pg.samples,
                   absl::StrCat("S mean/std samples (default ", ce::GlobalStatsOptions{}.num_samples, ")"));
  prep->add_option(
      "--images", pg.images,
      absl::StrCat("images per channel for relevance (default ", ce::GlobalStatsOptions{}.num_images, ")"));
  prep->add_option("--batch", pg.batch,
                   absl::StrCat("renders per step, even (default ", ce::GlobalStatsOptions{}.batch_size, ")"));
  prep->add_flag("--recompute", pg.recompute, "replace existing statistics");
  prep->add_option(
      "--clamping", pg.clamping,
      "relevance pass: " + EnumFlagNames(v1::ChannelClamping_descriptor()) +
          Default(EnumFlagName(v1::ChannelClamping_descriptor(), static_cast<int>(cs::Defaults::kClamping))));
  prep->add_option("--truncation-cutoff", pg.truncation_cutoff,
                   "truncate only w+ rows below this (8: global_torch; default: every row, as the shipped statistics)");
  prep->add_option("--render-resolution", pg.render_resolution,
                   "stop the relevance renders at this size, e.g. 256 of a 1024 px model (default: full images, the "
                   "reference)");
  prep->add_option("--priority", pg.priority,
                   "claim order among queued jobs: higher first (0 = default; the server states the range)");
  prep->add_option("--request-id", pg.request_id, "idempotency key");
  prep->add_option("--set", pg.sets, kSetHelp);
  prep->add_option("--out", pg.out, "folder for preview grids")->capture_default_str();
  prep->callback([&] { result = ganserve::client::PrepareGlobal(conn, pg); });

  auto* invert = app.add_subcommand("invert", "project a photo into a generator's latent space");
  invert->add_option("image", inv.image)->required()->check(CLI::ExistingFile);
  invert->add_option("--model", inv.model)->required();
  const ganserve::core::invert::ProjectorOptions projector;
  invert->add_option("--steps", inv.steps, "optimisation steps" + Default(projector.steps));
  invert->add_option("--lr", inv.lr, "peak learning rate" + Default(projector.lr));
  invert->add_option("--noise-regularize", inv.noise_regularize,
                     "noise-map regulariser weight, 0 = off" + Default(projector.noise_regularize));
  invert->add_option("--mse", inv.mse, "MSE weight (default: 0 with LPIPS, 1 without)");
  invert->add_flag("--aligned", inv.aligned, "the photo is aligned and cropped already");
  invert
      ->add_option("--landmarks", inv.landmarks,
                   "FFHQ-align the photo first (e4e's align_face): a text file of the face's 5 points (eyes, nose, "
                   "mouth corners) or dlib's 68, as x y pairs")
      ->check(CLI::ExistingFile);
  invert->add_flag("--align", inv.align,
                   "FFHQ-align the photo first with the face and landmarks the server finds (dlib; the largest face; "
                   "needs a landmarks model: scripts/fetch-weights.sh dlib-landmarks)");
  invert->add_option("--method", inv.method,
                     "optimization (the projector; default) | encoder (a pSp / e4e encoder, one forward pass)");
  invert->add_option("--encoder", inv.encoder,
                     "the encoder model (implies --method encoder; default: the server's encoder for --model)");
  invert->add_option("--refine-steps", inv.refine_steps,
                     "encoder: projector steps from the encoder's w+ (implies --method encoder; default 0)");
  invert->add_option("--seed", inv.seed);
  invert->add_option("--max-run-seconds", inv.max_run_seconds, "wall-clock limit (default: the server's)");
  invert->add_flag("--pin", inv.pin, "keep the inversion past the server's job retention");
  invert->add_option("--priority", inv.priority,
                     "claim order among queued jobs: higher first (0 = default; the server states the range)");
  invert->add_option("--request-id", inv.request_id, "idempotency key");
  invert->add_option("--set", inv.sets, kSetHelp);
  invert->add_option("--space", inv.space, "w | w+")->capture_default_str();
  invert->add_option("--out", inv.out, "folder for the latent, reconstruction and previews")->capture_default_str();
  invert->add_option("--preview-every", inv.preview_every);
  invert->callback([&] { result = ganserve::client::Invert(conn, inv); });

  ganserve::client::EditArgs ed;
  auto* edit = app.add_subcommand(
      "edit", "edit latents with text (StyleCLIP global directions, latent optimization or a trained mapper)");
  edit->add_option("--model", ed.model)->required();
  edit->add_option("--render-model", ed.render_model, "render through this (adapted) model");
  edit->add_option("--seeds", ed.seeds);
  edit->add_option("--latent", ed.latent_npy, "w or w+ latent .npy");
  edit->add_option("--inversion", ed.inversion, "an inversion id");
  edit->add_option("--neutral", ed.neutral, "global directions: neutral text");
  edit->add_option("--target", ed.target, "global directions: target text");
  edit->add_option("--direction", ed.direction_npy, "direction arithmetic: a direction .npy instead of text")
      ->check(CLI::ExistingFile);
  edit->add_option("--direction-space", ed.direction_space, "w | w+ | s")->capture_default_str();
  edit->add_option("--alpha", ed.alphas,
                   absl::StrCat("strengths, e.g. -4,0,4 (default ", cs::Defaults::kGlobalAlpha, "; --mapper: 1)"));
  edit->add_option("--mapper", ed.mapper, "apply this trained latent mapper (w + 0.1 * alpha * mapper(w))");
  edit->add_option("--beta", ed.beta,
                   absl::StrCat("disentanglement threshold (default ", cs::Defaults::kGlobalBeta, ")"));
  edit->add_flag("--optimize", ed.optimize, "StyleCLIP latent optimization toward --target instead");
  edit->add_option("--steps", ed.steps,
                   absl::StrCat("--optimize: Adam steps (default ", ce::LatentOptimizationOptions{}.steps, ")"));
  edit->add_option("--l2", ed.l2_lambda,
                   absl::StrCat("--optimize: weight of the L2 to the start, 0 = free (default ",
                                ce::LatentOptimizationOptions{}.l2_lambda, ")"));
  edit->add_option("--lr", ed.lr, "--optimize: learning rate" + Default(ce::LatentOptimizationOptions{}.lr));
  edit->add_option("--clip", ed.clip, "CLIP model of a text edit (default: the server's StyleCLIP default, ViT-B/32)");
  edit->add_option("--truncation", ed.truncation, "psi of seed inputs in [0, 2] (default: the model's)");
  edit->add_option("--set", ed.sets, kSetHelp);
  edit->add_option("--out", ed.out);
  edit->callback([&] { result = ganserve::client::Edit(conn, ed); });

  ganserve::client::TrainMapperArgs tm;
  const ce::MapperTrainerOptions mapper_defaults;
  auto* tmap = app.add_subcommand("train-mapper", "train a StyleCLIP latent mapper for one text prompt (a job)");
  tmap->add_option("--model", tm.model, "the base generator")->required();
  tmap->add_option("--text", tm.text, "what edited images should show, e.g. \"a person with purple hair\"")->required();
  tmap->add_option("--name", tm.output_name, "the mapper's model name (default MODEL-mapper-TEXT)");
  tmap->add_option("--type", tm.mapper_type, EnumFlagNames(v1::MapperType_descriptor()) + " (default levels)");
  tmap->add_flag("--no-coarse", tm.no_coarse, "leave w+ rows 0-3 unmapped");
  tmap->add_flag("--no-medium", tm.no_medium, "leave w+ rows 4-7 unmapped");
  tmap->add_flag("--no-fine", tm.no_fine, "leave w+ rows 8- unmapped (the official hair edits)");
  tmap->add_option("--steps", tm.steps, "training steps" + Default(mapper_defaults.steps));
  tmap->add_option("--lr", tm.lr, "Ranger learning rate" + Default(mapper_defaults.lr));
  tmap->add_option("--batch", tm.batch, "latents per step" + Default(mapper_defaults.batch_size));
  tmap->add_option("--clip-lambda", tm.clip_lambda, "CLIP loss weight" + Default(mapper_defaults.clip_lambda));
  tmap->add_option("--l2-lambda", tm.latent_l2_lambda, "latent L2 weight" + Default(mapper_defaults.latent_l2_lambda));
  tmap->add_option("--id-lambda", tm.id_lambda,
                   absl::StrCat("identity loss weight (official ", mapper_defaults.id_lambda,
                                "; needs an ArcFace model on the server: sent as 0 when it has none)"));
  tmap->add_option("--inversion", tm.inversions, "train on these inversions of --model (repeatable)");
  tmap->add_option("--train-latents", tm.train_latents,
                   "random training latents without --inversion" + Default(mapper_defaults.train_latents));
  tmap->add_option("--clip", tm.clip, "CLIP model (default: the server's StyleCLIP default, ViT-B/32)");
  tmap->add_option("--previews", tm.preview_count, "preview latents" + Default(mapper_defaults.preview_count));
  tmap->add_option("--seed", tm.seed);
  tmap->add_option("--max-run-seconds", tm.max_run_seconds, "wall-clock limit (default: the server's)");
  tmap->add_option("--priority", tm.priority,
                   "claim order among queued jobs: higher first (0 = default; the server states the range)");
  tmap->add_option("--request-id", tm.request_id, "idempotency key");
  tmap->add_option("--set", tm.sets, kSetHelp);
  tmap->add_option("--out", tm.out, "folder for preview grids")->capture_default_str();
  tmap->callback([&] { result = ganserve::client::TrainMapper(conn, tm); });

  auto* local = app.add_subcommand("local", "run the core in-process (no server)");
  local->require_subcommand(1);
  int threads = 0;
  local->add_option("--threads", threads, "LibTorch threads (0: CPUs available)");
  ganserve::client::LocalInspectArgs insp;
  auto* inspect = local->add_subcommand("inspect", "print a checkpoint's inferred generator config as JSON");
  inspect->add_option("--checkpoint", insp.checkpoint)->required()->check(CLI::ExistingFile);
  inspect->add_option("--key", insp.key, "checkpoint entry (default g_ema, else g)");
  inspect->callback([&] { result = ganserve::client::LocalInspect(insp); });

  ganserve::client::LocalGenerateArgs lg;
  auto* lgen = local->add_subcommand("generate", "render a checkpoint to .npy / PNG");
  lgen->add_option("--checkpoint", lg.checkpoint)->required()->check(CLI::ExistingFile);
  lgen->add_option("--key", lg.key);
  lgen->add_option("--device", lg.device)->capture_default_str();
  lgen->add_option("--z-npy", lg.z_npy);
  lgen->add_option("--w-npy", lg.w_npy);
  lgen->add_option("--wplus-npy", lg.wplus_npy);
  lgen->add_option("--s-npy", lg.s_npy, "S-space codes [N, s_dim]");
  lgen->add_option("--seeds", lg.seeds);
  lgen->add_option("--truncation", lg.truncation)->capture_default_str();
  lgen->add_option("--noise", lg.noise, "const | random | none")->capture_default_str();
  lgen->add_option("--mix-z-npy", lg.mix_z_npy);
  lgen->add_option("--inject-index", lg.inject_index);
  lgen->add_option("--out-npy", lg.out_npy, "float32 NCHW images, unclamped")->required();
  lgen->add_option("--out-png-dir", lg.out_png_dir);
  lgen->add_option("--s-space-out-npz", lg.s_space_out_npz, "S space: 's' plus one array per layer");
  lgen->add_option("--wplus-out-npy", lg.wplus_out_npy, "the w+ latents used");
  lgen->callback([&] { result = ganserve::client::LocalGenerate(lg); });

  ganserve::client::MakeDemoArgs demo;
  auto* mkdemo = local->add_subcommand("make-demo", "write the built-in demo generator (random weights)");
  mkdemo->add_option("--out", demo.out, "model repository folder")->required();
  mkdemo->add_option("--name", demo.name)->capture_default_str();
  mkdemo->add_option("--resolution", demo.resolution)->capture_default_str();
  bool no_clip = false;
  mkdemo->add_flag("--no-clip", no_clip, "skip the demo CLIP model");
  mkdemo->callback([&] {
    demo.with_clip = !no_clip;
    result = ganserve::client::MakeDemoModel(demo);
  });
  ganserve::client::MakeWorldArgs world;
  auto* mkworld =
      local->add_subcommand("make-world", "write toy-world scenes: PNGs, captions.jsonl and a contact sheet");
  mkworld->add_option("--out", world.out, "output folder")->required();
  mkworld->add_option("--count", world.count, "number of scenes")->capture_default_str();
  mkworld->add_option("--seed", world.seed, "base seed of scenes and textures")->capture_default_str();
  mkworld->add_option("--style", world.style, "photo | pencil_sketch | painting | any")->capture_default_str();
  mkworld->add_option("--size", world.size, "image side in pixels, 8-1024")->capture_default_str();
  mkworld->add_option("--captions", world.captions, "phrasings per image besides the canonical caption")
      ->capture_default_str();
  mkworld->add_option("--max-shapes", world.max_shapes, "1: scenes of one shape only; 2: one or two")
      ->capture_default_str();
  mkworld->callback([&] { result = ganserve::client::MakeWorld(world); });
  ganserve::client::TokenizeArgs tk;
  auto* tokenize = local->add_subcommand("tokenize", "CLIP-tokenize prompts to 77-id lists (JSON)");
  tokenize->add_option("--vocab", tk.vocab, "bpe_simple_vocab_16e6.txt.gz")->required()->check(CLI::ExistingFile);
  tokenize->add_option("--text", tk.texts, "a prompt (repeatable)");
  tokenize->add_option("--texts-json", tk.texts_json, "a JSON list of prompts")->check(CLI::ExistingFile);
  tokenize->add_flag("--truncate", tk.truncate, "cut long prompts to 77 tokens instead of failing");
  tokenize->add_option("--out-json", tk.out_json)->required();
  tokenize->callback([&] { result = ganserve::client::LocalTokenize(tk); });

  ganserve::client::EncodeTextArgs et;
  auto* enc_text = local->add_subcommand("encode-text", "CLIP text embeddings to .npy");
  enc_text->add_option("--clip", et.clip, "CLIP weights (.pt archive, state dict, safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  enc_text->add_option("--vocab", et.vocab)->check(CLI::ExistingFile);
  enc_text->add_option("--texts-json", et.texts_json)->check(CLI::ExistingFile);
  enc_text->add_option("--tokens-npy", et.tokens_npy, "[N, 77] integer ids")->check(CLI::ExistingFile);
  enc_text->add_flag("--truncate", et.truncate);
  enc_text->add_option("--device", et.device)->capture_default_str();
  enc_text->add_option("--out-npy", et.out_npy)->required();
  enc_text->callback([&] { result = ganserve::client::LocalEncodeText(et); });

  ganserve::client::EncodeImageArgs ei;
  auto* enc_img = local->add_subcommand("encode-image", "CLIP image embeddings to .npy");
  enc_img->add_option("--clip", ei.clip)->required()->check(CLI::ExistingFile);
  enc_img->add_option("--images-npy", ei.images_npy, "preprocessed [N, 3, R, R] float32")->check(CLI::ExistingFile);
  enc_img->add_option("--png", ei.pngs, "PNG or JPEG files (repeatable), preprocessed as OpenAI's preprocess")
      ->check(CLI::ExistingFile);
  enc_img->add_option("--device", ei.device)->capture_default_str();
  enc_img->add_option("--out-npy", ei.out_npy)->required();
  enc_img->callback([&] { result = ganserve::client::LocalEncodeImage(ei); });

  local->parse_complete_callback([&] { ganserve::core::ConfigureTorch(threads); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return Report(result);
}
