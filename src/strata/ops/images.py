"""Image operations: list rows, inspect documents, save, load, import, prune, disk usage."""

from __future__ import annotations

from strata import containeruse
from strata.compat.filters import parse_filters
from strata.compat.gotime import get_timestamp, parse_time
from strata.digest import Digest
from strata.engine import Engine, ImageSummary
from strata.errors import ImageNotFound, NotFound, StrataError
from strata.image.spec import empty_container_config
from strata.reference import Reference, id_prefix, parse_any
from strata.store.images import chain_ids
from strata.values import Value

TYPE_CHECKING = False  # typing, shutil and the config builder load only for the commands that use them
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from typing import IO, Any, BinaryIO

__all__ = [
    "DiskImage",
    "ImageRow",
    "disk_images",
    "disk_usage",
    "image_rows",
    "import_rootfs",
    "inspect_container",
    "inspect_doc",
    "load",
    "prune",
    "save",
    "save_selection",
]


class ImageRow(Value):
    __slots__ = ("created", "digest", "id", "repository", "size", "tag")
    id: Digest
    repository: str
    tag: str
    digest: str
    created: float
    size: int

    def __init__(self, id: Digest, repository: str, tag: str, digest: str, created: float, size: int) -> None:
        self._init(id=id, repository=repository, tag=tag, digest=digest, created=created, size=size)


def _filters(filters: list[str]) -> dict[str, list[str]]:
    return parse_filters(filters, ("dangling", "reference", "label", "before", "since"), command="images")


def _dangling_only(fl: dict[str, list[str]]) -> bool:
    """Docker's images filter: ``dangling=true`` lists only dangling images, ``dangling=false`` hides
    them; any other value is an invalid filter."""
    values = fl.get("dangling")
    if values is None:
        return False
    if "true" in values:
        return True
    if "false" not in values:
        raise StrataError(f"Invalid filter 'dangling=[{' '.join(sorted(values))}]'")
    return False


def _path_match(pattern: str, name: str) -> bool:
    """Go's ``path.Match``: ``*`` and ``?`` never match ``/``; ``[...]`` classes with ``^`` and ranges;
    ``\\`` escapes. A malformed pattern raises Docker's ``syntax error in pattern``."""
    import re  # here: the listing commands load this module and match no pattern

    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i >= n:
                raise StrataError("syntax error in pattern")
            out.append(re.escape(pattern[i]))
        elif c == "[":
            i, cls = _char_class(pattern, i + 1)
            out.append(cls)
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.fullmatch("".join(out), name, re.DOTALL) is not None


def _class_char(pattern: str, i: int) -> tuple[int, str]:
    if i >= len(pattern) or pattern[i] in "-]":
        raise StrataError("syntax error in pattern")
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise StrataError("syntax error in pattern")
    return i + 1, pattern[i]


def _char_class(pattern: str, i: int) -> tuple[int, str]:
    """The regex for a ``[...]`` class starting after ``[``; returns the index after ``]``."""
    import re

    negate = i < len(pattern) and pattern[i] == "^"
    if negate:
        i += 1
    parts: list[str] = []
    first = True
    while True:
        if i < len(pattern) and pattern[i] == "]" and not first:
            i += 1
            break
        first = False
        i, lo = _class_char(pattern, i)
        hi = lo
        if i < len(pattern) and pattern[i] == "-":
            i, hi = _class_char(pattern, i + 1)
        if hi < lo:
            raise StrataError("syntax error in pattern")
        parts.append(f"{re.escape(lo)}-{re.escape(hi)}")
    body = "".join(parts)
    return i, f"[^{body}]" if negate else f"[{body}]"


def _familiar_match(pattern: str, ref: Reference) -> bool:
    """Docker's ``reference.FamiliarMatch``: the pattern against the familiar string, then the name."""
    return _path_match(pattern, ref.familiar_string()) or _path_match(pattern, ref.familiar)


def _match_label(s: ImageSummary, wants: list[str]) -> bool:
    labels = s.config.container_config.get("Labels") or {}
    for w in wants:
        k, sep, v = w.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


