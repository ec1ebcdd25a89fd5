// Writes the OpenAPI document of the HTTP/JSON API (server/openapi.h) to a file, at build
// time: ganserve_openapi OUT.json
#include <cstdio>
#include <fstream>

#include "server/openapi.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: ganserve_openapi OUT.json\n");
    return 2;
  }
  std::ofstream out(argv[1], std::ios::binary);
  out << ganserve::server::OpenApiDocument();
  return out.good() ? 0 : 1;
}
