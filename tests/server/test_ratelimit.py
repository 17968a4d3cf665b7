"""Per-client rate limiting (``http.ratelimit``): 429 TOOMANYREQUESTS with Retry-After."""

from __future__ import annotations

import http.client
import math
import time
from pathlib import Path

import pytest
import yaml

from server.helpers import Resp, ServerThread
from strata.server.config import ConfigError, build_config, load_config
from strata.server.ratelimit import RateLimiter, retry_after_header


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_at_rate() -> None:
    clock = FakeClock()
    rl = RateLimiter(rate=2, burst=3, clock=clock)
    assert [rl.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.take("a") == pytest.approx(0.5)
    assert rl.take("b") == 0.0  # another client has its own bucket
    clock.now += 0.5
    assert rl.take("a") == 0.0
    assert rl.take("a") == pytest.approx(0.5)
    clock.now += 10  # never more than the burst
    assert [rl.take("a") for _ in range(4)][-1] > 0
    assert retry_after_header(0.01) == "1" and retry_after_header(2.2) == "3"


def test_idle_clients_are_forgotten() -> None:
    clock = FakeClock()
    rl = RateLimiter(rate=1, burst=1, max_clients=3, clock=clock)
    for key in ("a", "b", "c"):
        rl.take(key)
    clock.now += 0.5
    rl.take("d")  # nobody is full yet: the least recently seen ("a") goes
    assert len(rl) == 3
    assert rl.take("b") > 0  # "b" was kept with its empty bucket
    clock.now += 5
    rl.take("e")  # everyone idle long enough is dropped
    assert len(rl) == 1


def test_config_and_environment() -> None:
    c = build_config({"http": {"ratelimit": {"rate": 5}}})
    assert (c.ratelimit.enabled, c.ratelimit.rate, c.ratelimit.burst) == (True, 5.0, 5)
    assert not build_config({}).ratelimit.enabled
    c = load_config(None, env={"STRATA_REGISTRY_HTTP_RATELIMIT_RATE": "0.5", "STRATA_REGISTRY_HTTP_RATELIMIT_BURST": "4"})
    assert (c.ratelimit.rate, c.ratelimit.burst) == (0.5, 4)
    for bad in ({"rate": -1}, {"rate": "fast"}, "10/s"):
        with pytest.raises(ConfigError):
            build_config({"http": {"ratelimit": bad}})


def _from(reg: ServerThread, source: str, method: str = "GET", path: str = "/v2/") -> Resp:
    c = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=10, source_address=(source, 0))
    try:
        c.request(method, path)
        r = c.getresponse()
        return Resp(r.status, dict(r.getheaders()), r.read())
    finally:
        c.close()


def _burst(reg: ServerThread, source: str) -> tuple[float, float, list[int], Resp, Resp]:
    """From ``source``: the burst of 3, then a GET and a HEAD over it; (began, emptied, the burst's
    statuses, the GET, the HEAD) with ``began``/``emptied`` measured before the first and after the third."""
    began = time.monotonic()
    oks = [_from(reg, source).status for _ in range(3)]
    emptied = time.monotonic()
    return began, emptied, oks, _from(reg, source, path="/v2/nosuch/manifests/latest"), _from(reg, source, "HEAD")


def test_server_answers_429_with_retry_after(tmp_path: Path) -> None:
    # a token every 2 s: at 2/s a stall of 0.4 s on a loaded machine gave one back where a 429 was expected
    raw = {"storage": {"inmemory": {}}, "http": {"ratelimit": {"rate": 0.5, "burst": 3}}}
    with ServerThread(raw) as reg:
        # the 429s need the 5 requests within 2 s (less than a token back meanwhile): a loaded machine can
        # stall longer, then again from a fresh client address (its own full bucket)
        for n in range(1, 31):
            source = f"127.0.3.{n}"
            began, emptied, oks, r, h = _burst(reg, source)
            waited = time.monotonic() - began
            if waited < 2:
                break
        assert waited < 2, waited
        assert oks == [200, 200, 200]
        # whole seconds until the next token: 2 right after the bucket emptied, 1 once a second had passed
        retry_after = {str(n) for n in range(math.ceil(2 - waited), 3)}
        assert r.status == 429 and r.codes == ["TOOMANYREQUESTS"]
        assert r.header("Retry-After") in retry_after, (r.header("Retry-After"), waited)
        assert r.header("Docker-Distribution-API-Version") == "registry/2.0"
        assert h.status == 429 and h.header("Retry-After") in retry_after and h.body == b""
        # another client address has its own bucket; health and metrics are never limited
        assert _from(reg, "127.0.0.2").status == 200
        assert reg.get("/debug/health").status == 200
        metrics = reg.debug.get("/metrics").body.decode()
        assert 'code="429"' in metrics
        # one token back 2 s after the bucket emptied (a second one only 2 s later: 4 s after it emptied)
        time.sleep(max(0.0, emptied + 2.1 - time.monotonic()))
        assert _from(reg, source).status == 200
        again = _from(reg, source).status
        assert again == 429 or time.monotonic() - began >= 4, again  # a stall of 2 s more gives the next one


def test_token_endpoint_is_limited_too(tmp_path: Path) -> None:
    from strata.server.auth.htpasswd import add_user

    add_user(str(tmp_path / "htpasswd"), "u", "p", create=True)
    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump({"storage": {"inmemory": {}}, "http": {"ratelimit": {"rate": 0.2, "burst": 2}},
                                   "auth": {"token": {"htpasswd": str(tmp_path / "htpasswd")}}}))
    with ServerThread(config=load_config(str(cfg), env={})) as reg:
        statuses = [reg.get("/auth/token?service=strata-registry").status for _ in range(3)]
        assert statuses == [200, 200, 429]
