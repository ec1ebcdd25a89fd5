#include "core/jobs/job_store.h"

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace ganserve::core {

absl::Status LeaseLost(const std::string& job_id, int64_t epoch) {
  return absl::AbortedError(absl::StrCat("lease lost: job ", job_id, " is no longer held at epoch ", epoch,
                                         " (its lease expired and the job was requeued or taken over)"));
}

bool IsLeaseLost(const absl::Status& s) { return absl::IsAborted(s) && absl::StartsWith(s.message(), "lease lost: "); }

std::string KindFilterSql(const std::vector<JobKind>& kinds) {
  if (kinds.empty()) return "";
  std::vector<std::string> values;
  values.reserve(kinds.size());
  for (JobKind k : kinds) values.push_back(std::to_string(static_cast<int>(k)));
  return absl::StrCat(" AND kind IN (", absl::StrJoin(values, ","), ")");
}

bool IsTerminal(JobState s) { return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled; }

const char* JobKindName(JobKind k) {
  switch (k) {
    case JobKind::kAdapt: return "adapt";
    case JobKind::kInvert: return "invert";
    case JobKind::kEditStats: return "edit_stats";
    case JobKind::kTrainMapper: return "train_mapper";
    default: return "unspecified";
  }
}

const char* JobStateName(JobState s) {
  switch (s) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kSucceeded: return "succeeded";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
    default: return "unspecified";
  }
}

std::string LossesToJson(const std::map<std::string, float>& losses) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : losses) j[k] = v;
  return j.dump();
}

std::map<std::string, float> LossesFromJson(const std::string& json) {
  std::map<std::string, float> out;
  const nlohmann::json losses = nlohmann::json::parse(json, nullptr, false);
  if (!losses.is_object()) return out;
  for (auto it = losses.begin(); it != losses.end(); ++it) {
    if (it->is_number()) out[it.key()] = it->get<float>();
  }
  return out;
}

absl::StatusOr<std::optional<PageKey>> ParsePageToken(const std::string& token) {
  if (token.empty()) return std::optional<PageKey>();
  std::vector<std::string> parts = absl::StrSplit(token, absl::MaxSplits('/', 1));
  PageKey key;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &key.create_time_ms) || parts[1].empty()) {
    return absl::InvalidArgumentError("page_token is malformed; pass the next_page_token of a previous response");
  }
  key.id = parts[1];
  return std::optional<PageKey>(std::move(key));
}

ListJobsPage MakePage(std::vector<JobRecord> rows, int page_size) {
  ListJobsPage page;
  if (static_cast<int>(rows.size()) > page_size) {
    rows.resize(static_cast<size_t>(page_size));
    page.next_page_token = absl::StrCat(rows.back().create_time_ms, "/", rows.back().id);
  }
  page.jobs = std::move(rows);
  return page;
}

}  // namespace ganserve::core
