"""``Engine``: the local image engine over one store root — resolve, add, tag, remove, list, unpack.

Commands (CLI or a program) open one with ``Engine.open(root)``; transports read images through
``engine.image(id)`` and write them through ``strata.transports.store.StoreSink(engine)`` (the engine
does not know the transports).
"""

from __future__ import annotations

import io
import os

from strata import containeruse
from strata.digest import Digest
from strata.errors import ImageNotFound, InvalidReference, StoreError, StrataError
from strata.image import mediatypes as mt
from strata.image.spec import Descriptor, ImageConfig, Manifest
from strata.reference import Reference, id_prefix, parse_any
from strata.store.blobs import LayerBlob, ingest_blob, ingest_layer
from strata.store.db import close as db_close
from strata.store.db import connect
from strata.store.images import ImageRecord, Metadata
from strata.store.root import StoreLock, StoreRoot, as_path, default_root_dir, plain_path
from strata.values import Value

TYPE_CHECKING = False  # typing's costs a listing command; the image model and rmi load when used
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from pathlib import Path
    from typing import Any, BinaryIO

    from strata.image.api import Image, Layer
    from strata.store.delete import DeleteResult

__all__ = ["Engine", "ImageSummary"]

_LAYER_TYPES = {"none": mt.OCI_LAYER, "gzip": mt.DOCKER_LAYER, "zstd": mt.OCI_LAYER_ZSTD}


class ImageSummary(Value):
    """What ``images`` and ``inspect`` show of one stored image."""

    __slots__ = ("config", "has_children", "id", "parent", "refs", "size")
    id: Digest
    parent: Digest | None
    config: ImageConfig
    refs: list[Reference]
    size: int
    has_children: bool

    def __init__(
        self, id: Digest, parent: Digest | None, config: ImageConfig, refs: list[Reference], size: int,
        has_children: bool,
    ) -> None:
        self._init(id=id, parent=parent, config=config, refs=refs, size=size, has_children=has_children)


def _sync_filesystem(path: Path) -> None:
    """syncfs(2) on the filesystem holding ``path`` (one call instead of an fsync per unpacked file);
    ``sync()`` where syncfs is not available."""
    import ctypes

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


