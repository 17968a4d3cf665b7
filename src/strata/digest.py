"""Content digests: the ``Digest`` value type and readers that hash while they stream."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

from strata.errors import DigestMismatch, InvalidDigest

__all__ = ["CHUNK", "Digest", "HashingReader", "Readable", "ReaderBase", "digest_bytes", "digest_file", "hasher"]

CHUNK = 1 << 20


class Readable(Protocol):
    """Anything with ``read(n) -> bytes``: files, sockets' readers, decompressors, hashing wrappers."""

    def read(self, n: int = -1, /) -> bytes: ...


class Writable(Protocol):
    """Anything with ``write(b)``."""

    def write(self, data: bytes, /) -> object: ...


class ReaderBase:
    """Base for streaming readers that define ``read(n)``: adds the ``readinto`` and ``readable``
    that ``io.BufferedReader``, ``tarfile`` and ``shutil`` ask of a binary file."""

    def read(self, n: int = -1, /) -> bytes:
        raise NotImplementedError

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


_ALGOS = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """A content address, ``algorithm:hex``; ``str()`` gives the canonical form."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        m = _DIGEST_RE.match(text)
        if not m:
            raise InvalidDigest(f"invalid digest format: {text!r}")
        algo, hexpart = m.group(1), m.group(2)
        size = _ALGOS.get(algo)
        if size is None:
            raise InvalidDigest(f"unsupported digest algorithm: {text!r}")
        if len(hexpart) != size or not re.fullmatch(r"[a-f0-9]+", hexpart):
            raise InvalidDigest(f"invalid checksum digest format: {text!r}")
        return cls(algo, hexpart)

    @classmethod
    def is_valid(cls, text: str) -> bool:
        try:
            cls.parse(text)
        except InvalidDigest:
            return False
        return True

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        """The twelve-character ID Docker shows."""
        return self.hex[:12]


def hasher(algorithm: str = "sha256") -> hashlib._Hash:
    return hashlib.new(algorithm)


def digest_bytes(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())


def digest_file(path: str, algorithm: str = "sha256") -> tuple[Digest, int]:
    """Hash a file in chunks; returns its digest and size."""
    h = hashlib.new(algorithm)
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return Digest(algorithm, h.hexdigest()), size


class HashingReader(ReaderBase):
    """Wraps a binary stream and hashes everything read through it.

    ``verify()`` raises ``DigestMismatch`` unless the bytes read so far hash to ``expected``
    (and, if given, number ``expected_size``). With ``tee``, every byte read is also written there.
    """

    def __init__(
        self,
        stream: Readable,
        expected: Digest | None = None,
        expected_size: int | None = None,
        *,
        tee: Writable | None = None,
    ) -> None:
        self._stream = stream
        self._tee = tee
        self.expected = expected
        self.expected_size = expected_size
        self._hash = hashlib.new(expected.algorithm if expected else "sha256")
        self.size = 0
        self.hashing = True  # False: only count and copy (when another reader hashes the same bytes)

    def read(self, n: int | None = -1, /) -> bytes:
        data = self._stream.read(-1 if n is None else n)
        if data:
            if self.hashing:
                self._hash.update(data)
            self.size += len(data)
            if self._tee is not None:
                self._tee.write(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> Digest:
        return Digest(self._hash.name, self._hash.hexdigest())

    def verify(self) -> Digest:
        got = self.digest
        if self.expected_size is not None and self.size != self.expected_size:
            raise DigestMismatch(
                f"size mismatch for {self.expected}: expected {self.expected_size} bytes, got {self.size}"
            )
        if self.expected is not None and got != self.expected:
            raise DigestMismatch(f"digest mismatch: expected {self.expected}, got {got}")
        return got
