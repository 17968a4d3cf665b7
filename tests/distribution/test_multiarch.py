"""Multi-platform images: ``copy --all`` moves a whole OCI index (children, their blobs, then the index,
every digest unchanged) between oci:, oci-archive: and registries (strata's own and distribution);
``pull --platform`` picks the matching image from it; docker-archive: refuses a list, as skopeo does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from imagegen import GeneratedIndex, generate, put_all
from peers import Registry, Skopeo
from server.helpers import ServerThread
from strata.distribution.client import RegistryClient
from strata.distribution.hosts import HostsConfig
from strata.image import mediatypes as mt

from .conftest import StrataRun


@dataclass
class Built:
    layout: Path
    index_digest: str
    manifests: dict[str, str]  # architecture -> manifest digest
    configs: dict[str, str]  # architecture -> config digest (image ID)
    blobs: set[str]


def build_index(layout: Path) -> Built:
    """Two tiny images (amd64, arm64/v8) sharing one layer, under one OCI index tagged ``1``: made by the
    shared generator and written by the library's own copy --all (tests/imagegen.py)."""
    shared = {"etc/shared": b"same on every platform"}
    images = {arch: generate(layout.parent / f"{layout.name}-{arch}", [shared, {f"bin/{arch}": arch.encode() * 1000}],
                             oci=True, level=6, architecture=arch, variant=variant, config={"Cmd": ["/bin/sh"]})
              for arch, variant in (("amd64", ""), ("arm64", "v8"))}
    index = GeneratedIndex(list(images.values()))
    put_all(index, f"oci:{layout}:1")
    blobs = {str(d) for im in images.values() for d in (im.image_id(), *(lay.digest() for lay in im.layers()))}
    return Built(layout, index.digest, {a: str(im.digest()) for a, im in images.items()},
                 {a: str(im.image_id()) for a, im in images.items()}, blobs)


def _layout_index_entry(layout: Path, ref: str) -> dict[str, object]:
    entries = json.loads((layout / "index.json").read_text())["manifests"]
    found = [e for e in entries if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref]
    assert len(found) == 1, entries
    return found[0]  # type: ignore[no-any-return]


def _image_id(strata: StrataRun, name: str) -> str:
    return strata("images", "-q", "--no-trunc", name, check=True).stdout.strip()


def check_multiarch_round_trip(strata: StrataRun, tmp_path: Path, host: str) -> None:
    built = build_index(tmp_path / "src-layout")
    name = f"{host}/multi/app:1"
    out = strata("copy", "--all", f"oci:{built.layout}:1", f"docker://{name}", check=True).stdout
    assert "Copying 2 of 2 images in list" in out and "Writing manifest list to image destination" in out
    assert out.count("Copying blob ") == 4 and out.count("Storing signatures") == 2

    with RegistryClient(host, config=HostsConfig(certs_dirs=())) as c:
        res = c.get_manifest("multi/app", "1")
        assert (str(res.digest), res.media_type) == (built.index_digest, mt.OCI_INDEX)
        for digest in built.manifests.values():
            assert c.head_manifest("multi/app", digest) is not None
    inspect = json.loads(strata("manifest", "inspect", name, check=True).stdout)
    assert [m["digest"] for m in inspect["manifests"]] == list(built.manifests.values())

    # pull picks the platform; Digest: is the index's, as Docker prints it
    for arch in ("arm64", "amd64"):
        pulled = strata("pull", "--platform", f"linux/{arch}", name, check=True).stdout
        assert f"Digest: {built.index_digest}" in pulled
        assert _image_id(strata, name) == built.configs[arch]
    wrong = strata("pull", "--platform", "linux/s390x", name)
    assert wrong.returncode == 1 and "no matching manifest for linux/s390x in the manifest list entries" in wrong.stderr

    # registry -> oci: -> oci-archive: -> another repository: the same index digest all the way
    out_layout = tmp_path / "out-layout"
    strata("copy", "--all", f"docker://{name}", f"oci:{out_layout}:x", check=True)
    assert _layout_index_entry(out_layout, "x")["digest"] == built.index_digest
    have = {f"sha256:{p.name}" for p in (out_layout / "blobs" / "sha256").iterdir()}
    assert built.blobs | set(built.manifests.values()) | {built.index_digest} <= have
    archive = tmp_path / "multi.tar"
    strata("copy", "--all", f"oci:{out_layout}:x", f"oci-archive:{archive}:y", check=True)
    strata("copy", "--all", f"oci-archive:{archive}:y", f"docker://{host}/multi/copy:2", check=True)
    with RegistryClient(host, config=HostsConfig(certs_dirs=())) as c:
        assert str(c.get_manifest("multi/copy", "2").digest) == built.index_digest

    # without --all one image is copied: the one for the asked platform
    single = tmp_path / "single"
    strata("copy", "--platform", "linux/arm64", f"docker://{name}", f"oci:{single}:z", check=True)
    assert _layout_index_entry(single, "z")["digest"] == built.manifests["arm64"]

    refused = strata("copy", "--all", f"docker://{name}", f"docker-archive:{tmp_path / 'one.tar'}")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        'Error: copying multiple images: destination transport "docker-archive" does not support '
        "copying multiple images as a group"
    )
    assert not (tmp_path / "one.tar").exists()


def test_multiarch_with_strata_registry(strata: StrataRun, tmp_path: Path, strata_registry: ServerThread) -> None:
    check_multiarch_round_trip(strata, tmp_path, strata_registry.url)


def test_multiarch_with_distribution(
    strata: StrataRun, tmp_path: Path, distribution_registry: Registry, skopeo: Skopeo
) -> None:
    check_multiarch_round_trip(strata, tmp_path, distribution_registry.host)
    # skopeo copies the index strata pushed byte for byte, and prints what strata prints for the same copy
    name = f"{distribution_registry.host}/multi/app:1"
    ours = strata("copy", "--all", f"docker://{name}", f"oci:{tmp_path / 'ours'}:1", check=True).stdout
    theirs = skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{name}", f"oci:{tmp_path / 'theirs'}:1").stdout
    assert sorted(ours.splitlines()) == sorted(theirs.splitlines())  # skopeo lists blobs as they finish

    def steps(text: str) -> list[str]:
        return [ln for ln in text.splitlines() if not ln.startswith("Copying blob ")]

    assert steps(ours) == steps(theirs)
    digests = [_layout_index_entry(tmp_path / d, "1")["digest"] for d in ("ours", "theirs")]
    assert digests[0] == digests[1]
    assert sorted(p.name for p in (tmp_path / "ours" / "blobs" / "sha256").iterdir()) == sorted(
        p.name for p in (tmp_path / "theirs" / "blobs" / "sha256").iterdir()
    )


def test_copy_all_from_a_damaged_layout_is_an_error(strata: StrataRun, tmp_path: Path) -> None:
    layout = tmp_path / "damaged"
    layout.mkdir()
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    for text, message in (("[1]", "index.json: not a JSON object"), ("{", "index.json: Expecting")):
        (layout / "index.json").write_text(text)
        res = strata("copy", "--all", f"oci:{layout}", f"oci:{tmp_path / 'out'}:1")
        assert res.returncode == 1 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
