#include "core/models/clip/text_clean.h"

#include <utf8proc.h>

#include <cctype>
#include <cstdlib>
#include <map>
#include <vector>

#include "absl/status/status.h"

namespace ganserve::core::clip {
namespace {

using Codepoints = std::vector<int32_t>;

bool Decode(const std::string& s, Codepoints* out) {
  out->clear();
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
  while (left > 0) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n < 0) return false;
    out->push_back(cp);
    p += n;
    left -= n;
  }
  return true;
}

// Decodes, replacing invalid sequences with U+FFFD (for internal round trips).
Codepoints DecodeLossy(const std::string& s) {
  Codepoints out;
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
  while (left > 0) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n < 0) {
      out.push_back(0xFFFD);
      n = 1;
    } else {
      out.push_back(cp);
    }
    p += n;
    left -= n;
  }
  return out;
}

std::string Encode(const Codepoints& cps) {
  std::string out;
  utf8proc_uint8_t buf[4];
  for (int32_t cp : cps) {
    utf8proc_ssize_t n = utf8proc_encode_char(cp, buf);
    out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
  }
  return out;
}

// Windows-1252 bytes 0x80-0x9F; 0 where the byte is undefined (then "sloppy" decoding
// keeps the C1 control U+0080+n, as ftfy's sloppy-windows-1252 does).
constexpr int32_t kCp1252High[32] = {0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                     0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
                                     0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                     0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

// The byte a character has in sloppy Windows-1252, or -1.
int SloppyCp1252Byte(int32_t cp) {
  if (cp < 0x80) return cp;
  if (cp >= 0xA0 && cp <= 0xFF) return cp;
  if (cp >= 0x80 && cp <= 0x9F) return cp;  // C1 control stands for its own byte
  for (int i = 0; i < 32; ++i) {
    if (kCp1252High[i] == cp) return 0x80 + i;
  }
  return -1;
}

bool ValidUtf8WithMultibyte(const std::string& bytes) {
  Codepoints cps;
  if (!Decode(bytes, &cps)) return false;
  for (int32_t cp : cps) {
    if (cp >= 0x80) return true;
  }
  return false;
}

// UTF-8 that was decoded as Windows-1252/Latin-1: re-encode maximal runs of
// cp1252-representable characters and decode them as UTF-8 when that is valid.
Codepoints FixMojibake(const Codepoints& in) {
  Codepoints out;
  size_t i = 0;
  while (i < in.size()) {
    if (SloppyCp1252Byte(in[i]) < 0) {
      out.push_back(in[i++]);
      continue;
    }
    size_t j = i;
    std::string bytes;
    bool high = false;
    while (j < in.size()) {
      int b = SloppyCp1252Byte(in[j]);
      if (b < 0) break;
      high |= b >= 0x80;
      bytes.push_back(static_cast<char>(b));
      ++j;
    }
    Codepoints fixed;
    if (high && ValidUtf8WithMultibyte(bytes) && Decode(bytes, &fixed)) {
      out.insert(out.end(), fixed.begin(), fixed.end());
    } else {
      out.insert(out.end(), in.begin() + static_cast<ptrdiff_t>(i), in.begin() + static_cast<ptrdiff_t>(j));
    }
    i = j;
  }
  return out;
}

const std::map<int32_t, const char*>& Ligatures() {
  static const auto* m = new std::map<int32_t, const char*>{
      {0x0132, "IJ"},        {0x0133, "ij"}, {0x0149, "\xCA\xBCn"}, {0x01C4, "D\xC5\xBD"}, {0x01C5, "D\xC5\xBE"},
      {0x01C6, "d\xC5\xBE"}, {0x01C7, "LJ"}, {0x01C8, "Lj"},        {0x01C9, "lj"},        {0x01CA, "NJ"},
      {0x01CB, "Nj"},        {0x01CC, "nj"}, {0x01F1, "DZ"},        {0x01F2, "Dz"},        {0x01F3, "dz"},
      {0xFB00, "ff"},        {0xFB01, "fi"}, {0xFB02, "fl"},        {0xFB03, "ffi"},       {0xFB04, "ffl"},
      {0xFB05, "\xC5\xBFt"}, {0xFB06, "st"}};
  return *m;
}

bool IsControlToRemove(int32_t cp) {
  return (cp <= 0x08) || cp == 0x0B || (cp >= 0x0E && cp <= 0x1F) || cp == 0x7F || (cp >= 0x206A && cp <= 0x206F) ||
         cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFC) || (cp >= 0x1D173 && cp <= 0x1D17A) ||
         (cp >= 0xE0000 && cp <= 0xE007F);
}

Codepoints Nfkc(int32_t cp) {
  Codepoints out;
  utf8proc_uint8_t* mapped = nullptr;
  std::string s = Encode({cp});
  if (utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
                   &mapped,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT)) >= 0) {
    Decode(reinterpret_cast<const char*>(mapped), &out);
  }
  std::free(mapped);
  if (out.empty()) out.push_back(cp);
  return out;
}

