"""How strata's registry scales with ``http.workers`` on this machine (filesystem storage, so no object
store shares the cores): manifest and small-blob GETs per second at 50 clients for 1 and N workers, in
alternating rounds, with the registry's CPU time per request (from /proc: the supervisor and every
worker) and the load generator's. Scaling is limited by the cores the registry can get: with the load
generator on the same 2 cores, the ceiling is (cores - generator's share) / (1 worker's share), printed
as ``ceiling``; ``efficiency`` is the measured scaling over that ceiling.

    python bench/worker_scaling_bench.py [--workers 2] [--rounds 3] [--seconds 5] [--clients 50]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from registry_bench import ACCEPT, OCI_MANIFEST, upload_small_blob  # noqa: E402

from peers import free_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its live descendants."""
    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        pids.extend(int(c) for c in children)
    return total


class Registry:
    def __init__(self, tmp: Path, workers: int) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        cfg = tmp / f"config-{workers}.yml"
        cfg.write_text(json.dumps({  # JSON is YAML
            "version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(tmp / f"data-{workers}")}},
            "http": {"addr": self.host, "workers": workers},
        }))  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
        self.log = open(tmp / f"registry-{workers}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "strata.server", "serve", "--config", str(cfg)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"registry did not start: {(tmp / f'registry-{workers}.log').read_text()}")
                time.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


def _push(host: str) -> tuple[str, str]:
    """A one-layer image (4 KiB layer) tagged ``bench/small:1``: (manifest path, blob path)."""
    layer = os.urandom(4096)
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    digests = {}
    for name, data in (("layer", layer), ("config", config)):
        digests[name] = "sha256:" + hashlib.sha256(data).hexdigest()
        upload_small_blob(host, data, digests[name])
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digests["config"],
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digests["layer"],
                    "size": len(layer)}],
    }).encode()  # fmt: skip
    req = urllib.request.Request(f"http://{host}/v2/bench/small/manifests/1", data=manifest, method="PUT",
                                 headers={"Content-Type": OCI_MANIFEST})  # fmt: skip
    urllib.request.urlopen(req, timeout=10).close()
    return "/v2/bench/small/manifests/1", f"/v2/bench/small/blobs/{digests['layer']}"


def _wrk(url: str, clients: int, seconds: int) -> tuple[float, float]:
    """(requests per second, the generator's CPU seconds per request)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("install wrk (Debian's package wrk): make deps")
    argv = [wrk, "-t2", f"-c{clients}", f"-d{seconds}s", "--timeout", "60s", "-H", f"Accept: {ACCEPT}", url]
    before = os.times()
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    after = os.times()
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"GET {url}: {out}")
    rate = next(float(line.split()[1]) for line in out.splitlines() if line.startswith("Requests/sec:"))
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return rate, cpu / max(1.0, rate * seconds)


def _measure(tmp: Path, workers: int, clients: int, seconds: int) -> dict[str, float]:
    reg = Registry(tmp, workers)
    try:
        paths = dict(zip(("manifest", "blob"), _push(reg.host), strict=True))
        result: dict[str, float] = {}
        for kind, path in paths.items():
            _wrk(f"http://{reg.host}{path}", clients, 1)  # warm every worker's caches
            cpu0 = _tree_cpu(reg.proc.pid)
            rate, gen_cpu = _wrk(f"http://{reg.host}{path}", clients, seconds)
            server_cpu = (_tree_cpu(reg.proc.pid) - cpu0) / max(1.0, rate * seconds)
            result[f"{kind}_rps"] = rate
            result[f"{kind}_server_ms"] = server_cpu * 1000
            result[f"{kind}_wrk_ms"] = gen_cpu * 1000
        return result
    finally:
        reg.close()
        shutil.rmtree(tmp / f"data-{workers}", ignore_errors=True)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=50)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    runs: dict[int, list[dict[str, float]]] = {1: [], args.workers: []}
    with tempfile.TemporaryDirectory(prefix="strata-wbench-") as tmp:
        for r in range(args.rounds):
            order = [1, args.workers] if r % 2 == 0 else [args.workers, 1]
            for n in order:
                runs[n].append(_measure(Path(tmp), n, args.clients, args.seconds))
                print(f"round {r + 1} workers={n}: " + ", ".join(f"{k}={v:.2f}" for k, v in runs[n][-1].items()))
    report: dict[str, object] = {"cores": cores, "clients": args.clients, "loadavg": os.getloadavg()}
    for kind in ("manifest", "blob"):
        med = {n: {k: _median([x[k] for x in xs]) for k in xs[0]} for n, xs in runs.items()}
        one, many = med[1], med[args.workers]
        scaling = many[f"{kind}_rps"] / one[f"{kind}_rps"]
        # what the registry can get: the cores minus the generator's share, in units of one worker's need
        per_request = one[f"{kind}_server_ms"] + one[f"{kind}_wrk_ms"]
        ceiling = min(float(args.workers), (cores * 1000 / per_request) / one[f"{kind}_rps"])
        report[kind] = {"1w": one, f"{args.workers}w": many, "scaling": scaling, "ceiling": ceiling,
                        "efficiency": scaling / ceiling if ceiling else 0.0}  # fmt: skip
        print(f"{kind}: 1 worker {one[f'{kind}_rps']:.0f}/s ({one[f'{kind}_server_ms']:.2f} ms registry CPU, "
              f"{one[f'{kind}_wrk_ms']:.2f} ms wrk CPU per request); {args.workers} workers "
              f"{many[f'{kind}_rps']:.0f}/s ({many[f'{kind}_server_ms']:.2f} ms); scaling {scaling:.2f}x, "
              f"ceiling on {cores} cores {ceiling:.2f}x, efficiency {scaling / ceiling:.0%}")  # fmt: skip
    out = HERE / "results" / "worker_scaling.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
