"""``info``, ``version``, ``system prune`` and the image-side differences of issue 15 (``{{json .}}``'s HTML
escaping, ``save``'s file mode, ``import URL``, ``DockerVersion``/``LastTagTime``) side by side with
Docker 20.10: the same commands in a private dockerd and in strata, compared after IDs, times and the
``Error response from daemon:``/``Error:`` prefixes are levelled."""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from corehelpers import Strata  # type: ignore[import-not-found]

import peers

pytestmark = pytest.mark.peers

Result = tuple[int, str, str]


def _level(rc: int, out: str, err: str, tool: str) -> Result:
    ids: dict[str, str] = {}

    def ident(m: re.Match[str]) -> str:
        return ids.setdefault(m.group(0)[-12:], f"<ID{len(ids)}>")

    def clean(text: str) -> str:
        text = re.sub(r"(sha256:)?[0-9a-f]{64}|\b[0-9a-f]{12}\b", ident, text)
        text = re.sub(r"^(Error response from daemon: |Error: )", "", text, flags=re.M)
        return text.replace(f"'{tool} ", "'X ").replace(f'"{tool} ', '"X ')

    return rc, clean(out), clean(err)


def _both(strata: Strata, dockerd: Any, *args: str, input: str | None = None) -> tuple[Result, Result]:
    d = dockerd.run(*args, check=False, input=input)
    s = strata(*args, check=False, input=input)
    return _level(d.returncode, d.stdout, d.stderr, "docker"), _level(s.returncode, s.stdout, s.stderr, "strata")


def _labels(text: str) -> list[str]:
    return [line.split(":")[0] for line in text.splitlines()]


@pytest.fixture
def tar(tmp_path: Path) -> Path:
    """A rootfs no other test's image shares (the session's dockerd keeps theirs)."""
    return peers.busybox_rootfs_tar(tmp_path / "rootfs.tar", extra_files={"etc/sys-id": uuid.uuid4().hex.encode()})


def test_version_matches_docker(strata: Strata, dockerd: Any) -> None:
    from strata import __version__

    ours, theirs = strata("version").stdout, dockerd.run("version").stdout
    # strata runs no containerd: Docker's block for it is the one difference in the layout
    without_containerd = re.sub(r" containerd:\n(  .*\n)+", "", theirs)
    assert _labels(ours) == _labels(without_containerd)
    assert [line[:20] for line in ours.splitlines() if len(line) >= 20] == [
        line[:20] for line in without_containerd.splitlines() if len(line) >= 20]  # the tabwriter's columns
    assert strata("version", "--format", "{{.Client.Version}}").stdout == f"{__version__}\n"
    d, s = _both(strata, dockerd, "version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}}")
    assert d == s == (0, "1.41 1.41\n", "")
    for fmt in ("{{.Client.Nope}}", "{{.Nope", "{{.Server.Nope}}"):
        d, s = _both(strata, dockerd, "version", "--format", fmt)
        assert d == s, fmt
    ours_doc = json.loads(strata("version", "--format", "{{json .}}").stdout)
    theirs_doc = json.loads(dockerd.run("version", "--format", "{{json .}}").stdout)
    for part in ("Client", "Server"):
        assert list(ours_doc[part]) == list(theirs_doc[part]), part
    assert ours_doc["Server"]["Components"][0]["Name"] == "Engine"


def test_info_matches_docker(strata: Strata, dockerd: Any, tar: Path) -> None:
    ours, theirs = strata("info").stdout, dockerd.run("info").stdout
    assert _labels(ours) == _labels(theirs)
    ours_doc = json.loads(strata("info", "--format", "{{json .}}").stdout)
    theirs_doc = json.loads(dockerd.run("info", "--format", "{{json .}}").stdout)
    assert list(ours_doc) == list(theirs_doc)
    for key in ("RegistryConfig", "Plugins", "Swarm", "ClientInfo", "ContainerdCommit"):
        assert list(ours_doc[key]) == list(theirs_doc[key]), key
    for fmt in ("{{.Nope}}", "{{.Nope", "{{.Swarm.LocalNodeState}} {{.OSType}} {{.IndexServerAddress}}"):
        d, s = _both(strata, dockerd, "info", "--format", fmt)
        assert d == s, fmt
    strata("import", str(tar), "sys-info:1")
    fmt = "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.Images}} {{.NCPU}}"
    assert strata("info", "--format", fmt).stdout.split()[:4] == ["0", "0", "0", "1"]
    assert ours_doc["Name"] == theirs_doc["Name"] and ours_doc["KernelVersion"] == theirs_doc["KernelVersion"]
    assert ours_doc["MemTotal"] == theirs_doc["MemTotal"] and ours_doc["NCPU"] == theirs_doc["NCPU"]


