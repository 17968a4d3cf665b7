"""Index nesting (issue 11 item 12): ``copy --all`` visits each document of a DAG of indexes once (a
31-document DAG with 3^10 paths copies in linear time), and an index nested too deep is a clear error,
never a ``RecursionError`` traceback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from server.helpers import ServerThread
from strata.copier import copy_index
from strata.digest import digest_bytes
from strata.errors import InvalidArchive, StrataError
from strata.image import mediatypes as mt
from strata.image.spec import Descriptor
from strata.transports.base import MAX_INDEX_DEPTH, ProgressEvent
from strata.transports.oci_layout import LayoutSink, LayoutSource

from .conftest import StrataRun, gz_layer

REF = "org.opencontainers.image.ref.name"


@pytest.fixture
def env_for_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("STRATA_ROOT", "DOCKER_CONFIG", "STRATA_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "docker-config").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("STRATA_CONFIG", str(tmp_path / "strata.json"))


def _put(layout: Path, data: bytes) -> dict[str, object]:
    dg = digest_bytes(data)
    path = layout / "blobs" / "sha256" / dg.hex
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": str(dg), "size": len(data)}


def _manifests(layout: Path, n: int) -> list[dict[str, object]]:
    """``n`` image manifests (one shared layer and config; they differ by an annotation)."""
    layer, diff_id = gz_layer({"etc/dag": b"one layer for all"})
    cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    cfg_desc = {"mediaType": mt.OCI_CONFIG, **_put(layout, json.dumps(cfg).encode())}
    layer_desc = {"mediaType": mt.OCI_LAYER_GZIP, **_put(layout, layer)}
    out = []
    for i in range(n):
        doc = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": cfg_desc, "layers": [layer_desc],
               "annotations": {"n": str(i)}}  # fmt: skip
        out.append({"mediaType": mt.OCI_MANIFEST, **_put(layout, json.dumps(doc).encode())})
    return out


def _index(layout: Path, children: list[dict[str, object]], name: str) -> dict[str, object]:
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": children, "annotations": {"name": name}}
    return {"mediaType": mt.OCI_INDEX, **_put(layout, json.dumps(doc).encode())}


def _name_top(layout: Path, top: dict[str, object], ref: str = "top") -> None:
    (layout / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [{**top, "annotations": {REF: ref}}]}
    ))  # fmt: skip
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def build_dag(layout: Path) -> tuple[dict[str, object], int]:
    """top → 9 levels of 3 indexes, each naming all 3 of the next level → 3 manifests: 31 documents,
    3^10 paths from the top to a manifest."""
    level = _manifests(layout, 3)
    for depth in range(9):
        level = [_index(layout, level, f"level {depth} #{i}") for i in range(3)]
    top = _index(layout, level, "top")
    _name_top(layout, top)
    return top, 31


class CountingSource(LayoutSource):
    def __init__(self, root: Path, ref_name: str) -> None:
        super().__init__(root, ref_name)
        self.fetched: list[str] = []

    def manifest(self, desc: Descriptor) -> bytes:
        self.fetched.append(str(desc.digest))
        return super().manifest(desc)


def test_a_dag_of_indexes_is_copied_once_per_document(tmp_path: Path) -> None:
    top, documents = build_dag(tmp_path / "src")
    source = CountingSource(tmp_path / "src", "top")
    lines: list[str] = []
    started = time.monotonic()
    result = copy_index(source, LayoutSink(tmp_path / "dst", "x"), [], lambda ev: lines.append(ev.status))
    assert time.monotonic() - started < 30
    assert str(result.manifest_digest) == top["digest"]
    assert len(source.fetched) == len(set(source.fetched)) == documents  # the top, then every child once
    assert lines.count("Storing signatures") == 3  # each image once, though 3^10 paths lead to them
    copied = {p.name for p in (tmp_path / "dst" / "blobs" / "sha256").iterdir()}
    assert copied == {p.name for p in (tmp_path / "src" / "blobs" / "sha256").iterdir()}


def test_the_cli_copies_the_dag(strata: StrataRun, tmp_path: Path) -> None:
    top, _ = build_dag(tmp_path / "src")
    res = strata("copy", "--all", f"oci:{tmp_path / 'src'}:top", f"oci:{tmp_path / 'dst'}:x", timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("Storing signatures\n") == 3
    entries = json.loads((tmp_path / "dst" / "index.json").read_text())["manifests"]
    assert [e["digest"] for e in entries] == [top["digest"]]


def _too_deep(layout: Path) -> None:
    level = _manifests(layout, 1)
    for depth in range(MAX_INDEX_DEPTH + 4):
        level = [_index(layout, level, f"chain {depth}")]
    _name_top(layout, level[0])


def test_an_index_nested_too_deep_is_a_clear_error(tmp_path: Path) -> None:
    _too_deep(tmp_path / "src")
    with pytest.raises(InvalidArchive, match=f"nested more than {MAX_INDEX_DEPTH} levels deep"):
        copy_index(LayoutSource(tmp_path / "src", "top"), LayoutSink(tmp_path / "dst", "x"))
    assert not (tmp_path / "dst" / "index.json").exists()  # nothing named: the copy did not happen
    with pytest.raises(InvalidArchive, match="levels deep"):
        LayoutSource(tmp_path / "src", "top").image()


def test_the_cli_refuses_a_too_deep_index(strata: StrataRun, tmp_path: Path) -> None:
    _too_deep(tmp_path / "src")
    for args in (["--all"], []):
        res = strata("copy", *args, f"oci:{tmp_path / 'src'}:top", f"oci:{tmp_path / 'dst'}:x")
        assert res.returncode == 1, res.stderr
        assert "Traceback" not in res.stderr and "RecursionError" not in res.stderr
        assert res.stderr.strip().endswith(f"nested more than {MAX_INDEX_DEPTH} levels deep"), res.stderr


def test_progress_events_of_an_index_copy_are_skopeos(tmp_path: Path) -> None:
    _name_top(tmp_path / "src", _index(tmp_path / "src", _manifests(tmp_path / "src", 1), "one"))
    events: list[ProgressEvent] = []
    copy_index(LayoutSource(tmp_path / "src", "top"), LayoutSink(tmp_path / "dst", "x"), [], events.append)
    steps = [ev.status.split(" sha256:")[0] for ev in events]
    assert steps == [
        "Getting image list signatures", "Copying 1 of 1 images in list", "Copying image",
        "Getting image source signatures", "Copying blob", "Copying config",
        "Writing manifest to image destination", "Storing signatures",
        "Writing manifest list to image destination", "Storing list signatures",
    ]  # fmt: skip
    assert all(ev.id == "" for ev in events)


def test_copy_all_to_a_registry_says_only_skopeos_lines(env_for_api: None, tmp_path: Path, strata_registry: ServerThread) -> None:
    from strata import api

    from .test_multiarch import build_index

    built = build_index(tmp_path / "src")
    events: list[ProgressEvent] = []
    result = api.copy(f"oci:{built.layout}:1", f"docker://{strata_registry.url}/multi/x:1", all_images=True,
                      progress=events.append)  # fmt: skip
    assert str(result.manifest_digest) == built.index_digest
    assert [ev for ev in events if ev.id] == []  # the shared layer met again is not "Layer already exists"
    assert sum(ev.status.startswith("Copying blob ") for ev in events) == 4


def test_copy_of_a_missing_tag_says_what_pull_says(env_for_api: None, tmp_path: Path, strata_registry: ServerThread) -> None:
    from strata import api

    name = f"{strata_registry.url}/nothing/here:1"
    with pytest.raises(StrataError) as err:
        api.copy(f"docker://{name}", f"oci:{tmp_path / 'out'}:1")
    assert str(err.value).startswith(f"manifest for {name} not found: ")
    assert not (tmp_path / "out").exists()
