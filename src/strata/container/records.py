"""Container records: the ``Container`` record and its SQLite table at ``<root>/containers.db``.

Each container also owns ``<root>/containers/<id>/`` (bundle, upper/work dirs, log, hosts files).
The database is opened in WAL mode; every change is one ``BEGIN IMMEDIATE`` transaction, so
concurrent strata processes (a ``run -d`` monitor and a ``ps``) see consistent records.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from strata import jsonfast
from strata.digest import Digest
from strata.errors import Conflict, ContainerNotFound, StrataError

TYPE_CHECKING = False  # not typing's: ps loads this module, and typing costs it a few ms
if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path
    from typing import Any
else:  # sqlite3's own classes and connect without sqlite3.dbapi2 (which loads datetime and collections.abc)
    import _sqlite3 as sqlite3

__all__ = [
    "FREEZE_MARKER",
    "Container",
    "ContainerStore",
    "checkpointed_after_exit",
    "container_dir",
    "exit_without_close",
    "images_in_use",
    "layer_dirs_in_use",
    "new_id",
    "now",
    "pid_alive",
    "process_start",
    "random_name",
    "settled",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    created REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
"""


_FIELDS = (  # (name, default); a list or dict default is a new empty one for each record
    ("id", None), ("name", None), ("image_id", None), ("image_name", None), ("created", None), ("path", None),
    ("args", None), ("config", dict), ("host_config", dict), ("driver", "overlay"), ("runtime", "runc"),
    ("state", "created"), ("pid", 0), ("monitor_pid", 0), ("monitor_start", 0), ("exit_code", 0),
    ("started_at", 0.0), ("finished_at", 0.0), ("error", ""), ("restart_count", 0), ("manually_stopped", False),
    ("networks", dict), ("ports", list), ("netns", ""), ("net_owner", list), ("mounts", list), ("health", None),
)
_NAMES = frozenset(name for name, _ in _FIELDS)
_REQUIRED = 7  # id .. args have no default