def test_info_registries_as_docker_lists_them(strata: Strata, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flags = ["--insecure-registry", "myreg.example:5000", "--insecure-registry", "10.1.0.0/16",
             "--registry-mirror", "https://mirror.example"]
    config = tmp_path / "strata.json"
    # the private dockerd is started with --insecure-registry 127.0.0.0/8 first, then these
    config.write_text(json.dumps({"insecure-registries": ["127.0.0.0/8", "myreg.example:5000", "10.1.0.0/16"],
                                  "registry-mirrors": ["https://mirror.example"]}))
    monkeypatch.setenv("STRATA_CONFIG", str(config))
    with peers.start_dockerd(extra_args=flags) as daemon:
        theirs = daemon.run("info").stdout
        theirs_doc = json.loads(daemon.run("info", "--format", "{{json .RegistryConfig}}").stdout)
    ours = strata("info").stdout
    ours_doc = json.loads(strata("info", "--format", "{{json .RegistryConfig}}").stdout)

    def registries(text: str) -> str:
        return text[text.index(" Insecure Registries:"):text.index(" Live Restore Enabled")]

    assert registries(ours) == registries(theirs)
    assert ours_doc == theirs_doc


@pytest.mark.parametrize("flags", [[], ["-a", "--volumes"], ["--filter", "until=1h"],
                                   ["-a", "--filter", "label=x", "--filter", "label!=y", "--filter", "label=a10",
                                    "--filter", "label=a9", "--filter", "dangling=true"]])
def test_system_prune_prompt_matches_docker(strata: Strata, dockerd: Any, flags: list[str]) -> None:
    d, s = _both(strata, dockerd, "system", "prune", *flags, input="n\n")
    assert d == s
    assert s[1].startswith("WARNING! This will remove:\n  - all stopped containers\n")
    assert s[1].endswith("Are you sure you want to continue? [y/N] ")


def test_system_prune_matches_docker(strata: Strata, dockerd: Any, tar: Path) -> None:
    """Pruned by a label only this test uses (the session's dockerd holds other tests' objects)."""
    label = f"parity-prune={uuid.uuid4().hex[:8]}"
    out = {}
    for tool, run in (("docker", dockerd.run), ("strata", strata)):
        run("import", "-c", f"LABEL {label}", str(tar), "parity-prune:1")
        run("create", "--label", label, "--name", f"parity-prune-{tool}", "parity-prune:1", "true")
        run("network", "create", "--label", label, f"parity-prune-{tool}")
        run("volume", "create", "--label", label, f"parity-prune-{tool}")
        res = run("system", "prune", "-a", "-f", "--volumes", "--filter", f"label={label}")
        out[tool] = _level(res.returncode, res.stdout.replace(tool, "TOOL"), res.stderr, tool)
        assert run("volume", "ls", "-q", "--filter", f"label={label}").stdout == ""
    assert out["strata"] == out["docker"]
    assert out["strata"][1].startswith("Deleted Containers:\n<ID0>\n\nDeleted Networks:\nparity-prune-TOOL\n\n"
                                       "Deleted Volumes:\nparity-prune-TOOL\n\nDeleted Images:\nuntagged: ")
    assert "\nTotal reclaimed space: " in out["strata"][1]


def test_system_prune_events(cli: Strata) -> None:
    start = str(time.time())
    assert cli("system", "prune", "-f").stdout == "Total reclaimed space: 0B\n"
    res = cli("events", "--since", start, "--until", str(time.time()), "--format", "{{.Type}} {{.Action}} "
              "{{.Actor.ID}}|{{.Actor.Attributes.reclaimed}}")
    assert res.stdout.splitlines() == ["container prune |0", "network prune |0", "image prune |0", "builder prune |0"]


def test_list_json_is_html_escaped_as_docker(strata: Strata, dockerd: Any, tar: Path) -> None:
    repo = f"parity-json-{uuid.uuid4().hex[:8]}"
    for run in (dockerd.run, strata):
        run("import", "-c", "LABEL k=<v>&", str(tar), f"{repo}:1")
    d, s = _both(strata, dockerd, "images", "--format", "{{json .Digest}} {{json .Repository}}", repo)
    assert d == s == (0, f'"<none>" "{repo}"\n', "")  # Docker's json function: no HTML escaping
    ours = json.loads(strata("images", "--format", "{{json .}}", repo).stdout)
    raw_ours, raw_theirs = (run("images", "--format", "{{json .}}", repo).stdout for run in (strata, dockerd.run))
    assert '"Digest":"\\u003cnone\\u003e"' in raw_ours and '"Digest":"\\u003cnone\\u003e"' in raw_theirs
    assert ours["Digest"] == "<none>"
    d, s = _both(strata, dockerd, "inspect", "--format", "{{json .Config.Labels}}", f"{repo}:1")
    assert d == s == (0, '{"k":"<v>&"}\n', "")  # inspect's raw document: not escaped either
    for run in (dockerd.run, strata):
        run("rmi", f"{repo}:1")


def test_save_writes_its_file_0600(strata: Strata, dockerd: Any, tar: Path, tmp_path: Path) -> None:
    repo = f"parity-save-{uuid.uuid4().hex[:8]}"
    for name, run in (("docker", dockerd.run), ("strata", strata)):
        run("import", str(tar), f"{repo}:1")
        path = tmp_path / f"{name}.tar"
        path.write_bytes(b"old")
        path.chmod(0o644)
        run("save", "-o", str(path), f"{repo}:1")
        assert path.stat().st_mode & 0o777 == 0o600, name
        run("rmi", f"{repo}:1")


@pytest.fixture
def served(tar: Path) -> Iterator[str]:
    """The rootfs at a loopback URL."""
    directory = str(tar.parent)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=directory, **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{tar.name}"
    finally:
        server.shutdown()
        server.server_close()


def test_import_url_prints_downloading_as_docker(strata: Strata, dockerd: Any, served: str) -> None:
    repo = f"parity-url-{uuid.uuid4().hex[:8]}"
    d, s = _both(strata, dockerd, "import", served, f"{repo}:1")
    assert d == s == (0, f"Downloading from {served}\n<ID0>\n", "")
    d, s = _both(strata, dockerd, "inspect", "--format", "{{.Comment}}", f"{repo}:1")
    assert d == s == (0, f"Imported from {served}\n", "")
    for run in (dockerd.run, strata):
        run("rmi", f"{repo}:1")


def test_imported_tagged_loaded_metadata_as_docker(strata: Strata, dockerd: Any, tar: Path, tmp_path: Path) -> None:
    repo = f"parity-meta-{uuid.uuid4().hex[:8]}"
    zero = "0001-01-01T00:00:00Z"
    got = {}
    for name, run in (("docker", dockerd.run), ("strata", strata)):
        def meta(ref: str, run: Any = run) -> tuple[str, str]:
            doc = json.loads(run("inspect", ref).stdout)[0]
            return doc["DockerVersion"], doc["Metadata"]["LastTagTime"]

        run("import", str(tar), f"{repo}:1")
        version, imported = meta(f"{repo}:1")
        time.sleep(0.05)
        run("tag", f"{repo}:1", f"{repo}:2")
        _, tagged = meta(f"{repo}:1")
        run("save", "-o", str(tmp_path / f"{name}.tar"), f"{repo}:1")
        run("rmi", f"{repo}:1", f"{repo}:2")
        run("load", "-i", str(tmp_path / f"{name}.tar"))
        loaded_version, loaded = meta(f"{repo}:1")
        run("rmi", f"{repo}:1")
        got[name] = [bool(version), imported != zero, tagged > imported, loaded_version == version, loaded]
    assert got["strata"] == got["docker"] == [True, True, True, True, zero]
