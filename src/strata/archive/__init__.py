"""Tar streams and layers as files, for the image store, the container engine and the transports.

- ``compression``: detect gzip/bzip2/xz/zstd by magic bytes, stream-decompress, compress
  deterministically.
- ``apply``: ``apply_layer`` extracts a layer tar safely (overlay or flat whiteouts) and returns its
  DiffID; ``apply_tar`` extracts any tar with the same safety rules.
- ``tarwriter``: ``TarWriter`` and ``write_tar_from_dir`` (deterministic layer tars, overlay upper
  dirs to OCI whiteouts).

The names are loaded from their submodules on first use (importing one submodule, e.g. ``dirs``,
does not load the others).
"""

from __future__ import annotations

from types import ModuleType

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import Any

    from strata.archive.apply import DeviceMode, WhiteoutMode, apply_layer, apply_tar
    from strata.archive.compression import (
        Compression,
        CompressWriter,
        DecompressReader,
        compressor,
        detect_compression,
        open_decompressed,
    )
    from strata.archive.hashing import HashReader, HashWriter, LayerInfo
    from strata.archive.names import OPAQUE_MARKER, WHITEOUT_PREFIX, split_member_name
    from strata.archive.tarwriter import TarWriter, write_tar_from_dir

# names -> the submodule defining them, imported on first use: ``strata.archive.dirs`` (a build's
# cached rebuild needs only it) must not pay for tarfile, the compressors and the layer code
_LAZY = {
    "DeviceMode": "apply",
    "WhiteoutMode": "apply",
    "apply_layer": "apply",
    "apply_tar": "apply",
    "Compression": "compression",
    "CompressWriter": "compression",
    "DecompressReader": "compression",
    "compressor": "compression",
    "detect_compression": "compression",
    "open_decompressed": "compression",
    "HashReader": "hashing",
    "HashWriter": "hashing",
    "LayerInfo": "hashing",
    "OPAQUE_MARKER": "names",
    "WHITEOUT_PREFIX": "names",
    "split_member_name": "names",
    "TarWriter": "tarwriter",
    "write_tar_from_dir": "tarwriter",
}


def _submodule(name: str) -> ModuleType:
    """The submodule by its name, each imported by a literal name (no computed imports)."""
    if name == "apply":
        from strata.archive import apply

        return apply
    if name == "compression":
        from strata.archive import compression

        return compression
    if name == "hashing":
        from strata.archive import hashing

        return hashing
    if name == "names":
        from strata.archive import names

        return names
    from strata.archive import tarwriter

    return tarwriter


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_submodule(module), name)
    globals()[name] = value
    return value


__all__ = [
    "OPAQUE_MARKER",
    "WHITEOUT_PREFIX",
    "CompressWriter",
    "Compression",
    "DecompressReader",
    "DeviceMode",
    "HashReader",
    "HashWriter",
    "LayerInfo",
    "TarWriter",
    "WhiteoutMode",
    "apply_layer",
    "apply_tar",
    "compressor",
    "detect_compression",
    "open_decompressed",
    "split_member_name",
    "write_tar_from_dir",
]