class Container:
    """One container. ``config`` is Docker's container ``Config`` object, ``host_config`` its HostConfig.

    A mutable record written out by hand (what ``@dataclass`` gave it: keyword or positional fields in
    ``_FIELDS`` order, equality over all fields, a field-by-field ``repr``, unhashable), because ``ps``
    loads it and importing ``dataclasses`` (``inspect``, ``ast``, ``dis``, ``tokenize``) cost ``ps`` a
    tenth of its run.
    """

    id: str
    name: str
    image_id: str
    image_name: str
    created: float
    path: str
    args: list[str]
    config: dict[str, Any]
    host_config: dict[str, Any]
    driver: str
    runtime: str
    state: str  # created | running | paused | restarting | exited | dead
    pid: int
    monitor_pid: int
    monitor_start: int  # the monitor's start time (clock ticks after boot): a reused PID is not it
    exit_code: int
    started_at: float
    finished_at: float
    error: str
    restart_count: int
    manually_stopped: bool  # stopped or killed by the user: the restart policy no longer applies
    # networking: name -> Docker's EndpointSettings (addresses filled while set up), the port mappings
    # in effect, the namespace file, and [pid, start time] of the process that set them up
    networks: dict[str, dict[str, Any]]
    ports: list[dict[str, Any]]
    netns: str
    net_owner: list[int]
    # mount points (Docker's MountPoint shape; keys starting with "_" are strata's own)
    mounts: list[dict[str, Any]]
    health: dict[str, Any] | None  # Docker's State.Health (times as epoch floats) when it has a check

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was

    if TYPE_CHECKING:  # the signature callers are checked against; the one below runs

        def __init__(self, id: str, name: str, image_id: str, image_name: str, created: float, path: str,
                     args: list[str], config: dict[str, Any] = ..., host_config: dict[str, Any] = ...,
                     driver: str = ..., runtime: str = ..., state: str = ..., pid: int = ..., monitor_pid: int = ...,
                     monitor_start: int = ..., exit_code: int = ..., started_at: float = ...,
                     finished_at: float = ..., error: str = ..., restart_count: int = ...,
                     manually_stopped: bool = ..., networks: dict[str, dict[str, Any]] = ...,
                     ports: list[dict[str, Any]] = ..., netns: str = ..., net_owner: list[int] = ...,
                     mounts: list[dict[str, Any]] = ..., health: dict[str, Any] | None = ...) -> None: ...

    else:

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            _fill(self, args, kwargs)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name, _ in _FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Container):
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        return "Container(" + ", ".join(f"{name}={getattr(self, name)!r}" for name, _ in _FIELDS) + ")"

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def command(self) -> str:
        """The command as Docker shows and records it: path and args joined by spaces."""
        return " ".join([self.path, *self.args]).strip()

    @property
    def running(self) -> bool:
        return self.state in ("running", "paused", "restarting")

    def to_json(self) -> str:
        import json  # here: reading records (ps) needs only strata.jsonfast

        return json.dumps({name: getattr(self, name) for name, _ in _FIELDS}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Container:
        data = jsonfast.loads(text)
        return cls(**{k: v for k, v in data.items() if k in _NAMES})


def _fill(record: Container, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """``Container(...)``: positional fields in ``_FIELDS`` order, then keywords, then the defaults."""
    if len(args) > len(_FIELDS):
        raise TypeError(f"Container() takes at most {len(_FIELDS)} positional arguments")
    for (name, _), value in zip(_FIELDS, args, strict=False):
        if name in kwargs:
            raise TypeError(f"Container() got multiple values for argument {name!r}")
        kwargs[name] = value
    unknown = kwargs.keys() - _NAMES
    if unknown:
        raise TypeError(f"Container() got an unexpected keyword argument {min(unknown)!r}")
    for index, (name, default) in enumerate(_FIELDS):
        if name in kwargs:
            object.__setattr__(record, name, kwargs[name])
        elif index < _REQUIRED:
            raise TypeError(f"Container() missing required argument: {name!r}")
        else:
            object.__setattr__(record, name, default() if default in (dict, list) else default)


_EXITING = [False, False]  # [the program ends with os._exit, the build's watchdog checkpoints after it]


def exit_without_close() -> None:
    """This process ends with ``os._exit`` after its command (the ``strata build`` program): once its
    watchdog runs too (:func:`checkpointed_after_exit`), the container records' connections are left open
    for the exit to drop, and the WAL's checkpoint (fsyncs, the WAL's unlink) is the watchdog's, after the
    build, not on its critical path; committed transactions are in the WAL either way (``synchronous=NORMAL``)."""
    _EXITING[0] = True


def checkpointed_after_exit() -> None:
    """A process that opens and closes the container records once this one has ended runs (a build's watchdog)."""
    _EXITING[1] = True


def new_id() -> str:
    """A 64-hex container ID whose 12-char short form is not all digits (Docker's rule)."""
    while True:  # secrets.token_hex's bytes, without loading secrets (hashlib, OpenSSL, hmac: a build step's create)
        cid = os.urandom(32).hex()
        if not cid[:12].isdigit():
            return cid


def _path(text: str) -> Path:
    from pathlib import Path  # here: ps works on str paths, and pathlib's import costs it a sixth

    return Path(text)


def container_dir(root: str | Path, cid: str) -> Path:
    return _path(os.path.join(root, "containers", cid))


_LEFT = (  # noqa: SIM905 - one word list, easier to read as text
    "admiring adoring affectionate agitated amazing angry awesome blissful bold boring brave busy "
    "charming clever cool compassionate competent condescending confident cranky crazy dazzling "
    "determined distracted dreamy eager ecstatic elastic elated elegant eloquent epic fervent festive "
    "flamboyant focused friendly frosty gallant gifted goofy gracious happy hardcore heuristic "
    "hopeful hungry infallible inspiring jolly jovial keen kind laughing loving lucid magical modest "
    "musing mystifying naughty nervous nice nifty nostalgic objective optimistic peaceful pedantic "
    "pensive practical priceless quirky quizzical recursing relaxed reverent romantic sad serene "
    "sharp silly sleepy stoic strange stupefied suspicious sweet tender thirsty trusting unruffled "
    "upbeat vibrant vigilant vigorous wizardly wonderful xenodochial youthful zealous zen"
).split()

_RIGHT = (  # noqa: SIM905 - one word list, easier to read as text
    "agnesi albattani allen almeida archimedes ardinghelli aryabhata austin babbage banach bardeen "
    "bartik bassi bell benz bhabha bhaskara blackwell bohr booth borg bose boyd brahmagupta brattain "
    "brown carson cartwright chandrasekhar chaplygin chatelet chatterjee chebyshev clarke cohen "
    "colden cori cray curie darwin davinci dewdney dhawan diffie dijkstra dirac driscoll dubinsky "
    "easley edison einstein elbakyan elgamal elion ellis engelbart euclid euler faraday feistel "
    "fermat fermi feynman franklin gagarin galileo gates gauss germain goldberg goldstine goldwasser "
    "golick goodall gould greider grothendieck haibt hamilton hawking heisenberg hellman hermann "
    "herschel hertz heyrovsky hodgkin hofstadter hoover hopper hugle hypatia jackson jang jennings "
    "jepsen johnson joliot jones kalam kapitsa kare keldysh keller kepler khorana kilby kirch knuth "
    "kowalevski lalande lamarr lamport leakey leavitt lederberg lehmann lewin lichterman liskov "
    "lovelace lumiere mahavira margulis matsumoto maxwell mayer mccarthy mcclintock mclaren mclean "
    "mcnulty meitner mendel mendeleev merkle mestorf mirzakhani montalcini moore morse moser murdock "
    "napier nash neumann newton nightingale nobel noether northcutt noyce panini pare pascal pasteur "
    "payne perlman pike poincare poitras proskuriakova ptolemy raman ramanujan ride ritchie robinson "
    "roentgen rosalind rubin saha sammet sanderson satoshi shamir shannon shaw shirley shockley "
    "shtern sinoussi snyder solomon spence stonebraker sutherland swanson swartz swirles taussig "
    "tesla tharp thompson torvalds tu turing varahamihira vaughan villani visvesvaraya volhard "
    "wescoff wilbur wiles williams williamson wilson wing wozniak wright wu yalow yonath zhukovsky"
).split()


def random_name(taken: set[str]) -> str:
    """A Docker-style ``adjective_surname`` name not in ``taken`` (a digit is appended on collisions)."""
    from random import SystemRandom  # secrets' own generator, without secrets (hashlib, OpenSSL, hmac)

    rng = SystemRandom()
    for attempt in range(100):
        name = f"{rng.choice(_LEFT)}_{rng.choice(_RIGHT)}"
        if attempt > 10:
            name += str(rng.randrange(10))
        if name not in taken:
            return name
    return f"strata_{os.urandom(4).hex()}"


class ContainerStore:
    """The container table of one store root."""

    def __init__(self, root: str | Path) -> None:
        self.root_dir = os.fspath(root)  # the CLI's is normalised as pathlib would (strata.store.root.plain_path)
        os.makedirs(self.root_dir, mode=0o710, exist_ok=True)  # private, as store.root makes it
        try:
            os.mkdir(os.path.join(self.root_dir, "containers"), 0o710)
        except OSError:
            if not os.path.isdir(os.path.join(self.root_dir, "containers")):
                raise
        self._db = self._connect()

    @property
    def root(self) -> Path:
        return _path(self.root_dir)

    def _connect(self) -> sqlite3.Connection:
        path = os.path.join(self.root_dir, "containers.db")
        try:  # created 0600 (it holds every container's environment); SQLite's -wal/-shm follow
            if not os.path.exists(path):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
            db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout=30000")
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise StrataError(f"cannot open the container records {path}: {_disk_text(e, self.root_dir)}") from None
        return db

    def close(self) -> None:
        if not all(_EXITING):  # the ``build`` program with a watchdog leaves it to its exit: see exit_without_close
            self._db.close()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Close the connection around a ``fork()`` (SQLite state must not cross it), then reopen."""
        self._db.close()
        try:
            yield
        finally:
            self._db = self._connect()

    def __enter__(self) -> ContainerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; SQLite's errors (a full disk) become StrataError and change nothing."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise StrataError(f"cannot update the container records: {_disk_text(e, self.root_dir)}") from None
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException as e:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if isinstance(e, sqlite3.Error):
                raise StrataError(f"cannot update the container records: {_disk_text(e, self.root_dir)}") from None
            raise

    def names(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT name FROM containers")}

    def add(self, c: Container) -> None:
        """Insert a new record; a taken name raises Docker's Conflict (exit code 125 as ``docker run``)."""
        with self.transaction() as db:
            row = db.execute("SELECT id FROM containers WHERE name = ?", (c.name,)).fetchone()
            if row is not None:
                raise Conflict(
                    f'Conflict. The container name "/{c.name}" is already in use by container "{row[0]}". '
                    "You have to remove (or rename) that container to be able to reuse that name.",
                    exit_code=125,
                )
            db.execute(
                "INSERT INTO containers (id, name, image_id, created, data) VALUES (?, ?, ?, ?, ?)",
                (c.id, c.name, c.image_id, c.created, c.to_json()),
            )

    def save(self, c: Container) -> None:
        with self.transaction() as db:
            db.execute("UPDATE containers SET data = ? WHERE id = ?", (c.to_json(), c.id))

    def update(self, cid: str, **changes: Any) -> Container:
        """Read-modify-write one record atomically; returns the new record."""
        with self.transaction() as db:
            row = db.execute("SELECT data FROM containers WHERE id = ?", (cid,)).fetchone()
            if row is None:
                raise ContainerNotFound(cid)
            c = Container.from_json(row[0])
            for k, v in changes.items():
                setattr(c, k, v)
            db.execute("UPDATE containers SET data = ? WHERE id = ?", (c.to_json(), cid))
            return c

    def rename(self, cid: str, name: str) -> Container:
        """Give the record ``cid`` the free name ``name`` (Docker's ``reserveName`` conflict otherwise)."""
        with self.transaction() as db:
            row = db.execute("SELECT id FROM containers WHERE name = ?", (name,)).fetchone()
            if row is not None:
                raise Conflict(
                    f'Error when allocating new name: Conflict. The container name "/{name}" is already in use by '
                    f'container "{row[0]}". You have to remove (or rename) that container to be able to reuse that name.'
                )
            data = db.execute("SELECT data FROM containers WHERE id = ?", (cid,)).fetchone()
            if data is None:
                raise ContainerNotFound(cid)
            c = Container.from_json(data[0])
            c.name = name
            db.execute("UPDATE containers SET name = ?, data = ? WHERE id = ?", (name, c.to_json(), cid))
            return c

    def delete(self, cid: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM containers WHERE id = ?", (cid,))

    def all(self) -> list[Container]:
        """Every container, newest first (as ``docker ps -a`` lists them)."""
        rows = self._db.execute("SELECT data FROM containers ORDER BY created DESC").fetchall()
        return [Container.from_json(r[0]) for r in rows]

    def containing(self, text: str) -> list[Container]:
        """The containers whose stored record holds ``text``, newest first: a first pass that reads no
        other record (``build.watchdog`` looks for its label on every build), the caller checks the field."""
        rows = self._db.execute(
            "SELECT data FROM containers WHERE instr(data, ?) > 0 ORDER BY created DESC", (text,)
        ).fetchall()
        return [Container.from_json(r[0]) for r in rows]

    def by_id(self, cid: str) -> Container | None:
        row = self._db.execute("SELECT data FROM containers WHERE id = ?", (cid,)).fetchone()
        return Container.from_json(row[0]) if row else None

    def get(self, ref: str) -> Container:
        """Resolve a full ID, a name (with or without the leading ``/``) or a unique ID prefix."""
        c = self.by_id(ref)
        if c is not None:
            return c
        row = self._db.execute("SELECT data FROM containers WHERE name = ?", (ref.lstrip("/"),)).fetchone()
        if row is not None:
            return Container.from_json(row[0])
        if ref and all(ch in "0123456789abcdef" for ch in ref):
            rows = self._db.execute(
                "SELECT data FROM containers WHERE id LIKE ?", (ref + "%",)
            ).fetchall()
            if len(rows) == 1:
                return Container.from_json(rows[0][0])
            if len(rows) > 1:
                raise StrataError(f"multiple IDs found with provided prefix: {ref}")
        raise ContainerNotFound(ref)


def _disk_text(e: sqlite3.Error, root: str | Path) -> str:
    """SQLite's error; a full disk (SQLite says "full" or, creating its shared-memory file, "disk I/O
    error") in Go's words, "no space left on device", as Docker would say it."""
    text = str(e)
    try:
        st = os.statvfs(root)
        full = st.f_bavail * st.f_frsize < 1024 * 1024
    except OSError:
        full = False
    return "no space left on device" if "full" in text or (full and "I/O" in text) else text


def images_in_use(root: str | Path) -> dict[Digest, list[tuple[str, bool]]]:
    """Image ID -> (full container ID, running) of the containers created from it, oldest first.

    The store's rmi hook: a running container makes a conflict that ``-f`` cannot override."""
    db_path = os.path.join(root, "containers.db")
    if not os.path.exists(db_path):
        return {}
    db = sqlite3.connect(db_path, timeout=30.0)
    try:
        rows = db.execute("SELECT image_id, id, data FROM containers ORDER BY created ASC").fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()
    out: dict[Digest, list[tuple[str, bool]]] = {}
    for image_id, cid, data in rows:
        try:
            running = jsonfast.loads(data).get("state") in ("running", "paused")
            out.setdefault(Digest.parse(image_id), []).append((cid, running))
        except ValueError:
            continue
    return out


def layer_dirs_in_use(root: str | Path) -> set[Path]:
    """Every image layer dir some container's rootfs stacks (for the store's layer GC to keep)."""
    out: set[Path] = set()
    base = _path(os.path.join(root, "containers"))
    if not base.is_dir():
        return out
    for entry in base.iterdir():
        try:
            text = (entry / "lowers").read_text()
        except OSError:
            continue
        out.update(_path(line) for line in text.splitlines() if line)
    return out


def now() -> float:
    return time.time()


def _proc_stat(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first); None when gone."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[-1].split()


def process_start(pid: int) -> int:
    """When ``pid`` started, in clock ticks after boot (0 when unknown)."""
    try:
        fields_ = _proc_stat(pid)
        return int(fields_[19]) if fields_ else 0
    except (OSError, ValueError, IndexError):
        return 0


FREEZE_MARKER = "frozen-by"  # in the container dir: the PID of a commit that paused the container


def settled(root: str | Path, c: Container) -> bool:
    """Whether ``lifecycle.reconcile`` would leave this record as it is: its monitor lives (or it claims
    no live state), it holds no network pieces a dead process left, and no dead commit left it frozen.
    Cheap (no runtime, no network code): listing commands reconcile only what is not settled."""
    if c.state in ("running", "paused", "restarting"):
        if not pid_alive(c.monitor_pid, c.monitor_start):
            return False
        return c.state != "running" or not os.path.exists(os.path.join(root, "containers", c.id, FREEZE_MARKER))
    if not (c.netns or c.ports):
        return True
    owner = c.net_owner
    return bool(owner) and pid_alive(owner[0], owner[1] if len(owner) > 1 else 0)


def pid_alive(pid: int, start: int = 0) -> bool:
    """Whether ``pid`` runs (a zombie no parent has reaped yet does not count); with ``start``,
    only if it is still the process that started then (not a reused PID)."""
    if pid <= 0:
        return False
    try:
        fields_ = _proc_stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True
    if not fields_ or fields_[0] in (b"Z", b"X"):
        return False
    return not start or len(fields_) < 20 or fields_[19] == str(start).encode()
