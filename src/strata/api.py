"""The library verbs: ``pull``, ``push``, ``copy``, ``login`` and ``pull_if_missing``, over the named
transports of ``strata.transports.names`` and the one copy engine (``strata.copier``).

Progress is a stream of ``ProgressEvent``s carrying Docker's words: layer lines (``<id>: <status>``)
and whole-operation lines (empty id: ``1.0: Pulling from x``, ``Digest: …``, ``Status: …``), so
``strata.cli`` only prints them. Errors are ``strata.errors.StrataError`` with Docker's text.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from strata.copier import copy_image, copy_index
from strata.digest import Digest
from strata.distribution.client import RegistryClient
from strata.distribution.credentials import Credentials, config_path, get_credentials, store_credentials
from strata.distribution.hosts import DOCKER_HUB, HostsConfig, normalize_host
from strata.errors import (
    Denied,
    ImageNotFound,
    ManifestUnknown,
    NameUnknown,
    NotFound,
    StrataError,
    Unauthorized,
)
from strata.events import record_image
from strata.image.api import Image
from strata.image.spec import Index, Platform, parse_manifest_or_index
from strata.reference import Reference, parse_docker_ref, parse_normalized_named
from strata.transports.base import NO_PROGRESS, ImageSource, Progress, ProgressEvent, WriteResult
from strata.transports.names import (
    TransportContext,
    open_index_source,
    open_sink,
    open_source,
    refuse_lists,
    source_tags,
    split_name,
)

if TYPE_CHECKING:
    from strata.engine import Engine
    from strata.transports.registry import PushMetadata

__all__ = [
    "LoginResult",
    "PullResult",
    "PushResult",
    "cancel_transfers",
    "copy",
    "login",
    "pull",
    "pull_if_missing",
    "push",
]


def _int_env(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, "")))
    except ValueError:
        return default


MAX_DOWNLOADS = _int_env("STRATA_MAX_CONCURRENT_DOWNLOADS", 3)
MAX_UPLOADS = _int_env("STRATA_MAX_CONCURRENT_UPLOADS", 5)
_LIVE_CLIENTS: weakref.WeakSet[RegistryClient] = weakref.WeakSet()


def _client(registry: str, for_push: bool = False, creds: Credentials | None = None) -> RegistryClient:
    client = RegistryClient(
        registry,
        creds if creds is not None else get_credentials(registry),
        config=HostsConfig.load(),
        for_push=for_push,
    )
    _LIVE_CLIENTS.add(client)
    return client


def cancel_transfers() -> None:
    """Abort every registry transfer in flight at once (for a Ctrl-C): nothing is committed."""
    for client in list(_LIVE_CLIENTS):
        client.cancel()


@contextlib.contextmanager
def _engine(engine: Engine | None, root: Path | None) -> Iterator[Engine]:
    if engine is not None:
        yield engine
        return
    from strata.engine import Engine

    opened = Engine.open(root)
    try:
        yield opened
    finally:
        opened.close()


def _metadata(engine: Engine) -> PushMetadata:
    from strata.transports.registry import PushMetadata

    return PushMetadata(Path(engine.root) / "distribution" / "v2metadata")


def _local(engine: Engine, name: str) -> Digest | None:
    try:
        return engine.resolve_image(name)
    except ImageNotFound:
        return None


def _say(progress: Progress, text: str) -> None:
    progress(ProgressEvent("", text))


# ------------------------------------------------------------------------------------------ pull


@dataclass(frozen=True)
class PullResult:
    """``reference``: what Docker prints last (the name pulled, or the repository for ``all_tags``)."""

    reference: str
    image_ids: list[Digest]
    digests: list[Digest]
    changed: bool


def _pull_error(e: StrataError, ref: Reference, shown: str) -> StrataError:
    if isinstance(e, NotFound) and str(e).startswith("no matching manifest for"):
        return e  # a list without the platform: Docker says only that
    if isinstance(e, ManifestUnknown | NameUnknown) or (isinstance(e, NotFound) and "manifest" in str(e)):
        return NotFound(f"manifest for {shown} not found: {e}")
    if isinstance(e, Unauthorized | Denied) and ref.domain == DOCKER_HUB:
        return Denied(
            f"pull access denied for {ref.familiar}, repository does not exist or may require "
            f"'docker login': {e}"
        )
    return e


def _pull_one(
    engine: Engine, client: RegistryClient, ref: Reference, progress: Progress, platform: Platform | None
) -> tuple[Digest, Digest, bool]:
    """Pull one tag or digest: (image ID, top-level digest, whether the name now means another image)."""
    from strata.transports.registry import BlobRecord, registry_image
    from strata.transports.store import StoreSink

    reference = str(ref.digest) if ref.digest else (ref.tag or "latest")
    shown = ref.familiar_string()
    before = _local(engine, ref.string())
    try:
        image = registry_image(client, ref.path, reference, platform=platform)
    except StrataError as e:
        raise _pull_error(e, ref, shown) from None
    # once the manifest is known; Docker names a digest pull by the whole familiar reference
    what = ref.without_tag().familiar_string() if ref.digest else ref.tag
    _say(progress, f"{what}: Pulling from {ref.path}")
    refs = [*([ref] if ref.digest is None else []), ref.without_tag().with_digest(image.top_digest)]
    known = image.image_id()
    if _local(engine, str(known)) == known:  # Docker: an image already stored is only tagged
        for r in refs:
            engine.tag(known, r)
        return known, image.top_digest, before != known
    try:
        image.config()
    except StrataError as e:
        raise _pull_error(e, ref, shown) from None
    meta = _metadata(engine)
    sink = StoreSink(
        engine,
        concurrency=MAX_DOWNLOADS,
        known_alias=lambda blob, diff_id: any(r.digest == str(blob) for r in meta.lookup(diff_id)),
    )
    result = copy_image(image, sink, refs, progress)
    for desc, diff_id in zip(image.manifest().layers, image.config().diff_ids, strict=False):
        try:
            meta.add(diff_id, BlobRecord(str(desc.digest), desc.media_type, desc.size, client.registry, ref.path))
        except OSError:
            break
    return result.image_id, image.top_digest, before != result.image_id


def _status(changed: bool, shown: str) -> str:
    return f"Status: {'Downloaded newer image for' if changed else 'Image is up to date for'} {shown}"


def pull(
    name: str,
    *,
    platform: Platform | str | None = None,
    all_tags: bool = False,
    progress: Progress = NO_PROGRESS,
    engine: Engine | None = None,
    root: Path | None = None,
) -> PullResult:
    """``docker pull name`` into the store at ``root`` (or ``engine``); ``name`` without a tag means ``:latest``."""
    ref = parse_normalized_named(name)
    want = Platform.parse(platform) if isinstance(platform, str) else platform
    if all_tags and not ref.is_name_only:
        raise StrataError("tag can't be used with --all-tags/-a")  # the CLI's plain error: exit 1
    if ref.is_name_only and not all_tags:
        ref = ref.with_tag("latest")
    with _engine(engine, root) as eng, _client(ref.domain) as client:
        if not all_tags:
            image_id, top, changed = _pull_one(eng, client, ref, progress, want)
            record_image(eng.root, "pull", ref.familiar_string(), ref.familiar)
            _say(progress, f"Digest: {top}")
            _say(progress, _status(changed, ref.familiar_string()))
            return PullResult(ref.string(), [image_id], [top], changed)
        _say(progress, f"Pulling repository {ref.repository}")
        ids, tops, changed = [], [], False
        for tag in client.tags(ref.path):
            image_id, top, did = _pull_one(eng, client, ref.with_tag(tag), progress, want)
            record_image(eng.root, "pull", ref.with_tag(tag).familiar_string(), ref.familiar)
            ids.append(image_id)
            tops.append(top)
            changed |= did
            _say(progress, f"Digest: {top}")
        _say(progress, _status(changed, ref.familiar))
        return PullResult(ref.repository, ids, tops, changed)


def pull_if_missing(engine: Engine, name: str, *, progress: Progress = NO_PROGRESS,
                    platform: Platform | str | None = None) -> bool:
    """Docker's run/create: an image named by reference that the store lacks is pulled, announced by
    ``Unable to find image '…' locally``. False when nothing was pulled (present, or named by ID)."""
    import re

    if name.startswith("sha256:") or re.fullmatch(r"[0-9a-f]{64}", name) or _local(engine, name) is not None:
        return False
    ref = parse_docker_ref(name)
    _say(progress, f"Unable to find image '{ref.familiar_string()}' locally")
    pull(name, progress=progress, engine=engine, platform=platform)
    return True


# ------------------------------------------------------------------------------------------ push


@dataclass(frozen=True)
class PushResult:
    reference: Reference
    digest: Digest
    size: int


def _local_tags(engine: Engine, ref: Reference) -> list[Reference]:
    found = {r for s in engine.summaries() for r in s.refs if r.repository == ref.repository and r.tag}
    return sorted(found, key=lambda r: r.tag or "")


def _push_one(engine: Engine, client: RegistryClient, ref: Reference, progress: Progress) -> PushResult:
    from strata.transports.registry import RegistrySink
    from strata.transports.store import stored_image

    with engine.writing():  # held like a writer: a concurrent rmi's collection cannot delete blobs mid-push
        image_id = _local(engine, ref.string())
        if image_id is None:
            raise ImageNotFound(ref.familiar_string())
        sink = RegistrySink(client, ref.path, concurrency=MAX_UPLOADS, metadata=_metadata(engine))
        result = copy_image(stored_image(engine, image_id), sink, [ref], progress)
    assert result.manifest_digest is not None
    engine.tag(image_id, ref.without_tag().with_digest(result.manifest_digest))  # Docker's RepoDigest
    _say(progress, f"{ref.tag}: digest: {result.manifest_digest} size: {result.manifest_size}")
    return PushResult(ref, result.manifest_digest, result.manifest_size)


def push(
    name: str,
    *,
    all_tags: bool = False,
    progress: Progress = NO_PROGRESS,
    engine: Engine | None = None,
    root: Path | None = None,
) -> list[PushResult]:
    """``docker push name`` (every local tag of the repository with ``all_tags``)."""
    ref = parse_normalized_named(name)
    if all_tags and not ref.is_name_only:
        raise StrataError("tag can't be used with --all-tags/-a")  # the CLI's plain error: exit 1
    if ref.is_name_only and not all_tags:
        ref = ref.with_tag("latest")
    with _engine(engine, root) as eng:
        # the daemon says where it pushes before it looks for the tags (Docker's pushV2Repository)
        _say(progress, f"The push refers to repository [{ref.repository}]")
        refs = _local_tags(eng, ref) if all_tags else [ref]
        if all_tags and not refs:
            raise StrataError(f"An image does not exist locally with the tag: {ref.familiar}")
        for r in refs:
            if _local(eng, r.string()) is None:
                raise StrataError(f"An image does not exist locally with the tag: {r.familiar}")
        with _client(ref.domain, for_push=True) as client:
            results = []
            for r in refs:
                results.append(_push_one(eng, client, r, progress))
                record_image(eng.root, "push", r.familiar_string(), r.familiar)
            return results


# ------------------------------------------------------------------------------------------ copy


def copy(
    src: str,
    dst: str,
    *,
    all_images: bool = False,
    platform: Platform | str | None = None,
    progress: Progress = NO_PROGRESS,
    engine: Engine | None = None,
    root: Path | None = None,
) -> WriteResult:
    """skopeo's ``copy SRC DST`` between named transports (``docker://``, ``docker-archive:``, ``oci:``,
    ``oci-archive:``, ``strata:``). ``all_images`` copies a whole index, every digest kept."""
    want = Platform.parse(platform) if isinstance(platform, str) else platform
    split_name(src), split_name(dst)  # an unknown transport fails before anything is opened
    opened: list[Engine] = []

    def store() -> Engine:
        if engine is not None:
            return engine
        if not opened:
            from strata.engine import Engine

            opened.append(Engine.open(root))
        return opened[0]

    def metadata() -> PushMetadata | None:
        return _metadata(store()) if engine is not None or root is not None or os.environ.get("STRATA_ROOT") else None

    ctx = TransportContext(store, _client, metadata, MAX_DOWNLOADS, MAX_UPLOADS)
    try:
        with contextlib.ExitStack() as stack:
            result = _copy_list(src, dst, ctx, stack, progress) if all_images else None
            if result is None:
                source = open_source(src, ctx, stack)
                image = _source_image(source, src, want)
                sink, tags = open_sink(dst, ctx, stack, source.tags() or source_tags(src))
                _say(progress, "Getting image source signatures")
                result = copy_image(image, sink, tags, progress)
                _say(progress, "Writing manifest to image destination")
            return result
    finally:
        for eng in opened:
            eng.close()


def _source_image(source: ImageSource, name: str, platform: Platform | None) -> Image:
    try:
        return source.image(platform)
    except StrataError as e:
        refs = source_tags(name)  # a registry's words, as pull says them
        raise (_pull_error(e, refs[0], refs[0].familiar_string()) if refs else e) from None


def _copy_list(
    src: str, dst: str, ctx: TransportContext, stack: contextlib.ExitStack, progress: Progress
) -> WriteResult | None:
    """``copy --all`` of an index; None when the source is one image (then copied as usual)."""
    source = open_index_source(src, ctx, stack)
    if source is None:
        return None
    top = source.top()
    if not isinstance(parse_manifest_or_index(*top), Index):
        return None
    if split_name(dst)[0] not in ("docker", "oci", "oci-archive"):
        raise refuse_lists(dst)  # as skopeo: docker-archive (and a store) hold one image per name
    sink, tags = open_sink(dst, ctx, stack, source.tags() or source_tags(src))
    return copy_index(source, sink, tags, progress, top=top)


# ------------------------------------------------------------------------------------------ login


@dataclass(frozen=True)
class LoginResult:
    """``stored_in_plain_text``: the login went into ``config_file`` base64-encoded (Docker's warning)."""

    server: str
    stored_in_plain_text: bool
    config_file: Path


def check_login(server: str, creds: Credentials) -> str:
    """Ping the registry with ``creds``; the identity (refresh) token its token server issued, if any."""
    with _client(server, creds=creds) as client:
        try:
            client.ping()
        except Unauthorized as e:
            raise Unauthorized(f'Get "{client.endpoint.base_url}/v2/": {e}', status=e.status, errors=e.errors) from None
        return client.auth.refresh_token


def login(server: str | None, username: str, password: str) -> LoginResult:
    """``docker login``: check the credentials against ``server`` (Docker Hub when None), then store
    them (an identity token from the registry's token server in place of the password)."""
    host = normalize_host(server) if server else DOCKER_HUB
    creds = Credentials(username, password)
    identity_token = check_login(host, creds)
    if identity_token:
        creds = Credentials(username, identity_token=identity_token)
    plain = store_credentials(host, creds)
    return LoginResult(host, plain, config_path())
