#!/usr/bin/env bash
# Stateless registry replicas: a private radosgw (Ceph's S3), a private redis-server, 3 `strata registry
# serve` replicas over one bucket and HAProxy round-robin in front (tests/server/s3/cluster.py, the
# helper the tests use). strata pushes and pulls through the balancer; a chunked upload crosses the
# replicas; one replica is killed with -9 and the image is still there; GC runs from one replica.
# Everything runs on loopback and is removed at the end. Run by `make demo-scale`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PYTHONPATH="$root/src"
PY="${PY:-$root/.venv/bin/python}"
strata() { "$PY" -m strata "$@"; }
work=$(mktemp -d /tmp/strata-demo-scale.XXXXXX)
export STRATA_ROOT="$work/store" DOCKER_CONFIG="$work/docker-config" STRATA_CONFIG="$work/strata.json"
cluster_pid=""
cleanup() {
  if [ -n "$cluster_pid" ]; then kill -TERM "$cluster_pid" 2>/dev/null || true; wait "$cluster_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "== radosgw + redis + 3 replicas + haproxy (tests/server/s3/cluster.py) =="
(cd "$root/tests" && exec "$PY" -c 'import sys; from pathlib import Path
from server.s3.cluster import serve_until_stopped
serve_until_stopped(Path(sys.argv[1]), Path(sys.argv[2]))' "$work/cluster" "$work/ready") &
cluster_pid=$!
for _ in $(seq 1 600); do [ -s "$work/ready" ] && break; kill -0 "$cluster_pid" 2>/dev/null || exit 1; sleep 0.2; done
[ -s "$work/ready" ] || { echo "the cluster did not start" >&2; exit 1; }
source "$work/ready"
echo "load balancer: $LB   replicas: $REPLICAS   redis: $REDIS   s3: $S3_ENDPOINT/$BUCKET"

echo; echo "== an image from Debian's busybox-static, pushed and pulled through the balancer =="
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp}
cp "$(command -v busybox)" "$rootfs/bin/busybox"
ln -s busybox "$rootfs/bin/sh"
tar -C "$rootfs" --numeric-owner -cf "$work/rootfs.tar" .
step strata import -c 'CMD ["/bin/sh"]' "$work/rootfs.tar" "$LB/demo/busybox:1"
step strata push "$LB/demo/busybox:1"
step strata rmi "$LB/demo/busybox:1"
step strata pull "$LB/demo/busybox:1"

echo; echo "== a chunked upload: each PATCH answered by whichever replica haproxy picks =="
"$PY" - "$LB" <<'PYEOF'
import hashlib, http.client, os, sys
host, port = sys.argv[1].rsplit(":", 1)
def req(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse(); r.read(); c.close()
    return r
data = os.urandom(5 << 20)
r = req("POST", "/v2/demo/chunked/blobs/uploads/")
loc = r.getheader("Location"); print(f"POST  -> {r.status} from {r.getheader('X-Served-By')}")
for off in range(0, len(data), 1 << 20):
    piece = data[off:off + (1 << 20)]
    r = req("PATCH", loc, piece, {"Content-Range": f"{off}-{off + len(piece) - 1}"})
    print(f"PATCH {off}-{off + len(piece) - 1} -> {r.status} from {r.getheader('X-Served-By')}, Range {r.getheader('Range')}")
d = "sha256:" + hashlib.sha256(data).hexdigest()
r = req("PUT", f"{loc}?digest={d}")
print(f"PUT   -> {r.status} from {r.getheader('X-Served-By')}: {r.getheader('Docker-Content-Digest')}")
assert r.status == 201
PYEOF

echo; echo "== kill -9 of replica 2: the others still serve everything =="
victim=$(echo "$REPLICAS" | cut -d' ' -f2)
vpid=$(pgrep -f "config-${victim##*:}.yml" | head -1)
step kill -9 "$vpid"
sleep 1
step strata rmi "$LB/demo/busybox:1"
step strata pull "$LB/demo/busybox:1"

echo; echo "== garbage collection from replica 1 (the GC lock is a lease in redis) =="
step strata registry garbage-collect --config "$CONFIG0" --grace-period 0s
step strata pull "$LB/demo/busybox:1"
echo; echo "demo-scale: done"
