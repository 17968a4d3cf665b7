"""A lying registry that serves deeply nested JSON (a manifest, an index, an image config): strata's
pull, copy and inspect give a clear error and a non-zero exit, never a RecursionError traceback."""

from __future__ import annotations

import json

import pytest

from .conftest import StrataRun
from .faultserver import FaultRegistry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DEEP = 100_000


def _deep_manifest() -> bytes:
    return ('{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST + '","x":' + "[" * DEEP + "]" * DEEP + "}").encode()


def _deep_index() -> bytes:
    return ('{"schemaVersion":2,"mediaType":"' + OCI_INDEX + '","manifests":[],"annotations":{"a":'
            + "{\"b\":" * DEEP + "1" + "}" * DEEP + "}}").encode()


def _deep_config_manifest(reg: FaultRegistry) -> bytes:
    config = ('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":'
              + "[" * DEEP + "]" * DEEP + "}").encode()
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": reg.add_blob(config),
        "size": len(config)}, "layers": []}).encode()  # fmt: skip


@pytest.mark.parametrize("what", ["manifest", "index", "config"])
def test_deeply_nested_documents_fail_cleanly(strata: StrataRun, fault_registry: FaultRegistry, what: str) -> None:
    reg = fault_registry
    raw = {"manifest": _deep_manifest, "index": _deep_index}.get(what, lambda: _deep_config_manifest(reg))()
    reg.add_manifest("r", "deep", raw, OCI_INDEX if what == "index" else OCI_MANIFEST)
    res = strata("pull", f"{reg.host}/r:deep", timeout=120)
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert res.stderr.startswith("Error: ") and "nested" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and "RecursionError" not in res.stderr
    assert strata("images", "-q").stdout.strip() == ""  # nothing half-pulled
