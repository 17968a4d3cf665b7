"""Every JSON document strata reads from a stranger goes through ``spec.load_json``, not only manifests:
a registry's error bodies, token answers, tag lists, catalogs and search results, a ``docker save``
archive's ``manifest.json`` and an OCI layout's ``index.json``. Nested without end (or shaped wrongly),
each is a clear ``Error:`` and exit 1, never a ``RecursionError``/``AttributeError`` traceback."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .conftest import StrataRun

DEEP = 100_000
NESTED = ("[" * DEEP + "]" * DEEP).encode()
NESTED_OBJECT = ('{"errors":' + "[" * DEEP + "]" * DEEP + "}").encode()

# path prefix -> (status, headers, body); the first prefix that matches answers
Routes = dict[str, tuple[int, dict[str, str], bytes]]


class _Hostile(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.routes: Routes = {}
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Hostile

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        default = (404, {}, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}')
        match = (v for k, v in self.server.routes.items() if self.path.startswith(k))
        status, headers, body = next(match, default)
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", **headers}.items():
            self.send_header(k, v.replace("HOST", self.server.host))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _answer


@pytest.fixture
def hostile() -> Iterator[_Hostile]:
    srv = _Hostile()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _clean_failure(res: object) -> None:
    stderr = getattr(res, "stderr", "")
    assert getattr(res, "returncode", 0) == 1, (getattr(res, "stdout", ""), stderr)
    assert stderr.startswith("Error: "), stderr
    assert "Traceback" not in stderr and "RecursionError" not in stderr, stderr[-2000:]


_BEARER = {"WWW-Authenticate": 'Bearer realm="http://HOST/token",service="hostile"'}

CASES: dict[str, tuple[Routes, Callable[[str], list[str]]]] = {
    # an error answer whose body nests without end
    "error body": ({"/v2/r/tags/list": (404, {}, NESTED_OBJECT), "/v2/": (200, {}, b"{}")},
                   lambda h: ["pull", "-a", f"{h}/r"]),
    # the token realm answers nested JSON, a list, a bad lifetime
    "token nested": ({"/v2/": (401, _BEARER, b"{}"), "/token": (200, {}, NESTED)}, lambda h: ["pull", f"{h}/r:x"]),
    "token list": ({"/v2/": (401, _BEARER, b"{}"), "/token": (200, {}, b"[1]")}, lambda h: ["pull", f"{h}/r:x"]),
    "token lifetime": ({"/v2/": (401, _BEARER, b"{}"), "/token": (200, {}, b'{"token":"t","expires_in":"soon"}')},
                       lambda h: ["pull", f"{h}/r:x"]),
    # a 401 from the token realm with a nested body
    "token refusal": ({"/v2/": (401, _BEARER, b"{}"), "/token": (401, {}, NESTED_OBJECT)},
                      lambda h: ["pull", f"{h}/r:x"]),
    "tag list": ({"/v2/r/tags/list": (200, {}, NESTED), "/v2/": (200, {}, b"{}")}, lambda h: ["pull", "-a", f"{h}/r"]),
    "tag list shape": ({"/v2/r/tags/list": (200, {}, b'{"tags":7}'), "/v2/": (200, {}, b"{}")},
                       lambda h: ["pull", "-a", f"{h}/r"]),
    "search": ({"/v1/search": (200, {}, NESTED), "/v2/": (200, {}, b"{}")}, lambda h: ["search", f"{h}/r"]),
    "catalog": ({"/v2/_catalog": (200, {}, NESTED), "/v2/": (200, {}, b"{}")}, lambda h: ["search", f"{h}/r"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_registry_json_fails_cleanly(strata: StrataRun, hostile: _Hostile, case: str) -> None:
    routes, argv = CASES[case]
    hostile.routes = routes
    res = strata(*argv(hostile.host), timeout=120)
    _clean_failure(res)


def test_search_result_of_the_wrong_shape(strata: StrataRun, hostile: _Hostile) -> None:
    hostile.routes = {"/v1/search": (200, {}, b'{"results":[{"name":"r","star_count":"many"},7]}'),
                      "/v2/": (200, {}, b"{}")}
    res = strata("search", f"{hostile.host}/r", timeout=120)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert res.stdout.splitlines()[1].split() == ["r", "0"], res.stdout  # names as the registry gives them, as Docker


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_docker_archive_nested_manifest_json(strata: StrataRun, tmp_path: Path) -> None:
    archive = tmp_path / "deep.tar"
    archive.write_bytes(_tar({"manifest.json": NESTED}))
    res = strata("load", "-i", str(archive), timeout=120)
    _clean_failure(res)
    assert "nested" in res.stderr, res.stderr
    assert strata("images", "-q").stdout.strip() == ""


def test_oci_layout_nested_index_json(strata: StrataRun, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_bytes(b'{"schemaVersion":2,"manifests":[],"x":' + NESTED + b"}")
    res = strata("copy", f"oci:{layout}:latest", f"docker-archive:{tmp_path / 'out.tar'}", timeout=120)
    _clean_failure(res)
    assert "nested" in res.stderr, res.stderr
    archive = tmp_path / "layout.tar"
    archive.write_bytes(_tar({name: (layout / name).read_bytes() for name in ("oci-layout", "index.json")}))
    res = strata("load", "-i", str(archive), timeout=120)
    _clean_failure(res)
    assert "nested" in res.stderr, res.stderr


def test_endless_tag_pages_are_cut_off(strata: StrataRun, hostile: _Hostile) -> None:
    """A registry that answers every tag-list page with ~1 MiB and a ``Link`` to the next one used to
    be read for 10,000 pages (10 GB in memory); the listing stops at 32 MiB."""
    page = json.dumps({"name": "r", "tags": [f"t{i:06d}" + "x" * 90 for i in range(10_000)]}).encode()
    hostile.routes = {"/v2/r/tags/list": (200, {"Link": '</v2/r/tags/list?last=x&n=10000>; rel="next"'}, page),
                      "/v2/": (200, {}, b"{}")}
    res = strata("pull", "-a", f"{hostile.host}/r", timeout=120)
    _clean_failure(res)
    assert "larger than 32 MiB" in res.stderr, res.stderr
