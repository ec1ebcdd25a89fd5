#include "core/edit/global_directions.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/checkpoint/safetensors.h"
#include "core/io/image_codec.h"
#include "core/models/clip/preprocess.h"
#include "core/util/status_macros.h"

namespace ganserve::core::edit {
namespace {

using stylegan2::GenerateParams;
using stylegan2::LatentSpace;

constexpr char kStatsFormat[] = "ganserve-global-directions-v1";
constexpr char kCheckpointFormat[] = "ganserve-global-directions-checkpoint-v1";

void NormalizeRow(float* v, int64_t n) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double{v[i]} * v[i];
  const double inv = ss > 0 ? 1.0 / std::sqrt(ss) : 0.0;
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(v[i] * inv);
}

// unit(mean of unit rows) of a [T, D] tensor.
std::vector<float> MeanOfUnitRows(const FloatTensor& t) {
  const int64_t rows = t.shape[0], d = t.shape[1];
  std::vector<float> row(static_cast<size_t>(d));
  std::vector<double> acc(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(t.data.begin() + r * d, t.data.begin() + (r + 1) * d, row.begin());
    NormalizeRow(row.data(), d);
    for (int64_t j = 0; j < d; ++j) acc[j] += row[j];
  }
  std::vector<float> out(acc.begin(), acc.end());
  NormalizeRow(out.data(), d);
  return out;
}

// A double vector as two float32 tensors (high part and remainder), so checkpoints
// keep the running sums exactly enough.
void PutDoubles(const std::string& name, const std::vector<double>& v, std::map<std::string, FloatTensor>* out) {
  FloatTensor hi, lo;
  hi.shape = lo.shape = {static_cast<int64_t>(v.size())};
  for (double x : v) {
    const float h = static_cast<float>(x);
    hi.data.push_back(h);
    lo.data.push_back(static_cast<float>(x - h));
  }
  (*out)[name + ".hi"] = std::move(hi);
  (*out)[name + ".lo"] = std::move(lo);
}

absl::StatusOr<std::vector<double>> GetDoubles(const SafetensorsFile& f, const std::string& name, size_t n) {
  auto hi = f.tensors.find(name + ".hi");
  auto lo = f.tensors.find(name + ".lo");
  if (hi == f.tensors.end() || lo == f.tensors.end()) return absl::InvalidArgumentError("checkpoint lacks " + name);
  ASSIGN_OR_RETURN(FloatTensor h, ToFloatTensor(hi->second));
  ASSIGN_OR_RETURN(FloatTensor l, ToFloatTensor(lo->second));
  if (h.data.size() != n || l.data.size() != n) {
    return absl::InvalidArgumentError("checkpoint " + name + " size differs");
  }
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = double{h.data[i]} + double{l.data[i]};
  return out;
}

absl::StatusOr<FloatTensor> GetTensor(const SafetensorsFile& f, const std::string& name) {
  auto it = f.tensors.find(name);
  if (it == f.tensors.end()) return absl::InvalidArgumentError(absl::StrCat("'", name, "' is missing"));
  return ToFloatTensor(it->second);
}

}  // namespace

const char* ChannelClampingName(ChannelClamping c) {
  return c == ChannelClamping::kIndependent ? "independent" : "cumulative";
}

std::vector<int64_t> RelevanceChannels(const stylegan2::GeneratorConfig& c, int max_resolution) {
  std::vector<int64_t> out;
  int res = 4;
  for (const stylegan2::StyleLayer& l : c.style_layers) {
    if (l.upsample) res *= 2;
    if (!l.demodulate || res > max_resolution) continue;  // ToRGB, or above the limit
    for (int k = 0; k < l.in_channel; ++k) out.push_back(l.offset + k);
  }
  return out;
}

