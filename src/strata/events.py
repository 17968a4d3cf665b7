"""The store's event journal, Docker's ``events`` without a daemon: each command that acts on a
container or an image appends one line (Docker's ``events.Message`` as JSON) to ``<root>/events.jsonl``.

A line is appended with one ``write`` on an ``O_APPEND`` descriptor, so lines of two processes never
mix. Appenders hold ``events.lock`` shared; when the journal passes ``MAX_BYTES`` one of them takes it
exclusively and keeps the newest ``KEEP`` lines (a new file renamed into place: a reader sees the old
or the new journal, and a follower notices the new inode). Recording never fails the command that
acts: a journal that cannot be written loses the event, not the operation."""

from __future__ import annotations

import os
import time

from strata import jsonfast

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path
    from typing import Any

__all__ = [
    "JOURNAL",
    "KEEP",
    "MAX_BYTES",
    "Follower",
    "container_attributes",
    "format_line",
    "read_events",
    "record",
    "record_container",
    "record_image",
    "record_network",
    "record_volume",
]

JOURNAL = "events.jsonl"
LOCK = "events.lock"
MAX_BYTES = 4 << 20
KEEP = 2000


def _message(kind: str, action: str, actor: str, attributes: Mapping[str, str], origin: str | None) -> dict[str, Any]:
    """Docker's ``events.Message`` with its legacy fields (``status``, ``id``, ``from``) as the daemon sends it."""
    now = time.time_ns()
    msg: dict[str, Any] = {}
    if kind in ("container", "image"):
        msg["status"] = action
        if actor:
            msg["id"] = actor
        if origin:
            msg["from"] = origin
    attrs = dict(sorted(attributes.items()))  # a Go map: marshalled in its keys' order
    msg.update(Type=kind, Action=action, Actor={"ID": actor, "Attributes": attrs}, scope="local",
               time=now // 1_000_000_000, timeNano=now)
    return msg


def record(root: Path, kind: str, action: str, actor: str, attributes: Mapping[str, str] | None = None,
           *, origin: str | None = None) -> None:
    """Append one event to ``root``'s journal (best effort; see the module's docstring)."""
    import fcntl
    import json  # here: reading the journal needs only strata.jsonfast

    line = (json.dumps(_message(kind, action, actor, attributes or {}, origin), ensure_ascii=False,
                       separators=(",", ":")) + "\n").encode()
    try:
        lock = os.open(root / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        fcntl.flock(lock, fcntl.LOCK_SH)
        fd = os.open(root / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
            big = os.fstat(fd).st_size > MAX_BYTES
        finally:
            os.close(fd)
        if big:
            fcntl.flock(lock, fcntl.LOCK_UN)
            fcntl.flock(lock, fcntl.LOCK_EX)
            _trim(root)
    except OSError:
        pass
    finally:
        os.close(lock)


def _trim(root: Path) -> None:
    """Keep the newest ``KEEP`` lines (the caller holds the lock exclusively)."""
    path = root / JOURNAL
    lines = path.read_bytes().splitlines(keepends=True)
    if sum(map(len, lines)) <= MAX_BYTES:
        return  # another appender trimmed it first
    from strata.atomicfile import write_bytes_atomic

    write_bytes_atomic(path, b"".join(lines[-KEEP:]), mode=0o600)


_BUILDER_LABEL = "strata.build.builder"  # build.watchdog's: the build that made a step container
_SILENT_LABEL = "strata.build.silent"  # build.steps': a step container with no events of its own


def container_attributes(name: str, image: str, labels: Mapping[str, str] | None,
                         extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A container event's attributes as Docker's ``LogContainerEventWithAttributes``: its labels, then
    ``image`` and ``name`` (and the action's own, e.g. ``exitCode``, ``signal``)."""
    attrs = {str(k): str(v) for k, v in (labels or {}).items() if k != _BUILDER_LABEL}  # a build step's mark
    attrs.update(image=image, name=name.lstrip("/"))
    attrs.update(extra or {})
    return attrs


def record_container(root: Path, action: str, cid: str, name: str, image: str, labels: Mapping[str, str] | None,
                     extra: Mapping[str, str] | None = None) -> None:
    """A container event (``from`` is the image name, as Docker's legacy field); none for a build step's
    container Docker makes none for (labelled ``strata.build.silent``: a COPY's when it needs one)."""
    if labels and _SILENT_LABEL in labels:
        return
    record(root, "container", action, cid, container_attributes(name, image, labels, extra), origin=image)


def record_image(root: Path, action: str, actor: str, name: str | None = None) -> None:
    """An image event as Docker's ``LogImageEvent(imageID, refName, action)``: ``name`` is the reference
    (``tag``, ``pull``, ``push``) or, by default, the actor itself (``untag``, ``delete``, ``load``...)."""
    record(root, "image", action, actor, {"name": actor if name is None else name})


def record_network(root: Path, action: str, net_id: str, name: str, container: str | None = None) -> None:
    """A network event as Docker's ``LogNetworkEventWithAttributes``: ``container`` (connect, disconnect),
    ``name`` and ``type`` (the driver: strata's networks are bridges)."""
    attrs = {"container": container} if container else {}
    record(root, "network", action, net_id, {**attrs, "name": name, "type": "bridge"})


def record_volume(root: Path, action: str, name: str, extra: Mapping[str, str] | None = None) -> None:
    """A volume event as Docker's ``LogVolumeEvent``: the ``local`` driver and the action's own attributes
    (``mount``: container, destination, read/write, propagation; ``unmount``: container)."""
    record(root, "volume", action, name, {"driver": "local", **(extra or {})})


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        msg = jsonfast.loads(raw)
    except ValueError:
        return None  # a line cut short by a full disk
    return msg if isinstance(msg, dict) and isinstance(msg.get("timeNano"), int) else None


def read_events(root: str | Path) -> Iterator[dict[str, Any]]:
    """The journal's events, oldest first."""
    try:
        with open(os.path.join(root, JOURNAL), "rb") as f:  # a str root: inspect loads no pathlib
            data = f.read()
    except FileNotFoundError:
        return
    for raw in data.splitlines():
        msg = _parse(raw)
        if msg is not None:
            yield msg


class Follower:
    """New events as they are appended (``poll``), from the end of the journal when made."""

    def __init__(self, root: Path) -> None:
        self._path = root / JOURNAL
        self._ino, self._offset = self._where()
        self._last = 0
        self._rest = b""

    def _where(self) -> tuple[int, int]:
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return 0, 0
        return st.st_ino, st.st_size

    def skip_until(self, time_nano: int) -> None:
        """Events at or before ``time_nano`` were shown already (a trimmed journal repeats them)."""
        self._last = max(self._last, time_nano)

    def poll(self) -> list[dict[str, Any]]:
        ino, size = self._where()
        if ino != self._ino:  # trimmed (renamed into place) or made: read the new file from its start
            self._ino, self._offset, self._rest = ino, 0, b""
        if size <= self._offset:
            return []
        with open(self._path, "rb") as f:
            f.seek(self._offset)
            data = f.read(size - self._offset)
        self._offset += len(data)
        *lines, self._rest = (self._rest + data).split(b"\n")
        out = []
        for raw in lines:
            msg = _parse(raw)
            if msg is not None and msg["timeNano"] > self._last:
                self._last = msg["timeNano"]
                out.append(msg)
        return out


def format_line(msg: Mapping[str, Any]) -> str:
    """Docker's CLI default line: ``<time RFC3339Nano, fixed> <type> <action> <actor> (k=v, ...)``."""
    from datetime import datetime

    nano = int(msg["timeNano"])
    stamp = datetime.fromtimestamp(nano // 1_000_000_000).astimezone()
    offset = stamp.strftime("%z")
    zone = "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    text = f"{stamp.strftime('%Y-%m-%dT%H:%M:%S')}.{nano % 1_000_000_000:09d}{zone} "
    actor = msg.get("Actor") or {}
    text += f"{msg.get('Type', '')} {msg.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        text += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return text
