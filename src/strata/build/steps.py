"""Steps that need a container: RUN (a real process through strata's runtime), and COPY/ADD/WORKDIR
(files written into the container's rootfs); each one's changes become the new image's layer."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from strata.atomicfile import not_durable
from strata.build import watchdog
from strata.build.scoped import mkdir_all
from strata.build.watchdog import BUILDER_LABEL
from strata.container.records import Container, ContainerStore, container_dir, process_start
from strata.digest import Digest
from strata.errors import StrataError, os_error_text
from strata.store.root import as_path

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    import queue
    from pathlib import Path
    from typing import Any

    from strata.build.hostopts import StepHost
    from strata.container.spec import Bind
    from strata.engine import Engine

__all__ = ["Runner", "Sink", "StepRoot"]

SILENT_LABEL = "strata.build.silent"  # strata.events records nothing for a container with it

Sink = Callable[[str, bytes], None]


def _lc() -> Any:
    """``container.lifecycle``, loaded when a step needs a container (a cached rebuild never does)."""
    from strata.container import lifecycle

    return lifecycle


def _volume_binds(scratch: Path, cfg: dict[str, Any]) -> list[Bind]:
    """A scratch directory bound on each of the config's VOLUMEs (none: the bind type is not loaded)."""
    vols = sorted(cfg.get("Volumes") or {})
    if not vols:
        return []
    from strata.container.spec import Bind

    return [Bind(str(scratch / str(i)), v, False) for i, v in enumerate(vols)]


def _step_mounts(binds: list[Bind]) -> list[Any]:
    """The runtime's mounts of a step's binds (a step without any never loads build.mounts)."""
    if not binds:
        return []
    from strata.build.mounts import step_mount

    return [step_mount(b) for b in binds]


def _discard(stream: str, data: bytes) -> None:
    """A step's output nobody shows."""


class StepRoot:
    """The root filesystem a step writes into: a step container's (``cdir``: its directory) or a scratch
    one laid out as a container's (``id``: the ID the step's history and output name)."""

    def __init__(self, ident: str, cdir: Path, driver: str, path: Path) -> None:
        self.id, self.cdir, self.driver, self.path = ident, cdir, driver, path


def _kernel_overlay_steps() -> bool:
    """Whether a step container here gets the kernel's overlay as root, mounted as root (what a scratch
    root repeats): no driver, overlay mount program or user namespace asking for another."""
    if os.environ.get("STRATA_OVERLAY_MOUNT_PROGRAM", ""):
        return False
    from strata.container.rootfs import mount_xattr_prefix
    from strata.container.runtime import config_value

    configured = config_value("storage-driver")
    wanted = os.environ.get("STRATA_STORAGE_DRIVER") or (configured if isinstance(configured, str) else "")
    return wanted in ("", "overlay", "overlay2") and mount_xattr_prefix() == "trusted.overlay."


