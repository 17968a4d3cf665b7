"""The pull-through cache (``proxy``): fetched once, stored only when verified, served when the upstream
is down; lying and stalling upstreams cache nothing; one download for concurrent pulls; tags re-checked
after ``ttl``; pushes to proxied names refused with ``UNSUPPORTED``."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from distribution.faultserver import FaultRegistry
from server.helpers import ServerThread, push_image, random_blob, sha
from strata.server.config import ConfigError, build_config
from strata.server.handlers.base import STATE
from strata.server.proxy import parse_proxy_config

V2 = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = {"Accept": V2}


class Upstream(FaultRegistry):
    """The fault registry plus ``stall``: half the blob, then nothing for ``stall_seconds``."""

    stall_seconds = 30.0

    async def _blob(self, request: web.Request, dg: str, *, real: bool) -> web.StreamResponse:
        if request.method == "GET" and self.faults.get(dg) == "stall":
            data = self.blobs[dg]
            resp = web.StreamResponse()
            resp.content_length = len(data)
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            await asyncio.sleep(self.stall_seconds)
            return resp
        return await super()._blob(request, dg, real=real)

    async def _manifest(self, request: web.Request, repo: str, ref: str) -> web.StreamResponse:
        if self.faults.get(f"{repo}:{ref}") == "slow":
            await asyncio.sleep(0.5)
        return await super()._manifest(request, repo, ref)

    def gets(self, suffix: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == "GET" and p.endswith(suffix))


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    reg = Upstream().start()
    try:
        yield reg
    finally:
        reg.stop()


def _proxy(tmp_path: Path, remoteurl: str, **extra: Any) -> ServerThread:
    raw = {"storage": {"filesystem": {"rootdirectory": str(tmp_path / "cache")}},
           "proxy": {"remoteurl": remoteurl, **extra}}
    return ServerThread(raw)


def _image(reg: FaultRegistry, repo: str, tag: str, layer: bytes) -> tuple[str, str]:
    """An image upstream; returns (manifest digest, layer digest)."""
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}
    return reg.manifest_for(repo, tag, config, [layer]), sha(layer)


def _get(c: ServerThread, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes | None]:
    """(status, body); the body is None when the server closed the connection short of it."""
    conn = c.conn()
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        try:
            return r.status, r.read()
        except (http.client.IncompleteRead, ConnectionError):
            return r.status, None
    finally:
        conn.close()


def _stored(root: Path, digest: str) -> bool:
    hexd = digest.split(":", 1)[1]
    return (root / "cache/docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data").exists()


def _leftovers(root: Path) -> list[Path]:
    repos = root / "cache/docker/registry/v2/repositories"
    return [p for p in repos.rglob("_uploads/*/data")] if repos.exists() else []


def _metric(c: ServerThread, name: str) -> float:
    """A counter as /metrics renders it (read from the app: /metrics may live on a debug port)."""
    assert c.app is not None
    for line in c.app[STATE].metrics.render().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_pull_through_then_served_with_the_upstream_down(tmp_path: Path) -> None:
    up = ServerThread({"storage": {"inmemory": {}}})
    digest, body = push_image(up, "library/busybox", "x", [random_blob(300_000)], media_type=V2)
    manifest = json.loads(body)
    with _proxy(tmp_path, f"http://{up.url}") as cache:
        r = cache.get("/v2/library/busybox/manifests/x", headers=ACCEPT)
        assert r.status == 200 and r.body == body and r.header("Docker-Content-Digest") == digest
        for desc in [manifest["config"], *manifest["layers"]]:
            status, data = _get(cache, f"/v2/library/busybox/blobs/{desc['digest']}")
            assert status == 200 and data is not None and sha(data) == desc["digest"]
            assert _stored(tmp_path, desc["digest"])
        assert _metric(cache, 'strata_registry_proxy_misses_total{type="blob"}') == 2
        assert _metric(cache, "strata_registry_proxy_upstream_bytes_total") == sum(
            d["size"] for d in [manifest["config"], *manifest["layers"]])
        up.close()  # the upstream goes away: everything cached is still served
        r = cache.get("/v2/library/busybox/manifests/x", headers=ACCEPT)
        assert r.status == 200 and r.body == body
        layer = manifest["layers"][0]["digest"]
        status, data = _get(cache, f"/v2/library/busybox/blobs/{layer}")
        assert status == 200 and data is not None and sha(data) == layer
        assert cache.request("HEAD", f"/v2/library/busybox/blobs/{layer}").status == 200
        assert _metric(cache, 'strata_registry_proxy_hits_total{type="blob"}') == 1
        # what was never cached cannot be served: the client is told the upstream failed
        r = cache.get("/v2/library/other/manifests/x", headers=ACCEPT)
        assert r.status == 502 and r.codes == ["UNKNOWN"] and f"upstream {up.url}" in r.json()["errors"][0]["message"]
    assert _leftovers(tmp_path) == []


def test_lying_upstream_caches_nothing_and_the_client_gets_an_error(tmp_path: Path, upstream: Upstream) -> None:
    layer = random_blob(200_000)
    _, ld = _image(upstream, "library/lie", "1", layer)
    upstream.faults[ld] = "wrong"  # other bytes under the digest, same length
    with _proxy(tmp_path, f"http://{upstream.host}") as cache:
        for attempt in (1, 2):
            status, data = _get(cache, f"/v2/library/lie/blobs/{ld}")
            assert status == 200 and data is None, "the body must be cut short, never complete"
            assert not _stored(tmp_path, ld)
            assert cache.request("HEAD", f"/v2/library/lie/blobs/{ld}").status == 200  # asks upstream again
            assert upstream.gets(ld) >= attempt  # each pull asks the upstream again
        assert _leftovers(tmp_path) == []
        upstream.faults.pop(ld)  # the upstream is fixed: the next pull caches the real bytes
        status, data = _get(cache, f"/v2/library/lie/blobs/{ld}")
        assert status == 200 and data == layer and _stored(tmp_path, ld)


def test_lying_upstream_manifest_is_refused(tmp_path: Path, upstream: Upstream) -> None:
    d, _ = _image(upstream, "library/liem", "1", b"layer")
    raw, mtype = upstream.manifests[f"library/liem:{d}"]
    upstream.manifests[f"library/liem:{d}"] = (raw.replace(b'"schemaVersion": 2', b'"schemaVersion":2'), mtype)
    with _proxy(tmp_path, f"http://{upstream.host}") as cache:
        r = cache.get(f"/v2/library/liem/manifests/{d}", headers=ACCEPT)
        assert r.status == 502 and "verification failed" in r.json()["errors"][0]["message"]
        assert cache.get(f"/v2/library/liem/manifests/{d}", headers=ACCEPT).status == 502
        assert not _stored(tmp_path, d)


def test_timeout_mid_blob_caches_nothing_and_the_next_pull_retries(tmp_path: Path, upstream: Upstream) -> None:
    layer = random_blob(100_000)
    _, ld = _image(upstream, "library/slow", "1", layer)
    upstream.faults[ld] = "stall"
    upstream.stall_seconds = 3.0  # longer than the proxy's timeout, short enough to stop the upstream
    with _proxy(tmp_path, f"http://{upstream.host}", timeout="300ms") as cache:
        t0 = time.monotonic()
        status, data = _get(cache, f"/v2/library/slow/blobs/{ld}")
        assert status == 200 and data is None
        assert time.monotonic() - t0 < 25
        assert not _stored(tmp_path, ld) and _leftovers(tmp_path) == []
        upstream.faults.pop(ld)
        status, data = _get(cache, f"/v2/library/slow/blobs/{ld}")
        assert status == 200 and data == layer and _stored(tmp_path, ld)


def test_concurrent_pulls_download_once(tmp_path: Path, upstream: Upstream) -> None:
    layer = random_blob(5 * 65536)
    _, ld = _image(upstream, "library/busy", "1", layer)
    upstream.faults[ld] = "slow"  # 64 KiB every 0.5 s: every client joins the one download
    results: list[tuple[int, bytes | None]] = []
    with _proxy(tmp_path, f"http://{upstream.host}") as cache:
        def pull() -> None:
            results.append(_get(cache, f"/v2/library/busy/blobs/{ld}"))

        threads = [threading.Thread(target=pull) for _ in range(5)]
        for t in threads:
            t.start()
            time.sleep(0.1)
        for t in threads:
            t.join(60)
        assert [s for s, _ in results] == [200] * 5
        assert all(hashlib.sha256(b or b"").hexdigest() == ld.split(":")[1] for _, b in results)
        assert upstream.gets(ld) == 1
        assert _metric(cache, 'strata_registry_proxy_misses_total{type="blob"}') == 1
        assert _metric(cache, 'strata_registry_proxy_hits_total{type="blob"}') == 4


def test_tags_are_rechecked_after_ttl(tmp_path: Path, upstream: Upstream) -> None:
    d1, _ = _image(upstream, "library/app", "v", b"one")
    with _proxy(tmp_path, f"http://{upstream.host}", ttl="3s") as cache:
        asked = time.monotonic()  # the tag's ttl starts later: when the proxy has it
        assert cache.get("/v2/library/app/manifests/v", headers=ACCEPT).header("Docker-Content-Digest") == d1
        d2, _ = _image(upstream, "library/app", "v", b"two")
        # within ttl the cached tag is served without asking
        before = len(upstream.requests)
        served = cache.get("/v2/library/app/manifests/v", headers=ACCEPT).header("Docker-Content-Digest")
        within = time.monotonic() - asked < 3  # a loaded machine can stall for 3 s: then the ttl may be over
        assert (served, len(upstream.requests)) == (d1, before) or not within, (served, upstream.requests[before:])
        time.sleep(3.2)
        assert cache.get("/v2/library/app/manifests/v", headers=ACCEPT).header("Docker-Content-Digest") == d2
        # the old manifest stays pullable by digest, the tag moved
        assert cache.get(f"/v2/library/app/manifests/{d1}", headers=ACCEPT).status == 200
        time.sleep(3.2)
        upstream.stop()
        r = cache.get("/v2/library/app/manifests/v", headers=ACCEPT)
        assert r.status == 200 and r.header("Docker-Content-Digest") == d2
        upstream.start()  # the fixture stops it again


def test_an_unchanged_tag_is_checked_with_a_head(tmp_path: Path, upstream: Upstream) -> None:
    _image(upstream, "library/same", "v", b"same")
    with _proxy(tmp_path, f"http://{upstream.host}", ttl=0) as cache:
        for _ in range(3):
            assert cache.get("/v2/library/same/manifests/v", headers=ACCEPT).status == 200
        gets = [m for m, p, _ in upstream.requests if p == "/v2/library/same/manifests/v"]
        assert gets == ["GET", "HEAD", "HEAD"]


def test_unknown_upstream_content_is_404(tmp_path: Path, upstream: Upstream) -> None:
    with _proxy(tmp_path, f"http://{upstream.host}") as cache:
        r = cache.get("/v2/library/none/manifests/v", headers=ACCEPT)
        assert r.status == 404 and r.codes == ["MANIFEST_UNKNOWN"]
        r = cache.get(f"/v2/library/none/blobs/{sha(b'x')}")
        assert r.status == 404 and r.codes == ["BLOB_UNKNOWN"]


def test_push_to_a_proxied_name_is_unsupported_unless_local(tmp_path: Path, upstream: Upstream) -> None:
    with _proxy(tmp_path, f"http://{upstream.host}", local=["team"]) as cache:
        r = cache.request("POST", "/v2/library/busybox/blobs/uploads/")
        assert r.status == 405 and r.codes == ["UNSUPPORTED"]
        assert r.json()["errors"][0]["message"] == "The operation is unsupported."
        r = cache.request("PUT", "/v2/library/busybox/manifests/x", body=b"{}", headers={"Content-Type": V2})
        assert r.status == 405 and r.codes == ["UNSUPPORTED"]
        r = cache.request("DELETE", f"/v2/library/busybox/manifests/{sha(b'x')}")
        assert r.status == 405 and r.codes == ["UNSUPPORTED"]
        digest, _ = push_image(cache, "team/app", "1")  # the local namespace beside the cache
        assert cache.get(f"/v2/team/app/manifests/{digest}").status == 200
        assert not [p for _, p, _ in upstream.requests if "team" in p]


def test_push_refusal_checks_credentials_first(tmp_path: Path, upstream: Upstream) -> None:
    import bcrypt

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"u:{bcrypt.hashpw(b'p', bcrypt.gensalt(4)).decode()}\n")
    raw = {"storage": {"inmemory": {}}, "auth": {"htpasswd": {"realm": "r", "path": str(htpasswd)}},
           "proxy": {"remoteurl": f"http://{upstream.host}"}}
    with ServerThread(raw) as cache:
        assert cache.request("POST", "/v2/library/x/blobs/uploads/").status == 401
        basic = {"Authorization": "Basic dTpw"}
        r = cache.request("POST", "/v2/library/x/blobs/uploads/", headers=basic)
        assert r.status == 405 and r.codes == ["UNSUPPORTED"]


def test_several_upstreams_by_prefix(tmp_path: Path, upstream: Upstream) -> None:
    other = Upstream().start()
    try:
        d1, _ = _image(upstream, "library/busybox", "1", b"hub")
        d2, _ = _image(other, "org/app", "1", b"ghcr")
        proxy = {"upstreams": [{"prefix": "docker.io", "remoteurl": f"http://{upstream.host}"},
                               {"prefix": "ghcr.io", "remoteurl": f"http://{other.host}"}]}
        raw = {"storage": {"inmemory": {}}, "proxy": proxy}
        with ServerThread(raw) as cache:
            r = cache.get("/v2/docker.io/library/busybox/manifests/1", headers=ACCEPT)
            assert r.status == 200 and r.header("Docker-Content-Digest") == d1
            r = cache.get("/v2/ghcr.io/org/app/manifests/1", headers=ACCEPT)
            assert r.status == 200 and r.header("Docker-Content-Digest") == d2
            # a name under no prefix is an ordinary local repository
            assert cache.get("/v2/mine/manifests/1").status == 404
            push_image(cache, "mine", "1")
            r = cache.request("POST", "/v2/ghcr.io/org/app/blobs/uploads/")
            assert r.status == 405 and r.codes == ["UNSUPPORTED"]
    finally:
        other.stop()


def test_upstream_credentials(tmp_path: Path, upstream: Upstream) -> None:
    upstream.users = {"bob": "pw"}
    d, _ = _image(upstream, "private/app", "1", b"secret")
    with _proxy(tmp_path, f"http://{upstream.host}", username="bob", password="pw") as cache:
        assert cache.get("/v2/private/app/manifests/1", headers=ACCEPT).header("Docker-Content-Digest") == d
    with _proxy(tmp_path / "2", f"http://{upstream.host}", username="bob", password="wrong") as cache:
        r = cache.get("/v2/private/app/manifests/1", headers=ACCEPT)
        assert r.status == 502 and "pw" not in r.body.decode()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("nope", "invalid proxy: not a mapping"),
        ({"remoteurl": "ftp://x"}, "invalid proxy.remoteurl"),
        ({"remoteurl": "https://u:p@x"}, "scheme, host and port only"),
        ({"remoteurl": "https://x", "bogus": 1}, "unknown key 'bogus'"),
        ({"remoteurl": "https://x", "username": "u"}, "username and password go together"),
        ({"remoteurl": "https://x", "ttl": "soon"}, "invalid duration"),
        ({"upstreams": [{"prefix": "../x", "remoteurl": "https://x"}]}, "invalid proxy.upstreams[0].prefix"),
        ({"upstreams": [{"prefix": "a", "remoteurl": "https://x"}, {"prefix": "a", "remoteurl": "https://y"}]},
         "configured twice"),
        ({}, "set remoteurl or at least one of upstreams"),
        ({"username": "u", "password": "p"}, "need a remoteurl"),
    ],
)
def test_bad_proxy_config_is_refused(section: object, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        parse_proxy_config(build_config({"proxy": section}).raw)
    assert message in str(info.value)


def test_routing_longest_prefix_and_local_namespaces() -> None:
    cfg = parse_proxy_config({"proxy": {
        "remoteurl": "https://registry-1.docker.io", "local": ["team", "docker.io/mine"],
        "upstreams": [{"prefix": "docker.io", "remoteurl": "https://hub.example"},
                      {"prefix": "ghcr.io", "remoteurl": "https://ghcr.io", "ttl": "5m"}]}})
    assert cfg.route("team/app") is None and cfg.route("docker.io/mine/x") is None
    up, remote = cfg.route("docker.io/library/busybox") or (None, "")
    assert up is not None and up.remoteurl == "https://hub.example" and remote == "library/busybox"
    up, remote = cfg.route("ghcr.io/org/app") or (None, "")
    assert up is not None and up.ttl == 300 and remote == "org/app"
    up, remote = cfg.route("library/busybox") or (None, "")
    assert up is not None and up.prefix == "" and remote == "library/busybox"
    assert cfg.route("teamwork/app") is not None  # a namespace is a whole path component


def test_credentials_stay_with_their_upstream() -> None:
    cfg = parse_proxy_config({"proxy": {
        "remoteurl": "https://a.example", "username": "u", "password": "s3cret-pw",
        "upstreams": [{"prefix": "ghcr.io", "remoteurl": "https://ghcr.io"}]}})
    prefixed, default = cfg.upstreams
    assert (prefixed.username, prefixed.password) == ("", "")
    assert (default.username, default.password) == ("u", "s3cret-pw")
    assert "s3cret-pw" not in repr(cfg)


def test_https_upstream_is_never_used_over_plain_http(tmp_path: Path, upstream: Upstream) -> None:
    _image(upstream, "library/tls", "1", b"x")
    with _proxy(tmp_path, f"https://{upstream.host}", username="bob", password="pw") as cache:
        r = cache.get("/v2/library/tls/manifests/1", headers=ACCEPT)
        assert r.status == 502 and "refusing plain HTTP" in r.body.decode()
    assert not [h for _, _, h in upstream.requests if "Authorization" in h]
    assert not [p for _, p, _ in upstream.requests if "manifests" in p]


def test_ranged_pull_of_an_uncached_blob(tmp_path: Path, upstream: Upstream) -> None:
    layer = random_blob(50_000)
    _, ld = _image(upstream, "library/rng", "1", layer)
    with _proxy(tmp_path, f"http://{upstream.host}") as cache:
        r = cache.get(f"/v2/library/rng/blobs/{ld}", headers={"Range": "bytes=1000-"})
        assert r.status == 206 and r.body == layer[1000:]
        assert _stored(tmp_path, ld)


def test_bytes_held_for_another_repository_are_linked_only_on_the_upstreams_word(
    tmp_path: Path, upstream: Upstream
) -> None:
    layer = random_blob(20_000)
    _, ld = _image(upstream, "library/shared", "1", layer)
    with _proxy(tmp_path, f"http://{upstream.host}", local=["team"]) as cache:
        push_image(cache, "team/app", "1", [layer])  # the same bytes, pushed to a local repository
        status, data = _get(cache, f"/v2/library/shared/blobs/{ld}")
        assert status == 200 and data == layer
        assert upstream.gets(ld) == 0  # asked (HEAD), not downloaded again
        # a digest the upstream does not have for that name is not served from another repository
        secret = random_blob(1000)
        push_image(cache, "team/secret", "1", [secret])
        r = cache.get(f"/v2/library/shared/blobs/{sha(secret)}")
        assert r.status == 404 and r.codes == ["BLOB_UNKNOWN"]


def test_concurrent_manifest_pulls_ask_once(tmp_path: Path, upstream: Upstream) -> None:
    d, _ = _image(upstream, "library/many", "1", b"m")
    upstream.faults["library/many:1"] = "slow"
    results: list[str | None] = []
    with _proxy(tmp_path, f"http://{upstream.host}") as cache:
        def pull() -> None:
            results.append(cache.get("/v2/library/many/manifests/1", headers=ACCEPT).header("Docker-Content-Digest"))

        threads = [threading.Thread(target=pull) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert results == [d] * 5
    assert upstream.gets("/v2/library/many/manifests/1") == 1


def test_index_for_a_client_that_takes_no_indexes(tmp_path: Path, upstream: Upstream) -> None:
    child, _ = _image(upstream, "library/multi", "amd64", b"amd64 layer")
    raw, _ = upstream.manifests[f"library/multi:{child}"]
    index = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
             "manifests": [{"mediaType": V2, "digest": child, "size": len(raw),
                            "platform": {"os": "linux", "architecture": "amd64"}}]}
    upstream.add_manifest("library/multi", "1", json.dumps(index).encode(), index["mediaType"])  # type: ignore[arg-type]
    with _proxy(tmp_path, f"http://{upstream.host}") as cache:
        r = cache.get("/v2/library/multi/manifests/1", headers=ACCEPT)  # v2 only: the linux/amd64 child
        assert r.status == 200 and r.header("Docker-Content-Digest") == child and r.body == raw
        r = cache.get("/v2/library/multi/manifests/1")  # no Accept: the index as stored
        assert r.status == 200 and json.loads(r.body)["manifests"][0]["digest"] == child


def test_in_memory_storage_streams_to_concurrent_clients(upstream: Upstream) -> None:
    layer = random_blob(4 * 65536 + 7)
    _, ld = _image(upstream, "library/mem", "1", layer)
    upstream.faults[ld] = "slow"
    results: list[tuple[int, bytes | None]] = []
    with ServerThread({"storage": {"inmemory": {}}, "proxy": {"remoteurl": f"http://{upstream.host}"}}) as cache:
        def pull() -> None:
            results.append(_get(cache, f"/v2/library/mem/blobs/{ld}"))

        threads = [threading.Thread(target=pull) for _ in range(3)]
        for t in threads:
            t.start()
            time.sleep(0.3)
        for t in threads:
            t.join(60)
        assert results == [(200, layer)] * 3
        assert upstream.gets(ld) == 1
        assert cache.request("HEAD", f"/v2/library/mem/blobs/{ld}").header("Content-Length") == str(len(layer))


def test_tag_list_comes_from_the_upstream_merged_with_the_cache(tmp_path: Path) -> None:
    up = ServerThread({"storage": {"inmemory": {}, "delete": {"enabled": True}}})
    push_image(up, "library/busybox", "a", [random_blob(1000)], media_type=V2)
    push_image(up, "library/busybox", "b", [random_blob(1000)], media_type=V2)
    with _proxy(tmp_path, f"http://{up.url}", ttl=0) as cache:
        # nothing cached yet: the upstream's tags, paginated here like any tag list
        r = cache.get("/v2/library/busybox/tags/list")
        assert r.status == 200 and r.json() == {"name": "library/busybox", "tags": ["a", "b"]}
        r = cache.get("/v2/library/busybox/tags/list?n=1")
        assert r.json()["tags"] == ["a"] and "last=a" in (r.header("Link") or "")
        assert cache.get("/v2/library/busybox/manifests/a", headers=ACCEPT).status == 200  # caches "a"
        push_image(up, "library/busybox", "c", [random_blob(1000)], media_type=V2)
        assert up.request("DELETE", "/v2/library/busybox/manifests/a").status == 202
        assert up.get("/v2/library/busybox/tags/list").json()["tags"] == ["b", "c"]
        r = cache.get("/v2/library/busybox/tags/list")  # the upstream's now, and the cached "a"
        assert r.status == 200 and r.json()["tags"] == ["a", "b", "c"]
        r = cache.get("/v2/library/nothere/tags/list")
        assert r.status == 404 and r.codes == ["NAME_UNKNOWN"]
        up.close()  # upstream down: what is cached
        r = cache.get("/v2/library/busybox/tags/list")
        assert r.status == 200 and r.json() == {"name": "library/busybox", "tags": ["a"]}
        r = cache.get("/v2/library/other/tags/list")
        assert r.status == 404 and r.codes == ["NAME_UNKNOWN"]
