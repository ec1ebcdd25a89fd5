#!/usr/bin/env bash
# Go clients can generate stubs from the proto: protoc with Debian's protoc-gen-go and
# protoc-gen-go-grpc over proto/ (go_package options on every file), and the service
# client is there. Exit 77 (skipped) without the plugins.
set -euo pipefail
root=$1
for p in protoc protoc-gen-go protoc-gen-go-grpc; do
  command -v "$p" > /dev/null || { echo "skipped: $p not installed (scripts/install-deps.sh installs it)"; exit 77; }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$root/proto"
protoc -I . --go_out="$out" --go-grpc_out="$out" ganserve/v1/ganserve.proto google/api/http.proto \
  google/api/annotations.proto google/rpc/status.proto google/rpc/error_details.proto
pkg="$out/github.com/ganserve/ganserve/gen/go/ganserve/v1"
grep -q "func NewGanServiceClient" "$pkg/ganserve_grpc.pb.go" || { echo "FAIL: no GanService client in the Go stubs"; exit 1; }
grep -q "type AdaptDomainRequest struct" "$pkg/ganserve.pb.go" || { echo "FAIL: no messages in the Go stubs"; exit 1; }
if command -v gofmt > /dev/null; then
  bad=$(gofmt -l "$out") || { echo "FAIL: the generated Go does not parse"; exit 1; }
  [ -z "$bad" ] || { echo "FAIL: gofmt would change: $bad"; exit 1; }
fi
echo "Go stubs: $(find "$out" -name '*.go' | wc -l) files"
