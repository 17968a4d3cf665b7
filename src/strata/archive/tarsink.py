"""Where a tar's bytes go while it is written: hashed (sha256) and counted once, small pieces gathered
into large writes, and (into a regular file of strata's own) large files' content copied in the kernel
(``copy_file_range``) and hashed on a thread from what was written, while the next bytes are copied.

The hash is always over the bytes as written, in order: a member's content is hashed from the output
file after its copy (never from the source, which a running container may change meanwhile).
``writeback``: the output's writeback to disk, and the writeback of each large source file read, start
at once (``sync_file_range(SYNC_FILE_RANGE_WRITE)``), so that a later sync of the filesystem finds
little left to write; it changes nothing of what is durable when (the caller still syncs).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat

from strata.digest import Digest
from strata.errors import StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import queue
    import threading
    from collections.abc import Callable
    from typing import Final

    from strata.archive.compression import Writable

__all__ = ["TarSink"]

BATCH: Final = 1 << 20  # small pieces are written (and hashed) together once this many are gathered
KERNEL_COPY_MIN: Final = 1 << 18  # a file at least this large is copied in the kernel and hashed on a thread
READ_CHUNK: Final = 1 << 20
WRITEBACK_STEP: Final = 8 << 20  # with ``writeback``: the output's writeback starts every this many bytes
_NO_KERNEL_COPY = (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM)
_SYNC_FILE_RANGE_WRITE: Final = 2
_IN_FLIGHT: Final = 8  # items queued for the hashing thread at most


class TarSink:
    """A ``Writable`` hashing and counting what passes; ``copy_file`` adds a file's content. ``close()``
    writes what is gathered and waits for the hash (``digest``, ``size`` are then final); ``abort()``
    stops the hashing thread after an error. ``out_fd``: a regular file open for writing whose offset
    ``out`` (flushed) writes at: then the sink writes to it directly (and re-reads it to hash)."""

    def __init__(self, out: Writable, out_fd: int | None = None, *, writeback: bool = False) -> None:
        self._out = out
        self._fd = out_fd
        self._kernel = out_fd is not None  # large files copied in the kernel (until it cannot)
        self._base = os.lseek(out_fd, 0, os.SEEK_CUR) if out_fd is not None else 0
        self._hash = hashlib.sha256()
        self._pending: list[bytes] = []
        self._gathered = 0
        self.size = 0
        self._hasher: _Hasher | None = None
        self._writeback = writeback and out_fd is not None
        self._sync_range: Callable[[int, int, int, int], int] | None = None
        self._synced_to = self._base

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        n = len(data)
        self._pending.append(data if isinstance(data, bytes) else bytes(data))
        self._gathered += n
        if self._gathered >= BATCH:
            self._emit()
        return n

    def copy_file(self, src: int, size: int, name: str) -> None:
        """``size`` bytes read from ``src`` (at its offset): a file's content (StoreError if it is shorter)."""
        if self._kernel and size >= KERNEL_COPY_MIN and self._kernel_copy(src, size, name):
            return
        left = size
        while left:
            chunk = os.read(src, min(READ_CHUNK, left))
            if not chunk:
                raise StoreError(f"{name}: file shrank while it was being archived")
            self.write(chunk)
            left -= len(chunk)

    @property
    def digest(self) -> Digest:
        return Digest("sha256", self._hash.hexdigest())

    def close(self) -> None:
        """Everything written and hashed (the hashing thread's error, if any, raised)."""
        self._emit()
        if self._hasher is not None:
            hasher, self._hasher = self._hasher, None
            hasher.finish()
        self._start_writeback()

    def abort(self) -> None:
        if self._hasher is not None:
            hasher, self._hasher = self._hasher, None
            hasher.stop()

    def _emit(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        self._gathered = 0
        if self._hasher is not None:
            self._hasher.put(data)
        else:
            self._hash.update(data)
        if self._fd is None:
            self._out.write(data)
        else:
            _write_all(self._fd, data)
        self.size += len(data)
        if self._writeback and self._base + self.size - self._synced_to >= WRITEBACK_STEP:
            self._start_writeback(resolve=True)  # a tar of many small files: its writeback starts too

    def _kernel_copy(self, src: int, size: int, name: str) -> bool:
        """The copy in the kernel; False when the kernel cannot copy between these files (nothing copied)."""
        assert self._fd is not None
        self._emit()
        if self._hasher is None:
            reader = _reader(self._fd)
            if reader is None:  # the output cannot be read back: copied through memory
                self._kernel = False
                return False
            self._hasher = _Hasher(self._hash, reader)
        left = size
        while left:
            try:
                n = os.copy_file_range(src, self._fd, left)
            except OSError as e:
                if left == size and e.errno in _NO_KERNEL_COPY:
                    self._kernel = False  # the next files would fail alike
                    return False
                raise
            if n == 0:
                raise StoreError(f"{name}: file shrank while it was being archived")
            left -= n
        self._hasher.put((self._base + self.size, size))
        self.size += size
        if self._writeback:
            self._start_writeback(resolve=True)
            assert self._sync_range is not None
            self._sync_range(src, 0, 0, _SYNC_FILE_RANGE_WRITE)  # the source's own dirty data, if any
        return True

    def _start_writeback(self, *, resolve: bool = False) -> None:
        """The output's writeback started up to here (once ``resolve`` found ``sync_file_range``: the
        end of a small tar is left to the caller's sync)."""
        if resolve and self._sync_range is None:
            self._sync_range = _sync_file_range()
        if self._sync_range is not None and self._fd is not None:
            end = self._base + self.size
            if end > self._synced_to:
                self._sync_range(self._fd, self._synced_to, end - self._synced_to, _SYNC_FILE_RANGE_WRITE)
                self._synced_to = end


class _Hasher:
    """A thread hashing, in order, bytes given and ranges of the output file (re-read through its own
    descriptor: ``pread`` into one buffer; hashlib releases the GIL meanwhile)."""

    def __init__(self, sha: hashlib._Hash, reader: int) -> None:
        import queue
        import threading

        self._sha = sha
        self._fd = reader  # closed by finish() or stop()
        # bounded: the writer waits for the hash rather than holding what it wrote in memory (bytes
        # given are at most BATCH each: a few MiB at most in flight)
        self._queue: queue.Queue[bytes | tuple[int, int] | None] = queue.Queue(maxsize=_IN_FLIGHT)
        self._error: BaseException | None = None
        self._stopped = False
        self._thread: threading.Thread = threading.Thread(target=self._run, name="tar-hash", daemon=True)
        self._thread.start()

    def put(self, item: bytes | tuple[int, int]) -> None:
        self._queue.put(item)

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        os.close(self._fd)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        self._stopped = True
        self._queue.put(None)
        self._thread.join()
        os.close(self._fd)

    def _run(self) -> None:
        buf = bytearray(READ_CHUNK)
        view = memoryview(buf)
        while (item := self._queue.get()) is not None:
            if self._error is not None or self._stopped:
                continue  # drained until the end
            try:
                if isinstance(item, bytes):
                    self._sha.update(item)
                else:
                    self._range(view, *item)
            except BaseException as e:  # given to the writer's thread in finish()
                self._error = e

    def _range(self, view: memoryview, offset: int, size: int) -> None:
        while size:
            n = os.preadv(self._fd, [view[: min(size, len(view))]], offset)
            if n == 0:
                raise StoreError("the tar being written shrank")
            self._sha.update(view[:n])
            offset += n
            size -= n


def _reader(out_fd: int) -> int | None:
    """A new descriptor reading the output file (``pread`` only: its offset does not matter), or None."""
    import fcntl

    try:
        if fcntl.fcntl(out_fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR:
            return os.dup(out_fd)
        fd = os.open(f"/proc/self/fd/{out_fd}", os.O_RDONLY | os.O_CLOEXEC)  # the same file, reopened
    except OSError:
        return None
    if os.fstat(fd).st_ino != os.fstat(out_fd).st_ino or not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _sync_file_range() -> Callable[[int, int, int, int], int]:
    """libc's ``sync_file_range`` (not in Python's os module); a no-op where there is none."""
    try:
        import ctypes

        func = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError, ImportError):
        return lambda *_: 0
    func.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func  # type: ignore[no-any-return]
