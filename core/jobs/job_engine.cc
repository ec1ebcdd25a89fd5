#include "core/jobs/job_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "core/io/image_codec.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace ganserve::core {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* TypeName(JobEvent::Type t) {
  switch (t) {
    case JobEvent::Type::kState: return "state";
    case JobEvent::Type::kProgress: return "progress";
    case JobEvent::Type::kPreview: return "preview";
    case JobEvent::Type::kHeartbeat: return "heartbeat";
  }
  return "state";
}

JobEvent::Type TypeOf(const std::string& name) {
  for (auto t : {JobEvent::Type::kProgress, JobEvent::Type::kPreview, JobEvent::Type::kHeartbeat}) {
    if (name == TypeName(t)) return t;
  }
  return JobEvent::Type::kState;
}

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

absl::StatusOr<std::vector<EncodedImage>> EncodeAll(const FloatTensor& batch) {
  std::vector<EncodedImage> out;
  if (batch.shape.size() != 4) return out;
  for (int64_t i = 0; i < batch.shape[0]; ++i) {
    ASSIGN_OR_RETURN(Rgb8Image rgb, FloatToRgb8(batch, i));
    ASSIGN_OR_RETURN(std::string png, EncodePng(rgb));
    out.push_back({std::move(png), rgb.width, rgb.height});
  }
  return out;
}

}  // namespace

JobEngine::JobEngine(Options options, JobStore* store, DeviceExecutor* executor, Encoder encoder)
    : options_(std::move(options)), store_(store), executor_(executor), encoder_(std::move(encoder)) {}

JobEngine::~JobEngine() { Shutdown(); }

void JobEngine::RegisterFactory(JobKind kind, RunnerFactory factory) { factories_[kind] = std::move(factory); }

std::string JobEngine::CheckpointPath(const std::string& id) const {
  return (std::filesystem::path(options_.checkpoint_dir) / (id + ".ckpt.safetensors")).string();
}

absl::Status JobEngine::Options::Leases::Validate() const {
  if (!enabled) return absl::OkStatus();
  if (worker.empty()) return absl::InvalidArgumentError("leases need a worker name (--worker_id)");
  if (!(lease_seconds > 0) || !(renew_seconds > 0) || !(poll_seconds > 0)) {
    return absl::InvalidArgumentError("--lease_seconds, --lease_renew_seconds and --job_poll_seconds must be > 0");
  }
  if (renew_seconds >= lease_seconds) {
    return absl::InvalidArgumentError(absl::StrCat("--lease_renew_seconds (", renew_seconds,
                                                   ") must be shorter than --lease_seconds (", lease_seconds,
                                                   "): a lease must be renewed before it expires"));
  }
  if (max_attempts < 1) return absl::InvalidArgumentError("--job_max_attempts must be >= 1");
  if (retry_backoff_seconds < 0) return absl::InvalidArgumentError("--job_retry_backoff_seconds must be >= 0");
  return absl::OkStatus();
}

absl::Status JobEngine::Start() {
  RETURN_IF_ERROR(MakeDirs(options_.checkpoint_dir));
  RETURN_IF_ERROR(options_.leases.Validate());
  if (options_.leases.enabled) {
    thread_ = std::thread([this] { ClaimLoop(); });
    heartbeat_thread_ = std::thread([this] { Heartbeats(); });
    lease_thread_ = std::thread([this] { RenewLeases(); });
    if (options_.leases.announcements && options_.leases.claims && store_->announces_changes()) {
      announce_thread_ = std::thread([this] { FollowAnnouncements(); });
    }
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::vector<JobRecord> open, store_->ListUnfinished());
  for (JobRecord& job : open) {
    if (job.state == JobState::kRunning && !std::filesystem::exists(CheckpointPath(job.id)) &&
        (options_.shared == nullptr || job.checkpoint.empty())) {
      job.state = JobState::kFailed;
      job.end_time_ms = NowMs();
      job.error_code = static_cast<int>(absl::StatusCode::kAborted);
      job.error_message =
          "the server restarted while this job was running, before its first checkpoint; submit it again";
      Emit(job, JobEvent::Type::kState).IgnoreError();
      continue;
    }
    absl::MutexLock lock(&mu_);
    // Queued jobs run; the one that was running resumes from its checkpoint, first.
    if (job.state == JobState::kRunning) {
      queue_.push_front({job.id, job.priority});
    } else {
      Enqueue(job);
    }
  }
  thread_ = std::thread([this] { Loop(); });
  heartbeat_thread_ = std::thread([this] { Heartbeats(); });
  return absl::OkStatus();
}

