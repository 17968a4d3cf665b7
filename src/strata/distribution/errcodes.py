"""The distribution-spec error code table: code, default message and HTTP status.

Both ends use it: the server to answer ``{"errors": [{"code", "message", "detail"}]}`` with the
right status, the client to turn such a body back into a typed error. Messages are distribution's
own wording (what Docker prints after ``Error response from daemon: ...``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DENIED",
    "DIGEST_INVALID",
    "ERROR_CODES",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "MANIFEST_UNVERIFIED",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "PAGINATION_NUMBER_INVALID",
    "RANGE_INVALID",
    "SIZE_INVALID",
    "TAG_INVALID",
    "TOOMANYREQUESTS",
    "UNAUTHORIZED",
    "UNKNOWN",
    "UNSUPPORTED",
    "ErrorCode",
    "error_body",
    "lookup",
]


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row of the table. ``value`` is the wire code, e.g. ``"BLOB_UNKNOWN"``."""

    value: str
    message: str
    status: int
    description: str = ""

    def body(self, message: str | None = None, detail: object = None) -> dict[str, object]:
        """The single-error JSON body for this code."""
        return error_body([(self, message, detail)])


ERROR_CODES: dict[str, ErrorCode] = {}


def _define(value: str, message: str, status: int) -> ErrorCode:
    code = ERROR_CODES[value] = ErrorCode(value, message, status)
    return code


BLOB_UNKNOWN = _define("BLOB_UNKNOWN", "blob unknown to registry", 404)
BLOB_UPLOAD_INVALID = _define("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
BLOB_UPLOAD_UNKNOWN = _define("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404)
DIGEST_INVALID = _define("DIGEST_INVALID", "provided digest did not match uploaded content", 400)
MANIFEST_BLOB_UNKNOWN = _define("MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", 400)
MANIFEST_INVALID = _define("MANIFEST_INVALID", "manifest invalid", 400)
MANIFEST_UNKNOWN = _define("MANIFEST_UNKNOWN", "manifest unknown", 404)
MANIFEST_UNVERIFIED = _define(
    "MANIFEST_UNVERIFIED", "manifest failed signature verification", 400
)
NAME_INVALID = _define("NAME_INVALID", "invalid repository name", 400)
NAME_UNKNOWN = _define("NAME_UNKNOWN", "repository name not known to registry", 404)
SIZE_INVALID = _define("SIZE_INVALID", "provided length did not match content length", 400)
TAG_INVALID = _define("TAG_INVALID", "manifest tag did not match URI", 400)
UNAUTHORIZED = _define("UNAUTHORIZED", "authentication required", 401)
DENIED = _define("DENIED", "requested access to the resource is denied", 403)
UNSUPPORTED = _define("UNSUPPORTED", "The operation is unsupported.", 405)
TOOMANYREQUESTS = _define("TOOMANYREQUESTS", "too many requests", 429)
RANGE_INVALID = _define("RANGE_INVALID", "invalid content range", 416)
PAGINATION_NUMBER_INVALID = _define(
    "PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400
)
UNKNOWN = _define("UNKNOWN", "unknown error", 500)


def lookup(value: str) -> ErrorCode:
    """The table row for a wire code; unknown codes map to ``UNKNOWN`` keeping their name."""
    code = ERROR_CODES.get(value)
    if code is not None:
        return code
    return ErrorCode(value, UNKNOWN.message, UNKNOWN.status)


def error_body(
    errors: list[tuple[ErrorCode, str | None, object]],
) -> dict[str, object]:
    """``{"errors": [...]}`` for (code, message-or-None, detail) triples."""
    items: list[dict[str, object]] = []
    for code, message, detail in errors:
        item: dict[str, object] = {"code": code.value, "message": message or code.message}
        if detail is not None:
            item["detail"] = detail
        items.append(item)
    return {"errors": items}


