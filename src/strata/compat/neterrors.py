"""Go's wording of network and TLS failures (``net.OpError``, ``crypto/x509``), as Docker prints them
after ``Get "URL": ``: ``dial tcp 127.0.0.1:5000: connect: connection refused``."""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit

__all__ = ["dial_prefix", "go_net_error", "x509_text"]

# OpenSSL verify codes -> the words Go's crypto/x509 (hence Docker) uses
_UNKNOWN_AUTHORITY = {2, 18, 19, 20, 21, 27}
_EXPIRED = {9, 10}
_NAME_MISMATCH = {62, 64}  # hostname, IP address


def go_net_error(e: BaseException | None, url: str = "") -> str:
    """Go's text for a failure reaching ``url`` (``no such host``, ``connection refused``,
    ``i/o timeout``, x509 and TLS alerts, ``unexpected EOF``); other errors as they are."""
    if e is None:
        return "no endpoint"
    if isinstance(e, socket.gaierror):
        return f"dial tcp: lookup {urlsplit(url).hostname or ''}: no such host".replace("lookup :", "lookup:")
    if isinstance(e, ConnectionRefusedError):
        return f"{dial_prefix(url)}connect: connection refused"
    if isinstance(e, socket.timeout | TimeoutError):
        return f"{dial_prefix(url)}i/o timeout"
    if isinstance(e, ssl.SSLCertVerificationError):
        return x509_text(e)
    if isinstance(e, ssl.SSLError) and "ALERT_" in str(e.reason or ""):
        # TLSV13_ALERT_CERTIFICATE_REQUIRED -> "remote error: tls: certificate required" (Go's words)
        alert = str(e.reason).split("ALERT_", 1)[1].lower().replace("_", " ")
        return f"remote error: tls: {alert}"
    if isinstance(e, http.client.IncompleteRead):
        return "unexpected EOF"
    return str(e) or type(e).__name__


def dial_prefix(url: str) -> str:
    """Go's ``dial tcp HOST:PORT: `` prefix of a connection error (the port the URL implies)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"dial tcp {host}:{port}: "


def x509_text(e: ssl.SSLCertVerificationError) -> str:
    """``x509: certificate signed by unknown authority`` and its siblings, from OpenSSL's verify code."""
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