void JobEngine::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  if (lease_thread_.joinable()) lease_thread_.join();
  if (announce_thread_.joinable()) announce_thread_.join();
}

void JobEngine::Enqueue(const JobRecord& job) {
  auto after = std::find_if(queue_.begin(), queue_.end(), [&](const Queued& q) { return q.priority < job.priority; });
  queue_.insert(after, {job.id, job.priority});
}

size_t JobEngine::queue_depth() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

absl::StatusOr<std::optional<JobRecord>> JobEngine::FindRetry(const std::string& request_id,
                                                              const std::string& request_hash,
                                                              const std::string& legacy_hash) {
  if (request_id.empty()) return std::optional<JobRecord>();
  ASSIGN_OR_RETURN(std::optional<JobRecord> prior, store_->FindByRequestId(request_id));
  if (!prior) return prior;
  const bool same = prior->request_hash == request_hash || (!legacy_hash.empty() && prior->request_hash == legacy_hash);
  if (!same) {
    return absl::AlreadyExistsError(absl::StrCat("request_id '", request_id, "' was used for job ", prior->id,
                                                 " with a different request; use a new request_id"));
  }
  ASSIGN_OR_RETURN(JobRecord job, Get(prior->id));
  return std::optional<JobRecord>(std::move(job));
}

absl::StatusOr<JobRecord> JobEngine::Submit(JobRecord job, bool* existed) {
  if (existed != nullptr) *existed = false;
  ASSIGN_OR_RETURN(std::optional<JobRecord> prior, FindRetry(job.request_id, job.request_hash));
  if (prior) {
    if (existed != nullptr) *existed = true;
    return *std::move(prior);
  }
  if (factories_.count(job.kind) == 0) {
    return absl::UnimplementedError(absl::StrCat("jobs of kind ", JobKindName(job.kind), " are not supported"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the server is shutting down; retry on another replica");
  }
  size_t queued = 0;
  if (options_.leases.enabled) {  // the queue is the store's, shared by every replica
    ASSIGN_OR_RETURN(const int64_t n, store_->CountQueued());
    queued = static_cast<size_t>(n);
  } else {
    absl::MutexLock lock(&mu_);
    queued = queue_.size();
  }
  if (queued >= options_.max_queued) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the job queue is full (", options_.max_queued, " waiting); retry later"));
  }
  job.state = JobState::kQueued;
  job.create_time_ms = NowMs();
  RETURN_IF_ERROR(store_->CreateJob(job));
  // The QUEUED event goes out before the scheduler can see the job, so it is seq 1. With
  // leases another replica may claim the job first: then its RUNNING event is seq 1 and
  // this write (at epoch 0) is refused rather than turning the job back to QUEUED.
  Emit(job, JobEvent::Type::kState).IgnoreError();
  size_t depth;
  {
    absl::MutexLock lock(&mu_);
    if (options_.leases.enabled) {
      wake_ = true;
      depth = queued + 1;
    } else {
      Enqueue(job);
      depth = queue_.size();
    }
  }
  if (options_.observer != nullptr) options_.observer->OnJobsQueued(depth);
  return Get(job.id);
}

absl::StatusOr<JobRecord> JobEngine::Get(const std::string& id) {
  ASSIGN_OR_RETURN(JobRecord job, store_->GetJob(id));
  if (options_.leases.enabled) {
    // The queue is the store's: claims take the oldest queued job first.
    if (job.state == JobState::kQueued) {
      absl::StatusOr<int64_t> before = store_->CountQueuedBefore(job);
      if (before.ok()) job.queue_position = static_cast<int>(*before) + 1;
    }
    return job;
  }
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < queue_.size(); ++i) {
    if (queue_[i].id == id && job.state == JobState::kQueued) job.queue_position = static_cast<int>(i) + 1;
  }
  return job;
}

