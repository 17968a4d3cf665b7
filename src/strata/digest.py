"""Content digests: the ``Digest`` value type and readers that hash while they stream.

Start-up: every command loads this module, so it imports neither ``hashlib`` (OpenSSL; loaded when
something is hashed) nor ``dataclasses`` or ``typing`` (a listing command cannot afford them).
"""

from __future__ import annotations

from strata.errors import DigestMismatch, InvalidDigest

TYPE_CHECKING = False
if TYPE_CHECKING:
    import hashlib
    from typing import NoReturn, Protocol

__all__ = ["CHUNK", "Digest", "HashingReader", "Readable", "ReaderBase", "digest_bytes", "digest_file", "hasher"]

CHUNK = 1 << 20


if TYPE_CHECKING:

    class Readable(Protocol):
        """Anything with ``read(n) -> bytes``: files, sockets' readers, decompressors, hashing wrappers."""

        def read(self, n: int = -1, /) -> bytes: ...

    class Writable(Protocol):
        """Anything with ``write(b)``."""

        def write(self, data: bytes, /) -> object: ...

else:  # protocols matter to the type checker only; at run time the names stand for "any object"
    Readable = Writable = object


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
_DIGEST = r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$"  # compiled (and cached by re) when needed
_HEX = "0123456789abcdef"
_ALGO_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.+_-")


class Digest:
    """A content address, ``algorithm:hex``; ``str()`` gives the canonical form. An immutable value:
    equal, hashed and ordered by (algorithm, hex)."""

    __slots__ = ("algorithm", "hex")
    algorithm: str
    hex: str

    def __init__(self, algorithm: str, hex: str) -> None:
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "hex", hex)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type[Digest], tuple[str, str]]:
        return Digest, (self.algorithm, self.hex)

    def __repr__(self) -> str:
        return f"Digest(algorithm={self.algorithm!r}, hex={self.hex!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Digest):
            return NotImplemented
        return self.hex == other.hex and self.algorithm == other.algorithm

    def __hash__(self) -> int:
        return hash((self.algorithm, self.hex))

    def __lt__(self, other: Digest) -> bool:
        return (self.algorithm, self.hex) < (other.algorithm, other.hex)

    def __le__(self, other: Digest) -> bool:
        return (self.algorithm, self.hex) <= (other.algorithm, other.hex)

    def __gt__(self, other: Digest) -> bool:
        return (self.algorithm, self.hex) > (other.algorithm, other.hex)

    def __ge__(self, other: Digest) -> bool:
        return (self.algorithm, self.hex) >= (other.algorithm, other.hex)

    @classmethod
    def parse(cls, text: str) -> Digest:
        algo, colon, hexpart = text.partition(":")
        if len(hexpart) == _ALGOS.get(algo) and not hexpart.strip(_HEX):
            return cls(algo, hexpart)  # the usual case, decided without a regular expression
        if not (colon and algo and _ALGO_CHARS.issuperset(algo)):  # what precedes the first ":" is the algorithm
            raise InvalidDigest(f"invalid digest format: {text!r}")
        return cls._parse_slowly(text)

    @classmethod
    def _parse_slowly(cls, text: str) -> Digest:
        import re

        m = re.match(_DIGEST, text)
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
    return _new(algorithm)


def digest_bytes(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(algorithm, _new(algorithm, data).hexdigest())


def _new(algorithm: str, data: bytes = b"") -> hashlib._Hash:
    import hashlib  # here, not at the top: OpenSSL costs a listing command more than its listing

    return hashlib.new(algorithm, data)


def digest_file(path: str, algorithm: str = "sha256") -> tuple[Digest, int]:
    """Hash a file in chunks; returns its digest and size."""
    h = _new(algorithm)
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
        self._hash = _new(expected.algorithm if expected else "sha256")
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