def _rows_of(refs: list[Reference], with_digests: bool) -> list[tuple[str, str, str]]:
    """Docker's CLI rows of one image: one per repository tag (times its digests with --digests), then
    digest-only repositories; an image without references is one ``<none>`` row."""
    if not refs:
        return [("<none>", "<none>", "<none>")]
    tags: dict[str, list[str]] = {}
    digests: dict[str, list[str]] = {}
    for ref in refs:
        if ref.digest is not None:
            digests.setdefault(ref.familiar, []).append(str(ref.digest))
        else:
            tags.setdefault(ref.familiar, []).append(ref.tag or "")
    rows: list[tuple[str, str, str]] = []
    for repo in sorted(tags):
        ds = digests.pop(repo, []) if with_digests else []
        digests.pop(repo, None)
        for tag in tags[repo]:
            if not ds:
                rows.append((repo, tag, "<none>"))
            rows.extend((repo, tag, d) for d in ds)
    for repo in sorted(digests):
        if with_digests:
            rows.extend((repo, "<none>", d) for d in digests[repo])
        else:
            rows.append((repo, "<none>", ""))
    return rows


def image_rows(
    engine: Engine,
    *,
    all_images: bool = False,
    reference: str | None = None,
    filters: list[str] | None = None,
    digests: bool = False,
) -> list[ImageRow]:
    """The rows of ``docker images``, newest first (daemon/images/images.go's filtering)."""
    fl = _filters(filters or [])
    if reference:
        fl.setdefault("reference", []).append(reference)
    dangling_only = _dangling_only(fl)
    summaries = engine.summaries()
    created = {s.id: parse_time(s.config.created) for s in summaries}
    bounds: dict[str, float] = {}
    for key in ("before", "since"):
        for v in fl.get(key, []):
            bounds[key] = created[engine.resolve_image(v)]
    rows: list[ImageRow] = []
    for s in sorted(summaries, key=lambda s: created[s.id], reverse=True):
        if "before" in bounds and created[s.id] >= bounds["before"]:
            continue
        if "since" in bounds and created[s.id] <= bounds["since"]:
            continue
        if "label" in fl and not _match_label(s, fl["label"]):
            continue
        refs = s.refs
        if "reference" in fl:
            refs = [r for r in refs if any(_familiar_match(p, r) for p in fl["reference"])]
        if not refs:
            if not all_images and s.has_children:
                continue
            if ("dangling" in fl and not dangling_only) or "reference" in fl:
                continue
        elif dangling_only and any(r.digest is None for r in refs):
            continue
        for repo, tag, dig in _rows_of(refs, digests):
            rows.append(ImageRow(s.id, repo, tag, dig, created[s.id], s.size))
    return rows


def inspect_doc(engine: Engine, image_id: Digest) -> dict[str, Any]:
    """``docker image inspect``'s document for one image."""
    s = engine.summary(image_id)
    data = s.config.data
    cfg = data.get("config")
    return {
        "Id": str(s.id),
        "RepoTags": [r.familiar_string() for r in s.refs if r.digest is None],
        "RepoDigests": [r.familiar_string() for r in s.refs if r.digest is not None],
        "Parent": str(s.parent) if s.parent else "",
        "Comment": s.config.comment,
        "Created": s.config.created,
        "Container": str(data.get("container") or ""),
        "ContainerConfig": data.get("container_config") or empty_container_config(),
        "DockerVersion": str(data.get("docker_version") or ""),
        "Author": s.config.author,
        "Config": cfg if isinstance(cfg, dict) else None,
        "Architecture": str(data.get("architecture") or ""),
        **({"Variant": data["variant"]} if data.get("variant") else {}),
        "Os": str(data.get("os") or ""),
        "Size": s.size,
        "VirtualSize": s.size,
        "GraphDriver": {
            "Data": {"LowerDir": ":".join(engine.store.layer_dir_name(d) for d in reversed(s.config.diff_ids))},
            "Name": "overlay",
        },
        "RootFS": {"Type": "layers", "Layers": [str(d) for d in s.config.diff_ids]},
        "Metadata": {"LastTagTime": last_tag_time(engine.root_dir, str(s.id))},
    }