absl::StatusOr<JobRecord> JobEngine::Cancel(const std::string& id) {
  ASSIGN_OR_RETURN(JobRecord job, store_->GetJob(id));
  if (IsTerminal(job.state)) return job;
  if (options_.leases.enabled) {
    // Atomic against claims: a queued job ends here; a running one, wherever it runs, at
    // its holder's next lease renewal (at once when it runs here).
    ASSIGN_OR_RETURN(JobRecord now, store_->RequestCancel(id));
    {
      absl::MutexLock lock(&mu_);
      if (running_id_ == id) cancel_running_ = true;
    }
    if (job.state == JobState::kQueued && now.state == JobState::kCancelled) {
      Emit(now, JobEvent::Type::kState).IgnoreError();
    }
    return now;
  }
  bool dequeued = false;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (it->id == id) {
        queue_.erase(it);
        dequeued = true;
        break;
      }
    }
    if (running_id_ == id) cancel_running_ = true;
  }
  job.cancel_requested = true;
  if (dequeued || job.state == JobState::kQueued) {
    job.state = JobState::kCancelled;
    job.end_time_ms = NowMs();
  }
  Emit(job, JobEvent::Type::kState).IgnoreError();
  return job;
}

int64_t JobEngine::Subscribe(const std::string& job_id, Listener listener) {
  int64_t stored_seq = 0;
  if (options_.leases.enabled) {  // the caller replays up to here from the store
    if (auto job = store_->GetJob(job_id); job.ok()) stored_seq = job->last_seq;
  }
  absl::MutexLock lock(&mu_);
  const int64_t token = next_token_++;
  listeners_[token] = {job_id, std::move(listener), stored_seq};
  return token;
}

void JobEngine::Unsubscribe(int64_t token) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(token);
}

absl::Status JobEngine::Emit(JobRecord& job, JobEvent::Type type, JobEvent ev) {
  ev.type = type;
  ev.time_ms = NowMs();
  // Events of one job may come from two threads (the scheduler and a CancelJob call):
  // serialise store writes and fan-out, and take the seq from the store, so that each
  // payload carries the seq it is stored under and listeners see seqs in order.
  absl::MutexLock emit_lock(&emit_mu_);
  if (type != JobEvent::Type::kHeartbeat) {
    if (auto cur = store_->GetJob(job.id); cur.ok()) job.last_seq = cur->last_seq;
    ev.seq = job.last_seq + 1;
    ev.job = job;
    ev.job.last_seq = ev.seq;
    auto seq = store_->AppendEvent(job, TypeName(type), encoder_(ev), ev.time_ms);
    if (!seq.ok()) return seq.status();  // the store is the source of truth: a failed write is not fanned out
    ev.seq = *seq;
  } else {
    ev.seq = job.last_seq;
    ev.job = job;
  }
  if (type == JobEvent::Type::kState && IsTerminal(job.state) && options_.observer != nullptr) {
    const int64_t from = job.start_time_ms > 0 ? job.start_time_ms : job.create_time_ms;
    options_.observer->OnJobEnded(job.kind, job.state, std::max<int64_t>(0, job.end_time_ms - from) / 1000.0);
    options_.observer->OnJobFinished(ev.job);
  }
  std::vector<Listener> targets;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [token, l] : listeners_) {
      if (l.job_id != job.id) continue;
      targets.push_back(l.listener);
      // Given live right after what it has: the store tail need not hand it over again
      // (after a gap, other replicas' events in between still come from the store).
      if (type != JobEvent::Type::kHeartbeat && ev.seq == l.stored_seq + 1) l.stored_seq = ev.seq;
    }
  }
  for (const auto& l : targets) l(ev);
  return absl::OkStatus();
}

