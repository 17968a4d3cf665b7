"""The one exception tree of strata.

Every error's ``str()`` is Docker's own message for the same failure; the CLI prints it after
``Error: `` and exits with ``exit_code``::

    StrataError                        exit_code 1
    ├── UsageError                     bad flags / arguments (exit 125 as docker's CLI)
    ├── InvalidReference (ValueError)  bad name, tag or digest
    ├── InvalidDigest (ValueError)     malformed "algo:hex"
    ├── DigestMismatch                 content does not hash to what it claims
    ├── InvalidArchive                 hostile, corrupt or unsupported tar/compression/manifest
    ├── NotFound
    │   ├── ImageNotFound              "No such image: x"
    │   ├── ContainerNotFound          "No such container: x"
    │   └── BlobNotFound               a blob/layer missing from a store
    ├── Conflict                       rmi conflicts, container name in use
    ├── StoreError                     the local store is damaged or locked
    ├── RuntimeFailure                 the OCI runtime failed (exit_code carries 125/126/127)
    ├── RegistryError                  an error answer from a registry (status + spec error list)
    │   ├── Unauthorized / Denied
    │   └── ManifestUnknown / BlobUnknown / NameUnknown
    └── TransportError                 connection problems, timeouts, TLS
"""

from __future__ import annotations

__all__ = [
    "BlobNotFound",
    "BlobUnknown",
    "Conflict",
    "ContainerNotFound",
    "Denied",
    "DigestMismatch",
    "ImageNotFound",
    "InvalidArchive",
    "InvalidDigest",
    "InvalidReference",
    "ManifestUnknown",
    "NameUnknown",
    "NotFound",
    "RegistryError",
    "RegistryErrorDetail",
    "RuntimeFailure",
    "StoreError",
    "StrataError",
    "TransportError",
    "Unauthorized",
    "UsageError",
    "os_error_text",
]


class StrataError(Exception):
    """Base of every error strata raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str = "", *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(StrataError):
    exit_code = 125


class InvalidReference(StrataError, ValueError):
    pass


class InvalidDigest(StrataError, ValueError):
    pass


class DigestMismatch(StrataError):
    pass


class InvalidArchive(StrataError):
    pass


class NotFound(StrataError):
    pass


class ImageNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"No such image: {name}")
        self.name = name


class ContainerNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"No such container: {name}")
        self.name = name


class BlobNotFound(NotFound):
    pass


class Conflict(StrataError):
    pass


class StoreError(StrataError):
    pass


class RuntimeFailure(StrataError):
    exit_code = 125


class RegistryErrorDetail:
    """One entry of a distribution-spec error body: ``{"code", "message", "detail"}``; an immutable
    value, equal by code and message (no ``dataclasses`` here: every command imports this module)."""

    __slots__ = ("code", "detail", "message")
    code: str
    message: str
    detail: object

    def __init__(self, code: str, message: str = "", detail: object = None) -> None:
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "detail", detail)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RegistryErrorDetail):
            return NotImplemented
        return (self.code, self.message) == (other.code, other.message)

    def __hash__(self) -> int:
        return hash((self.code, self.message))

    def __repr__(self) -> str:
        return f"RegistryErrorDetail(code={self.code!r}, message={self.message!r}, detail={self.detail!r})"


class RegistryError(StrataError):
    """A registry answered with an error status."""

    def __init__(
        self, message: str, *, status: int = 0, errors: list[RegistryErrorDetail] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []


class Unauthorized(RegistryError):
    pass


class Denied(RegistryError):
    pass


class ManifestUnknown(RegistryError):
    pass


class BlobUnknown(RegistryError):
    pass


class NameUnknown(RegistryError):
    pass


class TransportError(StrataError):
    pass


def os_error_text(e: OSError) -> str:
    """An OS error as Go (hence Docker) words it: ``no space left on device`` (lower case, no errno
    number, no file name)."""
    text = e.strerror or str(e)
    return text[:1].lower() + text[1:]
