"""Two strata processes at once and kill -9 mid-write leave the store consistent, showing no half image."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from corehelpers import Strata, store_state  # type: ignore[import-not-found]


def test_concurrent_imports_and_tags(strata: Strata, rootfs_tar: Path, root: Path) -> None:
    env = dict(os.environ, STRATA_ROOT=str(root))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "strata", "import", "-m", f"n{i}", str(rootfs_tar), f"par:{i}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    lines = strata("images", "par").stdout.splitlines()[1:]
    assert sorted(line.split()[1] for line in lines) == ["0", "1", "2", "3"]
    # one layer shared by all four
    layers = {strata("inspect", "--format", "{{json .RootFS.Layers}}", f"par:{i}").stdout for i in range(4)}
    assert len(layers) == 1
    # remove them concurrently: everything goes, nothing breaks
    procs = [
        subprocess.Popen([sys.executable, "-m", "strata", "rmi", f"par:{i}"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert strata("images", "-q").stdout == ""


def test_kill_9_during_load_shows_nothing(strata: Strata, rootfs_tar: Path, root: Path, tmp_path: Path) -> None:
    # a bigger archive so the load is still running when it is killed
    big = tmp_path / "big.tar"
    import tarfile

    filler = tmp_path / "filler"
    filler.write_bytes(os.urandom(64 << 20))
    with tarfile.open(big, "w") as tar:
        tar.add(filler, arcname="filler")
    strata("import", str(big), "big:1")
    archive = tmp_path / "big-saved.tar"
    strata("save", "-o", str(archive), "big:1")
    strata("rmi", "big:1")
    strata("import", str(rootfs_tar), "keep:1")
    before = store_state(root)
    env = dict(os.environ, STRATA_ROOT=str(root))
    for delay in (0.15, 0.3, 0.5):
        proc = subprocess.Popen([sys.executable, "-m", "strata", "load", "-i", str(archive)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        files, rows = store_state(root)
        images = [r for r in rows if r[0] == "images"]
        tags = [r for r in rows if r[0] == "tags"]
        if len(images) == 1:
            assert (files, rows) == before or len(tags) == 1
        # either the load finished completely (image + tag) or nothing of it is visible
        assert len(images) in (1, 2) and len(tags) == len(images), rows
        assert "big" not in strata("images").stdout or strata("inspect", "big:1", check=False).returncode == 0
        strata("rmi", "big:1", check=False)
    # the store still works, and a later GC clears the staging leftovers
    strata("load", "-i", str(archive))
    strata("rmi", "big:1")
    assert store_state(root) == before


def test_list_formats_and_filters(strata: Strata, rootfs_tar: Path) -> None:
    image_id = strata("import", "-c", "LABEL team=a", str(rootfs_tar), "fmt:1").stdout.strip()
    strata("tag", "fmt:1", "other/fmt:2")
    out = strata("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.splitlines()
    assert sorted(out) == ["fmt:1", "other/fmt:2"]
    out = strata("images", "--format", "table {{.Repository}}\t{{.Tag}}").stdout.splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG"]
    assert strata("images", "-q").stdout.splitlines() == [image_id[7:19]] * 2
    assert strata("images", "--no-trunc", "-q", "fmt").stdout == image_id + "\n"
    assert strata("images", "-f", "reference=other/*", "--format", "{{.Repository}}").stdout == "other/fmt\n"
    assert strata("images", "-f", "label=team=a", "-q").stdout.count("\n") == 2
    assert strata("images", "-f", "label=team=b", "-q").stdout == ""
    assert strata("images", "-f", "dangling=true", "-q").stdout == ""
    assert strata("inspect", "--format", "{{.Id}} {{index .RepoTags 0}}", "fmt:1").stdout == f"{image_id} fmt:1\n"
    hist = strata("history", "-q", "--no-trunc", "fmt:1").stdout
    assert hist == image_id + "\n"
    df = strata("system", "df").stdout.splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert df[1].startswith("Images ") and " 1 " in df[1]


def test_dangling_and_prune(strata: Strata, rootfs_tar: Path) -> None:
    first = strata("import", str(rootfs_tar), "d:1").stdout.strip()
    strata("import", "-m", "second", str(rootfs_tar), "d:1")  # moves the tag: the first is dangling
    rows = strata("images", "-f", "dangling=true").stdout.splitlines()
    assert rows[1].split()[:3] == ["<none>", "<none>", first[7:19]]
    out = strata("image", "prune", "-f").stdout
    assert f"deleted: {first}" in out and out.rstrip().splitlines()[-1].startswith("Total reclaimed space: ")
    assert strata("images", "-q").stdout.count("\n") == 1


def test_archive_links_never_lead_outside(strata: Strata, rootfs_tar: Path, root: Path, tmp_path: Path) -> None:
    """A symlink to '.' makes '../' in later names and link targets escape while looking inside: writing
    through it overwrote any file as root, reading through it imported any file. Refused now; links that
    stay inside (skopeo's layer.tar -> ../<digest>.tar) still load."""
    import hashlib
    import io
    import json
    import tarfile

    victim = tmp_path / "victim"
    victim.write_text("original\n")
    up = "/".join([".."] * 40)

    def entry(tar: tarfile.TarFile, name: str, data: bytes | None = None, link: str = "", hard: bool = False) -> None:
        info = tarfile.TarInfo(name)
        if link:
            info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
            info.linkname = link
            tar.addfile(info)
        else:
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data or b""))

    layer = rootfs_tar.read_bytes()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    cid = hashlib.sha256(config).hexdigest()

    def manifest(layer_name: str) -> bytes:
        return json.dumps([{"Config": f"{cid}.json", "RepoTags": ["links:1"], "Layers": [layer_name]}]).encode()

    deep = "/".join(["sub"] * 40)
    cases: dict[str, list[tuple[str, bytes | None, str, bool]]] = {
        "write through a dir link": [("sub", None, ".", False), (f"{deep}/l", None, f"{up}{tmp_path}", False),
                                     ("l/victim", b"pwned\n", "", False)],
        "read through a link": [("sub", None, ".", False), (f"{cid}.json", config, "", False),
                                ("layer.tar", None, f"{deep}/{up}{victim}", False),
                                ("manifest.json", manifest("layer.tar"), "", False)],
        "hard link through a link": [("sub", None, ".", False), ("l2", None, f"{deep}/{up}{tmp_path}", False),
                                     ("h", None, "l2/victim", True), ("h", b"pwned\n", "", False)],
    }  # fmt: skip
    strata("import", str(rootfs_tar), "keep:1")
    before = store_state(root)
    for what, members in cases.items():
        path = tmp_path / "evil.tar"
        with tarfile.open(path, "w") as tar:
            for name, data, link, hard in members:
                entry(tar, name, data, link, hard)
        r = strata("load", "-i", str(path), check=False)
        assert r.returncode == 1 and r.stderr.startswith("Error: invalid archive: "), (what, r.stderr)
        assert victim.read_text() == "original\n", what
        assert store_state(root) == before, what
    good = tmp_path / "good.tar"
    with tarfile.open(good, "w") as tar:
        entry(tar, f"{cid}.json", config)
        entry(tar, "abc.tar", layer)
        entry(tar, "abc/layer.tar", None, "../abc.tar")
        entry(tar, "manifest.json", manifest("abc/layer.tar"))
    assert strata("load", "-i", str(good)).stdout == "Loaded image: links:1\n"
