#!/usr/bin/env bash
# TLS, mutual TLS and bearer-token scopes against the real server, with certificates
# made by openssl; the plaintext health port answers without any of them.
# Usage: security_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
ganserve=$build/server/ganserve
ganctl=$build/client/ganctl
command -v openssl > /dev/null || { echo "openssl not installed: TLS test skipped"; exit 77; }
source "$(dirname "$0")/lib.sh"

step "certificates: a CA, a server certificate for 127.0.0.1, a client certificate, and a stranger's"
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ganserve test CA" -keyout ca.key -out ca.pem 2> /dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2> /dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem 2> /dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=client" -keyout client.key -out client.csr 2> /dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem 2> /dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=stranger" -keyout other.key -out other.pem 2> /dev/null
cat > tokens.txt <<'TOK'
# token                         scopes
infer-0123456789abcdef          inference
admin-0123456789abcdef          admin
TOK
"$ganctl" local make-demo --out "$work/models" --resolution 32 > /dev/null 2>&1

start() {  # start EXTRA_FLAGS...: starts the server, sets $addr and $haddr
  "$ganserve" --listen 127.0.0.1:0 --metrics_listen "" --health_listen 127.0.0.1:0 --data_dir "$work/data" \
    --model_repository "$work/models" --device cpu "$@" 2> "$work/server.log" &
  server_pid=$!
  local line=""
  for _ in $(seq 1 100); do
    line=$(grep -o 'listening on .*health on [^ ]* (port [0-9]*)' "$work/server.log" || true)
    [ -n "$line" ] && break
    kill -0 "$server_pid" 2> /dev/null || fail "server exited: $(tail -3 "$work/server.log")"
    sleep 0.1
  done
  [ -n "$line" ] || fail "server did not report its ports"
  addr=127.0.0.1:$(echo "$line" | grep -o '(port [0-9]*)' | head -1 | grep -o '[0-9]*')
  haddr=127.0.0.1:$(echo "$line" | grep -o '(port [0-9]*)' | tail -1 | grep -o '[0-9]*')
  for _ in $(seq 1 100); do
    "$ganctl" --server "$haddr" health > /dev/null 2>&1 && return 0
    sleep 0.2
  done
  fail "health port never SERVING"
}
stop() { kill -TERM "$server_pid"; wait "$server_pid" || true; server_pid=""; }
expect() {  # expect EXIT_CODE PATTERN ganctl-args...: runs ganctl, checks its exit code and output
  local code=$1 pattern=$2; shift 2
  set +e
  local out; out=$("$ganctl" --timeout 10 "$@" 2>&1); local rc=$?
  set -e
  [ "$rc" = "$code" ] || fail "ganctl $*: exit $rc, wanted $code: $out"
  echo "$out" | grep -q -- "$pattern" || fail "ganctl $*: output lacks '$pattern': $out"
}

step "TLS with tokens: scopes decide, a missing or unknown token is refused, health stays plaintext"
start --tls_cert_file server.pem --tls_key_file server.key --auth_tokens_file tokens.txt
"$ganctl" --server "$haddr" health --service readiness | grep -q SERVING || fail "plaintext health port"
expect 1 "UNAUTHENTICATED.*bearer token" --server "$addr" --tls-ca ca.pem models list
expect 1 "UNAUTHENTICATED: unknown bearer token" --server "$addr" --tls-ca ca.pem --token wrong-token-0123456789 models list
expect 0 "demo" --server "$addr" --tls-ca ca.pem --token infer-0123456789abcdef models list
GANSERVE_TOKEN=infer-0123456789abcdef expect 0 "wrote 1 images" --server "$addr" --tls-ca ca.pem \
  generate --model demo --seeds 1 --out "$work/gen"
expect 1 "PERMISSION_DENIED: AdaptDomain needs a token with the 'admin' scope" --server "$addr" --tls-ca ca.pem \
  --token infer-0123456789abcdef adapt --model demo --to sketch --iterations 1 --out "$work/a"
expect 1 "PERMISSION_DENIED: DeleteModel" --server "$addr" --tls-ca ca.pem --token infer-0123456789abcdef \
  models delete demo
# The admin token passes authorization; the delete itself is refused for a base model.
expect 1 "FAILED_PRECONDITION" --server "$addr" --tls-ca ca.pem --token admin-0123456789abcdef models delete demo
# Plaintext to a TLS port, or a CA that did not sign the server's certificate, does not connect.
expect 3 "cannot reach" --server "$addr" --token infer-0123456789abcdef models list
expect 3 "cannot reach" --server "$addr" --tls-ca other.pem --token infer-0123456789abcdef models list
stop

step "mutual TLS: a client certificate signed by the client CA is required"
start --tls_cert_file server.pem --tls_key_file server.key --tls_client_ca_file ca.pem
expect 0 "demo" --server "$addr" --tls-ca ca.pem --tls-cert client.pem --tls-key client.key models list
expect 3 "cannot reach" --server "$addr" --tls-ca ca.pem models list
expect 3 "cannot reach" --server "$addr" --tls-ca ca.pem --tls-cert other.pem --tls-key other.key models list
stop

step "bad security flags stop the server with a reason"
set +e
"$ganserve" --listen 127.0.0.1:0 --metrics_listen "" --data_dir "$work/data" --model_repository "$work/models" \
  --tls_cert_file server.pem > /dev/null 2> "$work/bad.log"; rc=$?
"$ganserve" --listen 127.0.0.1:0 --metrics_listen "" --data_dir "$work/data" --model_repository "$work/models" \
  --auth_tokens_file ca.key > /dev/null 2> "$work/bad2.log"; rc2=$?
set -e
[ "$rc" != 0 ] && grep -q "needs both --tls_cert_file and --tls_key_file" "$work/bad.log" || fail "half TLS config: $(cat "$work/bad.log")"
[ "$rc2" != 0 ] && grep -q "auth tokens file line" "$work/bad2.log" || fail "bad tokens file: $(cat "$work/bad2.log")"
echo "security tests passed"