class Runner:
    """Step containers of one stage; ``sink(stream, data)`` gets what a RUN prints. Without a
    ``store``, the runner opens the container records itself when a step first needs a container
    (a cached step never does) and ``close()`` closes them."""

    def __init__(
        self, engine: Engine, store: ContainerStore | None, network: str = "default", sink: Sink | None = None
    ) -> None:
        self.engine, self._store, self.network, self.sink = engine, store, network, sink
        self._own_store = store is None
        self.active: Container | None = None  # the step container running now
        self.cancelled = False
        # step containers being removed behind the build, one after another by one thread (with one
        # connection to the container records: no connection opened and closed per step)
        self._removals: queue.SimpleQueue[tuple[str, Path] | None] | None = None  # made by the first step
        self._remover: threading.Thread | None = None
        self._removal_errors: list[BaseException] = []

    @property
    def store(self) -> ContainerStore:
        if self._store is None:
            self._store = ContainerStore(self.engine.root_dir)
        return self._store

    def close(self) -> None:
        """The container records closed, if this runner opened them (removals waited for first)."""
        self.wait_removals()
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None

    @contextmanager
    def container(
        self, parent: Digest | None, cfg: dict[str, Any], cmd: list[str], env: list[str], *, volumes: bool = False,
        binds: list[Bind] | None = None, network: str | None = None, host: StepHost | None = None,
        silent: bool = False,
    ) -> Iterator[Container]:  # fmt: skip
        """A created (not started) container of ``parent`` with the step's config; always removed.
        ``volumes``: the config's VOLUMEs are mounted from scratch copies (what a RUN writes there
        is not kept, as in Docker) and their mount points exist in the rootfs. ``silent``: no events (a
        step Docker makes no container for)."""
        import shutil  # these, like the container machinery, only for a step that runs
        import tempfile

        lowers = self.engine.layer_dirs(parent) if parent is not None else []
        scratch = as_path(tempfile.mkdtemp(dir=self.engine.store.tmp, prefix="build-volumes-"))
        vol_binds = _volume_binds(scratch, cfg if volumes else {})
        # a step container never gets volumes of its own: the VOLUMEs it needs are the scratch binds above
        step_cfg = {k: v for k, v in cfg.items() if k != "Volumes"}
        mounts = _step_mounts([*vol_binds, *(binds or [])])  # a RUN's tmpfs mounts too
        opts = _lc().CreateOptions(
            volatile_rootfs=True,  # its upper dir is adopted after a syncfs or discarded: no sync at unmount
            image_name=str(parent or "scratch"), image_id=str(parent or ""), image_cfg=step_cfg, lowers=lowers,
            cmd=cmd, entrypoint=[], env=env, workdir=cfg.get("WorkingDir") or None,
            user=str(cfg.get("User") or ""), network=network or self.network, mounts=mounts,
            labels={BUILDER_LABEL: f"{os.getpid()}:{process_start(os.getpid())}",
                    **({SILENT_LABEL: "1"} if silent else {})},
            **({} if host is None else {"resources": host.host_config(), "net": _lc().NetOptions(add_host=host.add_hosts)}),
        )  # fmt: skip
        watchdog.ensure(self.engine.root)  # from the first step container on, a kill -9 is cleaned up
        try:
            with not_durable():  # removed right after the step: a crash loses nothing it needs
                c = _lc().create(self.store, opts)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        try:
            self._fill_volumes(c, vol_binds)
            yield c
        finally:
            self._remove_behind(c.id, scratch)

    @contextmanager
    def phantom(self, parent: Digest | None, cfg: dict[str, Any], cid: str) -> Iterator[None]:
        """The events of Docker's step container that is created and removed, never started (WORKDIR, ENV,
        LABEL...): ``create`` now, ``destroy`` at the end, with its image, a name and the config's labels."""
        from strata.container.records import random_name
        from strata.events import record_container

        name, image, labels = random_name(set()), str(parent or ""), cfg.get("Labels")
        record_container(as_path(self.engine.root_dir), "create", cid, name, image, labels)
        try:
            yield
        finally:
            record_container(as_path(self.engine.root_dir), "destroy", cid, name, image, labels)

    @contextmanager
    def step_root(self, parent: Digest | None, cfg: dict[str, Any], cmd: list[str], *,
                  events: bool = False) -> Iterator[StepRoot]:
        """A rootfs of ``parent`` for a step that writes files and runs nothing (COPY, ADD, WORKDIR): where
        step containers get the kernel's overlay, the very rootfs one gets (``Rootfs.prepare``: the image's
        layers, the init layer, the same mount options), in a ``build-from-<pid>-`` dir of the store's tmp
        (the watchdog unmounts it after a kill), without a container's record, runtime files or removal;
        else a created container's. Removed afterwards (its upper dir is the layer, if adopted). ``events``:
        the step is one Docker makes a container for (WORKDIR): its create and destroy events (COPY and ADD
        have none)."""
        root = self._scratch_root(parent) if _kernel_overlay_steps() else None
        if root is None:
            with self.container(parent, cfg, cmd, [], silent=not events) as c:
                yield StepRoot(c.id, container_dir(self.store.root, c.id), c.driver, self.rootfs(c))
            return
        try:
            if events:
                with self.phantom(parent, cfg, root.id):
                    yield root
            else:
                yield root
        finally:
            from strata.build.layertree import unmount

            unmount(str(root.path))
            self._remove_behind("", root.cdir)

    def _scratch_root(self, parent: Digest | None) -> StepRoot | None:
        """A scratch rootfs laid out and mounted as a step container's (None: it does not mount here)."""
        import shutil
        import tempfile

        from strata.build.layertree import mount_prefix
        from strata.container.rootfs import Rootfs

        lowers = self.engine.layer_dirs(parent) if parent is not None else []
        watchdog.ensure(self.engine.root)  # a kill -9 from here on: the watchdog unmounts it
        cdir = as_path(tempfile.mkdtemp(dir=self.engine.store.tmp, prefix=mount_prefix(os.getpid())))
        rootfs = Rootfs(cdir, "overlay")
        try:
            with not_durable():  # scratch, removed after the step: a crash loses nothing it needs
                rootfs.prepare(lowers, volatile=True)  # adopted after a syncfs or discarded
            rootfs.mount()
        except (StrataError, OSError):
            shutil.rmtree(cdir, ignore_errors=True)
            return None
        return StepRoot(os.urandom(32).hex(), cdir, "overlay", rootfs.path)

    def _remove_behind(self, cid: str, scratch: Path) -> None:
        """The step's container removed while the next step goes on (its image is committed, nothing
        reads it again): ``runc delete``, the unmount and the tree's removal leave the critical path.
        ``wait_removals`` (every stage ends with it, failed or not) waits for them and raises their error."""
        if self._removals is None:
            import queue  # a cached build never removes a step container

            self._removals = queue.SimpleQueue()
        self._removals.put((cid, scratch))
        if self._remover is None:
            self._remover = threading.Thread(target=self._remove_all, args=(self._removals,), name="remove-steps",
                                             daemon=True)  # fmt: skip
            self._remover.start()

    def _remove_all(self, removals: queue.SimpleQueue[tuple[str, Path] | None]) -> None:
        """The removal thread: each queued container removed, in order, until ``None``."""
        store: ContainerStore | None = None
        try:
            while (item := removals.get()) is not None:
                if not item[0]:  # a scratch root (unmounted): only its directory
                    self._remove(None, *item)
                    continue
                if store is None:
                    store = ContainerStore(self.engine.root_dir)  # a connection of this thread's own
                self._remove(store, *item)
        finally:
            if store is not None:
                store.close()

    def _remove(self, store: ContainerStore | None, cid: str, scratch: Path) -> None:
        import shutil

        try:
            cur = store.by_id(cid) if store is not None else None
            if cur is not None:
                _lc().remove(store, cur, force=True)
        except BaseException as e:  # handed to wait_removals
            self._removal_errors.append(e)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def wait_removals(self) -> None:
        """Every step container this runner made is gone; the first failure to remove one is raised."""
        if self._remover is not None and self._removals is not None:
            self._removals.put(None)
            self._remover.join()
            self._remover = None
        if self._removal_errors:
            error, self._removal_errors = self._removal_errors[0], []
            raise error

    def _fill_volumes(self, c: Container, binds: list[Bind]) -> None:
        """Each volume's mount point made in the rootfs, its content copied to the volume."""
        if not binds:
            return
        import shutil

        root_fd = os.open(self.rootfs(c), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for bind in binds:
                fd, _ = mkdir_all(root_fd, bind.destination)
                try:
                    real = os.readlink(f"/proc/self/fd/{fd}")  # not running yet: nothing can swap it
                    shutil.copytree(real, bind.source, symlinks=True, dirs_exist_ok=True)  # create made it
                finally:
                    os.close(fd)
        finally:
            os.close(root_fd)

    @contextmanager
    def rootfs_fd(self, c: Container) -> Iterator[int]:
        fd = os.open(self.rootfs(c), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)

    def rootfs(self, c: Container) -> Path:
        from strata.container.rootfs import Rootfs

        rootfs = Rootfs(container_dir(self.store.root, c.id), c.driver)
        rootfs.mount()
        return rootfs.path

    def run(self, c: Container) -> int:
        """Run the container to its end; its exit code. Its output goes to the build's output as it
        comes (the monitor hands it over: no attach socket, no reading back of its log), and the build
        keeps its signals: Ctrl-C kills the step (as ``docker build`` cancels)."""
        if self.cancelled:
            raise StrataError("build cancelled")
        self.active = c
        try:
            from strata.container.monitor import Attach

            with not_durable():
                return int(_lc().start_attached(self.store, c, Attach(sink=self.sink or _discard)))
        except BaseException:
            self._kill(c)
            raise
        finally:
            self.active = None

    def cancel(self) -> None:
        """From another thread: the running step (if any) is killed; no further step starts."""
        self.cancelled = True
        c = self.active
        if c is not None:
            try:
                _lc().runtime_for(self.store.root, c).kill(c.id, "KILL", all_processes=True)
            except StrataError:
                pass

    def _kill(self, c: Container) -> None:
        """An interrupted step: the container is killed and recorded as exited, so removing it is quick."""
        runtime = _lc().runtime_for(self.store.root, c)
        runtime.kill(c.id, "KILL", all_processes=True)
        deadline = time.monotonic() + 10
        while (runtime.state(c.id) or {}).get("status") == "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        self.store.update(c.id, state="exited", exit_code=137, pid=0, monitor_pid=0)

    def commit(
        self, c: Container | StepRoot, parent: Digest | None, config_for: Callable[[bool], dict[str, Any]]
    ) -> Digest:
        """The new image: ``parent`` + the container's (or step root's) changes (an empty layer when
        nothing changed); ``config_for(empty_layer)`` gives its config document."""
        import shutil
        import tempfile

        from strata.build.adopt import adopt_upper
        from strata.build.layerstore import commit_layer, config_blob, store_layer
        from strata.container.changes import staged_upper

        cdir = c.cdir if isinstance(c, StepRoot) else container_dir(self.store.root, c.id)
        with self.engine.writing():
            # only a vfs step stages its changes in a scratch dir (overlay's upper dir is the layer itself)
            scratch = None if c.driver == "overlay" else as_path(tempfile.mkdtemp(dir=self.engine.store.tmp, prefix="build-"))
            try:
                with staged_upper(cdir, c.driver, scratch or cdir) as upper:
                    if not any(True for _ in os.scandir(upper)):
                        return commit_layer(self.engine, config_for(True), None, parent)
                    # the upper dir becomes the layer's unpacked dir (the next step needs no unpack)
                    # once the tar and the image's config are written, before they are recorded
                    cfg, below = config_for(False), [lay.diff_id for lay in self.engine.parent_layers(parent)]
                    layer = store_layer(self.engine, upper, lambda diff_id: adopt_upper(self.engine, cdir, c.driver, diff_id),
                                        lambda diff_id: config_blob(cfg, [*below, diff_id]))  # fmt: skip
                return commit_layer(self.engine, cfg, None, parent, layer)
            except OSError as e:
                raise StrataError(f"failed to commit build step: {os_error_text(e)}") from None
            finally:
                if scratch is not None:
                    shutil.rmtree(scratch, ignore_errors=True)

    def add_metadata_image(self, parent: Digest | None, cfg: dict[str, Any]) -> Digest:
        """A step that changes only the config: ``parent``'s layers and an empty-layer history entry."""
        return self.engine.add_image(cfg, None, parent=parent, tag=None)