absl::Status CheckRenderResolution(const stylegan2::GeneratorConfig& c, const GlobalStatsOptions& o) {
  const int lowest = std::min(c.resolution, std::max(4, o.max_resolution));
  if (o.render_resolution != 0 && (o.render_resolution < lowest || o.render_resolution > c.resolution ||
                                   (o.render_resolution & (o.render_resolution - 1)) != 0)) {
    return absl::InvalidArgumentError(absl::StrCat("render_resolution must be a power of two in [", lowest, ", ",
                                                   c.resolution, "] (0 = the model's), got ", o.render_resolution));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<GlobalStatsBuilder>> GlobalStatsBuilder::Create(
    std::shared_ptr<const stylegan2::Generator> generator, std::shared_ptr<const clip::ClipModel> clip,
    GlobalStatsOptions o) {
  if (generator == nullptr || clip == nullptr) {
    return absl::InvalidArgumentError("a generator and a CLIP model are needed");
  }
  if (o.num_samples < 2 || o.num_samples > 10000000) {
    return absl::InvalidArgumentError("num_samples must be in [2, 1e7]");
  }
  if (o.num_images < 1 || o.num_images > o.num_samples) {
    return absl::InvalidArgumentError("num_images must be in [1, num_samples]");
  }
  if (o.batch_size < 2 || o.batch_size % 2 != 0 || o.batch_size > 256) {
    return absl::InvalidArgumentError("batch_size must be even, in [2, 256]");
  }
  if (o.sample_batch < 1) return absl::InvalidArgumentError("sample_batch must be >= 1");
  if (o.channel_stride < 1) return absl::InvalidArgumentError("channel_stride must be >= 1");
  if (!(o.alpha > 0) || !std::isfinite(o.alpha) || !std::isfinite(o.truncation)) {
    return absl::InvalidArgumentError("alpha must be > 0 and truncation finite");
  }
  RETURN_IF_ERROR(CheckRenderResolution(generator->config(), o));
  if (o.truncation_cutoff.has_value() &&
      (*o.truncation_cutoff < 1 || *o.truncation_cutoff > generator->config().n_latent)) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncation_cutoff must be in [1, ", generator->config().n_latent, "]"));
  }
  auto b = std::unique_ptr<GlobalStatsBuilder>(new GlobalStatsBuilder(std::move(generator), std::move(clip), o));
  if (b->channels_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no conv layer at or below ", o.max_resolution, " px"));
  }
  return b;
}

GlobalStatsBuilder::GlobalStatsBuilder(std::shared_ptr<const stylegan2::Generator> g,
                                       std::shared_ptr<const clip::ClipModel> c, GlobalStatsOptions o)
    : gen_(std::move(g)), clip_(std::move(c)), opt_(o), rng_(o.seed) {
  channels_ = RelevanceChannels(gen_->config(), opt_.max_resolution);
  if (opt_.channel_stride > 1) {
    std::vector<int64_t> kept;
    for (size_t i = 0; i < channels_.size(); i += static_cast<size_t>(opt_.channel_stride)) {
      kept.push_back(channels_[i]);
    }
    channels_ = std::move(kept);
  }
  s_dim_ = gen_->config().s_dim;
  embed_dim_ = clip_->config().embed_dim;
  sum_.assign(static_cast<size_t>(s_dim_), 0.0);
  sumsq_.assign(static_cast<size_t>(s_dim_), 0.0);
  pending_.assign(static_cast<size_t>(embed_dim_), 0.0);
}

int64_t GlobalStatsBuilder::SampleSteps() const {
  return (opt_.num_samples + opt_.sample_batch - 1) / opt_.sample_batch;
}
int64_t GlobalStatsBuilder::StepsPerChannel() const {
  return (2 * int64_t{opt_.num_images} + opt_.batch_size - 1) / opt_.batch_size;
}
int64_t GlobalStatsBuilder::TotalSteps(const stylegan2::GeneratorConfig& config, const GlobalStatsOptions& o) {
  const int64_t all = static_cast<int64_t>(RelevanceChannels(config, o.max_resolution).size());
  const int64_t channels = (all + std::max(1, o.channel_stride) - 1) / std::max(1, o.channel_stride);
  return (o.num_samples + o.sample_batch - 1) / o.sample_batch +
         channels * ((2 * int64_t{o.num_images} + o.batch_size - 1) / o.batch_size);
}

int64_t GlobalStatsBuilder::total_steps() const { return TotalSteps(gen_->config(), opt_); }

absl::StatusOr<std::map<std::string, float>> GlobalStatsBuilder::Step() {
  if (step_ >= total_steps()) return absl::FailedPreconditionError("all steps are done");
  std::map<std::string, float> out;
  if (step_ < SampleSteps()) {
    RETURN_IF_ERROR(SampleStep());
    out["samples"] = static_cast<float>(drawn_);
  } else {
    ASSIGN_OR_RETURN(float norm, RelevanceStep());
    if (norm >= 0) out["channel_norm"] = norm;
    const size_t rows = relevance_.size() / static_cast<size_t>(embed_dim_);
    out["channels_done"] = static_cast<float>(rows);
  }
  ++step_;
  return out;
}

absl::Status GlobalStatsBuilder::SampleStep() {
  const int sd = gen_->config().style_dim;
  const int64_t n = std::min<int64_t>(opt_.sample_batch, opt_.num_samples - drawn_);
  GenerateParams p;
  p.space = LatentSpace::kZ;
  p.truncation = opt_.truncation;
  p.return_s = true;
  p.render_images = false;
  p.latents.shape = {n, sd};
  p.latents.data = rng_.Randn(static_cast<size_t>(n * sd));
  if (opt_.truncation_cutoff.has_value()) {
    // Rows [0, cutoff) truncated, the rest as mapped, then S from that w+.
    const int nl = gen_->config().n_latent;
    p.return_s = false;
    p.return_wplus = true;
    ASSIGN_OR_RETURN(stylegan2::GenerateResult cut, gen_->Generate(p));
    p.truncation = 1.0f;
    ASSIGN_OR_RETURN(stylegan2::GenerateResult full, gen_->Generate(p));
    const int64_t rows_cut = int64_t{*opt_.truncation_cutoff} * sd;
    for (int64_t i = 0; i < n; ++i) {
      std::copy_n(cut.wplus.data.begin() + i * nl * sd, rows_cut, full.wplus.data.begin() + i * nl * sd);
    }
    p.space = LatentSpace::kWPlus;
    p.latents = std::move(full.wplus);
    p.return_wplus = false;
    p.return_s = true;
  }
  ASSIGN_OR_RETURN(stylegan2::GenerateResult r, gen_->Generate(p));
  for (int64_t i = 0; i < n; ++i) {
    const float* s = r.s.data.data() + i * s_dim_;
    for (int64_t j = 0; j < s_dim_; ++j) {
      sum_[j] += s[j];
      sumsq_[j] += double{s[j]} * s[j];
    }
    if (drawn_ + i < opt_.num_images) first_s_.data.insert(first_s_.data.end(), s, s + s_dim_);
  }
  drawn_ += n;
  if (drawn_ == opt_.num_samples) {
    first_s_.shape = {opt_.num_images, s_dim_};
    mean_.shape = std_.shape = {s_dim_};
    mean_.data.resize(static_cast<size_t>(s_dim_));
    std_.data.resize(static_cast<size_t>(s_dim_));
    for (int64_t j = 0; j < s_dim_; ++j) {
      const double m = sum_[j] / drawn_;
      mean_.data[j] = static_cast<float>(m);
      std_.data[j] = static_cast<float>(std::sqrt(std::max(0.0, sumsq_[j] / drawn_ - m * m)));  // population std
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<FloatTensor> GlobalStatsBuilder::EmbedImages(const FloatTensor& images) const {
  const int res = clip_->config().image_resolution;
  FloatTensor batch;
  batch.shape = {images.shape[0], 3, res, res};
  for (int64_t i = 0; i < images.shape[0]; ++i) {
    ASSIGN_OR_RETURN(Rgb8Image rgb, FloatToRgb8(images, i));
    FloatTensor x = clip::PreprocessForClip(rgb, res);
    batch.data.insert(batch.data.end(), x.data.begin(), x.data.end());
  }
  return clip_->EncodeImage(batch);
}

absl::StatusOr<float> GlobalStatsBuilder::RelevanceStep() {
  const int64_t k = step_ - SampleSteps();
  const int64_t ci = k / StepsPerChannel();
  const int64_t part = k % StepsPerChannel();
  const int64_t channel = channels_[static_cast<size_t>(ci)];
  const int64_t pairs_per_step = opt_.batch_size / 2;
  const int64_t first = part * pairs_per_step;
  const int64_t pairs = std::min<int64_t>(pairs_per_step, opt_.num_images - first);
  GenerateParams p;
  p.space = LatentSpace::kS;
  p.latents.shape = {2 * pairs, s_dim_};
  p.max_resolution = opt_.render_resolution;
  // The pair differs only in `channel`: the layers before its layer render once.
  p.prefix_group = 2;
  for (const stylegan2::StyleLayer& l : gen_->config().style_layers) {
    if (channel < l.offset + l.in_channel) break;
    ++p.prefix_layers;
  }
  const float m = mean_.data[channel], sd = std_.data[channel];
  // Cumulative clamping: every channel measured before this one stays at its mean.
  const size_t held = opt_.clamping == ChannelClamping::kCumulative ? static_cast<size_t>(ci) : 0;
  for (int64_t i = 0; i < pairs; ++i) {
    const float* s = first_s_.data.data() + (first + i) * s_dim_;
    for (float sign : {-1.0f, 1.0f}) {
      const size_t at = p.latents.data.size();
      p.latents.data.insert(p.latents.data.end(), s, s + s_dim_);
      for (size_t h = 0; h < held; ++h) p.latents.data[at + channels_[h]] = mean_.data[channels_[h]];
      p.latents.data[at + channel] = m + sign * opt_.alpha * sd;
    }
  }
  ASSIGN_OR_RETURN(stylegan2::GenerateResult r, gen_->Generate(p));
  ASSIGN_OR_RETURN(FloatTensor emb, EmbedImages(r.images));
  last_images_ = std::move(r.images);
  const int64_t d = embed_dim_;
  std::vector<float> minus(static_cast<size_t>(d)), plus(static_cast<size_t>(d));
  for (int64_t i = 0; i < pairs; ++i) {
    std::copy(emb.data.begin() + (2 * i) * d, emb.data.begin() + (2 * i + 1) * d, minus.begin());
    std::copy(emb.data.begin() + (2 * i + 1) * d, emb.data.begin() + (2 * i + 2) * d, plus.begin());
    NormalizeRow(minus.data(), d);
    NormalizeRow(plus.data(), d);
    for (int64_t j = 0; j < d; ++j) plus[j] -= minus[j];
    NormalizeRow(plus.data(), d);
    for (int64_t j = 0; j < d; ++j) pending_[j] += plus[j];
  }
  if (part + 1 < StepsPerChannel()) return -1.0f;
  // Channel finished: mean over images, normalised.
  std::vector<float> row(static_cast<size_t>(d));
  double ss = 0;
  for (int64_t j = 0; j < d; ++j) {
    row[j] = static_cast<float>(pending_[j] / opt_.num_images);
    ss += double{row[j]} * row[j];
  }
  NormalizeRow(row.data(), d);
  relevance_.insert(relevance_.end(), row.begin(), row.end());
  std::fill(pending_.begin(), pending_.end(), 0.0);
  return static_cast<float>(std::sqrt(ss));
}

absl::StatusOr<FloatTensor> GlobalStatsBuilder::Preview() const {
  if (!last_images_.shape.empty()) return last_images_;
  GenerateParams p;
  p.latents.shape = {2, gen_->config().style_dim};
  NumpyRandomState rng(opt_.seed);
  p.latents.data = rng.Randn(2 * static_cast<size_t>(gen_->config().style_dim));
  p.truncation = opt_.truncation;
  ASSIGN_OR_RETURN(stylegan2::GenerateResult r, gen_->Generate(p));
  return r.images;
}

// Everything that shapes the result, so a checkpoint resumes only the same computation.
std::string GlobalStatsBuilder::OptionsKey() const {
  std::string key = absl::StrCat(opt_.num_samples, ",", opt_.num_images, ",", opt_.alpha, ",", opt_.truncation, ",",
                                 opt_.seed, ",", opt_.max_resolution, ",", opt_.batch_size, ",", opt_.sample_batch);
  absl::StrAppend(&key, ",", ChannelClampingName(opt_.clamping), ",", opt_.truncation_cutoff.value_or(-1));
  if (opt_.render_resolution != 0) absl::StrAppend(&key, ",render ", opt_.render_resolution);
  if (opt_.channel_stride != 1) absl::StrAppend(&key, ",stride ", opt_.channel_stride);
  return key;
}

absl::Status GlobalStatsBuilder::SaveCheckpoint(const std::string& path) const {
  std::map<std::string, FloatTensor> t;
  PutDoubles("sum", sum_, &t);
  PutDoubles("sumsq", sumsq_, &t);
  PutDoubles("pending", pending_, &t);
  if (!first_s_.data.empty()) {
    t["first_s"] = FloatTensor{{static_cast<int64_t>(first_s_.data.size()) / s_dim_, s_dim_}, first_s_.data};
  }
  if (!mean_.data.empty()) {
    t["mean"] = mean_;
    t["std"] = std_;
  }
  if (!relevance_.empty()) {
    t["relevance"] = FloatTensor{{static_cast<int64_t>(relevance_.size()) / embed_dim_, embed_dim_}, relevance_};
  }
  return SaveSafetensors(path, t,
                         {{"format", kCheckpointFormat},
                          {"step", std::to_string(step_)},
                          {"drawn", std::to_string(drawn_)},
                          {"options", OptionsKey()}});
}

absl::Status GlobalStatsBuilder::RestoreCheckpoint(const std::string& path) {
  ASSIGN_OR_RETURN(SafetensorsFile f, LoadSafetensors(path));
  const std::string options = OptionsKey();
  int64_t step = 0, drawn = 0;
  if (f.metadata["format"] != kCheckpointFormat || !absl::SimpleAtoi(f.metadata["step"], &step) ||
      !absl::SimpleAtoi(f.metadata["drawn"], &drawn) || f.metadata["options"] != options || step < 0 ||
      step > total_steps() || drawn < 0 || drawn > opt_.num_samples) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a checkpoint of these statistics"));
  }
  ASSIGN_OR_RETURN(sum_, GetDoubles(f, "sum", static_cast<size_t>(s_dim_)));
  ASSIGN_OR_RETURN(sumsq_, GetDoubles(f, "sumsq", static_cast<size_t>(s_dim_)));
  ASSIGN_OR_RETURN(pending_, GetDoubles(f, "pending", static_cast<size_t>(embed_dim_)));
  first_s_ = {};
  if (f.tensors.count("first_s") != 0) {
    ASSIGN_OR_RETURN(first_s_, GetTensor(f, "first_s"));
    if (first_s_.shape.size() != 2 || first_s_.shape[1] != s_dim_) return absl::InvalidArgumentError("bad first_s");
  }
  mean_ = std_ = {};
  if (f.tensors.count("mean") != 0) {
    ASSIGN_OR_RETURN(mean_, GetTensor(f, "mean"));
    ASSIGN_OR_RETURN(std_, GetTensor(f, "std"));
  }
  relevance_.clear();
  if (f.tensors.count("relevance") != 0) {
    ASSIGN_OR_RETURN(FloatTensor rel, GetTensor(f, "relevance"));
    relevance_ = std::move(rel.data);
  }
  // The z stream continues where it stopped.
  rng_ = NumpyRandomState(opt_.seed);
  const int sd = gen_->config().style_dim;
  for (int64_t i = 0; i < drawn; ++i) rng_.Randn(static_cast<size_t>(sd));
  drawn_ = drawn;
  step_ = step;
  const int64_t done_channels = step > SampleSteps() ? (step - SampleSteps()) / StepsPerChannel() : 0;
  if (static_cast<int64_t>(relevance_.size()) != done_channels * embed_dim_ ||
      (step > SampleSteps() &&
       (mean_.data.empty() || first_s_.shape.empty() || first_s_.shape[0] != opt_.num_images))) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is inconsistent with its step count"));
  }
  return absl::OkStatus();
}

absl::StatusOr<GlobalStats> GlobalStatsBuilder::Result() const {
  if (step_ < total_steps()) {
    return absl::FailedPreconditionError(absl::StrCat("statistics are at step ", step_, " of ", total_steps()));
  }
  GlobalStats s;
  s.s_mean = mean_;
  s.s_std = std_;
  s.channels = channels_;
  s.relevance = FloatTensor{{static_cast<int64_t>(channels_.size()), embed_dim_}, relevance_};
  s.num_samples = opt_.num_samples;
  s.num_images = opt_.num_images;
  s.alpha = opt_.alpha;
  s.clamping = ChannelClampingName(opt_.clamping);
  s.truncation_cutoff = opt_.truncation_cutoff.value_or(-1);
  s.render_resolution = opt_.render_resolution;
  return s;
}

absl::Status SaveGlobalStats(const std::string& path, const GlobalStats& s, const std::string& model,
                             const std::string& clip_model) {
  FloatTensor channels;
  channels.shape = {static_cast<int64_t>(s.channels.size())};
  for (int64_t c : s.channels) channels.data.push_back(static_cast<float>(c));
  return SaveSafetensors(path,
                         {{"s_mean", s.s_mean}, {"s_std", s.s_std}, {"channels", channels}, {"relevance", s.relevance}},
                         {{"format", kStatsFormat},
                          {"model", model},
                          {"clip_model", clip_model},
                          {"num_samples", std::to_string(s.num_samples)},
                          {"num_images", std::to_string(s.num_images)},
                          {"alpha", absl::StrCat(s.alpha)},
                          {"clamping", s.clamping},
                          {"truncation_cutoff", std::to_string(s.truncation_cutoff)},
                          {"render_resolution", std::to_string(s.render_resolution)}});
}

absl::StatusOr<GlobalStats> LoadGlobalStats(const std::string& path) {
  ASSIGN_OR_RETURN(SafetensorsFile f, LoadSafetensors(path));
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not global-direction statistics (", why, ")"));
  };
  if (f.metadata["format"] != kStatsFormat) return bad("format");
  GlobalStats s;
  auto get = [&](const char* name) { return GetTensor(f, name); };
  ASSIGN_OR_RETURN(s.s_mean, get("s_mean"));
  ASSIGN_OR_RETURN(s.s_std, get("s_std"));
  ASSIGN_OR_RETURN(FloatTensor channels, get("channels"));
  ASSIGN_OR_RETURN(s.relevance, get("relevance"));
  if (s.s_mean.shape.size() != 1 || s.s_std.shape != s.s_mean.shape || channels.shape.size() != 1 ||
      s.relevance.shape.size() != 2 || s.relevance.shape[0] != channels.shape[0]) {
    return bad("shapes");
  }
  for (float c : channels.data) {
    if (!(c >= 0) || c >= static_cast<float>(s.s_mean.shape[0]) || c != std::floor(c)) return bad("channel index");
    s.channels.push_back(static_cast<int64_t>(c));
  }
  // Descriptive metadata: absent or unreadable values stay 0.
  if (!absl::SimpleAtoi(f.metadata["num_samples"], &s.num_samples)) s.num_samples = 0;
  if (!absl::SimpleAtoi(f.metadata["num_images"], &s.num_images)) s.num_images = 0;
  if (!absl::SimpleAtof(f.metadata["alpha"], &s.alpha)) s.alpha = 0;
  s.clamping = f.metadata["clamping"];
  if (!absl::SimpleAtoi(f.metadata["truncation_cutoff"], &s.truncation_cutoff)) s.truncation_cutoff = -1;
  if (!absl::SimpleAtoi(f.metadata["render_resolution"], &s.render_resolution)) s.render_resolution = 0;
  return s;
}

FloatTensor TextDirection(const FloatTensor& neutral, const FloatTensor& target) {
  std::vector<float> n = MeanOfUnitRows(neutral), t = MeanOfUnitRows(target);
  FloatTensor out;
  out.shape = {static_cast<int64_t>(t.size())};
  for (size_t j = 0; j < t.size(); ++j) out.data.push_back(t[j] - n[j]);
  NormalizeRow(out.data.data(), out.shape[0]);
  return out;
}

absl::StatusOr<GlobalDirection> MakeGlobalDirection(const GlobalStats& s, const FloatTensor& dt, float beta) {
  const int64_t d = s.relevance.shape[1];
  if (dt.numel() != d) {
    return absl::InvalidArgumentError(absl::StrCat("the text direction has ", dt.numel(),
                                                   " values; the statistics' CLIP "
                                                   "model has ",
                                                   d));
  }
  const size_t rows = s.channels.size();
  std::vector<float> r(rows);
  GlobalDirection g;
  for (size_t i = 0; i < rows; ++i) {
    double acc = 0;
    const float* row = s.relevance.data.data() + i * d;
    for (int64_t j = 0; j < d; ++j) acc += double{row[j]} * dt.data[j];
    r[i] = static_cast<float>(acc);
    g.max_relevance = std::max(g.max_relevance, std::fabs(r[i]));
  }
  float kept_max = 0;
  for (float& v : r) {
    if (std::fabs(v) < beta) {
      v = 0;
    } else {
      ++g.channels_moved;
      kept_max = std::max(kept_max, std::fabs(v));
    }
  }
  g.delta_s.shape = {1, s.s_mean.shape[0]};
  g.delta_s.data.assign(static_cast<size_t>(s.s_mean.shape[0]), 0.0f);
  if (kept_max > 0) {
    for (size_t i = 0; i < rows; ++i) {
      g.delta_s.data[static_cast<size_t>(s.channels[i])] = r[i] / kept_max * s.s_std.data[s.channels[i]];
    }
  }
  return g;
}

}  // namespace ganserve::core::edit
