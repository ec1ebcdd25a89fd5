#include "core/models/clip/tokenizer.h"

#include <utf8proc.h>
#include <zlib.h>

#include <climits>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/models/clip/text_clean.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace ganserve::core::clip {
namespace {

// The reference reads the first 48894 merge lines after the header (its file has more);
// a smaller vocabulary in the same format (the toy world's) uses all of its lines.
constexpr int kMaxMerges = 49152 - 256 - 2;

std::string Utf8(int32_t cp) {
  utf8proc_uint8_t buf[4];
  utf8proc_ssize_t n = utf8proc_encode_char(cp, buf);
  return std::string(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

absl::StatusOr<std::string> Gunzip(const std::string& gz) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return absl::InternalError("inflateInit2 failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char buf[1 << 16];
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return absl::InvalidArgumentError("vocabulary file is not valid gzip");
    }
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (out.size() > (64u << 20)) {
      inflateEnd(&zs);
      return absl::InvalidArgumentError("vocabulary file inflates to more than 64 MiB");
    }
  } while (rc != Z_STREAM_END);
  inflateEnd(&zs);
  return out;
}

bool IsLetter(int32_t cp) {
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return true;
    default: return false;
  }
}

bool IsNumber(int32_t cp) {
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return true;
    default: return false;
  }
}

bool IsSpace(int32_t cp) {
  // White_Space (the regex module's \s).
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// The split pattern of simple_tokenizer.py, as a scanner:
// <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
std::vector<std::string> Split(const std::string& text) {
  std::vector<int32_t> cps;
  std::vector<size_t> offs;  // byte offset of each code point, plus the end
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(text.size());
  size_t off = 0;
  while (left > 0) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(p + off, left, &cp);
    if (n < 0) break;  // callers validated UTF-8
    cps.push_back(cp);
    offs.push_back(off);
    off += static_cast<size_t>(n);
    left -= n;
  }
  offs.push_back(off);
  auto starts_with = [&](size_t i, const char* lit) {
    for (size_t k = 0; lit[k] != '\0'; ++k) {
      if (i + k >= cps.size() || cps[i + k] != static_cast<unsigned char>(lit[k])) return false;
    }
    return true;
  };
  std::vector<std::string> out;
  auto emit = [&](size_t a, size_t b) { out.push_back(text.substr(offs[a], offs[b] - offs[a])); };
  size_t i = 0;
  while (i < cps.size()) {
    if (starts_with(i, "<|startoftext|>")) {
      emit(i, i + 15);
      i += 15;
      continue;
    }
    if (starts_with(i, "<|endoftext|>")) {
      emit(i, i + 13);
      i += 13;
      continue;
    }
    if (cps[i] == '\'') {
      bool hit = false;
      for (const char* c : {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}) {
        if (starts_with(i, c)) {
          size_t len = std::char_traits<char>::length(c);
          emit(i, i + len);
          i += len;
          hit = true;
          break;
        }
      }
      if (hit) continue;
    }
    if (IsLetter(cps[i])) {
      size_t j = i;
      while (j < cps.size() && IsLetter(cps[j])) ++j;
      emit(i, j);
      i = j;
      continue;
    }
    if (IsNumber(cps[i])) {
      emit(i, i + 1);
      ++i;
      continue;
    }
    if (IsSpace(cps[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && !IsSpace(cps[j]) && !IsLetter(cps[j]) && !IsNumber(cps[j])) ++j;
    emit(i, j);
    i = j;
  }
  return out;
}

// Splits a UTF-8 string into code-point strings.
std::vector<std::string> Chars(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : 4;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& vocab_path) {
  ASSIGN_OR_RETURN(std::string raw, ReadFile(vocab_path, 64u << 20));
  if (raw.size() >= 2 && static_cast<unsigned char>(raw[0]) == 0x1f && static_cast<unsigned char>(raw[1]) == 0x8b) {
    ASSIGN_OR_RETURN(raw, Gunzip(raw));
  }
  auto t = FromText(raw);
  if (!t.ok()) return absl::Status(t.status().code(), absl::StrCat(vocab_path, ": ", t.status().message()));
  return t;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromText(const std::string& text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (lines.empty() || !absl::StrContains(lines[0], "#version:")) {
    return absl::InvalidArgumentError("not a CLIP BPE vocabulary (missing '#version:' header)");
  }
  // Merge lines: up to kMaxMerges, stopping at the first empty line (the file's end).
  int merges = 0;
  while (merges < kMaxMerges && static_cast<size_t>(merges) + 1 < lines.size() &&
         !lines[static_cast<size_t>(merges) + 1].empty() && lines[static_cast<size_t>(merges) + 1] != "\r") {
    ++merges;
  }
  if (merges == 0) return absl::InvalidArgumentError("vocabulary has no merge lines after its header");
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  // bytes_to_unicode: printable bytes map to themselves, the rest to 256 + n.
  std::vector<int32_t> cs(256, -1);
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (printable) cs[b] = b;
  }
  for (int b = 0; b < 256; ++b) {
    if (cs[b] < 0) cs[b] = 256 + n++;
  }
  t->byte_encoder_.resize(256);
  // Vocabulary order: the 256 byte characters in bytes_to_unicode order (printable
  // ones first, ascending, then the rest), then each with </w>, then the merges.
  std::vector<int> order;
  for (int b = 0; b < 256; ++b) {
    if (cs[b] == b) order.push_back(b);
  }
  for (int b = 0; b < 256; ++b) {
    if (cs[b] != b) order.push_back(b);
  }
  for (int b = 0; b < 256; ++b) t->byte_encoder_[b] = Utf8(cs[b]);
  for (int b : order) t->decoder_.push_back(t->byte_encoder_[b]);
  for (int b : order) t->decoder_.push_back(t->byte_encoder_[b] + "</w>");
  for (int i = 0; i < merges; ++i) {
    absl::string_view line = lines[static_cast<size_t>(i) + 1];
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    if (parts.size() != 2) return absl::InvalidArgumentError(absl::StrCat("merge line ", i + 2, " is malformed"));
    t->ranks_[std::string(line)] = i;
    t->decoder_.push_back(absl::StrCat(parts[0], parts[1]));
  }
  t->decoder_.push_back("<|startoftext|>");
  t->decoder_.push_back("<|endoftext|>");
  for (size_t i = 0; i < t->decoder_.size(); ++i) t->encoder_[t->decoder_[i]] = static_cast<int>(i);
  t->sot_ = t->encoder_.at("<|startoftext|>");
  t->eot_ = t->encoder_.at("<|endoftext|>");
  return t;
}

std::vector<std::string> Tokenizer::Bpe(const std::string& token) const {
  if (token == "<|startoftext|>" || token == "<|endoftext|>") return {token};
  {
    absl::MutexLock lock(&mu_);
    if (auto it = cache_.find(token); it != cache_.end()) return it->second;
  }
  std::vector<std::string> word = Chars(token);
  word.back() += "</w>";
  while (word.size() > 1) {
    int best = INT_MAX;
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks_.find(word[i] + " " + word[i + 1]);
      if (it != ranks_.end() && it->second < best) {
        best = it->second;
        best_i = i;
      }
    }
    if (best == INT_MAX) break;
    const std::string first = word[best_i], second = word[best_i + 1];
    std::vector<std::string> merged;
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(word[i]);
        ++i;
      }
    }
    word = std::move(merged);
  }
  absl::MutexLock lock(&mu_);
  if (cache_.size() < 100000) cache_[token] = word;
  return word;
}

