"""The push/pull lines of shared/reference/docker/push-pull-search.txt, replayed against strata's own
registry: two layers pushed, pushed again (``Layer already exists``), removed, pulled back while the
base layer is still in the store (``Already exists``), pulled once more (``Image is up to date``)."""

from __future__ import annotations

import re
from pathlib import Path

from server.helpers import ServerThread
from strata.copier import copy_image
from strata.reference import parse_normalized_named
from strata.transports.store import StoreSink

from .conftest import StrataRun, make_image

ID = r"[0-9a-f]{12}"
DIGEST = r"sha256:[0-9a-f]{64}"


def _shape(lines: list[str], host: str) -> list[str]:
    out = []
    for ln in lines:
        ln = ln.replace(host, "localhost:5000")
        ln = re.sub(DIGEST, "sha256:D", ln)
        ln = re.sub(rf"^{ID}:", "ID:", ln)
        ln = re.sub(r"size: \d+", "size: N", ln)
        out.append(ln)
    return out


def test_push_pull_lines_as_docker(strata: StrataRun, tmp_path: Path, strata_registry: ServerThread) -> None:
    from strata.engine import Engine

    host = strata_registry.url
    name = f"{host}/alicek107/my-image-name:0.0"
    layers = [{"bin/base": b"ubuntu" * 20_000}, {"test": b"my first push\n"}]
    engine = Engine.open(strata.root)
    try:
        copy_image(make_image(tmp_path / "img", layers), StoreSink(engine), [parse_normalized_named(name)])
        copy_image(make_image(tmp_path / "base", layers[:1]), StoreSink(engine), [parse_normalized_named("ubuntu:14.04")])
    finally:
        engine.close()

    first = strata("push", name, check=True).stdout.splitlines()
    assert _shape(first, host) == [
        "The push refers to repository [localhost:5000/alicek107/my-image-name]",
        "ID: Preparing", "ID: Preparing", "ID: Pushed", "ID: Pushed",
        "0.0: digest: sha256:D size: N",
    ]  # fmt: skip
    assert first[1].split(":")[0] != first[2].split(":")[0]  # top layer first, as Docker lists them
    again = strata("push", name, check=True).stdout.splitlines()
    assert _shape(again, host)[1:5] == ["ID: Preparing", "ID: Preparing", "ID: Layer already exists", "ID: Layer already exists"]
    assert again[-1] == first[-1]
    digest = re.search(DIGEST, first[-1]).group(0)  # type: ignore[union-attr]

    strata("rmi", name, check=True)
    pulled = strata("pull", name, check=True).stdout.splitlines()
    assert _shape(pulled, host) == [
        "0.0: Pulling from alicek107/my-image-name",
        "ID: Already exists",
        "ID: Pulling fs layer", "ID: Verifying Checksum", "ID: Download complete", "ID: Pull complete",
        "Digest: sha256:D",
        "Status: Downloaded newer image for localhost:5000/alicek107/my-image-name:0.0",
        "localhost:5000/alicek107/my-image-name:0.0",
    ]  # fmt: skip
    assert pulled[6] == f"Digest: {digest}"
    up_to_date = strata("pull", name, check=True).stdout.splitlines()
    assert up_to_date == [
        "0.0: Pulling from alicek107/my-image-name", f"Digest: {digest}",
        f"Status: Image is up to date for {name}", name,
    ]  # fmt: skip
    digests = strata("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}", check=True).stdout
    assert f"{host}/alicek107/my-image-name 0.0 {digest}" in digests.splitlines()

    missing = strata("pull", f"{host}/alicek107/my-image-name:nope")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == (
        f"Error: manifest for {host}/alicek107/my-image-name:nope not found: manifest unknown: manifest unknown\n"
    )
    no_repo = strata("pull", f"{host}/nosuchrepo")
    assert no_repo.stdout == "Using default tag: latest\n"
    assert no_repo.stderr.startswith(f"Error: manifest for {host}/nosuchrepo:latest not found: ")


def test_manifest_inspect(strata: StrataRun, tmp_path: Path, strata_registry: ServerThread) -> None:
    import json

    from strata.engine import Engine

    host = strata_registry.url
    name = f"{host}/inspect/me:1"
    engine = Engine.open(strata.root)
    try:
        copy_image(make_image(tmp_path / "img", [{"x": b"x"}]), StoreSink(engine), [parse_normalized_named(name)])
    finally:
        engine.close()
    pushed = strata("push", name, check=True).stdout.splitlines()[-1]
    doc = json.loads(strata("manifest", "inspect", name, check=True).stdout)
    assert doc["schemaVersion"] == 2 and len(doc["layers"]) == 1
    verbose = json.loads(strata("manifest", "inspect", "-v", name, check=True).stdout)
    assert verbose["Ref"] == name and pushed.endswith(f"digest: {verbose['Descriptor']['digest']} size: {verbose['Descriptor']['size']}")
    missing = strata("manifest", "inspect", f"{host}/inspect/me:nope")
    assert (missing.returncode, missing.stderr) == (1, f"Error: no such manifest: {host}/inspect/me:nope\n")
