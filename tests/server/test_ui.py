"""The registry's web UI over HTTP: access rules, sign-in, CSRF, escaping, deletes, configuration.
(tests/server/test_ui_browser.py drives the same UI in a real headless chromium.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.helpers import Client, ServerThread, push_blob, random_blob
from server.uihelpers import (
    UIClient,
    auth_config,
    bearer_client,
    push_index,
    push_labelled_image,
    push_referrer,
)
from strata.server.config import ConfigError, build_config
from strata.server.ui import parse_ui_config
from strata.server.ui.text import human_size

HOSTILE_LABEL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(auth_config(tmp_path)) as s:
        alice = bearer_client(s, "alice", "pw-alice", "team/app")
        amd = push_labelled_image(alice, "team/app", "1.0", {
            "created": "2024-05-01T10:00:00Z",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/srv", "User": "1000",
                       "ExposedPorts": {"8080/tcp": {}}, "Labels": {"evil": HOSTILE_LABEL}},
            "history": [{"created": "2024-05-01T10:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
                        {"created": "2024-05-01T10:00:00Z", "created_by": "/bin/sh -c #(nop)  CMD [\"/bin/sh\"]",
                         "empty_layer": True},
                        {"created": "2024-05-01T10:00:00Z", "created_by": "RUN make install", "comment": "built"}]})
        arm = push_labelled_image(alice, "team/app", "1.0-arm64", {}, arch="arm64")
        push_index(alice, "team/app", "multi", [(amd[0], amd[1], "amd64"), (arm[0], arm[1], "arm64")])
        push_referrer(alice, "team/app", amd, "application/vnd.dev.cosign.artifact.sig.v1+json")
        push_labelled_image(bearer_client(s, "alice", "pw-alice", "private/db"), "private/db", "5", {})
        yield s


def _text(r: object) -> str:
    return r.body.decode()  # type: ignore[attr-defined]


def test_anonymous_sees_nothing_and_every_page_is_protected(reg: ServerThread) -> None:
    ui = UIClient(reg)
    r = ui.get("/ui/")
    assert r.status == 200 and "team/app" not in _text(r) and "private/db" not in _text(r)
    assert "Sign in" in _text(r)
    for path in ("/ui/repo?name=team/app", "/ui/manifest?name=team/app&ref=1.0", "/ui/repo?name=nope/none"):
        r = ui.get(path)
        assert r.status == 404 and "1.0" not in _text(r), path


def test_security_headers_and_no_inline_script(reg: ServerThread) -> None:
    ui = UIClient(reg)
    ui.login("alice", "pw-alice")
    for path in ("/ui/", "/ui/repo?name=team/app", "/ui/manifest?name=team/app&ref=1.0", "/ui/login"):
        r = ui.get(path)
        csp = r.header("Content-Security-Policy") or ""
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert r.header("X-Content-Type-Options") == "nosniff" and r.header("Cache-Control") == "no-store"
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", _text(r)), path
        assert " on" not in re.sub(r'"[^"]*"', "", "".join(re.findall(r"<[^>]+>", _text(r)))).lower().replace(
            " one", ""), path


def test_cookie_flags_and_session_rotation(reg: ServerThread) -> None:
    ui = UIClient(reg)
    r = ui.get("/ui/login")
    cookie = r.header("Set-Cookie") or ""
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
    before = ui.cookies["strata_ui"]
    r = ui.login("alice", "pw-alice")
    assert r.status == 303 and ui.cookies["strata_ui"] != before
    assert "signed in as <b>alice</b>" in _text(ui.get("/ui/"))


def test_wrong_password_and_unknown_user(reg: ServerThread) -> None:
    for user, pw in (("alice", "nope"), ("mallory", "pw-alice"), ("", "")):
        ui = UIClient(reg)
        r = ui.login(user, pw)
        assert r.status == 401 and "wrong user name or password" in _text(r)
        assert "team/app" not in _text(ui.get("/ui/"))


def test_user_sees_only_what_they_may_pull(reg: ServerThread) -> None:
    carol = UIClient(reg)
    carol.login("carol", "pw-carol")
    page = _text(carol.get("/ui/"))
    assert "team/app" in page and "private/db" not in page
    assert carol.get("/ui/repo?name=private/db").status == 404
    assert "Delete" not in _text(carol.get("/ui/repo?name=team/app"))
    alice = UIClient(reg)
    alice.login("alice", "pw-alice")
    page = _text(alice.get("/ui/"))
    assert "team/app" in page and "private/db" in page and "2 repositories" in page


def test_search_and_pagination(tmp_path: Path) -> None:
    raw = auth_config(tmp_path, ui={"enabled": True, "pagesize": 3})
    with ServerThread(raw) as s:
        for i in range(7):
            name = f"proj/svc{i}" if i % 2 else f"other/lib{i}"
            push_labelled_image(bearer_client(s, "alice", "pw-alice", name), name, "v1", {})
        ui = UIClient(s)
        ui.login("alice", "pw-alice")
        first = _text(ui.get("/ui/"))
        assert "Page 1 of 3 · 7 repositories" in first and first.count('href="/ui/repo?name=') == 3
        last = _text(ui.get("/ui/?page=3"))
        assert "Page 3 of 3" in last and last.count('href="/ui/repo?name=') == 1
        found = _text(ui.get("/ui/?q=SVC"))
        assert "3 repositories" in found and "proj/svc1" in found and "other/lib" not in found
        assert "Page 1 of 1" in _text(ui.get("/ui/?page=-5&q=zzz"))
        hostile = _text(ui.get("/ui/?q=%3Cscript%3Ealert(1)%3C/script%3E"))
        assert "<script>alert" not in hostile and "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile


def test_tags_page(reg: ServerThread) -> None:
    ui = UIClient(reg)
    ui.login("bob", "pw-bob")
    page = _text(ui.get("/ui/repo?name=team/app"))
    for tag in ("1.0", "1.0-arm64", "multi"):
        assert f"docker pull 127.0.0.1:{reg.port}/team/app:{tag}" in page
    assert "linux/amd64<br>linux/arm64" in page  # every platform of the index
    assert "strata pull" in page
    assert "Delete tag" not in page  # bob has no delete right


def test_manifest_page_escapes_and_shows_everything(reg: ServerThread) -> None:
    ui = UIClient(reg)
    ui.login("alice", "pw-alice")
    page = _text(ui.get("/ui/manifest?name=team/app&ref=1.0"))
    assert HOSTILE_LABEL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page
    for text in ("PATH=/bin", "/bin/sh", "/srv", "8080/tcp", "application/vnd.oci.image.layer.v1.tar+gzip",
                 "application/vnd.dev.cosign.artifact.sig.v1+json", "RUN make install", "built", "&lt;missing&gt;"):
        assert text in page, text
    assert "/bin/sh -c #(nop) ADD file:abc in /" in page
    index = _text(ui.get("/ui/manifest?name=team/app&ref=multi"))
    assert "linux/arm64" in index and "Platforms" in index
    for bad in ("name=../../etc&ref=1.0", "name=team/app&ref=../../x", "name=team/app&ref=sha256:zz",
                "name=team%2F..%2Fapp&ref=1.0", "name=&ref="):
        assert ui.get(f"/ui/manifest?{bad}").status == 404, bad


def test_delete_tag_right_user_and_wrong_user(reg: ServerThread) -> None:
    alice, bob = UIClient(reg), UIClient(reg)
    alice.login("alice", "pw-alice")
    bob.login("bob", "pw-bob")
    token = bob.csrf("/ui/")
    r = bob.send("POST", "/ui/delete", {"csrf": token, "name": "team/app", "tag": "1.0-arm64"})
    assert r.status == 403 and "bob may not delete in team/app" in _text(r)
    assert reg.request("GET", "/ui/").status == 200
    token = alice.csrf("/ui/repo?name=team/app")
    # a forged form: no token, another session's token, a cross-site origin
    for form, headers in (({}, {}), ({"csrf": bob.csrf("/ui/")}, {}), ({"csrf": token}, {"Origin": "https://evil.example"}),
                          ({"csrf": token}, {"Sec-Fetch-Site": "cross-site"})):
        r = alice.send("POST", "/ui/delete", {**form, "name": "team/app", "tag": "1.0-arm64"}, headers)
        assert r.status == 403, (form, headers)
    assert "1.0-arm64" in _text(alice.get("/ui/repo?name=team/app"))
    r = alice.send("POST", "/ui/delete", {"csrf": token, "name": "team/app", "tag": "1.0-arm64"},
                   {"Origin": f"http://127.0.0.1:{reg.port}"})
    assert r.status == 303 and r.header("Location") == "/ui/repo?name=team%2Fapp"
    assert "1.0-arm64" not in _text(alice.get("/ui/repo?name=team/app"))
    assert bearer_client(reg, "alice", "pw-alice", "team/app").get("/v2/team/app/manifests/1.0-arm64").status == 404


def test_delete_manifest(reg: ServerThread) -> None:
    alice = UIClient(reg)
    alice.login("alice", "pw-alice")
    page = _text(alice.get("/ui/manifest?name=team/app&ref=1.0-arm64"))
    digest = re.search(r'name="digest" value="(sha256:[0-9a-f]{64})"', page)
    assert digest
    r = alice.send("POST", "/ui/delete", {"csrf": alice.csrf("/ui/"), "name": "team/app", "digest": digest.group(1)})
    assert r.status == 303
    api = bearer_client(reg, "alice", "pw-alice", "team/app")
    assert api.get(f"/v2/team/app/manifests/{digest.group(1)}").status == 404


def test_deletes_disabled(tmp_path: Path) -> None:
    with ServerThread(auth_config(tmp_path, delete=False)) as s:
        push_labelled_image(bearer_client(s, "alice", "pw-alice", "team/app"), "team/app", "1", {})
        alice = UIClient(s)
        alice.login("alice", "pw-alice")
        assert "Delete" not in _text(alice.get("/ui/repo?name=team/app"))
        r = alice.send("POST", "/ui/delete", {"csrf": alice.csrf("/ui/"), "name": "team/app", "tag": "1"})
        assert r.status == 405 and "deletes are disabled" in _text(r)


def test_logout_and_removed_user(reg: ServerThread, tmp_path: Path) -> None:
    ui = UIClient(reg)
    ui.login("bob", "pw-bob")
    assert "team/app" in _text(ui.get("/ui/"))
    r = ui.send("POST", "/ui/logout", {"csrf": ui.csrf("/ui/")})
    assert r.status == 303 and "team/app" not in _text(ui.get("/ui/"))
    ui.login("bob", "pw-bob")
    from strata.server.auth.htpasswd import add_user

    add_user(str(tmp_path / "htpasswd"), "bob", "changed")  # a changed password ends bob's sessions
    assert "team/app" not in _text(ui.get("/ui/"))


def test_ui_off_by_default_and_config_errors(tmp_path: Path) -> None:
    with ServerThread({"storage": {"inmemory": {}}}) as s:
        assert s.get("/ui/").status == 404
    assert parse_ui_config({}).enabled is False
    for bad in ({"ui": {"path": "/v2"}}, {"ui": {"path": "ui"}}, {"ui": {"path": "/a/../b"}}, {"ui": "yes"},
                {"ui": {"enabled": True, "pagesize": 0}}, {"ui": {"enabeld": True}}):
        with pytest.raises(ConfigError):
            parse_ui_config(bad)
    with pytest.raises(ConfigError, match=r"ui\.path"):
        ServerThread(config=build_config({"storage": {"inmemory": {}}, "ui": {"enabled": True, "path": "/v1/x"}}))


def test_no_auth_registry_lets_everyone_browse(tmp_path: Path) -> None:
    with ServerThread({"storage": {"inmemory": {}}, "ui": {"enabled": True, "path": "/registry-ui"}}) as s:
        push_labelled_image(s, "lib/x", "1", {})
        ui = UIClient(s)
        page = _text(ui.get("/registry-ui/"))
        assert "lib/x" in page and "Sign in" not in page
        assert s.get("/registry-ui").status in (200, 301)
        assert ui.get("/registry-ui/login").status == 404


def test_htpasswd_auth_and_tls(tmp_path: Path) -> None:
    """With plain htpasswd auth every signed-in user may do everything, anonymous visitors nothing;
    over TLS the session cookie is Secure and the CSRF origin is the https one."""
    from peers import make_ca
    from strata.server.auth.htpasswd import add_user

    certs = make_ca(tmp_path / "tls")
    add_user(str(tmp_path / "htpasswd"), "dave", "pw-dave", create=True)
    raw = {"storage": {"filesystem": {"rootdirectory": str(tmp_path / "reg")}, "delete": {"enabled": True}},
           "auth": {"htpasswd": {"realm": "r", "path": str(tmp_path / "htpasswd")}},
           "http": {"tls": {"certificate": str(certs.cert), "key": str(certs.key)}}, "ui": {"enabled": True}}
    with ServerThread(raw) as s:
        import base64

        basic = base64.b64encode(b"dave:pw-dave").decode()
        api = Client(s.host, s.port, s.ssl_context, {"Authorization": f"Basic {basic}"})
        push_labelled_image(api, "dave/app", "1", {})
        anon = UIClient(s)
        r = anon.get("/ui/")
        assert "dave/app" not in _text(r) and "Secure" in (r.header("Set-Cookie") or "")
        assert anon.get("/ui/repo?name=dave/app").status == 404
        assert anon.login("dave", "wrong").status == 401
        r = anon.login("dave", "pw-dave")
        assert r.status == 303 and "Secure" in (r.header("Set-Cookie") or "")
        page = _text(anon.get("/ui/repo?name=dave/app"))
        assert "Delete tag" in page
        token = anon.csrf("/ui/")
        r = anon.send("POST", "/ui/delete", {"csrf": token, "name": "dave/app", "tag": "1"},
                      {"Origin": f"http://127.0.0.1:{s.port}"})  # the http origin is another origin
        assert r.status == 403
        r = anon.send("POST", "/ui/delete", {"csrf": token, "name": "dave/app", "tag": "1"},
                      {"Origin": f"https://127.0.0.1:{s.port}"})
        assert r.status == 303
        assert api.get("/v2/dave/app/manifests/1").status == 404


def test_repository_size_counts_shared_blobs_once(tmp_path: Path) -> None:
    import json as _json

    from strata.server.ui.text import human_size

    with ServerThread({"storage": {"inmemory": {}}, "ui": {"enabled": True}}) as s:
        d, body = push_labelled_image(s, "lib/x", "1", {})
        s.request("PUT", "/v2/lib/x/manifests/2", body=body,
                  headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        push_index(s, "lib/x", "multi", [(d, body, "amd64")])
        doc = _json.loads(body)
        size = doc["config"]["size"] + sum(layer["size"] for layer in doc["layers"])
        page = _text(UIClient(s).get("/ui/"))
        row = re.search(r'lib/x</a></td><td>(\d+)</td><td>([^<]+)</td>', page)
        assert row and row.groups() == ("3", human_size(size)), page
        assert human_size(size) == f"{size / 1000:.3g}kB"


def _garbage_collect(root: Path, *args: str) -> None:
    """The real ``strata registry garbage-collect``, in its own process."""
    run = subprocess.run([sys.executable, "-m", "strata", "registry", "garbage-collect", "--root", str(root),
                          "--grace-period", "0s", *args], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr


def _distinct_blob_bytes(c: Client, repo: str, tags: list[str]) -> int:
    """What the tags' image manifests reference, each blob once, read over the registry API."""
    sizes: dict[str, int] = {}
    for tag in tags:
        r = c.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        doc = json.loads(r.body)
        for desc in [doc["config"], *doc["layers"]]:
            sizes[desc["digest"]] = desc["size"]
    return sum(sizes.values())


