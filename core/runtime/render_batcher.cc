#include "core/runtime/render_batcher.h"

#include <cstring>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/util/retry_hint.h"
#include "core/util/status_macros.h"

namespace ganserve::core {
namespace {

using core::FloatTensor;
using stylegan2::GenerateParams;
using stylegan2::GenerateResult;

int64_t Rows(const GenerateParams& p) { return p.latents.shape.empty() ? 0 : p.latents.shape[0]; }

// Rows [start, start + count) of a [N, ...] tensor; empty stays empty.
FloatTensor SliceRows(const FloatTensor& t, int64_t start, int64_t count) {
  FloatTensor out;
  if (t.shape.empty() || t.shape[0] == 0) return out;
  const int64_t row = t.numel() / t.shape[0];
  out.shape = t.shape;
  out.shape[0] = count;
  out.data.assign(t.data.begin() + start * row, t.data.begin() + (start + count) * row);
  return out;
}

void AppendRows(const FloatTensor& from, FloatTensor* to) {
  if (to->shape.empty()) {
    *to = from;
    return;
  }
  to->shape[0] += from.shape[0];
  to->data.insert(to->data.end(), from.data.begin(), from.data.end());
}

}  // namespace

RenderBatcher::RenderBatcher(DeviceExecutor* executor, Options options, BatchObserver observer)
    : executor_(executor), options_(options), observer_(std::move(observer)) {}

std::string RenderBatcher::Key(const Work& w) {
  const GenerateParams& p = w.params;
  if (options_.max_images <= 1 || !p.noise_maps.empty()) {
    // Per-request noise maps (inversions) cannot be stacked with other requests.
    absl::MutexLock lock(&mu_);
    return absl::StrCat("solo:", ++solo_counter_);
  }
  uint32_t psi_bits = 0;
  std::memcpy(&psi_bits, &p.truncation, sizeof psi_bits);
  std::vector<int64_t> row(p.latents.shape.begin() + (p.latents.shape.empty() ? 0 : 1), p.latents.shape.end());
  // By weights, not generator: a base and its lightweight domains render in one call.
  return absl::StrCat(reinterpret_cast<uintptr_t>(w.generator->weights_id()), "|", static_cast<int>(p.space), "|",
                      absl::StrJoin(row, "x"), "|", psi_bits, "|", static_cast<int>(p.noise), "|",
                      p.noise_seeds.empty() ? 0 : 1, "|", p.mix_latents.has_value() ? p.inject_index : -1, "|",
                      p.return_wplus ? 1 : 0, p.return_s ? 1 : 0, "|", p.mean_rows_from);
}

absl::Status RenderBatcher::Submit(Work work) {
  if (Rows(work.params) < 1) return absl::InvalidArgumentError("render work without latents");
  std::string key = Key(work);
  absl::MutexLock lock(&mu_);
  if (waiting_ >= options_.max_waiting) {
    const absl::Duration delay = executor_->RetryDelay(options_.work_class);
    return WithRetryAfter(
        absl::ResourceExhaustedError(absl::StrCat(
            "the ", WorkClassName(options_.work_class), " render queue of device ", executor_->name(), " is full (",
            options_.max_waiting, " requests waiting); retry in about ", absl::FormatDuration(delay))),
        delay);
  }
  Pending& p = pending_[key];
  p.work.push_back(std::move(work));
  ++waiting_;
  if (p.task_queued) return absl::OkStatus();  // joins the queued task
  absl::Status st = PostLocked(key);
  if (!st.ok()) {
    p.work.pop_back();
    --waiting_;
    if (p.work.empty()) pending_.erase(key);
  }
  return st;
}

absl::Status RenderBatcher::PostLocked(const std::string& key) {
  RETURN_IF_ERROR(executor_->Submit(options_.work_class, [this, key](bool dropped) { Run(key, dropped); }));
  pending_[key].task_queued = true;
  return absl::OkStatus();
}

void RenderBatcher::Run(const std::string& key, bool dropped) {
  std::vector<Work> group, orphaned;
  absl::Status orphan_status;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(key);
    if (it == pending_.end()) return;
    it->second.task_queued = false;
    std::deque<Work>& q = it->second.work;
    int64_t images = 0;
    // At shutdown the dropped task answers all of its key's work.
    while (!q.empty()) {
      const int64_t n = Rows(q.front().params);
      if (!group.empty() && !dropped && images + n > options_.max_images) break;
      images += n;
      group.push_back(std::move(q.front()));
      q.pop_front();
    }
    waiting_ -= group.size();
    if (q.empty()) {
      pending_.erase(it);
    } else {
      orphan_status = PostLocked(key);
      if (!orphan_status.ok()) {
        // The executor stopped or is full: the rest cannot wait for a task.
        for (Work& w : q) orphaned.push_back(std::move(w));
        waiting_ -= orphaned.size();
        pending_.erase(it);
      }
    }
  }
  for (Work& w : orphaned) w.done(orphan_status);
  if (dropped) {
    for (Work& w : group) w.done(absl::UnavailableError("the server is shutting down"));
    return;
  }
  std::vector<Work> live;
  for (Work& w : group) {
    if (w.wanted && !w.wanted()) {
      w.done(absl::CancelledError("cancelled by the client"));
    } else {
      live.push_back(std::move(w));
    }
  }
  if (live.empty()) return;
  if (live.size() == 1) {
    Work& w = live.front();
    if (observer_) observer_(static_cast<int>(Rows(w.params)), 1);
    w.done(w.generator->Generate(w.params));
    return;
  }
  GenerateParams all = live.front().params;
  all.latents = {};
  all.noise_seeds.clear();
  all.domains.clear();
  if (all.mix_latents) all.mix_latents = FloatTensor{};
  bool any_domain = false;
  for (const Work& w : live) any_domain = any_domain || w.generator->domain() != nullptr || !w.params.domains.empty();
  for (const Work& w : live) {
    if (any_domain) {
      // Each row's domain: the work's own list, or its generator's for every row.
      if (w.params.domains.empty()) {
        all.domains.insert(all.domains.end(), static_cast<size_t>(Rows(w.params)), w.generator->domain());
      } else {
        all.domains.insert(all.domains.end(), w.params.domains.begin(), w.params.domains.end());
      }
    }
    AppendRows(w.params.latents, &all.latents);
    all.noise_seeds.insert(all.noise_seeds.end(), w.params.noise_seeds.begin(), w.params.noise_seeds.end());
    if (all.mix_latents) AppendRows(*w.params.mix_latents, &*all.mix_latents);
  }
  if (observer_) observer_(static_cast<int>(Rows(all)), static_cast<int>(live.size()));
  auto result = live.front().generator->Generate(all);
  int64_t at = 0;
  for (Work& w : live) {
    const int64_t n = Rows(w.params);
    if (!result.ok()) {
      w.done(result.status());
      continue;
    }
    GenerateResult mine;
    mine.images = SliceRows(result->images, at, n);
    mine.wplus = SliceRows(result->wplus, at, n);
    mine.s = SliceRows(result->s, at, n);
    at += n;
    w.done(std::move(mine));
  }
}

}  // namespace ganserve::core
