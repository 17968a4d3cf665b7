"""strata's registry next to CNCF distribution 2.8 (Debian's docker-registry) on this machine.

Same client for both: skopeo copies a ~300 MB image (push from an OCI layout, pull back into one)
to a fresh registry of each kind, several rounds in alternating order (whoever goes second pays
for the first one's dirty pages otherwise), medians reported; then a load generator (``wrk`` when
installed, Debian's; else aiohttp) measures manifest and small-blob GETs per second at 1, 10 and 50
concurrent clients. Prints each number and strata/distribution ratios (>1 means strata is faster).

    python bench/registry_bench.py [--size-mb 300] [--seconds 3] [--rounds 3]

Bounded in time: about two minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))

from peers import free_port, make_skopeo, start_registry  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = f"{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"


def _blob(root: Path, data: bytes) -> dict[str, Any]:
    h = hashlib.sha256(data).hexdigest()
    (root / "blobs/sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs/sha256" / h).write_bytes(data)
    return {"digest": f"sha256:{h}", "size": len(data)}


def make_big_layout(root: Path, total_mb: int, layers: int = 6) -> None:
    """An OCI layout whose layers are tars of random (incompressible) bytes, ``total_mb`` in all."""
    per = max(1, total_mb // layers) << 20
    descs, diff_ids = [], []
    for i in range(layers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            info = tarfile.TarInfo(f"data{i}.bin")
            info.size = per
            tf.addfile(info, io.BytesIO(os.urandom(per)))
        raw = buf.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(root, raw)})
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(root, config)},
                           "layers": descs}).encode()
    m = _blob(root, manifest)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, **m, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


class Strata:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = open(tmp / "strata.log", "wb")  # noqa: SIM115
        env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "strata.server", "serve", "--addr", self.host, "--root", str(tmp / "strata-root")],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 20
        import urllib.request

        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("strata registry did not start") from None
                time.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def upload_small_blob(host: str, data: bytes, digest: str) -> None:
    """POST then PUT ?digest= (distribution 2.8 ignores a body on the POST)."""
    import urllib.request

    start = urllib.request.Request(f"http://{host}/v2/bench/small/blobs/uploads/", data=b"", method="POST")
    with urllib.request.urlopen(start, timeout=10) as r:
        location = r.headers["Location"]
    if location.startswith("/"):
        location = f"http://{host}{location}"
    sep = "&" if "?" in location else "?"
    put = urllib.request.Request(f"{location}{sep}digest={digest}", data=data, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(put, timeout=10).close()


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


async def _load(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> float:
    count = 0
    stop_at = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < stop_at:
                async with session.get(url, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"GET {url} -> {r.status}")
                count += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - t0)


WRK = shutil.which("wrk")  # Debian's wrk (C, one event loop per thread): far less CPU than a Python client


def _wrk(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> float:
    """``wrk`` on 2 threads (this machine's cores) with ``concurrency`` keep-alive connections; any
    answer but 2xx/3xx fails the measurement (wrk counts them as "Non-2xx or 3xx responses")."""
    argv = [WRK, f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "60s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"GET {url}: {out}")
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"wrk printed no rate: {out}")


def gets_per_second(host: str, path: str, headers: dict[str, str], concurrency: int, seconds: float) -> float:
    """Successful GETs per second at ``concurrency`` clients: wrk when installed, else aiohttp."""
    if WRK is not None and seconds >= 1:
        return _wrk(f"http://{host}{path}", headers, concurrency, seconds)
    return asyncio.run(_load(f"http://{host}{path}", headers, concurrency, seconds))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _start(name: str, tmp: Path, round_no: int) -> tuple[str, Any]:
    """A fresh, empty registry of either kind (new port: skopeo cannot mount from an earlier one)."""
    if name == "distribution":
        reg = start_registry()
        return reg.host, reg
    root = tmp / f"strata-{round_no}"
    root.mkdir()
    srv = Strata(root)
    return srv.host, srv


def _copy_times(skopeo: Any, name: str, tmp: Path, layout: Path, round_no: int) -> tuple[float, float]:
    host, server = _start(name, tmp, round_no)
    try:
        ref = f"docker://{host}/bench/big:1"
        os.sync()  # the previous round's dirty pages are written back before the clock starts
        push = timed(lambda: skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", ref))
        out = tmp / f"pull-{name}-{round_no}"
        os.sync()
        pull = timed(lambda: skopeo("copy", "--src-tls-verify=false", ref, f"oci:{out}:x"))
        shutil.rmtree(out, ignore_errors=True)
        return push, pull
    finally:
        server.close()
        shutil.rmtree(tmp / f"strata-{round_no}", ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each GET measurement")
    ap.add_argument("--rounds", type=int, default=3, help="push/pull rounds (order alternates; medians)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="strata-bench-"))
    skopeo = make_skopeo()
    results: dict[str, dict[str, float]] = {"strata": {}, "distribution": {}}
    copies: dict[str, dict[str, list[float]]] = {n: {"push_s": [], "pull_s": []} for n in results}
    try:
        print(f"building a {args.size_mb} MB image ...", flush=True)
        layout = tmp / "layout"
        make_big_layout(layout, args.size_mb)
        for round_no in range(args.rounds):
            order = ["distribution", "strata"] if round_no % 2 == 0 else ["strata", "distribution"]
            for name in order:
                push, pull = _copy_times(skopeo, name, tmp, layout, round_no)
                copies[name]["push_s"].append(push)
                copies[name]["pull_s"].append(pull)
                print(f"round {round_no + 1} {name}: push {push:.2f}s pull {pull:.2f}s", flush=True)
        for name in results:
            for key, values in copies[name].items():
                results[name][key] = _median(values)
        small = os.urandom(1024)
        small_digest = "sha256:" + hashlib.sha256(small).hexdigest()
        for name in results:
            host, server = _start(name, tmp, args.rounds)
            try:
                skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{host}/bench/big:1")
                upload_small_blob(host, small, small_digest)
                os.sync()
                r = results[name]
                for c in (1, 10, 50):
                    r[f"manifest_c{c}"] = gets_per_second(host, "/v2/bench/big/manifests/1", {"Accept": ACCEPT}, c,
                                                          args.seconds)
                    r[f"blob_c{c}"] = gets_per_second(host, f"/v2/bench/small/blobs/{small_digest}", {}, c,
                                                      args.seconds)
            finally:
                server.close()
            print(f"{name}: GETs done", flush=True)
    finally:
        skopeo.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"push/pull: median of {args.rounds} rounds, order alternating, os.sync() before each")
    print(f"{'metric':<16}{'distribution':>14}{'strata':>12}{'ratio':>9}")
    for key in results["strata"]:
        d, s = results["distribution"][key], results["strata"][key]
        # for times lower is better: the ratio is distribution/strata so >1 always means strata wins
        ratio = d / s if key.endswith("_s") else s / d
        unit = "s" if key.endswith("_s") else "/s"
        print(f"{key:<16}{d:>12.2f}{unit:<2}{s:>10.2f}{unit:<2}{ratio:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
