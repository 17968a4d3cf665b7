"""A small registry (aiohttp, in a thread, 127.0.0.1:<port 0>) that misbehaves on request.

It serves blobs and manifests from memory; ``faults`` maps a blob digest or manifest reference to a
fault name: ``wrong`` (other bytes, same length), ``truncate`` (always short), ``drop_once`` (closes the
connection half-way through the first GET, then honours ``Range``), ``drop_always`` (every GET), ``redirect`` (307 to the real
location), ``redirect_loop``, ``throttle`` (``429`` with ``Retry-After: 1`` twice first). Optional Basic
auth (``users``) answers ``401`` with a challenge; ``reject_all`` refuses even good credentials.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field

from aiohttp import web

__all__ = ["FaultRegistry"]


@dataclass
class FaultRegistry:
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    reject_all: bool = False
    bearer: bool = False  # token auth: /token issues tokens for ``users``; the registry wants Bearer
    token_requests: list[dict[str, str]] = field(default_factory=list)
    search_results: list[dict[str, object]] | None = None  # served at /v1/search (Docker Hub's shape)
    refresh_tokens: bool = False  # /token answers offline_token=true with a refresh_token (an identity token)
    substitutes: dict[str, bytes] = field(default_factory=dict)  # digest -> other bytes served for "wrong"
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    port: int = 0
    _counts: dict[str, int] = field(default_factory=dict)

    # ---------------------------------------------------------------- content

    def add_blob(self, data: bytes) -> str:
        dg = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[dg] = data
        return dg

    def add_manifest(self, repo: str, tag: str, raw: bytes, media_type: str) -> str:
        dg = "sha256:" + hashlib.sha256(raw).hexdigest()
        self.manifests[f"{repo}:{tag}"] = (raw, media_type)
        self.manifests[f"{repo}:{dg}"] = (raw, media_type)
        return dg

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    # ---------------------------------------------------------------- server

    def _authorized(self, request: web.Request) -> bool:
        if not self.users and not self.reject_all:
            return True
        header = request.headers.get("Authorization", "")
        if self.bearer:
            return header.startswith("Bearer tok-")
        if self.reject_all or not header.startswith("Basic "):
            return False
        user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
        return self.users.get(user) == pw

    def _unauthorized(self, scope: str = "") -> web.Response:
        body = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": None}]}
        challenge = 'Basic realm="fault"'
        if self.bearer:
            challenge = f'Bearer realm="http://{self.host}/token",service="fault"'
            if scope:
                challenge += f',scope="{scope}"'
        return web.json_response(body, status=401, headers={"WWW-Authenticate": challenge})

    async def _token(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            return await self._oauth_token(request)
        self.token_requests.append({k: ",".join(request.query.getall(k)) for k in request.query})
        header = request.headers.get("Authorization", "")
        user, pw = "", ""
        if header.startswith("Basic "):
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
        if user and self.users.get(user) != pw:
            return web.json_response({"details": "incorrect username or password"}, status=401)
        scopes = " ".join(request.query.getall("scope", []))
        answer: dict[str, object] = {"token": f"tok-{user}-{len(scopes)}", "expires_in": 300}
        if self.refresh_tokens and user and request.query.get("offline_token") == "true":
            answer["refresh_token"] = f"rt-{user}"
        return web.json_response(answer)

    async def _oauth_token(self, request: web.Request) -> web.Response:
        """OAuth2 ``POST`` (grant_type=refresh_token) as Docker's token servers take identity tokens."""
        form = dict(await request.post())
        self.token_requests.append({"method": "POST", **{k: str(v) for k, v in form.items()}})
        user = str(form.get("refresh_token", ""))[3:]
        if form.get("grant_type") != "refresh_token" or user not in self.users or form["refresh_token"] != f"rt-{user}":
            return web.json_response({"details": "invalid refresh token"}, status=401)
        return web.json_response({"access_token": f"tok-{user}-oauth", "expires_in": 300, "scope": form.get("scope", "")})

    def _count(self, key: str) -> int:
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._counts[key]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs, dict(request.headers)))
        if request.path == "/token":
            return await self._token(request)
        if not self._authorized(request):
            m = re.fullmatch(r"/v2/(.+)/(?:manifests|blobs)/.*", request.path)
            return self._unauthorized(f"repository:{m.group(1)}:pull" if m else "")
        path = request.path
        if path == "/v2/":
            return web.json_response({})
        if path == "/v1/search" and self.search_results is not None:
            q, n = request.query.get("q", ""), int(request.query.get("n", "25"))
            hits = [r for r in self.search_results if q in str(r["name"])][:n]
            return web.json_response({"query": q, "num_results": len(hits), "results": hits})
        m = re.fullmatch(r"/v2/(.+)/manifests/([^/]+)", path)
        if m:
            return await self._manifest(request, m.group(1), m.group(2))
        m = re.fullmatch(r"/v2/(.+)/blobs/([^/]+)", path) or re.fullmatch(r"/real/()([^/]+)", path)
        if m:
            return await self._blob(request, m.group(2), real=path.startswith("/real/"))
        return web.json_response({"errors": [{"code": "UNSUPPORTED", "message": "nope"}]}, status=404)

    async def _manifest(self, request: web.Request, repo: str, ref: str) -> web.StreamResponse:
        key = f"{repo}:{ref}"
        fault = self.faults.get(key, "")
        if fault == "throttle" and self._count(key) <= 2:
            return web.Response(status=429, headers={"Retry-After": "1"})
        if fault == "big":
            big = b'{"schemaVersion":2,"x":"' + b"a" * (5 << 20) + b'"}'
            return web.Response(body=big, content_type="application/json")
        if key not in self.manifests:
            body = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": {"Tag": ref}}]}
            return web.json_response(body, status=404)
        raw, mtype = self.manifests[key]
        dg = "sha256:" + hashlib.sha256(raw).hexdigest()
        headers = {"Content-Type": mtype, "Docker-Content-Digest": dg}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(raw))})
        return web.Response(body=raw, headers=headers)

    async def _blob(self, request: web.Request, dg: str, *, real: bool) -> web.StreamResponse:
        data = self.blobs.get(dg)
        if data is None:
            body = {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": dg}]}
            return web.json_response(body, status=404)
        fault = "" if real else self.faults.get(dg, "")
        if request.method == "HEAD":
            return web.Response(headers={"Content-Length": str(len(data)), "Docker-Content-Digest": dg})
        if fault == "redirect":
            raise web.HTTPTemporaryRedirect(f"/real/{dg}")
        if fault == "redirect_loop":
            raise web.HTTPTemporaryRedirect(request.path)
        if fault == "throttle" and self._count(dg) <= 2:
            return web.Response(status=429, headers={"Retry-After": "1"})
        if fault == "wrong":
            data = self.substitutes.get(dg) or bytes(b ^ 0xFF for b in data[:16]) + data[16:]
        if fault == "truncate":
            return web.Response(body=data[: len(data) // 2])
        start = 0
        rng = request.headers.get("Range", "")
        mr = re.fullmatch(r"bytes=(\d+)-", rng)
        if mr:
            start = int(mr.group(1))
        if fault in ("slow", "trickle"):  # 64 kB a second, or 16 kB ("trickle": ~19 s for 300 kB)
            step = 65536 if fault == "slow" else 16384
            resp = web.StreamResponse()
            resp.content_length = len(data)
            await resp.prepare(request)
            for i in range(0, len(data), step):
                await resp.write(data[i : i + step])
                await asyncio.sleep(1.0)
            return resp
        if fault == "drop_always" or (fault == "drop_once" and self._count(dg) == 1):
            resp = web.StreamResponse(status=206 if start else 200)
            if start:
                resp.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            resp.content_length = len(data) - start
            await resp.prepare(request)
            await resp.write(data[start : start + max(1, (len(data) - start) // 2)])
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.abort()
            return resp
        if start:
            headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
            return web.Response(status=206, body=data[start:], headers=headers)
        return web.Response(body=data)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FaultRegistry:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def main() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(main())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            await self._runner.cleanup()

        fut = asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        fut.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def manifest_for(self, repo: str, tag: str, config: dict[str, object], layers: list[bytes],
                     layer_type: str = "application/vnd.docker.image.rootfs.diff.tar.gzip") -> str:
        cfg_raw = json.dumps(config).encode()
        cfg_dg = self.add_blob(cfg_raw)
        descs = [{"mediaType": layer_type, "size": len(b), "digest": self.add_blob(b)} for b in layers]
        man = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(cfg_raw), "digest": cfg_dg},
            "layers": descs,
        }
        return self.add_manifest(repo, tag, json.dumps(man).encode(), man["mediaType"])  # type: ignore[arg-type]