absl::StatusOr<std::vector<int>> Tokenizer::Encode(const std::string& text) const {
  ASSIGN_OR_RETURN(std::string cleaned, CleanForClip(text));
  std::vector<int> ids;
  for (const std::string& piece : Split(cleaned)) {
    std::string mapped;
    for (unsigned char b : piece) mapped += byte_encoder_[b];
    for (const std::string& sub : Bpe(mapped)) {
      auto it = encoder_.find(sub);
      if (it != encoder_.end()) ids.push_back(it->second);
    }
  }
  return ids;
}

absl::Status Tokenizer::CheckModelVocabulary(int model_vocab) const {
  if (static_cast<size_t>(model_vocab) == decoder_.size()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("the vocabulary has ", decoder_.size(),
                                                 " tokens but the CLIP model's token embedding has ", model_vocab,
                                                 " rows: they do not belong together"));
}

absl::StatusOr<std::vector<int>> Tokenizer::Tokenize(const std::string& text, bool truncate, int context_length) const {
  if (context_length < 2) return absl::InvalidArgumentError("context_length must be >= 2");
  ASSIGN_OR_RETURN(std::vector<int> ids, Encode(text));
  std::vector<int> out;
  out.reserve(static_cast<size_t>(context_length));
  out.push_back(sot_);
  out.insert(out.end(), ids.begin(), ids.end());
  out.push_back(eot_);
  if (static_cast<int>(out.size()) > context_length) {
    if (!truncate) {
      std::string shown = text.size() > 60 ? text.substr(0, 57) + "..." : text;
      return absl::InvalidArgumentError(absl::StrCat("prompt \"", shown, "\" is ", out.size(),
                                                     " tokens; CLIP takes at most ", context_length,
                                                     " (shorten it or allow truncation)"));
    }
    out.resize(static_cast<size_t>(context_length));
    out.back() = eot_;
  }
  out.resize(static_cast<size_t>(context_length), 0);
  return out;
}

std::string Tokenizer::Decode(const std::vector<int>& ids) const {
  std::string joined;
  for (int id : ids) {
    if (id >= 0 && static_cast<size_t>(id) < decoder_.size()) joined += decoder_[static_cast<size_t>(id)];
  }
  // Map stand-in characters back to bytes; "</w>" becomes a space.
  std::unordered_map<std::string, unsigned char> byte_decoder;
  for (int b = 0; b < 256; ++b) byte_decoder[byte_encoder_[b]] = static_cast<unsigned char>(b);
  std::string out;
  for (const std::string& ch : Chars(joined)) {
    auto it = byte_decoder.find(ch);
    if (it != byte_decoder.end())
      out.push_back(static_cast<char>(it->second));
    else
      out += ch;
  }
  std::string result;
  for (size_t i = 0; i < out.size();) {
    if (out.compare(i, 4, "</w>") == 0) {
      result += ' ';
      i += 4;
    } else {
      result += out[i++];
    }
  }
  return result;
}

}  // namespace ganserve::core::clip
