#include "core/models/clip/bpe_learner.h"

#include <cctype>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ganserve::core::clip {
namespace {

using Symbols = std::vector<std::string>;

absl::StatusOr<std::map<std::string, int64_t>> CountWords(const std::vector<std::string>& texts) {
  std::map<std::string, int64_t> words;
  for (const std::string& text : texts) {
    size_t i = 0;
    while (i < text.size()) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c >= 0x80 || (c < 0x20 && !std::isspace(c))) {
        return absl::InvalidArgumentError(absl::StrCat("text \"", text.substr(0, 60),
                                                       "\" holds a byte outside printable ASCII; the learner covers "
                                                       "ASCII only"));
      }
      size_t j = i + 1;
      if (std::isspace(c)) {
        i = j;
        continue;
      }
      if (std::isalpha(c)) {
        while (j < text.size() && std::isalpha(static_cast<unsigned char>(text[j]))) ++j;
      } else if (!std::isdigit(c)) {
        while (j < text.size()) {
          const auto d = static_cast<unsigned char>(text[j]);
          if (std::isspace(d) || std::isalnum(d) || d >= 0x80) break;
          ++j;
        }
      }
      std::string word = text.substr(i, j - i);
      for (char& ch : word) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      ++words[word];
      i = j;
    }
  }
  return words;
}

}  // namespace

absl::StatusOr<std::string> LearnBpeVocabulary(const std::vector<std::string>& texts, int max_merges) {
  if (max_merges < 1 || max_merges > 48894) return absl::InvalidArgumentError("max_merges must be in [1, 48894]");
  auto counted = CountWords(texts);
  if (!counted.ok()) return counted.status();
  std::vector<std::pair<Symbols, int64_t>> words;
  for (const auto& [word, count] : *counted) {
    Symbols s;
    for (char c : word) s.emplace_back(1, c);
    s.back() += "</w>";
    words.emplace_back(std::move(s), count);
  }
  std::string out = "#version: 0.2\n";
  for (int m = 0; m < max_merges; ++m) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (const auto& [s, count] : words) {
      for (size_t i = 0; i + 1 < s.size(); ++i) pairs[{s[i], s[i + 1]}] += count;
    }
    const std::pair<std::string, std::string>* best = nullptr;
    int64_t best_count = 1;  // a pair must occur at least twice to be merged
    for (const auto& [pair, count] : pairs) {
      if (count > best_count) {
        best = &pair;
        best_count = count;
      }
    }
    if (best == nullptr) break;
    const auto [a, b] = *best;
    absl::StrAppend(&out, a, " ", b, "\n");
    for (auto& [s, count] : words) {
      Symbols merged;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          merged.push_back(a + b);
          ++i;
        } else {
          merged.push_back(s[i]);
        }
      }
      s = std::move(merged);
    }
  }
  return out;
}

}  // namespace ganserve::core::clip
