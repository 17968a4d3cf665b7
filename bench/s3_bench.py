"""strata's registry on S3 next to CNCF distribution 2.8.2 (Debian's docker-registry) on the same S3.

Both store into their own bucket of one private radosgw (Ceph's S3 gateway, `tests/server/s3/radosgw.py`),
with redirects off so every byte goes through the registry being measured. Measured: skopeo push and
pull of a ``--size-mb`` image (rounds in alternating order, medians), then manifest and small-blob
GETs per second at ``--clients`` concurrent clients for distribution, strata with 1 worker, strata
with ``--workers`` workers and ``--replicas`` stateless strata replicas (one worker each, sharing a
private redis-server) behind HAProxy round-robin (``tests/server/s3/cluster.py``, as ``make demo-scale``).
Scaling factors are against strata with 1 worker. Ratios above 1: strata wins.

    python bench/s3_bench.py [--size-mb 300] [--rounds 3] [--seconds 3] [--clients 50] [--workers 2] [--replicas 3]
                             [--gets-only] [--repeat 3]

GETs/s are the median of ``--repeat`` runs, with the lowest and highest printed (the machine may be
shared: the spread says how much to trust a ratio).

Bounded in time (a few minutes); radosgw keeps the data in memory (about 2x the bytes stored).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from registry_bench import ACCEPT, WRK, gets_per_second, make_big_layout, upload_small_blob  # noqa: E402

from peers import make_skopeo  # noqa: E402
from server.s3.cluster import start_cluster  # noqa: E402
from server.s3.radosgw import Radosgw, start_radosgw  # noqa: E402
from server.s3.redisd import RedisServer, start_redis  # noqa: E402
from server.s3.servers import S3RegistryProcess, start_distribution_on_s3, start_strata_on_s3  # noqa: E402

Starter = Callable[..., S3RegistryProcess]
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _push_small_image(host: str) -> str:
    """A config, a 1 KiB layer and a manifest tagged ``bench/small:1``; returns the layer digest."""
    import urllib.request

    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = os.urandom(1024)
    digests = []
    for data in (config, layer):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        upload_small_blob(host, data, d)
        digests.append(d)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digests[0], "size": len(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": digests[1], "size": 1024}],
    }).encode()  # fmt: skip
    req = urllib.request.Request(f"http://{host}/v2/bench/small/manifests/1", data=manifest, method="PUT",
                                 headers={"Content-Type": MANIFEST})  # fmt: skip
    urllib.request.urlopen(req, timeout=30).close()
    return digests[1]


SPREAD: dict[str, dict[str, tuple[float, float]]] = {}  # name -> metric -> (lowest, highest) of the repeats
CPU_MS: dict[str, dict[str, float]] = {}  # name -> metric -> the registry's CPU ms per request (median)
STORE_CPU_MS: dict[str, dict[str, float]] = {}  # name -> metric -> radosgw + OSD + monitor CPU ms per request
_TICK = os.sysconf("SC_CLK_TCK")


def _tree(pids: list[int]) -> list[int]:
    """``pids`` and their descendants (a registry's worker processes)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes (the registry's own cost, whatever the machine's load)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def _store_pids(rgw: Radosgw) -> list[int]:
    """radosgw, the OSD and the monitor: the object store's share of every request."""
    pids = []
    for pidfile in (rgw.root / "run").glob("*.pid"):
        try:
            pids.append(int(pidfile.read_text().strip()))
        except (OSError, ValueError):
            continue
    return pids


def _registry_pids(reg: Any) -> list[int]:
    replicas = getattr(reg, "replicas", None)
    return _tree([r.proc.pid for r in replicas] if replicas is not None else [reg.proc.pid])


def _gets(rgw: Radosgw, start: Starter, tmp: Path, clients: int, seconds: float, repeat: int = 1,
          name: str = "") -> dict[str, float]:  # fmt: skip
    """Median GETs/s of ``repeat`` runs each (manifest by tag, then a 1 KiB blob, alternating); the
    lowest and highest go to ``SPREAD``. One warm-up request of each first (caches filled)."""
    with start(rgw, rgw.new_bucket(), tmp, redirect=False) as reg:
        layer = _push_small_image(reg.url)
        paths = {f"manifest_c{clients}": ("/v2/bench/small/manifests/1", {"Accept": ACCEPT}),
                 f"blob_c{clients}": (f"/v2/bench/small/blobs/{layer}", {})}  # fmt: skip
        runs: dict[str, list[float]] = {k: [] for k in paths}
        cpu: dict[str, list[float]] = {k: [] for k in paths}
        store_cpu: dict[str, list[float]] = {k: [] for k in paths}
        pids, store = _registry_pids(reg), _store_pids(rgw)
        for path, headers in paths.values():
            gets_per_second(reg.url, path, headers, 1, 0.2)
        for _ in range(repeat):
            for key, (path, headers) in paths.items():
                before, store_before = _cpu_seconds(pids), _cpu_seconds(store)
                rate = gets_per_second(reg.url, path, headers, clients, seconds)
                runs[key].append(rate)
                n = max(1.0, rate * seconds)
                cpu[key].append(1000 * (_cpu_seconds(pids) - before) / n)
                store_cpu[key].append(1000 * (_cpu_seconds(store) - store_before) / n)
        SPREAD[name] = {k: (min(v), max(v)) for k, v in runs.items()}
        CPU_MS[name] = {k: _median(v) for k, v in cpu.items()}
        STORE_CPU_MS[name] = {k: _median(v) for k, v in store_cpu.items()}
        return {k: _median(v) for k, v in runs.items()}


def _empty(rgw: Radosgw, bucket: str) -> None:
    """Delete what a round stored (radosgw's memstore holds it in memory until its GC runs)."""
    client = rgw.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def _copy(rgw: Radosgw, start: Starter, tmp: Path, skopeo: Any, layout: Path, tag: str) -> tuple[float, float]:
    bucket = rgw.new_bucket()
    try:
        return _timed_copy(rgw, start, bucket, tmp, skopeo, layout, tag)
    finally:
        _empty(rgw, bucket)


def _timed_copy(rgw: Radosgw, start: Starter, bucket: str, tmp: Path, skopeo: Any, layout: Path,
                tag: str) -> tuple[float, float]:  # fmt: skip
    with start(rgw, bucket, tmp, redirect=False) as reg:
        ref = f"docker://{reg.url}/bench/big:1"
        t0 = time.perf_counter()
        skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", ref)
        push = time.perf_counter() - t0
        out = tmp / f"pull-{tag}"
        t0 = time.perf_counter()
        skopeo("copy", "--src-tls-verify=false", ref, f"oci:{out}:x")
        pull = time.perf_counter() - t0
        shutil.rmtree(out, ignore_errors=True)
        return push, pull


def _replicas_starter(rds: RedisServer, n: int) -> Starter:
    def start(rgw: Radosgw, bucket: str, tmp: Path, redirect: bool = False) -> Any:
        # HAProxy keeps its connections to the replicas (still round-robin per request), as deployed
        return start_cluster(rgw, rds, tmp / f"cluster-{bucket}", n=n, bucket=bucket, keepalive=True)

    return start


def _print(results: dict[str, dict[str, float]]) -> None:
    names = list(results)
    scaled = names[2:]
    print(f"\n{'metric':<16}" + "".join(f"{n:>16}" for n in names) + f"{'strata/dist':>13}"
          + "".join(f"{'x ' + n[7:]:>10}" for n in scaled))  # fmt: skip
    for key in results["distribution"]:
        row = [results[n].get(key, float("nan")) for n in names]
        dist, one = row[0], row[1]
        best = min(row[1:]) if key.endswith("_s") else max(row[1:])
        ratio = dist / best if key.endswith("_s") else best / dist
        scaling = [one / v if key.endswith("_s") else v / one for v in row[2:]]
        unit = "s" if key.endswith("_s") else "/s"
        print(f"{key:<16}" + "".join(f"{v:>14.2f}{unit:<2}" for v in row) + f"{ratio:>12.2f}x"
              + "".join(f"{f:>9.2f}x" for f in scaling))  # fmt: skip
    print("(strata/dist uses strata's best column; x N: scaling against strata with 1 worker)")
    if SPREAD:
        print("spread of the GET runs (lowest-highest /s):")
        for name, spread in SPREAD.items():
            print(f"  {name:<14}" + "".join(f"  {k} {lo:.0f}-{hi:.0f}" for k, (lo, hi) in spread.items()))
    if CPU_MS:
        print("registry CPU per request (ms, all its processes; radosgw and the load generator not counted):")
        for name, per in CPU_MS.items():
            print(f"  {name:<14}" + "".join(f"  {k} {v:.2f}" for k, v in per.items()))
    if CPU_MS:
        print("requests per CPU-second of the registry's processes (what a core given to it serves):")
        for name, per in CPU_MS.items():
            print(f"  {name:<14}" + "".join(f"  {k} {1000 / v:.0f}" for k, v in per.items() if v > 0))
    if STORE_CPU_MS:
        print("object store CPU per request (ms: radosgw, OSD, monitor; the registry's S3 calls cost this much):")
        for name, per in STORE_CPU_MS.items():
            print(f"  {name:<14}" + "".join(f"  {k} {v:.2f}" for k, v in per.items()))
    print(f"load generator: {'wrk' if WRK else 'aiohttp (install wrk for a lighter one)'}")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--gets-only", action="store_true", help="only the GETs/s rows (no push/pull rounds)")
    ap.add_argument("--repeat", type=int, default=3, help="GET runs per registry (median)")
    ap.add_argument("--only", default="", help="comma-separated: distribution,1w,Nw,Nr (default: all of them)")
    args = ap.parse_args(argv or [])
    tmp = Path(tempfile.mkdtemp(prefix="strata-s3-bench-"))
    starters: dict[str, Starter] = {
        "distribution": start_distribution_on_s3,
        "strata-1w": start_strata_on_s3,
        f"strata-{args.workers}w": functools.partial(start_strata_on_s3, workers=args.workers),
    }
    skopeo = make_skopeo()
    rds = start_redis()
    if args.replicas > 0:
        starters[f"strata-{args.replicas}r"] = _replicas_starter(rds, args.replicas)
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        starters = {n: f for n, f in starters.items() if n in wanted or n.removeprefix("strata-") in wanted}
        if "distribution" not in starters or "strata-1w" not in starters:
            raise SystemExit("--only must include distribution and 1w (the ratios and scaling are against them)")
    results: dict[str, dict[str, float]] = {name: {} for name in starters}
    try:
        with start_radosgw() as rgw:
            for name, start in starters.items():
                results[name].update(_gets(rgw, start, tmp, args.clients, args.seconds, args.repeat, name))
                print(f"{name}: {results[name]}", flush=True)
            if args.gets_only:
                args.rounds = 0
            else:
                make_big_layout(tmp / "layout", args.size_mb)
            layout = tmp / "layout"
            copies: dict[str, dict[str, list[float]]] = {n: {"push_s": [], "pull_s": []} for n in starters}
            for round_no in range(args.rounds):
                order = list(starters) if round_no % 2 == 0 else list(reversed(starters))
                for name in order:
                    push, pull = _copy(rgw, starters[name], tmp, skopeo, layout, f"{name}-{round_no}")
                    copies[name]["push_s"].append(push)
                    copies[name]["pull_s"].append(pull)
                    print(f"round {round_no + 1} {name}: push {push:.2f}s pull {pull:.2f}s", flush=True)
            for name, times in copies.items():
                results[name].update({k: _median(v) for k, v in times.items() if v})
    finally:
        skopeo.close()
        rds.close()
        shutil.rmtree(tmp, ignore_errors=True)
    _print(results)
    _save(results, args)
    return 0


def _save(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    """Everything printed, as JSON in bench/results/s3_bench.json (not committed)."""
    out = HERE / "results" / "s3_bench.json"
    out.parent.mkdir(exist_ok=True)
    doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "args": vars(args), "results": results,
           "spread": SPREAD, "registry_cpu_ms": CPU_MS, "store_cpu_ms": STORE_CPU_MS,
           "load_generator": "wrk" if WRK else "aiohttp", "loadavg": os.getloadavg()}  # fmt: skip
    out.write_text(json.dumps(doc, indent=1))
    print(f"saved {out}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
