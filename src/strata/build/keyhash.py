"""SHA-256 of the short texts a build hashes on every step (cache keys, joined content sums, tar
headers) with CPython's own implementation: ``hashlib`` loads OpenSSL (``_hashlib``), a tenth of a
fully cached rebuild's start-up. File contents are hashed with ``hashlib`` (OpenSSL is several times
faster on megabytes), loaded by the step that reads them."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: this module is on a cached rebuild's start-up path
if TYPE_CHECKING:
    from collections.abc import Callable
    from hashlib import _Hash

__all__ = ["sha256", "sha256_hex"]


def _builtin() -> Callable[[bytes], _Hash]:
    try:
        import _sha256  # type: ignore[import-not-found]  # CPython 3.11's (no typeshed stub)

        return _sha256.sha256  # type: ignore[no-any-return]
    except ImportError:  # a Python without it (3.12 calls it _sha2): OpenSSL's
        import hashlib

        return hashlib.sha256


sha256 = _builtin()


def sha256_hex(data: bytes) -> str:
    return sha256(data).hexdigest()
