"""Container pieces that need no runtime: records, config merging, users, the OCI spec, logs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from strata.container.inspect import list_command
from strata.container.logs import JsonLogWriter, read_log
from strata.container.records import Container, ContainerStore, images_in_use, pid_alive, process_start
from strata.container.spec import DEFAULT_CAPS, build_spec, container_config, resolve_user
from strata.digest import Digest
from strata.errors import Conflict, ContainerNotFound, StrataError

IMG = "sha256:" + "ab" * 32


def _container(cid: str, name: str, created: float, state: str = "exited") -> Container:
    return Container(id=cid, name=name, image_id=IMG, image_name="img", created=created, path="sh",
                     args=["-c", "echo a b"], state=state)


def test_records_names_lookup_and_images_in_use(tmp_path: Path) -> None:
    with ContainerStore(tmp_path) as store:
        store.add(_container("a" * 64, "first", 1.0))
        store.add(_container("ab" + "c" * 62, "second", 2.0, state="running"))
        with pytest.raises(Conflict) as e:
            store.add(_container("d" * 64, "first", 3.0))
        assert str(e.value) == (
            f'Conflict. The container name "/first" is already in use by container "{"a" * 64}". '
            "You have to remove (or rename) that container to be able to reuse that name."
        )
        assert e.value.exit_code == 125
        assert store.get("/first").id == "a" * 64
        assert store.get("abc").name == "second"
        with pytest.raises(StrataError, match="multiple IDs found with provided prefix: a"):
            store.get("a")
        with pytest.raises(ContainerNotFound, match=r"^No such container: zz$"):
            store.get("zz")
        assert [c.name for c in store.all()] == ["second", "first"]
    assert images_in_use(tmp_path) == {Digest.parse(IMG): [("a" * 64, False), ("ab" + "c" * 62, True)]}
    assert images_in_use(tmp_path / "nothing") == {}


def test_list_command_quotes_args_with_spaces() -> None:
    assert list_command(_container("a" * 64, "n1", 0)) == "sh -c 'echo a b'"


def test_container_config_follows_dockers_rules() -> None:
    image = {"Env": ["PATH=/bin", "A=1"], "Cmd": ["/bin/sh"], "Entrypoint": ["/init"], "WorkingDir": "/w",
             "User": "nobody"}
    cfg = container_config(image, image_name="i", hostname="h", cmd=None, entrypoint=None, env=["A=2", "B=3"],
                           workdir=None, user=None, tty=True, interactive=True)
    assert cfg["Entrypoint"] == ["/init"] and cfg["Cmd"] == ["/bin/sh"]
    assert cfg["Env"] == ["PATH=/bin", "A=2", "B=3"]
    assert (cfg["WorkingDir"], cfg["User"], cfg["Tty"], cfg["OpenStdin"]) == ("/w", "nobody", True, True)
    # --entrypoint drops the image's Cmd; a given command replaces Cmd only
    cfg = container_config(image, image_name="i", hostname="h", cmd=None, entrypoint=["/x"], env=[],
                           workdir=None, user=None, tty=False, interactive=False)
    assert (cfg["Entrypoint"], cfg["Cmd"]) == (["/x"], None)
    cfg = container_config(image, image_name="i", hostname="h", cmd=["ls"], entrypoint=[], env=[],
                           workdir="/", user="0", tty=False, interactive=False)
    assert (cfg["Entrypoint"], cfg["Cmd"]) == (None, ["ls"])
    cfg = container_config({}, image_name="i", hostname="h", cmd=["ls"], entrypoint=None, env=[],
                           workdir=None, user=None, tty=False, interactive=False)
    assert cfg["Env"] is None  # as Docker: PATH goes to the process env only, not into the config


def test_users_resolve_inside_the_rootfs_only(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nbob:x:1000:\nwheel:x:10:bob\n")
    u = resolve_user(root, "bob")
    assert (u.uid, u.gid, u.additional_gids, u.home) == (1000, 1000, [10], "/home/bob")
    u = resolve_user(root, "bob:wheel")
    assert (u.uid, u.gid) == (1000, 10)
    assert resolve_user(root, "4242:4343").uid == 4242
    with pytest.raises(StrataError, match="unable to find user nope: no matching entries in passwd file"):
        resolve_user(root, "nope")
    # an absolute symlink resolves inside the rootfs, never to the host's file
    (root / "etc" / "passwd").unlink()
    os.symlink("/etc/../../../etc/shadow-of-host", root / "etc" / "passwd")
    (root / "etc" / "shadow-of-host").write_text("bob:x:2000:1000::/home/bob:/bin/sh\n")
    assert resolve_user(root, "bob").uid == 2000
    assert resolve_user(root, "0").uid == 0


def test_spec_has_dockers_defaults(tmp_path: Path) -> None:
    cfg = container_config({}, image_name="i", hostname="0123456789ab", cmd=["sh"], entrypoint=None, env=[],
                           workdir=None, user=None, tty=True, interactive=True)
    spec = build_spec(config=cfg, args=["sh"], rootfs=tmp_path, user=resolve_user(tmp_path, "0"),
                      network="none", hosts_files={"/etc/hosts": tmp_path / "hosts"}, binds=[],
                      console_size=(30, 100))
    assert spec["hostname"] == "0123456789ab"
    assert spec["process"]["env"][:3] == [spec["process"]["env"][0], "HOSTNAME=0123456789ab", "TERM=xterm"]
    assert spec["process"]["capabilities"]["bounding"] == DEFAULT_CAPS
    assert spec["process"]["consoleSize"] == {"height": 30, "width": 100}
    assert "rlimits" not in spec["process"]  # never above the caller's limits: inherit them
    assert {n["type"] for n in spec["linux"]["namespaces"]} == {"pid", "ipc", "uts", "mount", "network"}
    assert "/proc/kcore" in spec["linux"]["maskedPaths"] and "/proc/sys" in spec["linux"]["readonlyPaths"]
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests[:2] == ["/proc", "/dev"] and {"/dev/pts", "/dev/shm", "/sys", "/etc/hosts"} <= set(dests)
    host = build_spec(config=cfg, args=["sh"], rootfs=tmp_path, user=resolve_user(tmp_path, "0"),
                      network="host", hosts_files={}, binds=[])
    assert "network" not in {n["type"] for n in host["linux"]["namespaces"]}


def test_json_log_lines(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = JsonLogWriter(path)
    w.write("stdout", b"hello\nwor")
    w.write("stderr", b"oops\n")
    w.write("stdout", b"ld\npartial")
    w.close()
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["stream"], e["log"]) for e in entries] == [
        ("stdout", "hello\n"), ("stderr", "oops\n"), ("stdout", "world\n"), ("stdout", "partial"),
    ]
    assert all(e["time"].endswith("Z") and len(e["time"]) == 30 for e in entries)
    assert [t for _, t, _ in read_log(path, tail=2)] == ["world\n", "partial"]


def test_a_reused_pid_is_not_the_monitor() -> None:
    me = os.getpid()
    assert process_start(me) > 0
    assert pid_alive(me) and pid_alive(me, process_start(me))
    assert not pid_alive(me, process_start(me) + 1)  # same PID, another process: the monitor is gone
    assert Container.from_json(_container("a" * 64, "x", 1.0).to_json()).monitor_start == 0
    assert Container.from_json('{"id": "a", "name": "n", "image_id": "i", "image_name": "", "created": 0,'
                               ' "path": "sh", "args": [], "monitor_pid": 5}').monitor_start == 0  # older records
