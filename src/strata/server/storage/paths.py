"""Where everything lives in a registry's storage driver (distribution's layout).

::

    /docker/registry/v2/
      blobs/<alg>/<hex[:2]>/<hex>/data                      every blob and manifest, once
      repositories/<name>/
        _layers/<alg>/<hex>/link                            blobs this repository may serve
        _manifests/revisions/<alg>/<hex>/link               manifests of this repository
        _manifests/tags/<tag>/current/link                  what the tag points to now
        _manifests/tags/<tag>/index/<alg>/<hex>/link        every digest the tag pointed to
        _referrers/<alg>/<subject-hex>/<alg>/<hex>/link     manifests whose subject is <subject>
        _uploads/<uuid>/data, startedat                     uploads in progress (private)

A link file holds a digest string. Repositories only hold links; the blobs are shared.
"""

from __future__ import annotations

from strata.digest import Digest

__all__ = [
    "ROOT",
    "blob_data",
    "blob_dir",
    "blobs_root",
    "layer_link",
    "layers_dir",
    "referrer_link",
    "referrers_dir",
    "repo_root",
    "repos_root",
    "revision_link",
    "revisions_dir",
    "tag_current_link",
    "tag_dir",
    "tag_index_link",
    "tags_dir",
    "upload_data",
    "upload_dir",
    "upload_startedat",
    "uploads_dir",
]

ROOT = "/docker/registry/v2"


def _link(base: str, d: Digest) -> str:
    return f"{base}/{d.algorithm}/{d.hex}/link"


def blobs_root() -> str:
    return f"{ROOT}/blobs"


def blob_dir(d: Digest) -> str:
    return f"{ROOT}/blobs/{d.algorithm}/{d.hex[:2]}/{d.hex}"


def blob_data(d: Digest) -> str:
    return f"{blob_dir(d)}/data"


def repos_root() -> str:
    return f"{ROOT}/repositories"


def repo_root(name: str) -> str:
    return f"{ROOT}/repositories/{name}"


def layers_dir(name: str) -> str:
    return f"{repo_root(name)}/_layers"


def layer_link(name: str, d: Digest) -> str:
    return _link(layers_dir(name), d)


def revisions_dir(name: str) -> str:
    return f"{repo_root(name)}/_manifests/revisions"


def revision_link(name: str, d: Digest) -> str:
    return _link(revisions_dir(name), d)


def tags_dir(name: str) -> str:
    return f"{repo_root(name)}/_manifests/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{tags_dir(name)}/{tag}"


def tag_current_link(name: str, tag: str) -> str:
    return f"{tag_dir(name, tag)}/current/link"


def tag_index_link(name: str, tag: str, d: Digest) -> str:
    return _link(f"{tag_dir(name, tag)}/index", d)


def referrers_dir(name: str, subject: Digest) -> str:
    return f"{repo_root(name)}/_referrers/{subject.algorithm}/{subject.hex}"


def referrer_link(name: str, subject: Digest, d: Digest) -> str:
    return _link(referrers_dir(name, subject), d)


def uploads_dir(name: str) -> str:
    return f"{repo_root(name)}/_uploads"


def upload_dir(name: str, uuid: str) -> str:
    return f"{uploads_dir(name)}/{uuid}"


def upload_data(name: str, uuid: str) -> str:
    return f"{upload_dir(name, uuid)}/data"


def upload_startedat(name: str, uuid: str) -> str:
    return f"{upload_dir(name, uuid)}/startedat"