void JobEngine::FollowAnnouncements() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    if (!store_->AwaitChange(options_.leases.poll_seconds)) continue;
    absl::MutexLock lock(&mu_);
    wake_ = true;
  }
}

void JobEngine::Heartbeats() {
  // With leases the thread also tails the store for other replicas' events, more often.
  const double tick = options_.leases.enabled ? std::min(options_.heartbeat_seconds, options_.leases.poll_seconds)
                                              : options_.heartbeat_seconds;
  auto last_beat = std::chrono::steady_clock::now();
  for (;;) {
    std::vector<std::string> ids;
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop), absl::Seconds(tick))) return;
    }
    if (options_.leases.enabled) TailStoredEvents();
    const auto now = std::chrono::steady_clock::now();
    if (now < last_beat + std::chrono::duration<double>(options_.heartbeat_seconds)) continue;
    last_beat = now;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [token, l] : listeners_) ids.push_back(l.job_id);
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (const auto& id : ids) {
      auto job = store_->GetJob(id);
      if (job.ok()) Emit(*job, JobEvent::Type::kHeartbeat).IgnoreError();
    }
  }
}

void JobEngine::TailStoredEvents() {
  std::map<std::string, int64_t> after;  // job -> the lowest cursor of its subscribers
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [token, sub] : listeners_) {
      if (sub.job_id == running_id_) continue;  // its events go out live from here
      auto it = after.find(sub.job_id);
      if (it == after.end() || sub.stored_seq < it->second) after[sub.job_id] = sub.stored_seq;
    }
  }
  for (const auto& [id, from] : after) {
    auto events = store_->ListEvents(id, from, 1000);
    if (!events.ok() || events->empty()) continue;
    for (const JobEventRecord& rec : *events) {
      JobEvent ev;
      ev.type = TypeOf(rec.type);
      ev.seq = rec.seq;
      ev.time_ms = rec.time_ms;
      ev.stored = rec.payload;
      std::vector<std::pair<int64_t, Listener>> targets;
      {
        absl::MutexLock lock(&mu_);
        for (auto& [token, sub] : listeners_) {
          if (sub.job_id != id || sub.stored_seq >= rec.seq) continue;
          sub.stored_seq = rec.seq;
          targets.emplace_back(token, sub.listener);
        }
      }
      for (const auto& [token, l] : targets) l(ev);
    }
  }
}

void JobEngine::RenewLeases() {
  const Options::Leases& leases = options_.leases;
  std::string renewing;
  auto last_renewal = std::chrono::steady_clock::now();
  while (true) {
    std::string id;
    int64_t epoch = 0;
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop), absl::Seconds(leases.renew_seconds))) return;
      id = running_id_;
      epoch = running_epoch_;
    }
    if (id.empty()) continue;
    if (id != renewing) {  // a new claim: the claim itself was the last renewal
      renewing = id;
      last_renewal = std::chrono::steady_clock::now();
    }
    auto beat = store_->Heartbeat(id, epoch, leases.lease_seconds);
    absl::MutexLock lock(&mu_);
    if (running_id_ != id || running_epoch_ != epoch) continue;
    if (beat.ok()) {
      last_renewal = std::chrono::steady_clock::now();
      if (beat->cancel_requested) cancel_running_ = true;
    } else if (IsLeaseLost(beat.status())) {
      lease_lost_ = true;
    } else if (SecondsSince(last_renewal) > leases.lease_seconds) {
      // The store did not answer for a whole lease: another replica may hold the job by
      // now, so this one stops it (its writes would be refused anyway).
      spdlog::warn("job {}: the lease could not be renewed for {} s ({}); stopping it here", id, leases.lease_seconds,
                   beat.status().ToString());
      lease_lost_ = true;
    }
  }
}