def last_tag_time(root: str | Path, image_id: str) -> str:
    """Docker's ``Metadata.LastTagTime``: when a tag was last set on the image since it was last deleted
    (tag, commit, import with a name; a load or pull sets none), from the event journal; Go's zero time
    when it holds none (also once the journal was trimmed past it)."""
    import time

    from strata.events import read_events

    last = 0
    for msg in read_events(root):
        if msg.get("Type") == "image" and msg.get("id") == image_id:
            if msg.get("Action") == "tag":
                last = msg["timeNano"]
            elif msg.get("Action") == "delete":  # the image went (its metadata with it): loaded again, untagged
                last = 0
    if not last:
        return "0001-01-01T00:00:00Z"
    secs, frac = divmod(last, 1_000_000_000)
    digits = f"{frac:09d}".rstrip("0")  # Go's RFC3339Nano trims trailing zeros
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + (f".{digits}Z" if digits else "Z")


def inspect_container(engine: Engine, name: str) -> dict[str, Any] | None:
    """A container's inspect document, when a container is called ``name``."""
    try:
        return containeruse.current(engine.root_dir).inspect(engine.root_dir, name)  # a str: no pathlib
    except StrataError:
        return None


def save_selection(engine: Engine, names: list[str]) -> list[tuple[Digest, list[Reference]]]:
    """What ``save NAME...`` writes, as Docker's tarexport parseNames: an ID saves the image untagged,
    a bare repository every reference of it (or, with none, the image whose ID it prefixes), a tag or
    digest reference that reference."""
    picked: dict[Digest, list[Reference]] = {}

    def add(image_id: Digest, ref: Reference | None) -> None:
        refs = picked.setdefault(image_id, [])
        if ref is not None and ref not in refs:
            refs.append(ref)

    def by_id(name: str) -> Digest:
        prefix = id_prefix(name)
        matches = engine.meta.find_prefix(prefix) if prefix else []
        if len(matches) != 1:
            raise ImageNotFound(name)
        return matches[0]

    for name in names:
        ref = parse_any(name)
        if isinstance(ref, Digest):
            if engine.meta.get(ref) is None:
                raise ImageNotFound(name)
            add(ref, None)
        elif ref.familiar == "sha256":
            add(by_id(name), None)
        elif ref.tag is None and ref.digest is None:
            named = engine.meta.refs_by_name(ref)
            for r, image_id in named:
                add(image_id, r)
            if not named:
                add(by_id(name), None)
        else:
            found = engine.meta.lookup_ref(ref.without_tag() if ref.digest is not None else ref)
            if found is None or engine.meta.get(found) is None:
                raise StrataError("reference does not exist")  # Docker's words for save
            add(found, ref.without_tag() if ref.digest is not None else ref)
    return list(picked.items())


def save(engine: Engine, selections: list[tuple[Digest, list[Reference]]], out: IO[bytes] | BinaryIO) -> None:
    """Write the images into one archive; the store is held so no collection removes a blob mid-save."""
    from strata.copier import copy_image  # imported here: listing commands start without the transports
    from strata.transports.docker_archive import ArchiveSink

    with engine.writing():
        writer = ArchiveSink(out, tar_size=engine.meta.layer_tar_size, parent_of=lambda i: _parent(engine, i))
        for image_id, tags in selections:
            copy_image(engine.image(image_id), writer, tags)
        writer.close()


def _parent(engine: Engine, image_id: Digest) -> Digest | None:
    row = engine.meta.get(image_id)
    return row.parent if row is not None else None


def load(engine: Engine, stream: IO[bytes] | BinaryIO) -> list[str]:
    """Load every image of a docker or OCI archive; returns Docker's ``Loaded image`` lines. The store is
    held from the first staged byte, so a collection never removes the staging dir under the load."""
    with engine.writing():
        return _load(engine, stream)


