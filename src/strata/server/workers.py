"""``http.workers: N``: N pre-forked registry processes sharing one port through ``SO_REUSEPORT``.

The kernel spreads connections over the workers; each is a whole aiohttp server over the same
storage. What they share lives in storage (uploads, whose hash is recomputed from the data when
another worker received the earlier chunks; the GC lock, a file lock for the filesystem driver),
in files (htpasswd, the token signing key) or is divided: each worker enforces ``1/N`` of
``http.ratelimit`` (connections are spread evenly, so a client gets about the configured rate), and
only worker 0 runs the online GC schedule. ``/metrics`` counts the worker that answers. A worker
that dies is started again; SIGTERM/SIGINT stop them all, and workers also stop when the supervisor
itself is killed.

Refused with N > 1: ``storage.inmemory`` (one process's memory) and a built-in token server
without ``auth.token.signingkey`` (each worker would sign with its own key). The default is 1;
``auto`` means one per core.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import logging
import math
import os
import signal
import socket
import time
from typing import Any, NoReturn

from strata.errors import StrataError
from strata.server.app import serve
from strata.server.config import ConfigError, RegistryConfig
from strata.server.redisconf import blobdescriptor_cache_enabled, parse_redis
from strata.server.storage.s3options import parse_options

__all__ = ["MAX_WORKERS", "serve_workers", "worker_config", "worker_count"]

MAX_WORKERS = 64
_PR_SET_PDEATHSIG = 1
log = logging.getLogger("strata.registry.workers")


def worker_count(config: RegistryConfig) -> int:
    http = config.raw.get("http") if isinstance(config.raw, dict) else None
    value: Any = http.get("workers") if isinstance(http, dict) else None
    if value is None or value == "":
        return 1
    if str(value).lower() == "auto":
        return min(os.cpu_count() or 1, MAX_WORKERS)
    if isinstance(value, bool):
        raise ConfigError(f"invalid http.workers: {value!r} is not a number")
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid http.workers: {value!r} is not a number")
    if not 1 <= n <= MAX_WORKERS:
        raise ConfigError(f"invalid http.workers: {n} (between 1 and {MAX_WORKERS}, or auto)")
    return n


def _check_shareable(config: RegistryConfig) -> None:
    storage = config.raw.get("storage") if isinstance(config.raw, dict) else None
    has_s3 = isinstance(storage, dict) and "s3" in storage
    if not config.root and not has_s3:
        raise ConfigError("http.workers above 1 needs shared storage (storage.filesystem or storage.s3), "
                          "not storage.inmemory")  # fmt: skip
    if config.token is not None and config.token.builtin and not config.token.signingkey:
        raise ConfigError("http.workers above 1 needs auth.token.signingkey: every worker must sign with one key")
    if isinstance(storage, dict) and "s3" in storage:  # refused here once, not by every worker in a loop
        parse_options(storage["s3"], storage.get("redirect"))
    parse_redis(config.raw.get("redis"))
    blobdescriptor_cache_enabled(config)


def worker_config(config: RegistryConfig, index: int, n: int) -> RegistryConfig:
    """Worker ``index``'s share: the GC schedule on worker 0 only, ``1/n`` of the rate limit."""
    gc = config.gc if index == 0 else dataclasses.replace(config.gc, interval=0.0)
    rl = config.ratelimit
    if rl.enabled and not isinstance(config.raw.get("redis"), dict):  # with redis, one bucket shared by all
        rl = dataclasses.replace(rl, rate=rl.rate / n, burst=max(1, math.ceil(rl.burst / n)))
    return dataclasses.replace(config, gc=gc, ratelimit=rl)


def _probe(addr: str) -> None:
    """Fail now, in the parent, if the port is taken by something that is not sharing it."""
    host, _, port = addr.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((host, int(port)))


async def _serve_until_signalled(config: RegistryConfig) -> None:
    task = asyncio.ensure_future(serve(config, reuse_port=True))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _die_with_parent(parent: int) -> None:
    """SIGTERM this worker when the supervisor dies, even by SIGKILL (Linux ``PR_SET_PDEATHSIG``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0 or os.getppid() != parent:
        os._exit(1)  # could not arrange it, or the supervisor is already gone


def _start_worker(config: RegistryConfig, index: int, n: int, children: dict[int, int]) -> None:
    """Fork worker ``index`` and record it in ``children`` before a stop signal can run the supervisor's
    handler: a SIGTERM that came during the fork must reach this worker too, or the supervisor waits on
    it for ever."""
    parent = os.getpid()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)  # no parent handler may run in the child
    try:
        pid = os.fork()
        if pid == 0:
            _worker_main(config, index, n, parent)
        children[pid] = index
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _worker_main(config: RegistryConfig, index: int, n: int, parent: int) -> NoReturn:
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _die_with_parent(parent)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        asyncio.run(_serve_until_signalled(worker_config(config, index, n)))
    except StrataError as e:
        log.error("worker %d: %s", index, e)
        code = 1
    except BaseException:
        log.exception("worker %d failed", index)
        code = 1
    finally:
        os._exit(code)


def _supervise(config: RegistryConfig, n: int, children: dict[int, int], stopping: list[bool]) -> int:
    """Reap workers; start a dead one again unless stopping or crashing in a loop."""
    started = dict.fromkeys(range(n), time.monotonic())
    fast_deaths = 0
    while children:
        pid, status = os.wait()
        index = children.pop(pid, None)
        if index is None or stopping[0]:
            continue
        code = os.waitstatus_to_exitcode(status)
        fast_deaths = fast_deaths + 1 if time.monotonic() - started[index] < 2 else 0
        if fast_deaths >= 3:
            log.error("workers keep dying at start (last exit status %d); stopping", code)
            _signal_all(children, signal.SIGTERM)
            stopping[0] = True
            continue
        log.warning("worker %d (pid %d) exited with status %d; starting it again", index, pid, code)
        started[index] = time.monotonic()
        _start_worker(config, index, n, children)
    return 1 if fast_deaths >= 3 else 0


def _signal_all(children: dict[int, int], sig: int) -> None:
    for pid in list(children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def serve_workers(config: RegistryConfig) -> int:
    """Serve with ``http.workers`` processes until SIGTERM/SIGINT; one worker serves in this process."""
    n = worker_count(config)
    if n == 1:
        asyncio.run(serve(config))
        return 0
    _check_shareable(config)
    _probe(config.addr)
    stopping = [False]
    children: dict[int, int] = {}

    def stop(signum: int, _frame: object) -> None:
        stopping[0] = True
        _signal_all(children, signal.SIGTERM)

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for index in range(n):
            if stopping[0]:  # stopped while the first ones started: no more
                break
            _start_worker(config, index, n, children)
        log.info("%d workers listening on %s", n, config.addr)
        return _supervise(config, n, children, stopping)
    finally:
        _signal_all(children, signal.SIGKILL)
        for sig, handler in old.items():
            signal.signal(sig, handler)
