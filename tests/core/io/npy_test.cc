#include "core/io/npy.h"

#include <gtest/gtest.h>

#include "core/io/zip.h"

namespace ganserve::core {
namespace {

TEST(NpyTest, RoundTripsFloat32) {
  FloatTensor t;
  t.shape = {2, 3};
  t.data = {1, 2, 3, 4, 5, -6.5f};
  auto bytes = std::make_shared<const std::string>(EncodeNpy(t));
  EXPECT_EQ(bytes->size() % 64, 24u);  // header padded to 64, then 24 data bytes
  auto v = ParseNpy(bytes);
  ASSERT_TRUE(v.ok()) << v.status();
  auto back = ToFloatTensor(*v);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->shape, t.shape);
  EXPECT_EQ(back->data, t.data);
}

TEST(NpyTest, ScalarShapeAndInt64) {
  auto bytes = std::make_shared<const std::string>(EncodeNpyInt64({1}, {3}));
  auto v = ParseNpy(bytes);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->dtype, DType::kInt64);
  auto ints = ToInt64Vector(*v);
  ASSERT_TRUE(ints.ok());
  EXPECT_EQ(*ints, std::vector<int64_t>{3});
}

TEST(NpyTest, RejectsTruncatedData) {
  FloatTensor t;
  t.shape = {4};
  t.data = {1, 2, 3, 4};
  std::string s = EncodeNpy(t);
  s.resize(s.size() - 1);
  auto v = ParseNpy(std::make_shared<const std::string>(s));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("header says"), std::string::npos) << v.status();
}

TEST(NpyTest, RejectsBigEndianAndGarbage) {
  std::string s = EncodeNpy(FloatTensor{{1}, {1.f}});
  s.replace(s.find("<f4"), 3, ">f4");
  EXPECT_EQ(ParseNpy(std::make_shared<const std::string>(s)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseNpy(std::make_shared<const std::string>("hello")).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NpyTest, FortranOrderIsTransposedCorrectly) {
  std::string s = EncodeNpy(FloatTensor{{2, 3}, {1, 2, 3, 4, 5, 6}});
  s.replace(s.find("False"), 5, "True ");
  auto v = ParseNpy(std::make_shared<const std::string>(s));
  ASSERT_TRUE(v.ok()) << v.status();
  auto f = ToFloatTensor(*v);
  ASSERT_TRUE(f.ok());
  // Column-major data 1..6 for a 2x3 array is [[1,3,5],[2,4,6]].
  EXPECT_EQ(f->data, (std::vector<float>{1, 3, 5, 2, 4, 6}));
}

}  // namespace
}  // namespace ganserve::core
