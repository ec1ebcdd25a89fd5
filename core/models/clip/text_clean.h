// Text normalisation in front of CLIP's BPE tokenizer, reproducing what OpenAI's
// simple_tokenizer does: ftfy.fix_text, html.unescape twice, whitespace collapse and
// strip, then Python's str.lower(). Torch-free.
//
// ftfy coverage (ftfy 6.x fix_text defaults, applied until nothing changes):
//   covered: HTML entity unescaping (when the text has no '<'), mojibake of UTF-8 read
//   as Windows-1252 / Latin-1 (whole runs that re-encode to valid multi-byte UTF-8),
//   C1 controls as Windows-1252, Latin ligatures (ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ Ĳ ĳ ŉ Ǆ ǅ ǆ Ǉ ǈ ǉ Ǌ ǋ ǌ),
//   full-width and half-width forms (NFKC of U+FF01-U+FFEF, U+3000), curly quotes,
//   line breaks, terminal escape sequences, control characters and byte-order marks,
//   NFC normalisation.
//   not covered: ftfy's statistical "badness" heuristics for mixed or partial mojibake,
//   other legacy encodings (MacRoman, cp437, ...), restore_byte_a0 and
//   replace_lossy_sequences, surrogate pairs (they cannot occur in valid UTF-8 input).
// HTML entities: the 252 HTML 4 names (plus numeric references); names that exist only
// in HTML5's longer table are left as text.
#ifndef GANSERVE_CORE_MODELS_CLIP_TEXT_CLEAN_H_
#define GANSERVE_CORE_MODELS_CLIP_TEXT_CLEAN_H_

#include <string>

#include "absl/status/statusor.h"

namespace ganserve::core::clip {

// ftfy.fix_text subset (see above). Input must be valid UTF-8.
std::string FixText(const std::string& utf8);
// Python's html.unescape for the HTML 4 entity names and numeric references.
std::string HtmlUnescape(const std::string& utf8);
// whitespace_clean(basic_clean(text)).lower(): the string CLIP's split regex sees.
// InvalidArgument if `utf8` is not valid UTF-8.
absl::StatusOr<std::string> CleanForClip(const std::string& utf8);
// Python str.lower(): full lowercase mapping (İ -> i̇, final sigma).
std::string PythonLower(const std::string& utf8);

}  // namespace ganserve::core::clip

#endif  // GANSERVE_CORE_MODELS_CLIP_TEXT_CLEAN_H_
