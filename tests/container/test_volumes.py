"""Volumes as Docker's local driver: the ``volume`` commands, ``-v``/``--mount``/``--tmpfs``, the image's
``VOLUME`` (anonymous volumes, copied from the image, removed by ``rm -v`` and ``--rm``),
``--volumes-from``, ``--read-only``, and Docker's errors for bad specifications."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from container_helpers import Strata

from strata.container.volumes import fill_from_image


def test_volume_commands_and_documents(strata: Strata) -> None:
    assert strata("volume", "create", "foo").stdout == "foo\n"
    assert strata("volume", "create", "--label", "a=b", "--name", "bar").stdout == "bar\n"
    assert strata("volume", "create", "foo").stdout == "foo\n"  # an existing name: the same volume
    assert strata("volume", "ls").stdout == "DRIVER    VOLUME NAME\nlocal     bar\nlocal     foo\n"
    assert strata("volume", "ls", "-q", "-f", "label=a=b").stdout == "bar\n"
    assert strata("volume", "ls", "-q", "-f", "name=fo").stdout == "foo\n"
    doc = json.loads(strata("volume", "inspect", "foo").stdout)
    assert list(doc[0]) == ["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"]
    assert doc[0]["Mountpoint"] == str(strata.root / "volumes" / "foo" / "_data")
    assert (doc[0]["Driver"], doc[0]["Labels"], doc[0]["Options"], doc[0]["Scope"]) == ("local", {}, {}, "local")
    assert strata("volume", "inspect", "-f", "{{.Labels.a}}", "bar").stdout == "b\n"
    res = strata("volume", "inspect", "nope", check=False)
    assert (res.returncode, res.stdout, res.stderr) == (1, "[]\n", "Error: No such volume: nope\n")
    res = strata("volume", "create", "bad@", check=False)
    assert res.returncode == 1
    assert res.stderr == ('Error: create bad@: "bad@" includes invalid characters for a local volume name, only '
                          '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
                          "use absolute path\n")
    (strata.root / "volumes" / "foo" / "_data" / "f").write_bytes(b"x" * 2000)
    res = strata("volume", "prune", "-f", "--filter", "label=a")
    assert res.stdout == "Deleted Volumes:\nbar\n\nTotal reclaimed space: 0B\n"
    assert strata("volume", "prune", "-f").stdout == "Deleted Volumes:\nfoo\n\nTotal reclaimed space: 2kB\n"
    assert strata("volume", "ls", "-q").stdout == ""
    assert strata("volume", "rm", "nope", check=False).stderr == "Error: No such volume: nope\n"
    assert [p.name for p in (strata.root / "volumes").iterdir()] == ["lock"]  # nothing left behind


@pytest.mark.runtime
def test_named_volume_outlives_containers(strata: Strata, busybox_image: str) -> None:
    strata("run", "--rm", "-v", "data:/data", busybox_image, "sh", "-c", "echo kept > /data/f")
    assert strata("volume", "ls", "-q").stdout == "data\n"  # --rm keeps named volumes
    res = strata("run", "--name", "ro", "-v", "data:/data:ro", busybox_image, "sh", "-c",
                 "cat /data/f; echo x > /data/g", check=False)
    assert res.stdout == "kept\n" and "Read-only file system" in res.stderr and res.returncode == 1
    mounts = json.loads(strata("inspect", "-f", "{{json .Mounts}}", "ro").stdout)
    assert mounts == [{"Type": "volume", "Name": "data", "Source": str(strata.root / "volumes/data/_data"),
                       "Destination": "/data", "Driver": "local", "Mode": "ro", "RW": False, "Propagation": ""}]
    cid = strata("inspect", "-f", "{{.Id}}", "ro").stdout.strip()
    strata("volume", "create", "unused")
    (strata.root / "volumes" / "unused" / "_data" / "f").write_bytes(b"x" * 3000)
    df = strata("system", "df", "--format", "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Reclaimable}}").stdout
    assert "Local Volumes|2|1|3kB (" in df, df  # two volumes, one in use; the unused one's bytes reclaimable
    strata("volume", "rm", "unused")
    res = strata("volume", "rm", "data", check=False)
    assert (res.returncode, res.stderr) == (1, f"Error: remove data: volume is in use - [{cid}]\n")
    strata("rm", "-v", "ro")  # -v removes anonymous volumes only
    assert strata("volume", "rm", "data").stdout == "data\n"


@pytest.mark.runtime
def test_image_volume_is_anonymous_filled_from_image_and_removed_with_rm_v(
        strata: Strata, busybox_tar: Path, busybox_image: str) -> None:
    strata("import", "-c", 'CMD ["/bin/sh"]', "-c", "VOLUME /etc", str(busybox_tar), "withvol:1")
    strata("run", "--name", "va", "withvol:1", "sh", "-c", "echo added >> /etc/passwd")
    (name,) = strata("volume", "ls", "-q").stdout.split()
    assert len(name) == 64
    data = strata.root / "volumes" / name / "_data"
    assert (data / "passwd").read_text().startswith("root:") and (data / "passwd").read_text().endswith("added\n")
    mounts = json.loads(strata("inspect", "-f", "{{json .Mounts}}", "va").stdout)
    assert mounts[0]["Name"] == name and mounts[0]["Destination"] == "/etc" and mounts[0]["RW"] is True
    doc = json.loads(strata("volume", "inspect", name).stdout)[0]
    assert doc["Labels"] is None and doc["Options"] is None
    # --volumes-from shares it (read-only when asked)
    res = strata("run", "--rm", "--volumes-from", "va:ro", busybox_image, "sh", "-c",
                 "tail -n1 /etc/passwd; touch /etc/x", check=False)
    assert res.stdout == "added\n" and "Read-only file system" in res.stderr
    strata("rm", "-v", "va")
    assert strata("volume", "ls", "-q").stdout == ""
    strata("run", "--rm", "-v", "/anon", busybox_image, "touch", "/anon/x")
    assert strata("volume", "ls", "-q").stdout == ""  # --rm removes anonymous volumes


@pytest.mark.runtime
def test_binds_tmpfs_read_only(strata: Strata, busybox_image: str, tmp_path: Path) -> None:
    host = tmp_path / "made" / "by-v"
    strata("run", "--rm", "-v", f"{host}:/h", busybox_image, "touch", "/h/file")
    assert (host / "file").exists()  # -v creates a missing bind source
    res = strata("run", "--rm", "--mount", f"type=bind,source={tmp_path}/nope,target=/x", busybox_image, "true",
                 check=False)
    assert (res.returncode, res.stderr) == (
        125, f'Error: invalid mount config for type "bind": bind source path does not exist: {tmp_path}/nope\n')
    assert not (tmp_path / "nope").exists()
    out = strata("run", "--rm", "--read-only", "--tmpfs", "/scratch:size=1m", "--mount",
                 f"type=bind,src={host},dst=/b,readonly", busybox_image, "sh", "-c",
                 "touch /scratch/ok && echo tmpfs-ok; touch /b/no || echo bind-ro; touch /root-no || echo root-ro;"
                 " grep /scratch /proc/mounts", check=False)
    assert out.stdout.splitlines()[:3] == ["tmpfs-ok", "bind-ro", "root-ro"], out
    assert "tmpfs /scratch tmpfs rw,nosuid,nodev,noexec" in out.stdout and "size=1024k" in out.stdout


@pytest.mark.parametrize(("flag", "message"), [
    (["-v", "/tmp:/"], "invalid volume specification: '/tmp:/': invalid mount config for type \"bind\": "
                       "invalid specification: destination can't be '/'"),
    (["-v", "/tmp:rel"], "invalid volume specification: '/tmp:rel': invalid mount config for type \"bind\": "
                         "invalid mount path: 'rel' mount path must be absolute"),
    (["-v", "a:b:c:d"], "invalid volume specification: 'a:b:c:d'"),
    (["-v", "/tmp:/x:bogus"], "invalid mode: bogus"),
    (["-v", "bad@:/x"], 'create bad@: "bad@" includes invalid characters for a local volume name, only '
                        '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use '
                        "absolute path"),
    (["--mount", "type=bind,source=/tmp"], 'invalid argument "type=bind,source=/tmp" for "--mount" flag: '
                                           "target is required\nSee 'strata run --help'."),
    (["--mount", "type=nfs,target=/x"], 'invalid mount config for type "nfs": mount type unknown'),
    (["--restart", "sometimes"], "invalid restart policy 'sometimes'"),
    (["--restart", "always:3"], "maximum retry count cannot be used with restart policy 'always'"),
    (["--restart", "always", "--rm"], "Conflicting options: --restart and --rm"),
    (["--restart", "bogus", "--rm"], "Conflicting options: --restart and --rm"),
])
def test_bad_specifications_are_refused_up_front(strata: Strata, flag: list[str], message: str) -> None:
    res = strata("run", *flag, "nosuchimage:never", "true", check=False)
    assert (res.returncode, res.stderr) == (125, f"Error: {message}\n")
    assert not (strata.root / "containers.db").exists() or strata("ps", "-aq").stdout == ""


def test_fill_from_image_never_follows_symlinks(tmp_path: Path) -> None:
    rootfs, outside, data = tmp_path / "rootfs", tmp_path / "outside", tmp_path / "data"
    for d in (rootfs, outside, data):
        d.mkdir()
    (outside / "secret").write_text("host secret")
    os.symlink(str(outside), rootfs / "link")  # a volume at /link must not copy the host's directory
    fill_from_image(rootfs, "/link", data)
    assert list(data.iterdir()) == []
    (rootfs / "real" / "sub").mkdir(parents=True)
    (rootfs / "real" / "sub" / "f").write_text("image file")
    os.symlink(str(outside / "secret"), rootfs / "real" / "to-secret")
    os.symlink(str(outside), rootfs / "real" / "to-dir")
    os.chmod(rootfs / "real", 0o750)
    fill_from_image(rootfs, "/real", data)
    assert (data / "sub" / "f").read_text() == "image file"
    assert os.readlink(data / "to-secret") == str(outside / "secret")  # copied as a link, never read
    assert os.path.islink(data / "to-dir") and oct(data.stat().st_mode & 0o777) == oct(0o750)
    fill_from_image(rootfs, "/real/sub", data)  # a volume with content is never filled again
    assert not (data / "f").exists()


@pytest.mark.runtime
def test_local_driver_options_mount_that_filesystem(strata: Strata, busybox_image: str) -> None:
    strata("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m,uid=1000", "tv")
    assert strata("volume", "inspect", "-f", "{{json .Options}}", "tv").stdout == \
        '{"device":"tmpfs","o":"size=1m,uid=1000","type":"tmpfs"}\n'  # a Go map: keys in order
    out = strata("run", "--rm", "-v", "tv:/t", busybox_image, "grep", " /t ", "/proc/mounts").stdout
    assert out.startswith("tmpfs /t tmpfs rw,") and "size=1024k" in out and "uid=1000" in out
    res = strata("volume", "create", "-o", "bogus=1", "bad-opt", check=False)
    assert (res.returncode, res.stderr) == (1, 'Error: create bad-opt: invalid option: "bogus"\n')
    assert strata("volume", "ls", "-q").stdout == "tv\n"


@pytest.mark.runtime
def test_an_empty_named_volume_is_filled_unless_nocopy(strata: Strata, busybox_image: str) -> None:
    strata("volume", "create", "etc-copy")
    out = strata("run", "--rm", "-v", "etc-copy:/etc", busybox_image, "head", "-c", "5", "/etc/passwd").stdout
    assert out == "root:"
    assert (strata.root / "volumes" / "etc-copy" / "_data" / "passwd").exists()
    strata("run", "--rm", "-v", "etc-none:/etc:nocopy", busybox_image, "true")
    left = sorted((strata.root / "volumes" / "etc-none" / "_data").iterdir())  # as Docker's: only the
    assert [(p.name, p.stat().st_size) for p in left] == [  # network files' empty mount points, no copy
        ("hostname", 0), ("hosts", 0), ("resolv.conf", 0)]
    (strata.root / "volumes" / "etc-copy" / "_data" / "passwd").write_text("mine\n")  # not empty: kept as is
    assert strata("run", "--rm", "-v", "etc-copy:/etc", busybox_image, "cat", "/etc/passwd").stdout == "mine\n"


@pytest.mark.runtime
def test_mount_volume_labels_and_options_make_the_volume(strata: Strata, busybox_image: str) -> None:
    out = strata("run", "--rm", "--mount", "type=volume,source=mv,target=/m,volume-label=a=b,volume-label=c=d,"
                 "volume-opt=type=tmpfs,volume-opt=device=tmpfs", busybox_image, "grep", " /m ", "/proc/mounts").stdout
    assert out.startswith("tmpfs /m tmpfs rw")
    assert strata("volume", "inspect", "-f", "{{json .Labels}} {{json .Options}}", "mv").stdout == \
        '{"a":"b","c":"d"} {"device":"tmpfs","type":"tmpfs"}\n'
