"""The image commands end to end, through the ``strata`` command as a user types them."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest
from corehelpers import Strata, store_state  # type: ignore[import-not-found]

from imagegen import validate

ID = re.compile(r"^sha256:[0-9a-f]{64}$")
_AGO = r"(?:Less than a second|\d+ seconds?) ago"


@pytest.fixture
def strata(cli: Strata) -> Strata:
    """These tests only read what commands print: run them in-process (tests/clirunner.py)."""
    return cli


def test_import_images_history(strata: Strata, rootfs_tar: Path) -> None:
    out = strata("import", str(rootfs_tar), "ubuntu:14.04").stdout.strip()
    assert ID.match(out)
    lines = strata("images").stdout.splitlines()
    # "Less than a second ago" unless the machine stalled a second since the import: the CREATED column is as
    # wide as its one cell, whatever it says
    row = re.fullmatch(rf"ubuntu       14\.04     ([0-9a-f]{{12}})   ({_AGO})   1\.\d\dMB", lines[1])
    assert row and row.group(1) == out[7:19], lines
    assert lines[0] == "REPOSITORY   TAG       IMAGE ID       " + "CREATED".ljust(len(row.group(2)) + 3) + "SIZE", lines
    hist = strata("history", "ubuntu:14.04").stdout.splitlines()
    row = re.fullmatch(rf"{out[7:19]}   ({_AGO})                1\.\d\dMB    Imported from -", hist[1])
    assert row and hist[0] == "IMAGE          " + "CREATED".ljust(len(row.group(1)) + 3) + "CREATED BY   SIZE      COMMENT"


def test_import_changes_and_message(strata: Strata, rootfs_tar: Path) -> None:
    strata("import", "-c", 'CMD ["/bin/sh"]', "-c", "ENV A=b", "-m", "imported it", str(rootfs_tar), "myimage:0.1")
    doc = json.loads(strata("inspect", "myimage:0.1").stdout)[0]
    assert doc["Config"]["Cmd"] == ["/bin/sh"]
    assert doc["Config"]["Env"] == ["A=b"]
    assert doc["Comment"] == "imported it"
    assert doc["RepoTags"] == ["myimage:0.1"]
    assert doc["Size"] > 1_000_000
    assert len(doc["RootFS"]["Layers"]) == 1


def test_import_from_stdin_gzip(strata: Strata, rootfs_tar: Path) -> None:
    import gzip

    data = gzip.compress(rootfs_tar.read_bytes())
    out = strata("import", "-", "myimage:0.2", input=data, text=False).stdout.strip()
    plain = strata("import", str(rootfs_tar), "myimage:0.3").stdout.strip()
    # same content, so the same single layer
    a = json.loads(strata("inspect", "myimage:0.2").stdout)[0]["RootFS"]["Layers"]
    b = json.loads(strata("inspect", "myimage:0.3").stdout)[0]["RootFS"]["Layers"]
    assert a == b and out != plain


def test_shared_layer_stored_once(strata: Strata, rootfs_tar: Path, root: Path) -> None:
    strata("import", str(rootfs_tar), "a:1")
    before = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and "tmp" not in p.parts)
    strata("import", "-m", "again", str(rootfs_tar), "b:1")
    after = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and "tmp" not in p.parts)
    # only a new config blob and a few metadata rows; not another 2 MB layer
    assert after - before < 200_000, (before, after)


def test_tag_errors_like_docker(strata: Strata, rootfs_tar: Path) -> None:
    strata("import", str(rootfs_tar), "ubuntu:14.04")
    r = strata("tag", "ubuntu:14.04", "UPPER:x", check=False)
    assert r.returncode == 1
    assert r.stderr == (
        'Error: Error parsing reference: "UPPER:x" is not a valid repository/tag: invalid reference format: '
        "repository name (library/UPPER) must be lowercase\n"
    )
    r = strata("tag", "ubuntu:14.04", "bad name:x", check=False)
    assert r.stderr == 'Error: Error parsing reference: "bad name:x" is not a valid repository/tag: invalid reference format\n'
    r = strata("history", "nosuch:1", check=False)
    assert (r.returncode, r.stderr) == (1, "Error: No such image: nosuch:1\n")
    strata("tag", "ubuntu:14.04", "my-image-name")
    lines = strata("images", "my-image-name").stdout.splitlines()
    assert len(lines) == 2 and lines[1].split()[:2] == ["my-image-name", "latest"]


def test_rmi_rules(strata: Strata, rootfs_tar: Path) -> None:
    image_id = strata("import", str(rootfs_tar), "ubuntu:14.04").stdout.strip()
    short = image_id[7:19]
    strata("tag", "ubuntu:14.04", "bb:one")
    r = strata("rmi", short, check=False)
    assert (r.returncode, r.stderr) == (
        1,
        f"Error: conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories\n",
    )
    assert strata("rmi", "bb:one").stdout == "Untagged: bb:one\n"
    r = strata("rmi", "nosuch:tag", check=False)
    assert (r.returncode, r.stderr) == (1, "Error: No such image: nosuch:tag\n")
    r = strata("rmi", "ubuntu:14.04")
    lines = r.stdout.splitlines()
    assert lines[0] == "Untagged: ubuntu:14.04"
    assert lines[1] == f"Deleted: {image_id}"
    assert len(lines) == 3 and lines[2].startswith("Deleted: sha256:")
    assert strata("images").stdout.splitlines()[1:] == []


def test_rmi_force_untags_all(strata: Strata, rootfs_tar: Path) -> None:
    image_id = strata("import", str(rootfs_tar), "ubuntu:14.04").stdout.strip()
    strata("tag", "ubuntu:14.04", "bb:one")
    out = strata("rmi", "-f", image_id[7:19]).stdout.splitlines()
    assert out[:2] == ["Untagged: bb:one", "Untagged: ubuntu:14.04"]
    assert out[2] == f"Deleted: {image_id}"


def test_save_load_round_trip(strata: Strata, rootfs_tar: Path, tmp_path: Path, root: Path) -> None:
    image_id = strata("import", str(rootfs_tar), "ubuntu:14.04").stdout.strip()
    assert validate("strata:ubuntu:14.04", root=root).image_id == image_id  # the store is complete
    archive = tmp_path / "ubuntu_14_04.tar"
    strata("save", "-o", str(archive), "ubuntu:14.04")
    assert validate(f"docker-archive:{archive}").image_id == image_id  # so is the archive
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        repositories = json.load(tar.extractfile("repositories"))  # type: ignore[arg-type]
    v1_id = manifest[0]["Layers"][0].split("/")[0]
    # Docker 20.10's legacy layout, in name order
    members = sorted([f"{image_id[7:]}.json", v1_id, *(f"{v1_id}/{n}" for n in ("VERSION", "json", "layer.tar"))])
    assert names == [*members, "manifest.json", "repositories"]
    assert manifest == [{"Config": f"{image_id[7:]}.json", "RepoTags": ["ubuntu:14.04"], "Layers": [f"{v1_id}/layer.tar"]}]
    assert repositories == {"ubuntu": {"14.04": v1_id}}
    strata("rmi", "ubuntu:14.04")
    assert strata("load", "-i", str(archive)).stdout == "Loaded image: ubuntu:14.04\n"
    doc = json.loads(strata("inspect", "ubuntu:14.04").stdout)[0]
    assert doc["Id"] == image_id
    # from stdin too, and by ID without tags
    strata("save", "-o", str(tmp_path / "by-id.tar"), image_id)
    strata("rmi", "ubuntu:14.04")
    out = strata("load", input=(tmp_path / "by-id.tar").read_bytes(), text=False).stdout
    assert out == f"Loaded image ID: {image_id}\n".encode()


def test_save_to_stdout(strata: Strata, rootfs_tar: Path, tmp_path: Path) -> None:
    strata("import", str(rootfs_tar), "x:1")
    data = strata("save", "x:1", text=False).stdout
    path = tmp_path / "x.tar"
    path.write_bytes(data)  # type: ignore[arg-type]
    with tarfile.open(path) as tar:
        assert "manifest.json" in tar.getnames()


def test_load_legacy_docker_layout(strata: Strata, rootfs_tar: Path, tmp_path: Path) -> None:
    """The layout Docker 20.10 writes: <id>/layer.tar, <config>.json, manifest.json, repositories."""
    import hashlib
    import io

    layer = rootfs_tar.read_bytes()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "created": "2026-01-01T00:00:00Z",
            "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:x in /"}],
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    cid = hashlib.sha256(config).hexdigest()
    archive = tmp_path / "legacy.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (
            (f"{cid}.json", config),
            ("abc/layer.tar", layer),
            ("abc/VERSION", b"1.0"),
            ("manifest.json", json.dumps([{"Config": f"{cid}.json", "RepoTags": ["old:v1"], "Layers": ["abc/layer.tar"]}]).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert strata("load", "-i", str(archive)).stdout == "Loaded image: old:v1\n"
    assert json.loads(strata("inspect", "old:v1").stdout)[0]["Id"] == f"sha256:{cid}"
    hist = strata("history", "old:v1").stdout.splitlines()
    assert "ADD file:x in /" in hist[1]


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def test_hostile_archives_change_nothing(strata: Strata, rootfs_tar: Path, tmp_path: Path, root: Path) -> None:
    import gzip
    import hashlib
    import io

    strata("import", str(rootfs_tar), "keep:1")
    before = store_state(root)

    def layer_tar(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.addfile(member, io.BytesIO(data) if data else None)
        return buf.getvalue()

    def archive(layer: bytes, diff_id: str | None = None, layer_name: str = "l/layer.tar") -> Path:
        did = diff_id or "sha256:" + hashlib.sha256(layer).hexdigest()
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [did]}}).encode()
        cid = hashlib.sha256(config).hexdigest()
        path = tmp_path / f"bad-{len(list(tmp_path.iterdir()))}.tar"
        with tarfile.open(path, "w") as tar:
            for name, data in ((f"{cid}.json", config), ("l/layer.tar", layer),
                               ("manifest.json", json.dumps([{"Config": f"{cid}.json", "RepoTags": ["bad:1"], "Layers": [layer_name]}]).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path

    escape = tarfile.TarInfo("../evil")
    escape.size = 4
    absolute = tarfile.TarInfo("/etc/evil")
    absolute.size = 4
    dev = tarfile.TarInfo("dev/x")  # a 0:0 character device would be an overlay whiteout (devices are kept)
    dev.type = tarfile.CHRTYPE
    sym = tarfile.TarInfo("a/link")
    sym.type = tarfile.SYMTYPE
    sym.linkname = "../../../etc"
    hard = tarfile.TarInfo("h")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "../../etc/passwd"
    good = rootfs_tar.read_bytes()
    cases = {
        "escape": (archive(layer_tar(escape, b"evil")), "escapes"),
        "absolute": (archive(layer_tar(absolute, b"evil")), "escapes"),
        "device": (archive(layer_tar(dev)), "device"),
        "hardlink": (archive(layer_tar(hard)), "hardlink"),
        "diff_id": (archive(good, diff_id="sha256:" + "0" * 64), "diff ID"),
        "missing": (archive(good, layer_name="nope/layer.tar"), "not in the archive"),
        "truncated_gzip": (archive(gzip.compress(good)[:5000]), "truncated"),
        "truncated_tar": (archive(good[: len(good) // 2 + 100]), "invalid tar"),
        "corrupt_gzip": (archive(_flip(gzip.compress(good), 3000)), "invalid gzip"),
    }
    outer_bad = tmp_path / "outer.tar"
    with tarfile.open(outer_bad, "w") as tar:
        info = tarfile.TarInfo("../../x")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    cases["outer_escape"] = (outer_bad, "unsafe")
    lz4 = tmp_path / "x.lz4"
    lz4.write_bytes(b"\x04\x22\x4d\x18" + b"\0" * 600)
    cases["unknown_compression"] = (lz4, "unsupported compression")
    for name, (path, words) in cases.items():
        r = strata("load", "-i", str(path), check=False)
        assert r.returncode == 1, (name, r.stdout, r.stderr)
        assert r.stderr.startswith("Error: ") and words in r.stderr, (name, r.stderr)
        assert store_state(root) == before, name
    assert not list((root / "tmp").iterdir())
    # a symlink climbing above the layer's root is data, as in Docker's (chroot) load: kept as it is, and
    # never followed on the host (a later member below it is refused by the unpack, not written through)
    r = strata("load", "-i", str(archive(layer_tar(sym))), check=False)
    assert (r.returncode, r.stdout, r.stderr) == (0, "Loaded image: bad:1\n", "")
    strata("save", "-o", str(tmp_path / "bad-saved.tar"), "bad:1")
    with tarfile.open(tmp_path / "bad-saved.tar") as saved:
        layer = json.loads(saved.extractfile("manifest.json").read())[0]["Layers"][-1]  # type: ignore[union-attr]
        with tarfile.open(fileobj=saved.extractfile(layer)) as tar:
            assert [(m.name, m.linkname) for m in tar] == [("a/link", "../../../etc")]


def test_import_from_url(strata: Strata, rootfs_tar: Path) -> None:
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(rootfs_tar.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{rootfs_tar.name}"
        strata("import", url, "fromurl:1")
    finally:
        server.shutdown()
        server.server_close()
    hist = strata("history", "--format", "{{.Comment}}", "fromurl:1").stdout
    assert hist == f"Imported from {url}\n"
