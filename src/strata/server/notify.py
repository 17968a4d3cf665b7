"""Webhook notifications in distribution's event envelope, queued and retried per endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from strata.digest import Digest
from strata.server.config import EndpointConfig

__all__ = ["EVENTS_MEDIA_TYPE", "Notifier"]

EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
log = logging.getLogger("strata.registry.notify")


@dataclass
class _Sink:
    config: EndpointConfig
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    delivered: int = 0
    failures: int = 0


class Notifier:
    """Collects events from handlers (never blocking them) and delivers them in the background."""

    def __init__(self, endpoints: list[EndpointConfig]) -> None:
        self.instance = str(uuid.uuid4())
        self.host = socket.gethostname()
        self._sinks = [_Sink(ep) for ep in endpoints]
        self._session: aiohttp.ClientSession | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._sinks)

    async def start(self) -> None:
        if not self._sinks:
            return
        self._session = aiohttp.ClientSession()
        for sink in self._sinks:
            sink.task = asyncio.create_task(self._deliver_loop(sink))

    async def close(self) -> None:
        for sink in self._sinks:
            if sink.task is not None:
                sink.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sink.task
        if self._session is not None:
            await self._session.close()

    def stats(self) -> dict[str, tuple[int, int, int]]:
        return {s.config.name: (s.delivered, s.failures, s.queue.qsize()) for s in self._sinks}

    def _event(
        self, action: str, target: dict[str, Any], request: web.Request, actor: str | None
    ) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "action": action,
            "target": target,
            "request": {
                "id": request.headers.get("X-Request-Id", ""),
                "addr": request.remote or "",
                "host": request.host,
                "method": request.method,
                "useragent": request.headers.get("User-Agent", ""),
            },
            "actor": {"name": actor or ""},
            "source": {"addr": self.host, "instanceID": self.instance},
        }

    def _emit(self, event: dict[str, Any]) -> None:
        for sink in self._sinks:
            if event["action"] in sink.config.ignoredactions:
                continue
            if event["target"].get("mediaType") in sink.config.ignoredmediatypes:
                continue
            sink.queue.put_nowait(event)

    def manifest_event(
        self,
        action: str,
        repo: str,
        d: Digest,
        media_type: str | None,
        size: int,
        tag: str | None,
        request: web.Request,
        actor: str | None,
    ) -> None:
        if not self._sinks:
            return
        target: dict[str, Any] = {
            "mediaType": media_type or "",
            "digest": str(d),
            "size": size,
            "length": size,
            "repository": repo,
            "url": f"{request.scheme}://{request.host}/v2/{repo}/manifests/{d}",
        }
        if tag:
            target["tag"] = tag
        self._emit(self._event(action, target, request, actor))

    def blob_event(
        self, action: str, repo: str, d: Digest, size: int, request: web.Request, actor: str | None
    ) -> None:
        if not self._sinks:
            return
        target = {
            "mediaType": "application/octet-stream",
            "digest": str(d),
            "size": size,
            "length": size,
            "repository": repo,
            "url": f"{request.scheme}://{request.host}/v2/{repo}/blobs/{d}",
        }
        self._emit(self._event(action, target, request, actor))

    async def _deliver_loop(self, sink: _Sink) -> None:
        while True:
            batch = [await sink.queue.get()]
            while not sink.queue.empty() and len(batch) < 100:
                batch.append(sink.queue.get_nowait())
            await self._deliver(sink, batch)

    async def _deliver(self, sink: _Sink, events: list[dict[str, Any]]) -> None:
        """POST until the endpoint answers 2xx/3xx; after ``threshold`` failures back off harder."""
        assert self._session is not None
        # a batch holds up to 100 events: encode it in a thread, the event loop keeps serving
        body = await asyncio.to_thread(lambda: json.dumps({"events": events}).encode())
        headers = {"Content-Type": EVENTS_MEDIA_TYPE}
        for k, values in sink.config.headers.items():
            headers[k] = ", ".join(values)
        attempt = 0
        while True:
            try:
                timeout = aiohttp.ClientTimeout(total=sink.config.timeout)
                async with self._session.post(sink.config.url, data=body, headers=headers, timeout=timeout) as r:
                    if r.status < 400:
                        sink.delivered += len(events)
                        return
                    reason = f"status {r.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                reason = str(e) or type(e).__name__
            attempt += 1
            sink.failures += 1
            log.warning("notification to %s failed (%s), attempt %d", sink.config.name, reason, attempt)
            factor = 1 if attempt < sink.config.threshold else 4
            await asyncio.sleep(min(sink.config.backoff * factor * min(attempt, 8), 60.0))