def test_storage_used_and_the_last_garbage_collection(reg: ServerThread, tmp_path: Path) -> None:
    ui = UIClient(reg)
    ui.login("alice", "pw-alice")
    assert "Last garbage collection: never" in _text(ui.get("/ui/"))
    alice = bearer_client(reg, "alice", "pw-alice", "team/app")
    # every tag's blobs once: the index "multi" shares its children's with 1.0 and 1.0-arm64
    used = _distinct_blob_bytes(alice, "team/app", ["1.0", "1.0-arm64"])
    page = _text(ui.get("/ui/repo?name=team/app"))
    assert f"Storage used: {human_size(used)} in 3 tags" in page
    push_blob(alice, "team/app", random_blob(5000))  # referenced by nothing: garbage
    began = time.monotonic()
    _garbage_collect(tmp_path / "reg", "--dry-run")
    page = _text(ui.get("/ui/"))
    line = re.search(r'<p class="notice" id="last-gc">([^<]*)</p>', page)
    # the run just made, however long it and the page took on a loaded machine ("ago" counts from its start)
    assert line, page
    ago = re.search(r"Last garbage collection: (Less than a second|(\d+) seconds?) ago", line.group(1))
    assert ago and int(ago.group(2) or 0) <= time.monotonic() - began, page
    assert "(dry run): would delete 1 blob, 0 manifests, 0 uploads; would free 5kB" in line.group(1)
    _garbage_collect(tmp_path / "reg")
    page = _text(ui.get("/ui/"))
    assert "(dry run)" not in page and ": deleted 1 blob, 0 manifests, 0 uploads; freed 5kB" in page
    assert f"Storage used: {human_size(used)} in 3 tags" in _text(ui.get("/ui/repo?name=team/app"))
    record = json.loads((tmp_path / "reg/docker/registry/v2/strata/gc/last.json").read_text())
    assert record["dryRun"] is False and record["deletedBlobs"] == 1 and record["freedBytes"] == 5000
    # an anonymous visitor of a registry with sign-in sees nothing of it
    assert "garbage collection" not in _text(UIClient(reg).get("/ui/"))