class Engine:
    """The image engine over the store at ``root`` (``root_dir``, a ``str``; ``root``, a ``Path``)."""

    def __init__(self, root: str | Path) -> None:
        self.root_dir = plain_path(root)
        self.store = StoreRoot(self.root_dir)
        self.conn = connect(self.store.db_file)
        self.meta = Metadata(self.conn)

    @property
    def root(self) -> Path:
        return as_path(self.root_dir)

    @classmethod
    def open(cls, root: str | Path | None = None) -> Engine:
        return cls(root or default_root_dir())

    def close(self) -> None:
        db_close(self.conn)  # the ``build`` program leaves it to its exit (store.db.exit_without_close)

    # --- lookup ------------------------------------------------------------------------------------

    def resolve(self, name: str) -> tuple[Digest, bool]:
        """The image ``name`` means, and whether it named it by ID (Docker's GetImage order)."""
        try:
            ref = parse_any(name)
        except InvalidReference:
            raise
        if isinstance(ref, Digest):
            if self.meta.get(ref) is not None:
                return ref, True
            raise ImageNotFound(name)
        if ref.digest is not None and ref.tag is not None:
            ref = ref.without_tag()
        found = self.meta.lookup_ref(ref.tag_name_only())
        if found is not None and self.meta.get(found) is not None:
            return found, False
        prefix = id_prefix(name)
        if prefix:
            matches = self.meta.find_prefix(prefix)
            if len(matches) == 1:
                return matches[0], True
        raise ImageNotFound(ref.tag_name_only().familiar_string())

    def resolve_image(self, name: str) -> Digest:
        return self.resolve(name)[0]

    def record(self, image_id: Digest) -> ImageRecord:
        rec = self.meta.get(image_id)
        if rec is None:
            raise ImageNotFound(str(image_id))
        return rec

    def image_config(self, image_id: Digest) -> ImageConfig:
        """The image's configuration; an image another process removed meanwhile is No such image."""
        try:
            return ImageConfig.parse(self.store.read_blob(image_id))
        except FileNotFoundError:
            raise ImageNotFound(str(image_id)) from None

    def image(self, image_id: Digest) -> Image:
        """The stored image as an ``Image``: layers are the blobs as stored (their manifest, if pulled)."""
        from strata.image.api import BlobLayer, SimpleImage, image_manifest
        rec = self.record(image_id)
        config = self.image_config(image_id)
        manifest: Manifest | None = None
        stored = self.meta.image_layers(image_id)
        if rec.manifest is not None and self.store.blob_path(rec.manifest).exists():
            manifest = Manifest.parse(self.store.blob_path(rec.manifest).read_bytes())
            if [d.digest for d in manifest.layers] != [blob for _, blob in stored]:
                manifest = None  # some layers are kept in another form than the manifest names
        layers: list[Layer] = []
        for i, (diff_id, blob) in enumerate(stored):
            info = self.meta.blob(blob)
            size, kind = (info[0], info[1]) if info else (0, "none")
            media = manifest.layers[i].media_type if manifest else _LAYER_TYPES.get(kind, mt.OCI_LAYER)
            layers.append(BlobLayer(Descriptor(media, blob, size), self._opener(blob), diff_id))
        if manifest is None:
            kinds = {lay.media_type() for lay in layers}
            mtype = mt.DOCKER_MANIFEST if kinds <= {mt.DOCKER_LAYER} else mt.OCI_MANIFEST
            manifest = image_manifest(config, layers, mtype)
        return SimpleImage(config, layers, manifest)

    def _opener(self, blob: Digest) -> Any:
        path = self.store.blob_path(blob)

        def open_blob() -> AbstractContextManager[BinaryIO]:
            try:
                return open(path, "rb")
            except FileNotFoundError:
                raise StoreError(f"layer blob {blob} is missing from the store") from None

        return open_blob

    def blob_layers(self, diff_id: Digest) -> list[tuple[Digest, int, str]]:
        """Every stored blob of a layer: (digest, size, compression)."""
        return self.meta.blobs_for_diff(diff_id)

    # --- writing -----------------------------------------------------------------------------------

    def writing(self) -> StoreLock:
        """Held (``with``) while blobs are written and recorded: deleters wait for it."""
        return self.store.lock(exclusive=False)

    def ingest_layer(self, stream: Any, expected: Digest | None = None, diff_id: Digest | None = None) -> LayerBlob:
        return ingest_layer(self.store, stream, expected, diff_id)

    def known_layer(self, blob: Digest) -> LayerBlob | None:
        """The stored layer blob with this digest, if the store has it."""
        info = self.meta.blob(blob)
        if info is None or info[2] is None or not self.store.blob_path(blob).exists():
            return None
        size, kind, diff_id = info
        assert diff_id is not None
        return LayerBlob(
            blob, size, diff_id, self.meta.layer_size(diff_id), kind, self.meta.layer_tar_size(diff_id)
        )

    def record_layer_blob(self, lay: LayerBlob) -> None:
        with self.meta.transaction():
            self.meta.add_layer_blob(lay)
            self.meta.put_layer(lay)

    def commit_image(
        self,
        config_raw: bytes,
        layers: list[LayerBlob],
        *,
        parent: Digest | None = None,
        manifest_raw: bytes | None = None,
        refs: list[Reference] = (),  # type: ignore[assignment]
    ) -> Digest:
        """Make an image visible: config (and manifest) blobs, then one transaction for records and refs."""
        config = ImageConfig.parse(config_raw)
        if [lay.diff_id for lay in layers] != config.diff_ids:
            raise StoreError("image layers do not match the diff IDs of its configuration")
        if sum(1 for h in config.history if not h.get("empty_layer")) > len(config.diff_ids):
            raise StrataError("too many non-empty layers in History section")  # Docker's image store refuses it
        image_id, _ = ingest_blob(self.store, io.BytesIO(config_raw))
        manifest = None
        if manifest_raw is not None:
            manifest, _ = ingest_blob(self.store, io.BytesIO(manifest_raw))
        with self.meta.transaction():
            self.meta.put_image(image_id, layers, parent=parent, manifest=manifest, config_size=len(config_raw))
            if manifest is not None:
                self.meta.put_blob(manifest, len(manifest_raw or b""), "manifest")
            for ref in refs:
                self.meta.set_ref(ref, image_id)
        return image_id

    def parent_layers(self, parent: Digest | None) -> list[LayerBlob]:
        """The stored layers of ``parent`` (none for ``None``), lowest first, for an image built on it."""
        layers: list[LayerBlob] = []
        if parent is not None:
            for diff_id, blob in self.meta.image_layers(parent):
                known = self.known_layer(blob)
                if known is None:
                    raise StoreError(f"layer {diff_id} of {parent} is missing from the store")
                layers.append(known)
        return layers

    def add_image(
        self,
        config: dict[str, Any],
        new_layer_tar: Path | None,
        *,
        parent: Digest | None,
        tag: Reference | None,
    ) -> Digest:
        """Create an image from a config dict plus, optionally, one new layer tar on top of ``parent``."""
        with self.writing():
            layers = self.parent_layers(parent)
            if new_layer_tar is not None:
                with open(new_layer_tar, "rb") as f:
                    layers.append(self.ingest_layer(f))
            data = dict(config)
            data["rootfs"] = {"type": "layers", "diff_ids": [str(lay.diff_id) for lay in layers]}
            raw = ImageConfig.from_dict(data).raw
            return self.commit_image(raw, layers, parent=parent, refs=[tag] if tag else [])

    # --- references --------------------------------------------------------------------------------

    def tag(self, image_id: Digest, ref: Reference) -> None:
        with self.meta.transaction():
            self.record(image_id)
            self.meta.set_ref(ref.tag_name_only() if ref.digest is None else ref, image_id)

    def refs(self, image_id: Digest) -> list[Reference]:
        return self.meta.refs(image_id)

    # --- removal -----------------------------------------------------------------------------------

    def container_use(self) -> dict[Digest, list[tuple[str, bool]]]:
        return containeruse.current(self.root).images_in_use(self.root)

    def _container_layer_dirs(self) -> set[str]:
        """Names of unpacked layer dirs some container still stacks (kept even when no image uses them)."""
        return containeruse.current(self.root).layer_dirs_in_use(self.root)

    def rmi(self, name: str, *, force: bool = False, prune: bool = True) -> DeleteResult:
        """Docker's rmi of one name. The name is resolved inside the deleting transaction: two processes
        removing the same reference at once see one ``Untagged``, the other ``No such image``."""
        from strata.store.delete import delete_image
        with self.meta.transaction():
            image_id, by_id = self.resolve(name)
            result = delete_image(
                self.meta, name, image_id, by_id, force=force, prune=prune, use=self.container_use
            )
        if result.deleted:
            self.collect_garbage()
        return result

    def collect_garbage(self) -> None:
        """Delete blob files and unpacked layers no image uses; skipped while another process holds the
        store (``writing()``: writers, loads, saves, unpacks), whose files are then left for the next one.

        Under the exclusive lock nothing is in flight, so files no row knows are garbage too: blobs a
        killed writer renamed into place before its transaction, unpacked dirs of forgotten layers,
        per-layer lock files and staging leftovers in tmp/."""
        import shutil
        with self.store.lock(exclusive=True, blocking=False) as got:
            if not got:
                return
            in_use = self._container_layer_dirs()
            with self.meta.transaction():
                blobs = self.meta.unreferenced_blobs()
                layers = [d for d in self.meta.unreferenced_layers() if d.hex not in in_use]
                for b in blobs:
                    self.meta.forget_blob(b)
                for d in layers:
                    self.meta.forget_layer(d)
            for b in blobs:
                try:
                    self.store.blob_path(b).unlink()
                except FileNotFoundError:
                    pass
            for d in layers:
                shutil.rmtree(self.store.layer_dir(d), ignore_errors=True)
            self._sweep_unknown_files(in_use)
            self.store.clean_tmp()

    def _sweep_unknown_files(self, in_use: set[str]) -> None:
        """Remove blob files and layer dirs without a row (call under the exclusive lock only)."""
        import shutil
        known_blobs = self.meta.blob_hexes()
        for path in (self.store.path / "blobs" / "sha256").iterdir():
            if path.name not in known_blobs:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
        known_layers = self.meta.layer_hexes() | in_use
        for path in (self.store.path / "layers").iterdir():
            if path.name.startswith(".") and path.name.endswith(".lock"):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
            elif path.name not in known_layers:
                shutil.rmtree(path, ignore_errors=True)

    # --- listing -----------------------------------------------------------------------------------

    def summaries(self) -> list[ImageSummary]:
        refs = self.meta.all_refs()
        parents = {r.parent for r in self.meta.all() if r.parent}
        out = []
        for rec in self.meta.all():
            try:
                config = self.image_config(rec.id)
            except ImageNotFound:
                continue
            size = sum(self.meta.layer_size(d) for d in config.diff_ids)
            own = sorted(refs.get(rec.id, []), key=lambda r: r.string())  # Docker's lexical order
            out.append(ImageSummary(rec.id, rec.parent, config, own, size, rec.id in parents))
        return out

    def summary(self, image_id: Digest) -> ImageSummary:
        rec = self.record(image_id)
        config = self.image_config(image_id)
        size = sum(self.meta.layer_size(d) for d in config.diff_ids)
        return ImageSummary(
            rec.id, rec.parent, config, self.meta.refs(rec.id), size, bool(self.meta.children(rec.id))
        )

    def history(self, image_id: Digest) -> list[dict[str, Any]]:
        """Docker's history: newest first; local image IDs down the parent chain, ``<missing>`` below."""
        config = self.image_config(image_id)
        diff_ids = config.diff_ids
        rows: list[dict[str, Any]] = []
        n = 0
        for h in config.history:  # an image without history has none to show, as Docker's
            size = 0
            if not h.get("empty_layer"):
                if n >= len(diff_ids):
                    raise StrataError("too many non-empty layers in History section")
                size = self.meta.layer_size(diff_ids[n])
                n += 1
            rows.insert(
                0,
                {
                    "id": None,
                    "created": str(h.get("created") or ""),
                    "created_by": str(h.get("created_by") or ""),
                    "comment": str(h.get("comment") or ""),
                    "size": size,
                    "tags": [],
                },
            )
        current: Digest | None = image_id
        for row in rows:
            if current is None:
                break
            row["id"] = current
            row["tags"] = [r.familiar_string() for r in self.meta.refs(current) if r.digest is None]
            rec = self.meta.get(current)
            current = rec.parent if rec else None
        return rows

    # --- layers on disk ----------------------------------------------------------------------------

    def layer_dirs(self, image_id: Digest) -> list[Path]:
        """Overlay-ready unpacked layer directories of an image, lowest first (unpacked on first use)."""
        return [self.unpacked_layer(diff_id, blob) for diff_id, blob in self.meta.image_layers(image_id)]

    def unpacked_layer(self, diff_id: Digest, blob: Digest) -> Path:
        """The layer's directory, unpacked on first use into tmp/ and renamed into place. Unpacking holds
        the store shared (a collection never removes the staging dir under it) and a per-layer lock (two
        processes unpacking the same layer: the second waits and uses the first's result)."""
        final = self.store.layer_dir(diff_id)
        if final.is_dir():
            return final
        with self.writing():
            return self._unpack(diff_id, blob, final)

    def _unpack(self, diff_id: Digest, blob: Digest, final: Path) -> Path:
        lock_path = self.store.path / "layers" / f".{diff_id.hex}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
            if final.is_dir():
                return final
            import shutil

            from strata.archive import apply_layer
            from strata.atomicfile import fsync_dir
            from strata.rootless.mode import overlay_xattr_prefix

            tmp = self.store.temp_dir("layer-")
            try:
                with self._opener(blob)() as f:
                    apply_layer(f, tmp / "diff", whiteouts="overlay", devices="make",
                                overlay_xattr_prefix=overlay_xattr_prefix())  # user.overlay. when rootless
                _sync_filesystem(tmp)  # the files are on disk before the dir can be seen complete
                os.replace(tmp / "diff", final)
                fsync_dir(final.parent)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return final
        finally:
            os.close(fd)

    def adopt_layer_dir(self, diff_id: Digest, path: Path, prepare: Callable[[Path], bool], xattr_prefix: str) -> bool:
        """``path`` (an overlay-format tree on the store's filesystem) becomes the layer's unpacked
        directory once ``prepare(path)`` made it exactly what the layer's tar unpacks to (False: it
        cannot), under the per-layer lock ``_unpack`` takes (call with the store's writing lock held).
        False when the layer is unpacked already or the tree's overlay xattrs (``xattr_prefix``) are
        not in the namespace the unpack writes."""
        from strata.rootless.mode import overlay_xattr_prefix

        final = self.store.layer_dir(diff_id)
        if overlay_xattr_prefix() != xattr_prefix or final.is_dir():
            return False
        fd = os.open(self.store.path / "layers" / f".{diff_id.hex}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            import fcntl

            from strata.atomicfile import fsync_dir

            fcntl.flock(fd, fcntl.LOCK_EX)
            if final.is_dir() or not prepare(path):
                return False
            _sync_filesystem(path)  # the files are on disk before the dir can be seen complete
            os.replace(path, final)
            fsync_dir(final.parent)
            return True
        finally:
            os.close(fd)
