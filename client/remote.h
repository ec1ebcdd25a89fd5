// ganctl commands that talk to a ganserve server over gRPC.
#ifndef GANSERVE_CLIENT_REMOTE_H_
#define GANSERVE_CLIENT_REMOTE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ganserve::client {

struct Connection {
  std::string server = "127.0.0.1:50051";
  double timeout_seconds = 30;  // whole call; 0 = no deadline
  bool json = false;
  // TLS: the CA that signed the server's certificate (TLS on when set), and for mutual
  // TLS this client's certificate and key (PEM files).
  std::string tls_ca, tls_cert, tls_key;
  // Bearer token sent as 'authorization: Bearer TOKEN' on every call.
  std::string token;
  // A GenerateSamples or Edit answered RESOURCE_EXHAUSTED with a google.rpc.RetryInfo
  // (a full device queue) before any image is sent again after the server's delay, at
  // most this many times.
  int busy_retries = 5;
};

// Exit code for a failed command: 1 for server answers, 3 when the server cannot be reached.
int ExitCodeFor(const absl::Status& status);

absl::Status Health(const Connection& c, const std::string& service);
absl::Status ModelsList(const Connection& c);
absl::Status ModelsGet(const Connection& c, const std::string& name);
absl::Status ModelsDelete(const Connection& c, const std::string& name);
// Residency: load (optionally pinned), unload, and pick up folders added on disk.
absl::Status ModelsLoad(const Connection& c, const std::string& name, bool pin);
absl::Status ModelsUnload(const Connection& c, const std::string& name);
absl::Status ModelsRescan(const Connection& c);
absl::Status ModelsPromote(const Connection& c, const std::string& snapshot, const std::string& name);
// Uploads a generator file as model `name` (chunks of 1 MiB with its size and SHA-256).
absl::Status ModelsImport(const Connection& c, const std::vector<std::string>& paths, const std::string& name,
                          const std::string& kind, const std::string& domain, const std::string& base_model = "");
// Streams a generator out to `out_path` (written atomically after its SHA-256 checks);
// format: torch | safetensors.
absl::Status ModelsExport(const Connection& c, const std::string& name, const std::string& format,
                          const std::string& out_path);
absl::Status JobsList(const Connection& c, const std::string& kind, const std::string& state, int page_size,
                      const std::string& page_token);
absl::Status JobsGet(const Connection& c, const std::string& id);
absl::Status JobsCancel(const Connection& c, const std::string& id);
absl::Status JobsWatch(const Connection& c, const std::string& id, int64_t after_seq);

struct GenerateArgs {
  std::string model;
  std::string seeds;  // "1-16"
  int count = 0;
  int64_t base_seed = 0;
  float truncation = -1;  // < 0: model default
  std::string noise = "const";
  int batch_size = 0;
  std::string format = "png";
  std::string out = "out";
  bool return_latents = false;
  int grid_columns = 0;           // 0: sqrt(n)
  std::string inversion;          // render an inversion's latent instead of seeds
  std::vector<std::string> sets;  // --set FIELD=VALUE overrides of the request
};
absl::Status Generate(const Connection& c, const GenerateArgs& args);

struct AdaptArgs {
  std::string model, from, to, name;
  std::vector<std::string> images;
  std::string one_shot;                  // OneshotCLIP: the one target image
  int reference_steps = 0;               // its reference search (0 = the server's default)
  std::vector<std::string> clip_models;  // NAME[:WEIGHT]
  int iterations = 0;
  int batch_size = 0;
  int64_t seed = 0;
  int preview_every = 0;
  int snapshot_every = 0;
  std::string delta_dtype;       // float32 | float16 | bfloat16
  std::string parameterization;  // full | domain_modulation | stylespace_direction | affine_light
  std::optional<float> lambda_indomain;
  int auto_layer_k = 0;
  int auto_layer_iters = 0;
  int auto_layer_batch = 0;
  float lr_scale = 0;
  std::optional<float> mixing;
  std::string layer_mapping, preset, adam_steps;  // short enum names; empty = the server's default
  std::optional<float> lambda_direction;
  float lambda_global = 0, lambda_manifold = 0;
  int preview_count = 0;
  int max_run_seconds = 0;
  int priority = 0;  // claim order among queued jobs: higher first
  std::string request_id;
  std::string out = "out";
  std::vector<std::string> sets;
};
absl::Status Adapt(const Connection& c, const AdaptArgs& args);