void JobEngine::LookAfterTheQueue() {
  if (auto queued = store_->CountQueued(); queued.ok() && options_.observer != nullptr) {
    options_.observer->OnJobsQueued(static_cast<size_t>(*queued));  // the shared queue, as every replica sees it
  }
  auto reaped = store_->ReapExpiredLeases(options_.leases.max_attempts, options_.leases.retry_backoff_seconds);
  if (!reaped.ok()) spdlog::warn("reaping expired job leases failed: {}", reaped.status().ToString());
  for (JobRecord& j : reaped.ok() ? *reaped : std::vector<JobRecord>()) {
    spdlog::warn("job {}: its worker's lease expired after attempt {}; {}", j.id, j.attempt,
                 j.state == JobState::kQueued ? "queued again" : "failed");
    Emit(j, JobEvent::Type::kState).IgnoreError();
  }
}

void JobEngine::ClaimLoop() {
  const Options::Leases& leases = options_.leases;
  const auto poll = std::chrono::duration<double>(leases.poll_seconds);
  auto last_look = std::chrono::steady_clock::now() - poll;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || wake_; };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(leases.poll_seconds));
      if (stopping_) return;
      wake_ = false;
    }
    // The queue's depth and the reaper once per poll period, however often a job
    // submitted or announced wakes the loop for a claim.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_look >= poll) {
      last_look = now;
      LookAfterTheQueue();
    }
    if (!leases.claims) continue;
    auto claimed = store_->ClaimNext(leases.worker, leases.lease_seconds, leases.kinds);
    if (!claimed.ok()) {
      spdlog::warn("claiming a job failed: {}", claimed.status().ToString());
      continue;
    }
    if (!claimed->has_value()) continue;
    JobRecord job = **std::move(claimed);
    {
      absl::MutexLock lock(&mu_);
      running_id_ = job.id;
      running_epoch_ = job.lease_epoch;
      cancel_running_ = job.cancel_requested;
      lease_lost_ = false;
    }
    RunJob(std::move(job));
    absl::MutexLock lock(&mu_);
    running_id_.clear();
    running_epoch_ = 0;
    wake_ = true;  // look for the next job at once
  }
}

absl::Status JobEngine::RunOnExecutor(const std::function<absl::Status()>& fn) {
  auto done = std::make_shared<absl::Notification>();
  auto result = std::make_shared<absl::Status>();
  absl::Status submitted = executor_->Submit(WorkClass::kTraining, [fn, done, result](bool dropped) {
    *result = dropped ? absl::UnavailableError("the device executor shut down") : fn();
    done->Notify();
  });
  if (!submitted.ok()) return submitted;
  done->WaitForNotification();
  return *result;
}

void JobEngine::Loop() {
  while (true) {
    std::string id;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      id = queue_.front().id;
      queue_.pop_front();
      running_id_ = id;
      cancel_running_ = false;
      if (options_.observer != nullptr) options_.observer->OnJobsQueued(queue_.size());
    }
    auto job = store_->GetJob(id);
    if (job.ok() && !IsTerminal(job->state)) RunJob(*job);
    absl::MutexLock lock(&mu_);
    running_id_.clear();
  }
}

absl::Status JobEngine::SaveCheckpoint(JobRecord& job, JobRunner& runner, const std::string& path) {
  RETURN_IF_ERROR(RunOnExecutor([&] { return runner.SaveCheckpoint(path); }));
  if (options_.shared == nullptr) return absl::OkStatus();
  absl::StatusOr<std::string> sha = options_.shared->PutBlob(path);
  if (!sha.ok()) {
    spdlog::warn(
        "job {}: the checkpoint at step {} did not reach {}: {}; the job goes on (a replica taking it over "
        "resumes from the previous one)",
        job.id, job.step, options_.shared->url(), sha.status().ToString());
    return absl::OkStatus();
  }
  // The file is whole in the store before the record points at it. Serialised with the
  // event writes (they write the whole record), on the newest seq.
  absl::MutexLock emit_lock(&emit_mu_);
  if (auto cur = store_->GetJob(job.id); cur.ok()) job.last_seq = cur->last_seq;
  const std::string previous = job.checkpoint;
  job.checkpoint = *sha;
  absl::Status st = store_->UpdateJob(job);
  if (st.ok()) return st;
  job.checkpoint = previous;
  if (IsLeaseLost(st)) return st;
  spdlog::warn("job {}: the pointer to its checkpoint at step {} was not stored: {}; the job goes on", job.id, job.step,
               st.ToString());
  return absl::OkStatus();
}

