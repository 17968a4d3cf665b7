"""Tar streams and layers as files, for the image store, the container engine and the transports.

- ``compression``: detect gzip/bzip2/xz/zstd by magic bytes, stream-decompress, compress
  deterministically.
- ``apply``: ``apply_layer`` extracts a layer tar safely (overlay or flat whiteouts) and returns its
  DiffID; ``apply_tar`` extracts any tar with the same safety rules.
- ``tarwriter``: ``TarWriter`` and ``write_tar_from_dir`` (deterministic layer tars, overlay upper
  dirs to OCI whiteouts).
"""

from __future__ import annotations

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
