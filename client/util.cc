#include "client/util.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ganserve::client {
namespace {

// LAYER_PRESET_NO_FINE -> no_fine for type LayerPreset (the value names share a prefix).
std::string ShortName(const google::protobuf::EnumDescriptor* type, const std::string& value) {
  const std::string prefix = type->value_count() > 0 ? type->value(0)->name() : "";
  const size_t cut = prefix.rfind("_UNSPECIFIED");
  std::string s = cut == std::string::npos ? value : value.substr(cut + 1);
  return absl::AsciiStrToLower(s);
}

}  // namespace

absl::Status ApplySets(const std::vector<std::string>& sets, google::protobuf::Message* request) {
  if (sets.empty()) return absl::OkStatus();
  google::protobuf::util::JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(*request, &text, print).ok()) {
    return absl::InternalError("the request could not be written as JSON");
  }
  nlohmann::json doc = nlohmann::json::parse(text);
  for (const std::string& set : sets) {
    const size_t eq = set.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError("--set takes FIELD=VALUE, got '" + set + "'");
    }
    const std::string value = set.substr(eq + 1);
    nlohmann::json* at = &doc;
    for (const auto& part : absl::StrSplit(set.substr(0, eq), '.')) {
      if (!at->is_object()) return absl::InvalidArgumentError("--set " + set + ": not a message field to descend into");
      at = &(*at)[std::string(part)];
    }
    nlohmann::json parsed = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
    *at = parsed.is_discarded() ? nlohmann::json(value) : parsed;
  }
  google::protobuf::util::JsonParseOptions parse;
  request->Clear();
  const auto st = google::protobuf::util::JsonStringToMessage(doc.dump(), request, parse);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--set: ", std::string(st.message()), " (fields are the proto's, e.g. lambda_direction=0)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ParseEnumFlag(const std::string& flag, const std::string& name,
                                  const google::protobuf::EnumDescriptor* type) {
  for (int i = 1; i < type->value_count(); ++i) {
    if (ShortName(type, type->value(i)->name()) == absl::AsciiStrToLower(name)) return type->value(i)->number();
  }
  return absl::InvalidArgumentError(absl::StrCat(flag, " takes ", EnumFlagNames(type), ", got '", name, "'"));
}

std::string EnumFlagName(const google::protobuf::EnumDescriptor* type, int number) {
  const auto* v = type->FindValueByNumber(number);
  return v == nullptr ? std::to_string(number) : ShortName(type, v->name());
}

std::string EnumFlagNames(const google::protobuf::EnumDescriptor* type) {
  std::vector<std::string> names;
  for (int i = 1; i < type->value_count(); ++i) names.push_back(ShortName(type, type->value(i)->name()));
  return absl::StrJoin(names, " | ");
}

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
