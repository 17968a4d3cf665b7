"""Health checks, as Docker 20.10's: the ``--health-*`` flags and the image's ``HEALTHCHECK`` as the
container's ``Config.Healthcheck``, and the probe loop a container's monitor runs beside it (each probe
a process in the container through the runtime's exec, its result in the record's ``State.Health``)."""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from strata.compat.gotime import format_duration, parse_duration
from strata.container.records import ContainerStore, container_dir
from strata.container.runtime import Runtime
from strata.container.spec import process_env
from strata.errors import StrataError

# parse_duration and format_duration: compat.gotime's, re-exported for the --health-* flag parsing
__all__ = ["HealthMonitor", "format_duration", "healthcheck_config", "merge_healthcheck", "parse_duration"]

_DEFAULTS = {"Interval": 30_000_000_000, "Timeout": 30_000_000_000, "StartPeriod": 0, "Retries": 3}
_MAX_OUTPUT = 4096  # Docker keeps this much of a probe's output
_MAX_LOG = 5  # and this many probes


def healthcheck_config(cmd: str | None, durations: dict[str, int], retries: int, none: bool) -> dict[str, Any] | None:
    """Docker's CLI: ``Config.Healthcheck`` from the flags (None when no flag was given)."""
    given = cmd is not None or any(durations.values()) or retries != 0
    if none:
        if given:
            raise StrataError("--no-healthcheck conflicts with --health-* options", exit_code=125)
        return {"Test": ["NONE"]}
    for flag, value in (("interval", durations["Interval"]), ("timeout", durations["Timeout"]),
                        ("start-period", durations["StartPeriod"]), ("retries", retries)):
        if value < 0:
            raise StrataError(f"--health-{flag} cannot be negative", exit_code=125)
    if not given:
        return None
    hc: dict[str, Any] = {"Test": ["CMD-SHELL", cmd] if cmd else None}
    hc.update({k: v for k, v in durations.items() if v})
    if retries:
        hc["Retries"] = retries
    return {k: v for k, v in hc.items() if v is not None}


def merge_healthcheck(given: dict[str, Any] | None, image: dict[str, Any] | None) -> dict[str, Any] | None:
    """Docker's daemon: the image's check where the container's has no test, its fields where zero."""
    if not given:
        return dict(image) if image else None
    if not image:
        return dict(given)
    merged = dict(given)
    for key in ("Test", "Interval", "Timeout", "StartPeriod", "Retries"):
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    return merged


def _active(config: dict[str, Any]) -> dict[str, Any] | None:
    hc = config.get("Healthcheck") or {}
    test = list(hc.get("Test") or [])
    if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
        return None
    return {**_DEFAULTS, **{k: v for k, v in hc.items() if v}}


class HealthMonitor:
    """The probe loop of one running container, in a thread of its monitor; ``stop()`` ends it."""

    def __init__(self, store_root: Path, cid: str, config: dict[str, Any], runtime: Runtime,
                 since: float | None = None) -> None:
        self.root, self.cid, self.runtime = store_root, cid, runtime
        self.since = since  # when the container started (the start period counts from it)
        self.check = _active(config)
        self.env = process_env(config, bool(config.get("Tty")))
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, resume: bool = False) -> None:
        """Probe from now on; ``resume`` keeps the status and log a killed monitor's probes left."""
        if self.check is None:
            return
        with ContainerStore(self.root) as store:
            c = store.by_id(self.cid)
            if not (resume and c is not None and c.health):
                store.update(self.cid, health={"Status": "starting", "FailingStreak": 0, "Log": []})
        self.thread = threading.Thread(target=self._loop, name="health", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _loop(self) -> None:
        assert self.check is not None
        started = self.since or time.time()
        while not self.stopped.wait(self.check["Interval"] / 1e9):
            result = self._probe()
            if self.stopped.is_set():
                return
            try:
                with ContainerStore(self.root) as store:
                    c = store.by_id(self.cid)
                    if c is None or not c.running:
                        return
                    health = _judge(c.health or {}, result, self.check, started)
                    store.update(self.cid, health=health)
                if health["Status"] != (c.health or {}).get("Status", "starting"):
                    from strata.events import record_container

                    record_container(self.root, "health_status: " + health["Status"], c.id, c.name, c.image_name,
                                     c.config.get("Labels"))
            except StrataError:
                continue

    def _probe(self) -> dict[str, Any]:
        assert self.check is not None
        test = list(self.check["Test"])
        args = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
        begun = time.time()
        timeout = self.check["Timeout"] / 1e9
        with tempfile.TemporaryDirectory(prefix="strata-health-") as scratch:
            argv = self._argv(Path(scratch), args)
            try:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
                code, output = proc.returncode, (proc.stdout + proc.stderr)[:_MAX_OUTPUT].decode(errors="replace")
            except subprocess.TimeoutExpired:
                code = -1
                output = f"Health check exceeded timeout ({format_duration(self.check['Timeout'])})"
        return {"Start": begun, "End": time.time(), "ExitCode": code, "Output": output}

    def _argv(self, scratch: Path, args: list[str]) -> list[str]:
        spec = json.loads((container_dir(self.root, self.cid) / "config.json").read_text())
        proc = dict(spec.get("process") or {})
        proc.pop("consoleSize", None)
        proc.update(args=args, terminal=False, env=self.env)
        (scratch / "process.json").write_text(json.dumps(proc))
        return [self.runtime.binary, "--root", str(self.runtime.state_root), "exec", "--process",
                str(scratch / "process.json"), self.cid]


def _judge(health: dict[str, Any], result: dict[str, Any], check: dict[str, Any], started: float) -> dict[str, Any]:
    """Docker's handleProbeResult: a pass makes it healthy; failures count (not while starting within
    the start period) and ``Retries`` of them in a row make it unhealthy."""
    log = [*(health.get("Log") or []), result][-_MAX_LOG:]
    status = health.get("Status") or "starting"
    streak = int(health.get("FailingStreak") or 0)
    if result["ExitCode"] == 0:
        return {"Status": "healthy", "FailingStreak": 0, "Log": log}
    in_grace = status == "starting" and time.time() - started < check["StartPeriod"] / 1e9
    if not in_grace:
        streak += 1
        if streak >= check["Retries"]:
            status = "unhealthy"
    return {"Status": status, "FailingStreak": streak, "Log": log}
