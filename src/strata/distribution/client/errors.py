"""Failures in Docker's words: a registry's ``{"errors": [...]}`` answer as a typed ``RegistryError``, and a
network error (refused connection, unknown host, timeout, TLS) as Go's ``net``/``crypto/x509`` text."""

from __future__ import annotations

from strata.compat.neterrors import go_net_error
from strata.distribution.errcodes import lookup
from strata.errors import (
    BlobUnknown,
    Denied,
    ManifestUnknown,
    NameUnknown,
    RegistryError,
    RegistryErrorDetail,
    StrataError,
    Unauthorized,
)
from strata.image.spec import load_json

__all__ = ["describe", "registry_error"]

_ERROR_CLASSES: dict[str, type[RegistryError]] = {
    "UNAUTHORIZED": Unauthorized,
    "DENIED": Denied,
    "MANIFEST_UNKNOWN": ManifestUnknown,
    "BLOB_UNKNOWN": BlobUnknown,
    "NAME_UNKNOWN": NameUnknown,
}


def _details(body: bytes) -> list[RegistryErrorDetail]:
    details: list[RegistryErrorDetail] = []
    try:
        obj = load_json(body, "error body")
        for e in obj.get("errors") or []:
            details.append(RegistryErrorDetail(str(e.get("code", "")), str(e.get("message", "")), e.get("detail")))
    except (StrataError, AttributeError, TypeError):
        pass
    return details


def registry_error(status: int, body: bytes, reason: str = "") -> RegistryError:
    """The typed error for a registry's error answer; ``str()`` is what Docker prints."""
    details = _details(body)
    if details:
        parts = [f"{d.code.lower().replace('_', ' ')}: {d.message or lookup(d.code).message}" for d in details]
        message = parts[0] if len(parts) == 1 else "errors:\n" + "\n".join(parts) + "\n"
        code = details[0].code
    elif status == 401:
        message, code = "unauthorized: authentication required", "UNAUTHORIZED"
    elif status == 403:
        message, code = "denied: requested access to the resource is denied", "DENIED"
    else:
        message, code = f"received unexpected HTTP status: {status} {reason}".rstrip(), ""
    cls = Unauthorized if status == 401 else _ERROR_CLASSES.get(code, RegistryError)
    return cls(message, status=status, errors=details)


def describe(e: BaseException | None, url: str = "") -> str:
    """A network error as Go (hence Docker) words it; ``url`` gives the host and port it names."""
    return go_net_error(e, url)