def _load(engine: Engine, stream: IO[bytes] | BinaryIO) -> list[str]:
    import shutil

    from strata.copier import copy_image
    from strata.transports.docker_archive import archive_images
    from strata.transports.store import StoreSink
    from strata.transports.tarball import unpack_archive

    staging = engine.store.temp_dir("load-")
    try:
        unpack_archive(stream, staging)
        lines: list[str] = []
        sink = StoreSink(engine)
        for image, tags in archive_images(staging):
            for t in tags:
                old = engine.meta.lookup_ref(t)
                if old is not None and old != image.image_id():
                    lines.append(
                        f"The image {t.familiar_string()} already exists, renaming the old one with ID {old} to empty string"
                    )
            result = copy_image(image, sink, tags)
            from strata.events import record_image

            record_image(engine.root, "load", str(result.image_id))
            if tags:
                lines.extend(f"Loaded image: {t.familiar_string()}" for t in tags)
            else:
                lines.append(f"Loaded image ID: {result.image_id}")
        return lines
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _open_source(source: str, stdin: Any, say: Callable[[str], None] | None = None) -> Any:
    """The stream ``import`` reads, as a context manager (contextlib is loaded only by import); a URL's
    download is announced through ``say`` once it answered, as Docker's ``Downloading from URL``."""
    import contextlib

    @contextlib.contextmanager
    def opened() -> Iterator[Any]:
        if source == "-":
            yield stdin.buffer if hasattr(stdin, "buffer") else stdin
        elif source.startswith(("http://", "https://")):
            with _url_get(source) as resp:
                if say is not None:
                    say(f"Downloading from {source}")
                yield resp
        else:
            try:
                f = open(source, "rb")  # noqa: SIM115 - closed below
            except FileNotFoundError:
                raise StrataError(f"open {source}: no such file or directory") from None
            with f:
                yield f

    return opened()


def _url_get(source: str) -> Any:
    """The answer to a GET of ``source``, or the daemon's GetWithStatusError message: ``failed to GET
    URL with status 404 Not Found: <body>`` (NotFound for a 404), Go's ``Get "URL": …`` when none came."""
    import urllib.error
    import urllib.request

    try:
        return urllib.request.urlopen(source, timeout=60)
    except urllib.error.HTTPError as e:
        with e:
            body = e.read()
        msg = f"failed to GET {source} with status {e.code} {e.reason}: {body.decode(errors='replace').strip()}"
        raise (NotFound(msg) if e.code == 404 else StrataError(msg)) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ConnectionRefusedError):
            from urllib.parse import urlsplit

            parts = urlsplit(source)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            reason = f"dial tcp {parts.hostname}:{port}: connect: connection refused"
        raise StrataError(f'Get "{source}": {reason}') from None


def import_rootfs(
    engine: Engine,
    source: str,
    *,
    tag: Reference | None = None,
    changes: list[str] | None = None,
    message: str = "",
    stdin: Any = None,
    say: Callable[[str], None] | None = None,
) -> Digest:
    """``docker import``: a rootfs tarball (any compression) becomes a one-layer image."""
    from strata import __version__
    from strata.archive.compression import open_decompressed
    from strata.image.config import apply_changes, new_image_config

    config = apply_changes(empty_container_config(), changes or [])
    is_url = source.startswith(("http://", "https://"))
    comment = message or f"Imported from {source if is_url else '-'}"
    with _open_source(source, stdin, say) as raw:
        plain = open_decompressed(raw)
        with engine.writing():
            layer = engine.ingest_layer(plain)
            data = new_image_config(config=config, comment=comment, docker_version=__version__)
            data["rootfs"] = {"type": "layers", "diff_ids": [str(layer.diff_id)]}
            from strata.image.spec import ImageConfig

            raw_config = ImageConfig.from_dict(data).raw
            return engine.commit_image(raw_config, [layer], refs=[tag] if tag else [])


PRUNE_FILTERS = ("dangling", "until", "label", "label!")


def _until(values: list[str]) -> float | None:
    """Docker's GetTimestamp for ``until``: a duration back from now, a Unix time or an RFC 3339 time."""
    if not values:
        return None
    if len(values) > 1:
        raise StrataError("more than one until filter specified")
    return get_timestamp(values[0])


def _labels_match(labels: dict[str, str], wanted: list[str], negated: list[str]) -> bool:
    def kv(want: str) -> bool:
        k, sep, v = want.partition("=")
        return k in labels and (not sep or labels[k] == v)

    if wanted and not all(kv(w) for w in wanted):
        return False
    return not (negated and all(kv(w) for w in negated))