void JobEngine::FetchCheckpoint(const JobRecord& job, const std::string& path) {
  if (options_.shared == nullptr || job.checkpoint.empty()) return;
  absl::Status st = options_.shared->GetBlob(job.checkpoint, path);
  if (!st.ok()) {
    spdlog::warn("job {}: cannot fetch its checkpoint {} from {}: {}", job.id, job.checkpoint.substr(0, 12),
                 options_.shared->url(), st.ToString());
  }
}

void JobEngine::RunJob(JobRecord job) {
  auto fail = [&](const absl::Status& s) {
    spdlog::warn("job {} failed: {}", job.id, s.ToString());
    job.state = JobState::kFailed;
    job.end_time_ms = NowMs();
    job.error_code = static_cast<int>(s.code());
    job.error_message = std::string(s.message());
    job.eta_seconds = 0;
    Emit(job, JobEvent::Type::kState).IgnoreError();
  };
  // With leases: a write refused because the lease moved on ends the job here, silently
  // (its new holder publishes).
  auto lost = [&](const absl::Status& s) {
    if (!IsLeaseLost(s)) return false;
    spdlog::warn("job {}: {}; stopping it here without publishing", job.id, std::string(s.message()));
    return true;
  };
  auto factory = factories_.find(job.kind);
  if (factory == factories_.end()) return fail(absl::UnimplementedError("no runner for this job kind"));
  job.state = JobState::kRunning;
  if (job.start_time_ms == 0) job.start_time_ms = NowMs();
  if (lost(Emit(job, JobEvent::Type::kState))) return;

  std::unique_ptr<JobRunner> runner;
  const std::string ckpt = CheckpointPath(job.id);
  FetchCheckpoint(job, ckpt);
  absl::Status made = RunOnExecutor([&]() -> absl::Status {
    ASSIGN_OR_RETURN(runner, factory->second(job));
    if (std::filesystem::exists(ckpt)) RETURN_IF_ERROR(runner->RestoreCheckpoint(ckpt));
    return absl::OkStatus();
  });
  if (!made.ok()) return fail(made);
  job.total_steps = runner->total_steps();
  job.step = runner->step();
  if (job.step > 0) {
    spdlog::info("job {} resuming from its checkpoint at step {} of {}", job.id, job.step, job.total_steps);
  } else if (job.attempt > 1) {
    spdlog::info("job {} (attempt {}) starts over: no checkpoint of it on this replica", job.id, job.attempt);
  } else {
    spdlog::info("job {} ({}) started: {} steps", job.id, JobKindName(job.kind), job.total_steps);
  }

  const int64_t max_run = job.max_run_seconds > 0 ? job.max_run_seconds : options_.default_max_run_seconds;
  const auto t_start = std::chrono::steady_clock::now();
  const int64_t first_step = job.step;
  const int64_t preview_every = job.preview_every > 0 ? job.preview_every : options_.preview_every;
  bool source_sent = false;
  while (runner->step() < runner->total_steps()) {
    bool cancel, stop, gone;
    {
      absl::MutexLock lock(&mu_);
      cancel = cancel_running_;
      stop = stopping_;
      gone = lease_lost_;
    }
    if (gone) return (void)lost(LeaseLost(job.id, job.lease_epoch));
    if (stop) {
      // Leave the job RUNNING with a fresh checkpoint: the next start resumes it. With
      // leases, the lease ends now, so another replica takes the job over at once.
      if (lost(SaveCheckpoint(job, *runner, ckpt))) return;
      if (options_.leases.enabled) store_->Heartbeat(job.id, job.lease_epoch, 0).IgnoreError();
      return;
    }
    if (cancel) {
      job.state = JobState::kCancelled;
      job.cancel_requested = true;
      job.end_time_ms = NowMs();
      job.eta_seconds = 0;
      if (lost(Emit(job, JobEvent::Type::kState))) return;
      std::filesystem::remove(ckpt);
      return;
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    if (elapsed > static_cast<double>(max_run)) {
      return fail(
          absl::DeadlineExceededError(absl::StrCat("the job ran past its max_run_seconds (", max_run, " s) at step ",
                                                   runner->step(), " of ", runner->total_steps())));
    }
    std::map<std::string, float> losses;
    std::string phase;
    const auto t_step = std::chrono::steady_clock::now();
    absl::Status st = RunOnExecutor([&]() -> absl::Status {
      phase = runner->phase();
      ASSIGN_OR_RETURN(losses, runner->Step());
      return absl::OkStatus();
    });
    if (st.ok() && options_.observer != nullptr) {
      options_.observer->OnStep(job.kind,
                                std::chrono::duration<double>(std::chrono::steady_clock::now() - t_step).count());
    }
    if (!st.ok()) return fail(st);
    for (const auto& [k, v] : losses) {
      if (!std::isfinite(v)) {
        return fail(absl::InternalError(
            absl::StrCat("loss '", k, "' became ", v, " at step ", runner->step(), "; try a lower lr_scale")));
      }
    }
    job.step = runner->step();
    job.losses = losses;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    const double rate = secs > 0 ? static_cast<double>(job.step - first_step) / secs : 0;
    job.eta_seconds = rate > 0 ? static_cast<float>((job.total_steps - job.step) / rate) : 0;
    JobEvent progress;
    progress.losses = losses;
    progress.steps_per_second = static_cast<float>(rate);
    progress.phase = phase;
    if (lost(Emit(job, JobEvent::Type::kProgress, progress))) return;

    if (preview_every > 0 && (job.step % preview_every == 0 || job.step == job.total_steps)) {
      JobEvent preview;
      absl::Status ps = RunOnExecutor([&]() -> absl::Status {
        if (!source_sent) {
          ASSIGN_OR_RETURN(FloatTensor src, runner->PreviewImages(true));
          ASSIGN_OR_RETURN(preview.preview_source, EncodeAll(src));
        }
        ASSIGN_OR_RETURN(FloatTensor cur, runner->PreviewImages(false));
        ASSIGN_OR_RETURN(preview.preview_current, EncodeAll(cur));
        return absl::OkStatus();
      });
      if (ps.ok()) {
        source_sent = true;
        if (lost(Emit(job, JobEvent::Type::kPreview, preview))) return;
      }
    }
    if (options_.checkpoint_every > 0 && job.step % options_.checkpoint_every == 0 && job.step < job.total_steps) {
      absl::Status cs = SaveCheckpoint(job, *runner, ckpt);
      if (lost(cs)) return;
      if (!cs.ok()) return fail(cs);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    if (lease_lost_) return (void)lost(LeaseLost(job.id, job.lease_epoch));
  }
  std::string result;
  absl::Status fin = RunOnExecutor([&]() -> absl::Status {
    ASSIGN_OR_RETURN(result, runner->Finish());
    return absl::OkStatus();
  });
  if (!fin.ok()) return fail(fin);
  std::filesystem::remove(ckpt);
  spdlog::info("job {} succeeded: {}", job.id, result);
  job.state = JobState::kSucceeded;
  job.result = result;
  job.end_time_ms = NowMs();
  job.eta_seconds = 0;
  if (lost(Emit(job, JobEvent::Type::kState))) return;
}

}  // namespace ganserve::core
