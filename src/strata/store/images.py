"""Image metadata in SQLite: image records, their layers, tags and digest references.

Every method runs inside the caller's transaction where it writes; reads are plain queries."""

from __future__ import annotations

import time

from strata.digest import Digest
from strata.reference import Reference, parse_stored
from strata.values import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3

    from strata.store.blobs import LayerBlob

__all__ = ["ImageRecord", "Metadata", "Transaction", "chain_ids"]


def chain_ids(diff_ids: list[Digest]) -> list[Digest]:
    """Docker's layer chain IDs: ``chain(0) = diff(0)``, ``chain(n) = sha256(chain(n-1) + " " + diff(n))``."""
    from strata.digest import digest_bytes

    out: list[Digest] = []
    for d in diff_ids:
        out.append(d if not out else digest_bytes(f"{out[-1]} {d}".encode()))
    return out


class ImageRecord(Value):
    __slots__ = ("added", "id", "manifest", "parent")
    id: Digest
    parent: Digest | None
    added: float
    manifest: Digest | None

    def __init__(self, id: Digest, parent: Digest | None, added: float, manifest: Digest | None) -> None:
        self._init(id=id, parent=parent, added=added, manifest=manifest)


def _rec(row: tuple[str, str, float, str]) -> ImageRecord:
    return ImageRecord(
        Digest.parse(row[0]),
        Digest.parse(row[1]) if row[1] else None,
        row[2],
        Digest.parse(row[3]) if row[3] else None,
    )


class Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` when the block raises (a class, not a contextlib
    generator: contextlib's import costs every command)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


class Metadata:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def transaction(self) -> Transaction:
        return Transaction(self.conn)

    # --- images ----------------------------------------------------------------------------------

    def get(self, image_id: Digest) -> ImageRecord | None:
        row = self.conn.execute(
            "SELECT id, parent, added, manifest FROM images WHERE id=?", (str(image_id),)
        ).fetchone()
        return _rec(row) if row else None

    def all(self) -> list[ImageRecord]:
        rows = self.conn.execute("SELECT id, parent, added, manifest FROM images ORDER BY added DESC").fetchall()
        return [_rec(r) for r in rows]

    def find_prefix(self, hexprefix: str) -> list[Digest]:
        rows = self.conn.execute(
            "SELECT id FROM images WHERE id >= ? AND id < ? ORDER BY id",
            (f"sha256:{hexprefix}", f"sha256:{hexprefix}\x7f"),
        ).fetchall()
        return [Digest.parse(r[0]) for r in rows]

    def children(self, image_id: Digest) -> list[Digest]:
        rows = self.conn.execute("SELECT id FROM images WHERE parent=?", (str(image_id),)).fetchall()
        return [Digest.parse(r[0]) for r in rows]

    def put_image(
        self,
        image_id: Digest,
        layers: list[LayerBlob],
        *,
        parent: Digest | None,
        manifest: Digest | None,
        config_size: int,
    ) -> bool:
        """Record an image and its layers (blobs must already be in place). False if it existed."""
        if self.get(image_id) is not None:
            if manifest is not None:
                self.conn.execute(
                    "UPDATE images SET manifest=? WHERE id=? AND manifest=''", (str(manifest), str(image_id))
                )
            return False
        self.conn.execute(
            "INSERT OR IGNORE INTO blobs(digest, size, media_type) VALUES (?,?,?)",
            (str(image_id), config_size, "config"),
        )
        for pos, lay in enumerate(layers):
            self.conn.execute(
                "INSERT OR IGNORE INTO blobs(digest, size, media_type, diff_id) VALUES (?,?,?,?)",
                (str(lay.digest), lay.size, lay.compression, str(lay.diff_id)),
            )
            self.put_layer(lay)
            self.conn.execute(
                "INSERT INTO image_layers(image_id, position, diff_id, blob) VALUES (?,?,?,?)",
                (str(image_id), pos, str(lay.diff_id), str(lay.digest)),
            )
        self.conn.execute(
            "INSERT INTO images(id, parent, added, manifest) VALUES (?,?,?,?)",
            (str(image_id), str(parent) if parent else "", time.time(), str(manifest) if manifest else ""),
        )
        return True

    def set_parent(self, image_id: Digest, parent: Digest) -> None:
        """Docker's ``SetParent``: the image becomes a child of ``parent`` (a build's ``--cache-from`` hit)."""
        self.conn.execute("UPDATE images SET parent=? WHERE id=?", (str(parent), str(image_id)))

    def put_blob(self, digest: Digest, size: int, kind: str) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO blobs(digest, size, media_type) VALUES (?,?,?)", (str(digest), size, kind)
        )

    def add_layer_blob(self, lay: LayerBlob) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO blobs(digest, size, media_type, diff_id) VALUES (?,?,?,?)",
            (str(lay.digest), lay.size, lay.compression, str(lay.diff_id)),
        )

    def put_layer(self, lay: LayerBlob) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO layers(diff_id, size, tar_size) VALUES (?,?,?)",
            (str(lay.diff_id), lay.content_size, lay.tar_size),
        )

    def layer_tar_size(self, diff_id: Digest) -> int:
        row = self.conn.execute("SELECT tar_size FROM layers WHERE diff_id=?", (str(diff_id),)).fetchone()
        return int(row[0]) if row else 0

    def image_layers(self, image_id: Digest) -> list[tuple[Digest, Digest]]:
        """(diff_id, blob digest) of each layer, lowest first."""
        rows = self.conn.execute(
            "SELECT diff_id, blob FROM image_layers WHERE image_id=? ORDER BY position", (str(image_id),)
        ).fetchall()
        return [(Digest.parse(a), Digest.parse(b)) for a, b in rows]

    def layer_size(self, diff_id: Digest) -> int:
        row = self.conn.execute("SELECT size FROM layers WHERE diff_id=?", (str(diff_id),)).fetchone()
        return int(row[0]) if row else 0

    def blob(self, digest: Digest) -> tuple[int, str, Digest | None] | None:
        row = self.conn.execute(
            "SELECT size, media_type, diff_id FROM blobs WHERE digest=?", (str(digest),)
        ).fetchone()
        if not row:
            return None
        return int(row[0]), str(row[1]), Digest.parse(row[2]) if row[2] else None

    def blobs_for_diff(self, diff_id: Digest) -> list[tuple[Digest, int, str]]:
        rows = self.conn.execute(
            "SELECT digest, size, media_type FROM blobs WHERE diff_id=?", (str(diff_id),)
        ).fetchall()
        return [(Digest.parse(a), int(b), str(c)) for a, b, c in rows]

    def delete_image(self, image_id: Digest) -> None:
        self.conn.execute("DELETE FROM image_layers WHERE image_id=?", (str(image_id),))
        self.conn.execute("DELETE FROM images WHERE id=?", (str(image_id),))
        self.conn.execute("UPDATE images SET parent='' WHERE parent=?", (str(image_id),))

    def chain_in_use(self, diff_ids: list[Digest]) -> bool:
        """Whether any image has exactly these diff IDs as the bottom of its layer list."""
        n = len(diff_ids)
        rows = self.conn.execute(
            "SELECT image_id FROM image_layers WHERE position=? AND diff_id=?", (n - 1, str(diff_ids[-1]))
        ).fetchall()
        for (img,) in rows:
            got = [d for d, _ in self.image_layers(Digest.parse(img))][:n]
            if got == diff_ids:
                return True
        return False

    def unreferenced_blobs(self) -> list[Digest]:
        """Blobs no image uses: not a config, not a layer blob of an image, not a manifest of an image."""
        rows = self.conn.execute(
            """SELECT digest FROM blobs b WHERE
                 NOT EXISTS (SELECT 1 FROM images i WHERE i.id=b.digest OR i.manifest=b.digest)
             AND NOT EXISTS (SELECT 1 FROM image_layers l WHERE l.blob=b.digest OR l.diff_id=b.diff_id)"""
        ).fetchall()
        return [Digest.parse(r[0]) for r in rows]

    def unreferenced_layers(self) -> list[Digest]:
        rows = self.conn.execute(
            "SELECT diff_id FROM layers y WHERE NOT EXISTS (SELECT 1 FROM image_layers l WHERE l.diff_id=y.diff_id)"
        ).fetchall()
        return [Digest.parse(r[0]) for r in rows]

    def blob_hexes(self) -> set[str]:
        return {str(r[0]).partition(":")[2] for r in self.conn.execute("SELECT digest FROM blobs")}

    def layer_hexes(self) -> set[str]:
        return {str(r[0]).partition(":")[2] for r in self.conn.execute("SELECT diff_id FROM layers")}

    def forget_blob(self, digest: Digest) -> None:
        self.conn.execute("DELETE FROM blobs WHERE digest=?", (str(digest),))

    def forget_layer(self, diff_id: Digest) -> None:
        self.conn.execute("DELETE FROM layers WHERE diff_id=?", (str(diff_id),))

    # --- references --------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        row = self.conn.execute(
            "SELECT MAX(s) FROM (SELECT MAX(seq) s FROM tags UNION ALL SELECT MAX(seq) s FROM digests)"
        ).fetchone()
        return int(row[0] or 0) + 1

    def set_ref(self, ref: Reference, image_id: Digest) -> Digest | None:
        """Point a tag or digest reference at an image; returns the image it pointed at before."""
        table = "digests" if ref.digest is not None else "tags"
        name = ref.string()
        row = self.conn.execute(f"SELECT image_id FROM {table} WHERE name=?", (name,)).fetchone()
        old = Digest.parse(row[0]) if row else None
        if old == image_id:
            return old
        self.conn.execute(
            f"INSERT OR REPLACE INTO {table}(name, image_id, seq) VALUES (?,?,?)",
            (name, str(image_id), self._next_seq()),
        )
        return old

    def lookup_ref(self, ref: Reference) -> Digest | None:
        table = "digests" if ref.digest is not None else "tags"
        row = self.conn.execute(f"SELECT image_id FROM {table} WHERE name=?", (ref.string(),)).fetchone()
        return Digest.parse(row[0]) if row else None

    def remove_ref(self, ref: Reference) -> bool:
        table = "digests" if ref.digest is not None else "tags"
        cur = self.conn.execute(f"DELETE FROM {table} WHERE name=?", (ref.string(),))
        return cur.rowcount > 0

    def refs(self, image_id: Digest) -> list[Reference]:
        """Every tag and digest reference of an image, sorted by full name (Docker's lexicalRefs)."""
        rows = self.conn.execute(
            "SELECT name FROM tags WHERE image_id=? UNION ALL SELECT name FROM digests WHERE image_id=?",
            (str(image_id), str(image_id)),
        ).fetchall()
        return [parse_stored(n) for n in sorted(r[0] for r in rows)]

    def all_refs(self) -> dict[Digest, list[Reference]]:
        out: dict[Digest, list[Reference]] = {}
        for table in ("tags", "digests"):
            for name, img in self.conn.execute(f"SELECT name, image_id FROM {table} ORDER BY seq").fetchall():
                out.setdefault(Digest.parse(img), []).append(parse_stored(name))
        return out

    def refs_by_name(self, repo: Reference) -> list[tuple[Reference, Digest]]:
        """Every tag and digest reference of one repository, sorted by full name (Docker's ReferencesByName)."""
        found: list[tuple[Reference, Digest]] = []
        for table, sep in (("tags", ":"), ("digests", "@")):
            prefix = repo.repository + sep
            rows = self.conn.execute(
                f"SELECT name, image_id FROM {table} WHERE name >= ? AND name < ?", (prefix, prefix + "\x7f")
            ).fetchall()
            found.extend((parse_stored(n), Digest.parse(i)) for n, i in rows)
        return sorted(found, key=lambda ri: ri[0].string())

    def all_tags(self) -> list[tuple[Reference, Digest]]:
        rows = self.conn.execute("SELECT name, image_id FROM tags ORDER BY seq").fetchall()
        return [(parse_stored(n), Digest.parse(i)) for n, i in rows]