std::string Nfc(const std::string& s) {
  utf8proc_uint8_t* out = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()));
  if (out == nullptr) return s;
  std::string r(reinterpret_cast<const char*>(out));
  std::free(out);
  return r;
}

// One pass of the ftfy fixers after encoding repair.
Codepoints FixCharacters(const Codepoints& in) {
  Codepoints out;
  for (size_t i = 0; i < in.size(); ++i) {
    int32_t cp = in[i];
    // remove_terminal_escapes: ESC [ digits/; letter
    if (cp == 0x1B && i + 1 < in.size() && in[i + 1] == '[') {
      size_t j = i + 2;
      while (j < in.size() && ((in[j] >= '0' && in[j] <= '9') || in[j] == ';')) ++j;
      if (j < in.size() && ((in[j] >= 'a' && in[j] <= 'z') || (in[j] >= 'A' && in[j] <= 'Z'))) {
        i = j;
        continue;
      }
    }
    // fix_c1_controls: decode as Windows-1252 where it defines the byte.
    if (cp >= 0x80 && cp <= 0x9F && kCp1252High[cp - 0x80] != 0) cp = kCp1252High[cp - 0x80];
    // fix_latin_ligatures
    if (auto it = Ligatures().find(cp); it != Ligatures().end()) {
      Codepoints lig;
      Decode(it->second, &lig);
      out.insert(out.end(), lig.begin(), lig.end());
      continue;
    }
    // fix_character_width
    if (cp == 0x3000) {
      out.push_back(' ');
      continue;
    }
    if (cp >= 0xFF01 && cp <= 0xFFEF) {
      Codepoints w = Nfkc(cp);
      out.insert(out.end(), w.begin(), w.end());
      continue;
    }
    // uncurl_quotes
    if (cp == 0x02BC || (cp >= 0x2018 && cp <= 0x201B))
      cp = '\'';
    else if (cp >= 0x201C && cp <= 0x201F)
      cp = '"';
    // fix_line_breaks
    if (cp == '\r') {
      if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
      cp = '\n';
    } else if (cp == 0x2028 || cp == 0x2029 || cp == 0x85) {
      cp = '\n';
    }
    // remove_control_chars
    if (IsControlToRemove(cp)) continue;
    out.push_back(cp);
  }
  return out;
}

struct Entity {
  const char* name;
  int32_t cp;
  bool legacy;  // valid without ';'
};
constexpr Entity kEntities[] = {
#include "core/models/clip/html_entities.inc"
};

const Entity* FindEntity(const std::string& name) {
  for (const Entity& e : kEntities) {
    if (name == e.name) return &e;
  }
  return nullptr;
}

// Python's html._replace_charref for a numeric reference.
Codepoints NumericRef(int64_t num) {
  static const std::map<int64_t, int32_t> kInvalid = {
      {0x00, 0xFFFD}, {0x0D, '\r'},   {0x80, 0x20AC}, {0x81, 0x81},   {0x82, 0x201A}, {0x83, 0x0192}, {0x84, 0x201E},
      {0x85, 0x2026}, {0x86, 0x2020}, {0x87, 0x2021}, {0x88, 0x02C6}, {0x89, 0x2030}, {0x8A, 0x0160}, {0x8B, 0x2039},
      {0x8C, 0x0152}, {0x8D, 0x8D},   {0x8E, 0x017D}, {0x8F, 0x8F},   {0x90, 0x90},   {0x91, 0x2018}, {0x92, 0x2019},
      {0x93, 0x201C}, {0x94, 0x201D}, {0x95, 0x2022}, {0x96, 0x2013}, {0x97, 0x2014}, {0x98, 0x02DC}, {0x99, 0x2122},
      {0x9A, 0x0161}, {0x9B, 0x203A}, {0x9C, 0x0153}, {0x9D, 0x9D},   {0x9E, 0x017E}, {0x9F, 0x0178}};
  if (auto it = kInvalid.find(num); it != kInvalid.end()) return {it->second};
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return {0xFFFD};
  const bool invalid_cp = (num >= 0x1 && num <= 0x8) || (num >= 0xE && num <= 0x1F) || (num >= 0x7F && num <= 0x9F) ||
                          (num >= 0xFDD0 && num <= 0xFDEF) || num == 0xB || (num & 0xFFFE) == 0xFFFE;
  if (invalid_cp) return {};
  return {static_cast<int32_t>(num)};
}

