"""The registry's web UI in a real browser (Debian's chromium, headless, driven by selenium): images
pushed with strata (and with Docker 20.10), found, opened, deleted by the right user and refused to the
wrong one. Screenshots of every page are kept under the test's tmp dir (``screenshots/``)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from server.browser import Browser, chromium
from server.helpers import ServerProcess
from server.uihelpers import auth_config, bearer_client, push_index, push_labelled_image, push_referrer

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    """``strata registry serve --config`` in a subprocess: token auth, deletes on, the UI at /ui."""
    cfg = tmp_path / "config.yml"
    cfg.write_text(yaml.safe_dump(auth_config(tmp_path)))
    with ServerProcess(tmp_path / "reg", cfg) as s:
        yield s


def _strata(tmp: Path, *args: str, stdin: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "STRATA_"))}
    env.update(STRATA_ROOT=str(tmp / "store"), DOCKER_CONFIG=str(tmp / "dockercfg"),
               STRATA_CONFIG=str(tmp / "strata.json"))
    res = subprocess.run([sys.executable, "-m", "strata", *args], env=env, input=stdin, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res.stdout


def _rootfs(tmp: Path) -> Path:
    path = tmp / "rootfs.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in (("bin/hello", b"#!/bin/sh\necho hello\n" * 50), ("etc/motd", os.urandom(4000))):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


def _push_with_strata(tmp: Path, host: str) -> None:
    _strata(tmp, "login", "-u", "alice", "--password-stdin", host, stdin="pw-alice")
    ref = f"{host}/team/app:1.0"
    _strata(tmp, "import", "-c", 'CMD ["/bin/hello"]', "-c", "WORKDIR /srv", "-c", "EXPOSE 8080",
            "-c", f"LABEL evil={HOSTILE!r}", str(_rootfs(tmp)), ref)
    _strata(tmp, "tag", ref, f"{host}/team/app:old")
    _strata(tmp, "push", ref)
    _strata(tmp, "push", f"{host}/team/app:old")


def _push_by_api(s: ServerProcess) -> None:
    alice = bearer_client(s, "alice", "pw-alice", "team/multi")
    amd = push_labelled_image(alice, "team/multi", "amd64", {"created": "2024-05-01T10:00:00Z"})
    arm = push_labelled_image(alice, "team/multi", "arm64", {"created": "2024-05-01T10:00:00Z"}, arch="arm64")
    push_index(alice, "team/multi", "latest", [(amd[0], amd[1], "amd64"), (arm[0], arm[1], "arm64")])
    push_referrer(alice, "team/multi", amd, "application/spdx+json")
    for i in range(3):
        push_labelled_image(bearer_client(s, "alice", "pw-alice", f"private/db{i}"), f"private/db{i}", "5", {})


def _no_overflow(b: Browser) -> bool:
    return bool(b.d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"))


def _accept_confirm(b: Browser) -> None:
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(b.d, 30).until(ec.alert_is_present())  # the UI's script (CSP 'self') asks first (slow when loaded)
    b.d.switch_to.alert.accept()


def _forge_delete(b: Browser, name: str, tag: str) -> None:
    """What a user without the button could still try: post the delete form by hand (own token)."""
    b.d.execute_script(
        "var t=document.querySelector('input[name=csrf]').value;var f=document.createElement('form');"
        "f.method='post';f.action='/ui/delete';[['csrf',t],['name',arguments[0]],['tag',arguments[1]]]"
        ".forEach(function(p){var i=document.createElement('input');i.type='hidden';i.name=p[0];i.value=p[1];"
        "f.appendChild(i)});document.body.appendChild(f);f.submit();", name, tag)


def test_ui_in_chromium(served: ServerProcess, tmp_path: Path) -> None:
    host = served.url
    _push_with_strata(tmp_path, host)
    _push_by_api(served)
    with chromium(f"http://{host}", tmp_path / "screenshots") as b:
        b.open("/ui/")
        b.shot("01-anonymous")
        assert "team/app" not in b.text() and "Sign in" in b.text()
        b.sign_in("alice", "pw-alice")
        assert "signed in as alice" in b.text() and "team/app" in b.text() and "private/db2" in b.text()
        b.shot("02-repositories")
        b.submit_text("q", "multi")
        assert "team/multi" in b.text() and "team/app" not in b.text()
        b.shot("03-search")
        b.click("link text", "team/multi")
        assert "linux/amd64\nlinux/arm64" in b.text() or "linux/amd64 linux/arm64" in b.text()
        assert f"docker pull {host}/team/multi:latest" in b.text()
        b.shot("04-tags-index")
        b.open("/ui/repo?name=team/app")
        assert "1.0" in b.text() and "old" in b.text() and "linux/amd64" in b.text()
        b.shot("05-tags")
        b.click("link text", "1.0")
        page = b.text()
        for text in ("/bin/hello", "/srv", "8080/tcp", "Layers", "History", "Raw manifest", HOSTILE):
            assert text in page, text  # the hostile label is shown as text, never run
        assert "<script>alert(2)" not in b.source() and b.d.find_elements("css selector", "img") == []
        b.shot("06-manifest")
        b.open("/ui/manifest?name=team/multi&ref=amd64")
        assert "application/spdx+json" in b.text()
        b.shot("07-manifest-referrers")
        b.open("/ui/manifest?name=team/multi&ref=latest")
        assert "linux/arm64" in b.text() and "Platforms" in b.text()
        b.shot("08-index")

        b.sign_out()
        b.sign_in("bob", "pw-bob")
        b.open("/ui/repo?name=team/app")
        assert "Delete tag" not in b.text()
        b.shot("09-bob-no-delete")
        body = b.d.find_element("tag name", "body")
        b.navigates(lambda: _forge_delete(b, "team/app", "old"), body)
        assert "403" in b.text() and "bob may not delete in team/app" in b.text()
        b.shot("10-bob-refused")
        b.open("/ui/repo?name=team/app")
        assert "old" in b.text()

        b.sign_out()
        b.sign_in("alice", "pw-alice")
        b.open("/ui/repo?name=team/app")
        row = b.d.find_element("xpath", "//tr[td/a[text()='old']]")
        button = row.find_element("css selector", "button.danger")
        b.navigates(lambda: (button.click(), _accept_confirm(b)), button)
        assert b.d.current_url.endswith("/ui/repo?name=team%2Fapp")
        tags = [a.text for a in b.d.find_elements("css selector", "tbody td:first-child a")]
        assert tags == ["1.0"]
        b.shot("11-alice-deleted-tag")
        assert not [e for e in b.console_errors() if "Content Security Policy" in e or "Refused" in e]
    api = bearer_client(served, "alice", "pw-alice", "team/app")
    assert api.get("/v2/team/app/manifests/old").status == 404
    assert api.get("/v2/team/app/manifests/1.0").status == 200


def test_ui_on_a_phone(served: ServerProcess, tmp_path: Path) -> None:
    _push_by_api(served)
    with chromium(f"http://{served.url}", tmp_path / "screenshots", width=390, height=844) as b:
        b.sign_in("alice", "pw-alice")
        for i, path in enumerate(("/ui/", "/ui/repo?name=team/multi", "/ui/manifest?name=team/multi&ref=amd64")):
            b.open(path)
            assert _no_overflow(b), path  # wide tables scroll inside their box, the page does not
            b.shot(f"phone-{i}")


def test_docker_pushed_image_in_chromium(served: ServerProcess, tmp_path: Path, dockerd, docker_busybox) -> None:  # type: ignore[no-untyped-def]
    host = served.url
    ref = f"{host}/team/busybox:1"
    dockerd.run("login", "-u", "alice", "--password-stdin", host, input="pw-alice")
    dockerd.run("tag", docker_busybox, ref)
    dockerd.run("push", ref)
    digest = dockerd.run("inspect", "--format", "{{index .RepoDigests 0}}", ref).stdout.strip().split("@")[1]
    with chromium(f"http://{host}", tmp_path / "screenshots") as b:
        b.sign_in("alice", "pw-alice")
        b.submit_text("q", "busybox")
        b.click("link text", "team/busybox")
        assert "linux/amd64" in b.text() and digest[:19] in b.text()
        b.click("link text", "1")
        assert digest in b.text() and "application/vnd.docker.distribution.manifest.v2+json" in b.text()
        assert "/bin/sh" in b.text()
        b.shot("docker-manifest")
