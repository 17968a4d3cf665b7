"""Facts of the OCI Distribution Spec shared by strata's registry client and server."""

from __future__ import annotations

from strata.distribution.errcodes import ERROR_CODES, ErrorCode, error_body, lookup

__all__ = ["ERROR_CODES", "ErrorCode", "error_body", "lookup"]
