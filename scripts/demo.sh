#!/usr/bin/env bash
# The user's workflow (../shared/seed/) end to end with strata in place of docker, on a base image built
# here from Debian's busybox-static. Run by `make demo` after it installed everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
work=$(mktemp -d /tmp/strata-demo.XXXXXX)
export STRATA_ROOT="$work/store"
export DOCKER_CONFIG="$work/docker-config"
registry_pid=""
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  for c in $(strata ps -aq 2>/dev/null || true); do strata rm -f "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
fails() { printf '\n\033[1m$ %s\033[0m\n' "$*"; if "$@"; then echo "(expected an error)"; exit 1; fi; }

echo "== a base image from Debian's busybox-static =="
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,root,tmp,proc,sys,dev}
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for a in sh ash ls cat echo touch mkdir rm cp mv true false sleep id hostname ps grep head tail wc; do
  ln -s busybox "$rootfs/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
tar -C "$rootfs" --numeric-owner -cf "$work/rootfs.tar" .
step strata import -c 'CMD ["/bin/sh"]' "$work/rootfs.tar" ubuntu:14.04
step strata images

echo; echo "== Creating an image: run, change a file, commit =="
step strata run --name commit_test ubuntu:14.04 sh -c 'echo test_first! >> first'
step strata commit -a "alicek106" -m "my first commit" commit_test commit_test:first
step strata images
step strata run --name commit_test2 commit_test:first sh -c 'echo test_second! >> second'
step strata commit -a "alicek106" -m "my second commit" commit_test2 commit_test:second
step strata images
echo "(the store grew by the two small layers only:)"
step du -sh "$STRATA_ROOT"

echo; echo "== How images are structured =="
step strata history commit_test:second
fails strata rmi commit_test:first
step strata stop commit_test2
step strata rm commit_test2
step strata rmi commit_test:first
step strata rmi commit_test:second
step strata rm commit_test

echo; echo "== Extracting images =="
step strata save -o "$work/ubuntu_14_04.tar" ubuntu:14.04
step strata load -i "$work/ubuntu_14_04.tar"
step strata run --name mycontainer ubuntu:14.04 sh -c 'echo hi > /hello'
step strata export -o "$work/rootFS.tar" mycontainer
step strata import "$work/rootFS.tar" myimage:0.0
step strata images

echo; echo "== Distributing images: a private registry of our own =="
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
strata registry htpasswd -c "$work/htpasswd" alicek107 secret >/dev/null
cat > "$work/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd:
    realm: strata
    path: $work/htpasswd
YML
strata registry serve --config "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
python3 - "$port" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.1)
PY
step strata run --name commit_container1 ubuntu:14.04 sh -c 'echo my first push >> test'
step strata commit commit_container1 my-image-name:0.0
step strata tag my-image-name:0.0 "127.0.0.1:$port/alicek107/my-image-name:0.0"
step strata images
echo secret | step strata login -u alicek107 --password-stdin "127.0.0.1:$port"
step strata push "127.0.0.1:$port/alicek107/my-image-name:0.0"
step strata push "127.0.0.1:$port/alicek107/my-image-name:0.0"
step strata rm commit_container1
step strata rmi "127.0.0.1:$port/alicek107/my-image-name:0.0" my-image-name:0.0
step strata pull "127.0.0.1:$port/alicek107/my-image-name:0.0"
step strata search "127.0.0.1:$port/my-image"
step strata images --digests

echo; echo "== The private registry as a container: registry:2 from Debian's docker-registry =="
reg="$work/registry2"
mkdir -p "$reg"/{bin,etc/docker/registry,var/lib/registry,lib/x86_64-linux-gnu,lib64,tmp}
cp /usr/bin/docker-registry "$reg/bin/registry"
for lib in $(ldd /usr/bin/docker-registry | grep -o '/[^ ]*'); do   # its shared libraries, as ldd names them
  mkdir -p "$reg$(dirname "$lib")"; cp -L "$lib" "$reg$lib"
done
cat > "$reg/etc/docker/registry/config.yml" <<'YML'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
YML
tar -C "$reg" --numeric-owner -cf "$work/registry2.tar" .
step strata import -c 'ENTRYPOINT ["/bin/registry"]' -c 'CMD ["serve", "/etc/docker/registry/config.yml"]' \
  -c 'EXPOSE 5000' -c 'VOLUME ["/var/lib/registry"]' "$work/registry2.tar" registry:2
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
wait_registry() {
  python3 - "$rport" <<'PY'
import sys, time, urllib.request
for _ in range(150):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/", timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("the registry did not answer")
PY
}
step strata run -d --name myregistry -p "$rport:5000" --restart=always -v registry-data:/var/lib/registry registry:2
wait_registry
step strata tag ubuntu:14.04 "127.0.0.1:$rport/ubuntu:14.04"
step strata push "127.0.0.1:$rport/ubuntu:14.04"
echo "(kill -9 of the registry process: the restart policy brings it back)"
kill -9 "$(strata inspect -f '{{.State.Pid}}' myregistry)"
sleep 1; wait_registry
step strata inspect -f 'RestartCount={{.RestartCount}} Status={{.State.Status}}' myregistry
step strata stop myregistry
sleep 1
step strata ps -a --filter name=myregistry
step strata rm -f myregistry
step strata run -d --name myregistry -p "$rport:5000" --restart=always -v registry-data:/var/lib/registry registry:2
wait_registry
step strata rmi "127.0.0.1:$rport/ubuntu:14.04"
step strata pull "127.0.0.1:$rport/ubuntu:14.04"
step strata volume ls
step strata rm -f myregistry

echo; echo "== strata's own registry as an image (make registry-image), run the same way =="
py=$(head -1 "$(command -v strata)" | sed 's/^#!//' | cut -d" " -f1)   # the Python that runs strata (its shebang may carry -S), with its dependencies
step "$py" scripts/registry_image.py --tag strata-registry:latest
step strata run -d --name ourregistry -p "$rport:5000" --restart=always -v our-registry-data:/var/lib/registry strata-registry
wait_registry
step strata push "127.0.0.1:$rport/ubuntu:14.04"
echo "(kill -9 of the registry process: the restart policy brings it back)"
kill -9 "$(strata inspect -f '{{.State.Pid}}' ourregistry)"
sleep 1; wait_registry
step strata inspect -f 'RestartCount={{.RestartCount}} Status={{.State.Status}}' ourregistry
step strata rm -f ourregistry

echo; echo "demo finished: every step of the user's notes ran with strata."
