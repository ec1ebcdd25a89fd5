#include "server/streams/job_stream.h"

#include "server/api/api.h"
#include "server/rpc_scope.h"
#include "server/service_context.h"
#include "server/status_util.h"

namespace ganserve::server {
namespace {

constexpr size_t kMaxQueued = 256;

bool IsTerminalEvent(const v1::JobEvent& e) {
  const auto s = e.job().state();
  return e.state_changed() &&
         (s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED || s == v1::JOB_STATE_CANCELLED);
}

}  // namespace

// Shared between the reactor and the engine's listener, which may outlive the reactor.
struct JobStreamState {
  absl::Mutex mu;
  grpc::ServerWriteReactor<v1::JobEvent>* reactor ABSL_GUARDED_BY(mu) = nullptr;
  std::deque<v1::JobEvent> queue ABSL_GUARDED_BY(mu);
  v1::JobEvent current ABSL_GUARDED_BY(mu);
  int64_t last_seq ABSL_GUARDED_BY(mu) = 0;  // highest seq queued or written
  bool writing ABSL_GUARDED_BY(mu) = false;
  bool finished ABSL_GUARDED_BY(mu) = false;
  bool terminal_written ABSL_GUARDED_BY(mu) = false;
  // While the stored events are being replayed, live events wait here.
  bool replaying ABSL_GUARDED_BY(mu) = true;
  std::vector<v1::JobEvent> pending ABSL_GUARDED_BY(mu);
  std::unique_ptr<RpcScope> scope;

  void FinishLocked(const absl::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (finished || reactor == nullptr) return;
    finished = true;
    const grpc::Status g = ToGrpcStatus(s);
    scope->Done(g);
    reactor->Finish(g);
  }

  void PushLocked(v1::JobEvent e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (finished) return;
    if (e.heartbeat()) {
      if (!queue.empty() || writing) return;  // a stream with traffic needs no heartbeat
    } else {
      if (e.seq() <= last_seq) return;  // already replayed
      last_seq = e.seq();
    }
    queue.push_back(std::move(e));
    // Slow reader: drop the oldest progress events (the next ones carry the same fields).
    while (queue.size() > kMaxQueued) {
      auto it = std::find_if(queue.begin(), queue.end(), [](const v1::JobEvent& q) { return q.has_progress(); });
      if (it == queue.end()) it = queue.begin();
      queue.erase(it);
    }
    WriteNextLocked();
  }

  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (writing || finished || reactor == nullptr) return;
    if (queue.empty()) {
      if (terminal_written) FinishLocked(absl::OkStatus());
      return;
    }
    current = std::move(queue.front());
    queue.pop_front();
    if (IsTerminalEvent(current)) terminal_written = true;
    writing = true;
    reactor->StartWrite(&current);
  }
};

namespace {

class JobStreamReactor : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  JobStreamReactor(ServiceContext* ctx, std::shared_ptr<JobStreamState> state) : ctx_(ctx), state_(std::move(state)) {
    absl::MutexLock lock(&state_->mu);
    state_->reactor = this;
  }

  void Begin(const core::JobRecord& job, int64_t after_seq, bool skip_preview_replay) {
    // Subscribe first, then replay: events in between arrive twice and the seq filter
    // drops the copies.
    std::weak_ptr<JobStreamState> weak = state_;
    token_ = ctx_->app->engine().Subscribe(job.id, [weak](const core::JobEvent& e) {
      auto s = weak.lock();
      if (s == nullptr) return;
      v1::JobEvent pe;
      if (e.stored.empty()) {
        pe = api::ToProtoEvent(e);
      } else if (!pe.ParseFromString(e.stored)) {  // another replica's, as stored
        return;
      }
      absl::MutexLock lock(&s->mu);
      if (s->replaying) {
        s->pending.push_back(std::move(pe));
      } else {
        s->PushLocked(std::move(pe));
      }
    });
    auto events = ctx_->app->store().ListEvents(job.id, after_seq, 100000);
    absl::MutexLock lock(&state_->mu);
    state_->last_seq = after_seq;
    if (events.ok()) {
      for (const auto& rec : *events) {
        v1::JobEvent e;
        if (!e.ParseFromString(rec.payload)) continue;
        if (skip_preview_replay && e.has_preview()) {
          state_->last_seq = std::max(state_->last_seq, e.seq());
          continue;
        }
        state_->PushLocked(std::move(e));
      }
    }
    // Live events that arrived meanwhile; the seq filter drops those already replayed.
    state_->replaying = false;
    std::vector<v1::JobEvent> pending;
    pending.swap(state_->pending);
    bool live_terminal = false;
    for (auto& e : pending) {
      live_terminal |= IsTerminalEvent(e);
      state_->PushLocked(std::move(e));
    }
    if (core::IsTerminal(job.state) && !live_terminal) {
      // A finished job has no live events to come: end once the replay is written,
      // sending the snapshot when there is nothing to replay.
      if (state_->queue.empty() && !state_->writing) {
        v1::JobEvent snap;
        snap.set_seq(job.last_seq);
        snap.set_state_changed(true);
        api::ToProto(job, snap.mutable_job());
        state_->queue.push_back(std::move(snap));
      }
      state_->terminal_written = true;
      state_->WriteNextLocked();
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&state_->mu);
    state_->writing = false;
    if (!ok) return state_->FinishLocked(absl::CancelledError("the client went away"));
    state_->WriteNextLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&state_->mu);
    if (!state_->writing) state_->FinishLocked(absl::CancelledError("cancelled by the client"));
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&state_->mu);
      state_->reactor = nullptr;
    }
    ctx_->app->engine().Unsubscribe(token_);
    ctx_->streams->Remove(state_.get());
    delete this;
  }

 private:
  ServiceContext* ctx_;
  std::shared_ptr<JobStreamState> state_;
  int64_t token_ = 0;
};

}  // namespace

void JobStreamRegistry::Add(std::shared_ptr<JobStreamState> s) {
  absl::MutexLock lock(&mu_);
  streams_.insert(std::move(s));
}

void JobStreamRegistry::Remove(const JobStreamState* s) {
  absl::MutexLock lock(&mu_);
  for (auto it = streams_.begin(); it != streams_.end(); ++it) {
    if (it->get() == s) {
      streams_.erase(it);
      return;
    }
  }
}

void JobStreamRegistry::CloseAll() {
  std::set<std::shared_ptr<JobStreamState>> all;
  {
    absl::MutexLock lock(&mu_);
    all = streams_;
  }
  for (const auto& s : all) {
    absl::MutexLock lock(&s->mu);
    s->queue.clear();
    if (!s->writing) {
      s->FinishLocked(
          absl::UnavailableError("the server is shutting down; the job continues: re-attach with WatchJob"));
    } else {
      s->terminal_written = false;
      s->finished = false;
    }
  }
}

grpc::ServerWriteReactor<v1::JobEvent>* StartJobStream(ServiceContext* ctx, const core::JobRecord& job,
                                                       int64_t after_seq, bool skip_preview_replay,
                                                       std::unique_ptr<RpcScope> scope) {
  auto state = std::make_shared<JobStreamState>();
  state->scope = std::move(scope);
  ctx->streams->Add(state);
  auto* r = new JobStreamReactor(ctx, state);
  r->Begin(job, after_seq, skip_preview_replay);
  return r;
}

}  // namespace ganserve::server
