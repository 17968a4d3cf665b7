"""A registry client speaking the OCI distribution API over HTTP/1.1 (``http.client`` + ``ssl``).

One ``RegistryClient`` talks to one registry (all repositories on it) and is safe to share between
threads. Its parts, one module each:

- ``transport``: pooled keep-alive connections per host, TLS, streamed request bodies, ``Response``
  (``drain`` reads the rest and gives the connection back), and Go's rules for following a redirect;
- ``session``: the endpoint that answers (mirrors, HTTPS before plain HTTP), authentication
  (``strata.distribution.auth``: answered on the first ``401``, tokens cached per scope), and
  ``request``: redirects (at most ``MAX_REDIRECTS``), ``429``/``503`` with ``Retry-After``, failover
  across mirrors. Credentials go only to the registry's own origin (scheme, host and port) -- a
  redirect elsewhere loses them, as in Go's client -- and never over plain HTTP unless the registry
  itself is plain HTTP or configured insecure;
- ``manifests``: GET (size-bounded, digest-verified), HEAD, PUT, DELETE;
- ``blobs``: ``BlobReader`` streams that verify size and digest as they are read and resume with
  ``Range`` after a dropped connection;
- ``uploads``: mounts, monolithic and chunked uploads read from openers (a blob is never held in memory);
- ``errors``: a registry's error answer as a typed ``RegistryError``, network errors in Go's words;
- ``registry``: ``RegistryClient``, all of the above plus ``ping``, ``tags`` and ``catalog``.
"""

from __future__ import annotations

from strata.distribution.client.blobs import BlobReader, copy_blob_to
from strata.distribution.client.errors import registry_error
from strata.distribution.client.manifests import MANIFEST_ACCEPT, MAX_MANIFEST_SIZE, ManifestResult
from strata.distribution.client.registry import RegistryClient
from strata.distribution.client.transport import MAX_REDIRECTS, READ_CHUNK, Body, Response

__all__ = [
    "MANIFEST_ACCEPT",
    "MAX_MANIFEST_SIZE",
    "MAX_REDIRECTS",
    "READ_CHUNK",
    "BlobReader",
    "Body",
    "ManifestResult",
    "RegistryClient",
    "Response",
    "copy_blob_to",
    "registry_error",
]
