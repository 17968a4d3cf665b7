"""The hand-written value types that replaced dataclasses on every command's path (issue 12, start-up):
immutable, equal and hashed by their fields, ``repr`` like a dataclass's, picklable."""

from __future__ import annotations

import pickle

import pytest

from strata.digest import Digest
from strata.image.spec import Descriptor, ImageConfig, Manifest, Platform
from strata.reference import Reference, parse
from strata.store.blobs import LayerBlob

D1 = Digest("sha256", "a" * 64)
D2 = Digest("sha256", "b" * 64)


def _values() -> list[object]:
    return [
        D1,
        parse("localhost:5000/a/b:1"),
        Platform("linux", "arm64", "v8"),
        Descriptor("application/vnd.oci.image.layer.v1.tar", D1, 3, platform=Platform("linux", "amd64")),
        ImageConfig.from_dict({"rootfs": {"type": "layers", "diff_ids": []}}),
        LayerBlob(D1, 3, D2, 2, "gzip", 10),
    ]


@pytest.mark.parametrize("value", _values(), ids=lambda v: type(v).__name__)
def test_values_are_immutable_equal_hashable_and_picklable(value: object) -> None:
    name = next(iter(type(value).__slots__))  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        setattr(value, name, None)
    with pytest.raises(AttributeError):
        delattr(value, name)
    copy = pickle.loads(pickle.dumps(value))
    assert copy == value and hash(copy) == hash(value) and copy is not value
    assert value != object() and (value == object()) is False


def test_equality_covers_the_fields_it_should() -> None:
    assert Digest("sha256", "a" * 64) == D1 and D1 != D2 and D1 < D2 and sorted([D2, D1]) == [D1, D2]
    assert Reference("docker.io", "library/x", "1") != Reference("docker.io", "library/x", "2")
    assert len({parse("docker.io/library/x:1"), parse("docker.io/library/x:1")}) == 1
    raw = b'{"rootfs":{"type":"layers","diff_ids":[]}}'
    assert ImageConfig(raw, {}) == ImageConfig.parse(raw)  # a config is equal by its bytes
    assert LayerBlob(D1, 3, D2, 2, "gzip") != LayerBlob(D1, 3, D2, 2, "zstd")
    assert Descriptor("m", D1, 1) != Manifest("m", Descriptor("m", D1, 1), (), b"{}")


def test_repr_reads_as_a_dataclass_and_leaves_raw_bytes_out() -> None:
    """Fields appear in ``__slots__`` order (kept sorted)."""
    assert repr(D1) == f"Digest(algorithm='sha256', hex='{'a' * 64}')"
    assert repr(Platform("linux", "amd64")) == "Platform(architecture='amd64', os='linux', os_version='', variant='')"
    m = Manifest("m", Descriptor("c", D1, 1), (), b"secret-bytes")
    assert "secret-bytes" not in repr(m) and repr(m).startswith("Manifest(annotations=None, artifact_type='', config=Descriptor(")
