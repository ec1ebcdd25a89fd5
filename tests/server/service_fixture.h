// The real server, in-process on 127.0.0.1:0, shared by the RPC tests of one process
// (a 32 px generator "tiny", CLIPs, a broken model, and a job store seeded with a
// finished and a queued job), and small call helpers.
#ifndef GANSERVE_TESTS_SERVER_SERVICE_FIXTURE_H_
#define GANSERVE_TESTS_SERVER_SERVICE_FIXTURE_H_

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/server/test_server.h"

namespace ganserve::testing {

// Unique per process: ctest runs each test in its own process.
std::string Root(const char* name);

class GanServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  void SetUp() override;
  static void TearDownTestSuite();
  static TestServer* server_;
  static bool setup_ok_;
};

// Reads every message of a server stream; `status` gets how it ended.
template <typename Msg, typename Reader>
std::vector<Msg> ReadAll(Reader reader, grpc::Status* status) {
  std::vector<Msg> out;
  Msg m;
  while (reader->Read(&m)) out.push_back(m);
  *status = reader->Finish();
  return out;
}

// Reads a whole GenerateSamples / Edit stream; `status` gets how it ended.
std::vector<v1::ImageBatch> Generate(v1::GanService::Stub* stub, const v1::GenerateSamplesRequest& req,
                                     grpc::Status* status);
std::vector<v1::ImageBatch> EditCall(v1::GanService::Stub* stub, const v1::EditRequest& req, grpc::Status* st);

// One file of an ImportModel upload; total and sha256 may be set wrong on purpose.
struct UpFile {
  UpFile(std::string f, std::string b, int64_t t = -1, std::string s = "")
      : filename(std::move(f)), bytes(std::move(b)), total(t), sha256(std::move(s)) {}
  std::string filename, bytes;
  int64_t total = -1;  // -1: the real size
  std::string sha256;  // empty: the real digest
};
struct Upload {
  std::string name;
  int kind = v1::MODEL_KIND_GENERATOR;
  std::vector<UpFile> files;
  std::string base_model;  // MAPPER, ENCODER
};
// Streams an upload in chunks of at most 1 MiB; `m` gets the new model.
grpc::Status Import(v1::GanService::Stub* stub, const Upload& u, v1::Model* m);

}  // namespace ganserve::testing

#endif  // GANSERVE_TESTS_SERVER_SERVICE_FIXTURE_H_