struct InvertArgs {
  std::string image, model, space = "w+";
  int steps = 0;
  int preview_every = 0;
  float lr = 0;
  std::optional<float> noise_regularize;
  float mse = 0;
  bool aligned = false;
  std::string landmarks;  // a text file of x y pairs (5 or 68 points): FFHQ-align the photo
  bool align = false;     // the server finds the landmarks (its landmarks model), then aligns
  std::string method;     // optimization | encoder; empty = encoder when encoder or refine_steps is set
  std::string encoder;    // the encoder model; empty = the server's pick for the model
  int refine_steps = 0;
  int64_t seed = 0;
  int max_run_seconds = 0;
  bool pin = false;
  int priority = 0;  // claim order among queued jobs: higher first
  std::string request_id;
  std::string out = "out";
  std::vector<std::string> sets;
};
absl::Status Invert(const Connection& c, const InvertArgs& args);

struct PrepareGlobalArgs {
  std::string model, clip;
  int samples = 0, images = 0, batch = 0;
  bool recompute = false;
  std::string clamping;  // cumulative | independent; empty = the server's default
  std::optional<int> truncation_cutoff;
  int render_resolution = 0;
  int priority = 0;  // claim order among queued jobs: higher first
  std::string request_id;
  std::string out = "out";
  std::vector<std::string> sets;
};
// Computes a generator's StyleCLIP global-direction statistics (a job; progress bar).
absl::Status PrepareGlobal(const Connection& c, const PrepareGlobalArgs& args);

struct EditArgs {
  std::string model, render_model, seeds, latent_npy, inversion;
  std::string direction_npy, direction_space = "w";  // direction arithmetic instead of text
  std::string neutral, target, alphas;               // alphas empty: the server's default
  float beta = 0;                                    // 0: the server's default
  // StyleCLIP latent optimization toward --target instead of a global direction.
  bool optimize = false;
  int steps = 0;
  float lr = 0;
  std::optional<float> l2_lambda;
  std::string clip;       // CLIP model; empty = the server's StyleCLIP default
  std::string mapper;     // apply this latent mapper instead (strengths from alphas, default 1)
  float truncation = -1;  // < 0: the model's default
  std::string out = "out";
  std::vector<std::string> sets;
};
absl::Status Edit(const Connection& c, const EditArgs& args);

struct TrainMapperArgs {
  std::string model, text, output_name, clip;
  std::string mapper_type;  // levels | single; empty = the server's default
  bool no_coarse = false, no_medium = false, no_fine = false;
  int steps = 0, batch = 0, train_latents = 0, preview_count = 0;
  float lr = 0;
  std::optional<float> clip_lambda, latent_l2_lambda, id_lambda;
  std::vector<std::string> inversions;
  int64_t seed = 0;
  int max_run_seconds = 0;
  int priority = 0;  // claim order among queued jobs: higher first
  std::string request_id;
  std::string out = "out";
  std::vector<std::string> sets;
};
// Trains a StyleCLIP latent mapper (a job; progress bar). The server refuses the
// official identity-loss weight while it has no ArcFace network: unless --id-lambda is
// given, it is sent as 0 and the command says so.
absl::Status TrainMapper(const Connection& c, const TrainMapperArgs& args);

}  // namespace ganserve::client

#endif  // GANSERVE_CLIENT_REMOTE_H_
