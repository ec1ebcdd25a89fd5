#include "client/util.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ganserve::client {

absl::StatusOr<std::vector<int64_t>> ParseSeeds(const std::string& text, size_t max_count) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    std::vector<absl::string_view> ends = absl::StrSplit(part, absl::MaxSplits('-', 1));
    int64_t a = 0, b = 0;
    if (!absl::SimpleAtoi(ends[0], &a) || a < 0 || (ends.size() == 2 && (!absl::SimpleAtoi(ends[1], &b) || b < a))) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad seed list '", text, "': use numbers and ascending ranges, e.g. 1-4,7"));
    }
    if (ends.size() == 1) b = a;
    if (static_cast<size_t>(b - a) + out.size() >= max_count) {
      return absl::InvalidArgumentError(absl::StrCat("seed list has more than ", max_count, " seeds"));
    }
    for (int64_t s = a; s <= b; ++s) out.push_back(s);
  }
  if (out.empty()) return absl::InvalidArgumentError("the seed list is empty");
  return out;
}

absl::StatusOr<std::vector<float>> ParseFloats(const std::string& text) {
  std::vector<float> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    float v;
    if (!absl::SimpleAtof(absl::StripAsciiWhitespace(part), &v)) {
      return absl::InvalidArgumentError(absl::StrCat("'", part, "' is not a number"));
    }
    out.push_back(v);
  }
  if (out.empty()) return absl::InvalidArgumentError("the number list is empty");
  return out;
}

void ProgressBar::Update(int64_t done, int64_t total, const std::string& extra) {
  if (total <= 0) return;
  if (isatty(STDERR_FILENO)) {
    const int width = 30;
    const int filled = static_cast<int>(width * done / total);
    std::fprintf(stderr, "\r%s [%s%s] %lld/%lld %s", label_.c_str(), std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), static_cast<long long>(done), static_cast<long long>(total),
                 extra.c_str());
    drawn_ = true;
  } else {
    const int decile = static_cast<int>(10 * done / total);
    if (decile != last_decile_) {
      std::fprintf(stderr, "%s %lld/%lld %s\n", label_.c_str(), static_cast<long long>(done),
                   static_cast<long long>(total), extra.c_str());
      last_decile_ = decile;
    }
  }
  std::fflush(stderr);
}

void ProgressBar::Finish() {
  if (drawn_) std::fputc('\n', stderr);
}

absl::Status WriteBinary(const std::string& path, const std::string& data) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace ganserve::client
