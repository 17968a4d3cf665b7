"""Failures in Docker's words: a registry's ``{"errors": [...]}`` answer as a typed ``RegistryError``, and a
network error (refused connection, unknown host, timeout, TLS) as Go's ``net``/``crypto/x509`` text."""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit

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
from strata.spec import load_json

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
    if e is None:
        return "no endpoint"
    if isinstance(e, socket.gaierror):
        return f"dial tcp: lookup {urlsplit(url).hostname or ''}: no such host".replace("lookup :", "lookup:")
    if isinstance(e, ConnectionRefusedError):
        return f"{_dial(url)}connect: connection refused"
    if isinstance(e, socket.timeout | TimeoutError):
        return f"{_dial(url)}i/o timeout"
    if isinstance(e, ssl.SSLCertVerificationError):
        return _x509_text(e)
    if isinstance(e, ssl.SSLError) and "ALERT_" in str(e.reason or ""):
        # TLSV13_ALERT_CERTIFICATE_REQUIRED -> "remote error: tls: certificate required" (Go's words)
        alert = str(e.reason).split("ALERT_", 1)[1].lower().replace("_", " ")
        return f"remote error: tls: {alert}"
    if isinstance(e, http.client.IncompleteRead):
        return "unexpected EOF"
    return str(e) or type(e).__name__


def _dial(url: str) -> str:
    """Go's ``dial tcp HOST:PORT: `` prefix of a connection error (the port the URL implies)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"dial tcp {host}:{port}: "


# OpenSSL verify codes -> the words Go's crypto/x509 (hence Docker) uses
_UNKNOWN_AUTHORITY = {2, 18, 19, 20, 21, 27}
_EXPIRED = {9, 10}
_NAME_MISMATCH = {62, 64}  # hostname, IP address


def _x509_text(e: ssl.SSLCertVerificationError) -> str:
    code = e.verify_code
    if code in _UNKNOWN_AUTHORITY:
        return "x509: certificate signed by unknown authority"
    if code in _EXPIRED:
        return "x509: certificate has expired or is not yet valid"
    if code in _NAME_MISMATCH:
        # "Hostname mismatch, certificate is not valid for 'x'." -> "certificate is not valid for x"
        text = e.verify_message.split(", ", 1)[-1].rstrip(".").replace("'", "")
        return f"x509: {text}"
    return f"x509: {e.verify_message or e.reason or e}"