def prune(engine: Engine, *, all_images: bool, filters: list[str] | None = None) -> tuple[list[tuple[str, str]], int]:
    """``image prune`` as Docker's ImagesPrune: dangling images (with ``all``, every image), filtered by
    ``until`` and ``label``/``label!``; each is removed without force (an image a container uses, or one
    with children, is passed over). Returns the ``Untagged``/``Deleted`` lines and the bytes of the layers
    removed, as Docker counts them."""
    items = [*(filters or []), f"dangling={'false' if all_images else 'true'}"]
    fl = parse_filters(items, PRUNE_FILTERS, command="image prune", flag="--filter")
    dangling = fl["dangling"]
    dangling_only = True
    if "false" in dangling or "0" in dangling:
        dangling_only = False
    elif "true" not in dangling and "1" not in dangling:
        raise StrataError(f"Invalid filter 'dangling=[{' '.join(sorted(dangling))}]'")
    until = _until(fl.get("until", []))
    summaries = engine.summaries()
    layer_bytes = {
        str(c): engine.meta.layer_size(d)
        for s in summaries
        for d, c in zip(s.config.diff_ids, chain_ids(s.config.diff_ids), strict=True)
    }
    lines: list[tuple[str, str]] = []
    for s in summaries:
        if dangling_only and s.has_children:
            continue  # Docker's heads: images nothing is built on
        if not s.refs and s.has_children:
            continue
        if until is not None and parse_time(s.config.created) > until:
            continue
        labels = s.config.container_config.get("Labels") or {}
        if not _labels_match(labels, fl.get("label", []), fl.get("label!", [])):
            continue
        if s.refs:
            if dangling_only and any(r.digest is None for r in s.refs):
                continue
            names = [r.string() for r in s.refs]
        else:
            names = [s.id.hex]
        for name in names:
            try:
                result = engine.rmi(name, force=False, prune=True)
            except StrataError:
                continue
            lines.extend(result.lines)
    reclaimed = sum(layer_bytes.get(text, 0) for kind, text in lines if kind == "Deleted")
    return lines, reclaimed


class DiskImage(Value):
    """One image of ``system df``: Docker's list (intermediate images left out) with shared sizes."""

    __slots__ = ("containers", "created", "shared", "summary")
    summary: ImageSummary
    created: float
    shared: int
    containers: int

    def __init__(self, summary: ImageSummary, created: float, shared: int, containers: int) -> None:
        self._init(summary=summary, created=created, shared=shared, containers=containers)


def disk_images(engine: Engine) -> tuple[list[DiskImage], int]:
    """The images ``system df`` counts, newest first, and the bytes of every layer any image uses.

    As the daemon's Images(withExtraAttrs): a layer chain counted by more than one listed image is
    shared; an untagged image with children is not listed."""
    summaries = engine.summaries()
    listed = [s for s in summaries if s.refs or not s.has_children]
    use = engine.container_use()
    refs: dict[Digest, int] = {}
    for s in listed:
        for c in chain_ids(s.config.diff_ids):
            refs[c] = refs.get(c, 0) + 1
    sizes: dict[Digest, int] = {}
    for s in summaries:
        for d, c in zip(s.config.diff_ids, chain_ids(s.config.diff_ids), strict=True):
            sizes.setdefault(c, engine.meta.layer_size(d))
    out = []
    for s in listed:
        shared = sum(sizes[c] for c in chain_ids(s.config.diff_ids) if refs[c] > 1)
        out.append(DiskImage(s, parse_time(s.config.created), shared, len(use.get(s.id, []))))
    out.sort(key=lambda i: i.created, reverse=True)
    return out, sum(sizes.values())


def disk_usage(engine: Engine) -> list[dict[str, Any]]:
    """``system df`` rows (images, containers, volumes, build cache): each with ``type``, ``total``,
    ``active``, ``size`` and ``reclaimable`` bytes. Images reclaim, as the CLI reckons it, everything but
    the unique bytes of the images containers use."""
    images, total = disk_images(engine)
    used = [i for i in images if i.containers]
    reclaimable = total - sum(i.summary.size - i.shared for i in used)
    return [
        {"type": "Images", "total": len(images), "active": len(used), "size": total, "reclaimable": reclaimable},
        _container_df(engine),
        _volume_df(engine),
        {"type": "Build Cache", "total": 0, "active": 0, "size": 0, "reclaimable": 0},
    ]


def _volume_df(engine: Engine) -> dict[str, Any]:
    total, active, size, reclaimable = containeruse.current(engine.root).volume_usage(engine.root)
    return {"type": "Local Volumes", "total": total, "active": active, "size": size, "reclaimable": reclaimable}


def _container_df(engine: Engine) -> dict[str, Any]:
    total, active, size, reclaimable = containeruse.current(engine.root).disk_usage(engine.root)
    return {"type": "Containers", "total": total, "active": active, "size": size, "reclaimable": reclaimable}
