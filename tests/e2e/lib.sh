# Shared by the e2e scripts (source it after setting -euo pipefail): a work folder
# removed on exit together with the server the script started (its PID in server_pid),
# and the fail/step helpers. fail prints the server log's tail; step prints the seconds
# since the script began, so a run that nears its ctest timeout shows where the time went.
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -9 "$server_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$work/server.log" ] && tail -20 "$work/server.log"; exit 1; }
step() { echo "--- $* (at ${SECONDS} s)"; }
# server_port LOG: the gRPC port a starting ganserve reports in LOG (waits up to 10 s).
server_port() {
  local port=""
  for _ in $(seq 1 100); do
    port=$(grep -o 'port [0-9]*), metrics' "$1" | grep -o '[0-9]*' || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "FAIL: server did not report its port" >&2
    tail -20 "$1" >&2
    return 1
  fi
  echo "$port"
}
# same_pixels A.png B.png [TOLERANCE]: the two 8-bit PNGs have the same size and no
# channel differs by more than TOLERANCE levels (default 1). Renders of one seed in
# batches of different sizes may round differently by a float epsilon: BLAS and oneDNN
# pick kernels per CPU and batch shape, so one level is the promise, not equal bytes.
same_pixels() {
  python3 - "$1" "$2" "${3:-1}" <<'PY'
import struct, sys, zlib
def pixels(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color == 2, "8-bit RGB expected"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, out, prev = zlib.decompress(idat), 3 * w, [], bytearray(3 * w)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b, c = prev[i], prev[i - 3] if i >= 3 else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return (w, h), out
(sa, a), (sb, b) = pixels(sys.argv[1]), pixels(sys.argv[2])
sys.exit(0 if sa == sb and max(abs(x - y) for x, y in zip(a, b)) <= int(sys.argv[3]) else 1)
PY
}
# running_job MIN_STEP [KIND]: waits up to 60 s for a running job (of KIND, e.g.
# JOB_KIND_INVERT; any when empty) at step MIN_STEP or later on the server at $addr, and
# prints its id (nothing if none came).
running_job() {
  local id=""
  for _ in $(seq 1 600); do
    id=$("$ganctl" --server "$addr" --json jobs list --state running 2>/dev/null | python3 -c '
import json, sys
min_step, kind = int(sys.argv[1]), sys.argv[2]
jobs = [j for j in json.load(sys.stdin).get("jobs", []) if not kind or j.get("kind") == kind]
print(jobs[0]["id"] if jobs and int(jobs[0].get("step", 0)) >= min_step else "")' "$1" "${2:-}" || true)
    [ -n "$id" ] && break
    sleep 0.1
  done
  echo "$id"
}