// Unescapes entities; `exact_only` (ftfy's fixer) skips the legacy prefix matching of
// html.unescape.
Codepoints Unescape(const Codepoints& in, bool exact_only) {
  Codepoints out;
  size_t i = 0;
  while (i < in.size()) {
    if (in[i] != '&') {
      out.push_back(in[i++]);
      continue;
    }
    size_t j = i + 1;
    if (j < in.size() && in[j] == '#') {
      // &#123; &#x1F600; (';' optional)
      size_t k = j + 1;
      bool hex = k < in.size() && (in[k] == 'x' || in[k] == 'X');
      if (hex) ++k;
      size_t digits_start = k;
      int64_t num = 0;
      while (k < in.size() && (hex ? std::isxdigit(in[k]) != 0 && in[k] < 128 : (in[k] >= '0' && in[k] <= '9'))) {
        int d = in[k] <= '9' ? in[k] - '0' : (in[k] | 0x20) - 'a' + 10;
        if (num < 0x7FFFFFFF) num = num * (hex ? 16 : 10) + d;
        ++k;
      }
      if (k == digits_start) {
        out.push_back(in[i++]);
        continue;
      }
      bool semi = k < in.size() && in[k] == ';';
      if (exact_only && !semi) {
        out.push_back(in[i++]);
        continue;
      }
      Codepoints r = NumericRef(num);
      out.insert(out.end(), r.begin(), r.end());
      i = semi ? k + 1 : k;
      continue;
    }
    // Named: up to 32 chars of [^\t\n\f <&#;], optional ';'.
    size_t k = j;
    while (k < in.size() && k - j < 32 && in[k] != '\t' && in[k] != '\n' && in[k] != '\f' && in[k] != ' ' &&
           in[k] != '<' && in[k] != '&' && in[k] != '#' && in[k] != ';') {
      ++k;
    }
    std::string name;
    bool ascii = true;
    for (size_t t = j; t < k; ++t) {
      if (in[t] >= 128) ascii = false;
      name.push_back(static_cast<char>(in[t] & 0x7F));
    }
    bool semi = k < in.size() && in[k] == ';';
    const Entity* e = ascii ? FindEntity(name) : nullptr;
    if (e != nullptr && (semi || e->legacy)) {
      out.push_back(e->cp);
      i = semi ? k + 1 : k;
      continue;
    }
    if (!exact_only && ascii) {
      // Longest legacy name that prefixes the text: "&ampxyz" -> "&xyz".
      bool done = false;
      for (size_t len = std::min<size_t>(name.size(), 32); len > 1 && !done; --len) {
        const Entity* p = FindEntity(name.substr(0, len));
        if (p != nullptr && p->legacy) {
          out.push_back(p->cp);
          i = j + len;
          done = true;
        }
      }
      if (done) continue;
    }
    out.push_back(in[i++]);
  }
  return out;
}

bool IsPySpace(int32_t cp) {
  // str.isspace(), which Python's re uses for \s in str patterns.
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool IsCased(int32_t cp) {
  auto cat = utf8proc_category(cp);
  return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
}

bool IsCaseIgnorable(int32_t cp) {
  auto cat = utf8proc_category(cp);
  return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME || cat == UTF8PROC_CATEGORY_CF ||
         cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_SK || cp == '\'' || cp == '.' || cp == ':' ||
         cp == 0x00B7 || cp == 0x2019 || cp == 0x2018 || cp == 0x2024 || cp == 0xFE52 || cp == 0xFF07 || cp == 0xFF0E;
}

}  // namespace

std::string FixText(const std::string& utf8) {
  Codepoints cps = DecodeLossy(utf8);
  for (int round = 0; round < 8; ++round) {
    Codepoints before = cps;
    bool has_lt = false;
    for (int32_t cp : cps) has_lt |= cp == '<';
    if (!has_lt) cps = Unescape(cps, /*exact_only=*/true);
    cps = FixMojibake(cps);
    cps = FixCharacters(cps);
    cps = DecodeLossy(Nfc(Encode(cps)));
    if (cps == before) break;
  }
  return Encode(cps);
}

std::string HtmlUnescape(const std::string& utf8) {
  if (utf8.find('&') == std::string::npos) return utf8;
  return Encode(Unescape(DecodeLossy(utf8), /*exact_only=*/false));
}

std::string PythonLower(const std::string& utf8) {
  Codepoints in = DecodeLossy(utf8), out;
  for (size_t i = 0; i < in.size(); ++i) {
    int32_t cp = in[i];
    if (cp == 0x0130) {  // İ -> i + combining dot above
      out.push_back('i');
      out.push_back(0x0307);
      continue;
    }
    if (cp == 0x03A3) {  // Final_Sigma
      bool before = false, after = false;
      for (size_t j = i; j-- > 0;) {
        if (IsCaseIgnorable(in[j])) continue;
        before = IsCased(in[j]);
        break;
      }
      for (size_t j = i + 1; j < in.size(); ++j) {
        if (IsCaseIgnorable(in[j])) continue;
        after = IsCased(in[j]);
        break;
      }
      out.push_back(before && !after ? 0x03C2 : 0x03C3);
      continue;
    }
    out.push_back(utf8proc_tolower(cp));
  }
  return Encode(out);
}

absl::StatusOr<std::string> CleanForClip(const std::string& utf8) {
  Codepoints check;
  if (!Decode(utf8, &check)) return absl::InvalidArgumentError("text is not valid UTF-8");
  std::string s = HtmlUnescape(HtmlUnescape(FixText(utf8)));
  // basic_clean strips; whitespace_clean collapses \s+ to ' ' and strips.
  Codepoints cps = DecodeLossy(s), out;
  bool pending_space = false;
  for (int32_t cp : cps) {
    if (IsPySpace(cp)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(cp);
  }
  return PythonLower(Encode(out));
}

}  // namespace ganserve::core::clip
