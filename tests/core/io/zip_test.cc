#include "core/io/zip.h"

#include <gtest/gtest.h>

namespace ganserve::core {
namespace {

TEST(ZipTest, WriterOutputReadsBackWithAlignment) {
  ZipWriter w;
  w.Add("arc/data.pkl", "pickle-bytes");
  w.Add("arc/data/0", std::string(100, 'x'), 64);
  auto file = MappedFile::FromString(w.Finish());
  auto zip = ZipReader::Open(file);
  ASSERT_TRUE(zip.ok()) << zip.status();
  ASSERT_EQ((*zip)->entries().size(), 2u);
  auto b = (*zip)->Read("arc/data/0");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->size, 100u);
  EXPECT_EQ((b->data - file->data()) % 64, 0);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b->data), b->size), std::string(100, 'x'));
  EXPECT_EQ((*zip)->Read("missing").status().code(), absl::StatusCode::kNotFound);
}

TEST(ZipTest, TruncatedArchivesFailCleanly) {
  ZipWriter w;
  w.Add("a/b", std::string(1000, 'y'));
  std::string full = w.Finish();
  for (size_t cut : {size_t{0}, size_t{10}, size_t{500}, full.size() - 1}) {
    auto zip = ZipReader::Open(MappedFile::FromString(full.substr(0, cut)));
    if (zip.ok()) {
      EXPECT_FALSE((*zip)->Read("a/b").ok()) << cut;
    } else {
      EXPECT_EQ(zip.status().code(), absl::StatusCode::kInvalidArgument) << cut;
    }
  }
}

}  // namespace
}  // namespace ganserve::core
