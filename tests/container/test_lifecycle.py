"""Running containers without a daemon: attached and detached runs, ps from new processes, stop/kill/rm,
exit codes and Docker's messages."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from container_helpers import Strata, runtime_missing
from ptyrun import PtySession

pytestmark = pytest.mark.runtime


def test_run_attached_streams_and_exit_code(strata: Strata, busybox_image: str) -> None:
    res = strata("run", "--name", "xx", busybox_image, "sh", "-c", "echo hi > /hello; hostname; echo err >&2; exit 5",
                 check=False)
    assert res.returncode == 5
    cid = strata("container", "inspect", "-f", "{{.Id}}", "xx").stdout.strip()
    assert res.stdout == cid[:12] + "\n"
    assert res.stderr == "err\n"
    assert strata("diff", "xx").stdout == "A /hello\n"
    logs = strata("logs", "xx")
    assert logs.stdout == cid[:12] + "\n" and logs.stderr == "err\n"
    log_file = Path(strata("container", "inspect", "-f", "{{.LogPath}}", "xx").stdout.strip())
    first = log_file.read_text().splitlines()[0]
    assert re.fullmatch(r'\{"log":"[0-9a-f]{12}\\n","stream":"stdout","time":"[0-9T:.-]+Z"\}', first), first


def test_name_conflict_is_dockers_message(strata: Strata, busybox_image: str) -> None:
    strata("run", "--name", "xx", busybox_image, "true")
    cid = strata("container", "inspect", "-f", "{{.Id}}", "xx").stdout.strip()
    res = strata("run", "--name", "xx", busybox_image, "true", check=False)
    assert res.returncode == 125
    assert res.stderr == (
        f'Error: Conflict. The container name "/xx" is already in use by container "{cid}". '
        "You have to remove (or rename) that container to be able to reuse that name.\n"
    )


def test_start_failures_map_to_docker_exit_codes(strata: Strata, busybox_image: str) -> None:
    res = strata("run", busybox_image, "/nonexistent", check=False)
    assert res.returncode == 127
    assert 'exec: "/nonexistent"' in res.stderr and res.stderr.startswith("Error: ")
    res = strata("run", busybox_image, "/etc/passwd", check=False)
    assert res.returncode == 126
    missing = "sha256:" + "0" * 64
    res = strata("run", missing, "true", check=False)
    assert res.returncode == 125 and res.stderr == f"Error: No such image: {missing}\n"
    res = strata("stop", "nosuch", check=False)
    assert res.returncode == 1 and res.stderr == "Error: No such container: nosuch\n"
    res = strata("run", "-w", "relative", busybox_image, "true", check=False)
    assert (res.returncode, res.stderr) == (
        125, "Error: the working directory 'relative' is invalid, it needs to be an absolute path\n"
    )


def test_detached_container_outlives_strata(strata: Strata, busybox_image: str) -> None:
    script = "trap 'echo bye; exit 0' TERM; echo started; while true; do sleep 0.1; done"
    began = time.monotonic()
    cid = strata("run", "-d", "--name", "bg", busybox_image, "sh", "-c", script).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    time.sleep(2.2)
    ps = strata("ps").stdout.splitlines()
    elapsed = time.monotonic() - began  # at most this long up (ps itself may start slowly on a loaded machine)
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    up = re.search(rf"^{cid[:12]}\s+{busybox_image}\s+\"sh -c 'trap 'echo b…\"\s+.*\s+Up (\d+) seconds\s+bg$",
                   ps[1])
    assert up and 2 <= int(up.group(1)) <= elapsed, (ps, elapsed)
    deadline = time.monotonic() + 60  # the shell's first line, logged by its monitor: late on a loaded machine
    while not strata("logs", "bg").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert strata("logs", "bg").stdout == "started\n"
    res = strata("rm", "bg", check=False)
    assert res.returncode == 1
    assert res.stderr == (
        f"Error: You cannot remove a running container {cid}. Stop the container before attempting removal "
        "or force remove\n"
    )
    assert strata("stop", "bg").stdout == "bg\n"
    assert strata("logs", "bg").stdout == "started\nbye\n"
    assert strata("stop", "bg").stdout == "bg\n"  # stopping a stopped container is fine, as in Docker
    line = strata("ps", "-a").stdout.splitlines()[1]
    assert re.search(r"Exited \(0\) (Less than a second|\d+ seconds?) ago\s+bg$", line), line
    assert strata("wait", "bg").stdout == "0\n"
    assert strata("ps", "-q").stdout == ""
    assert strata("ps", "-aq").stdout == cid[:12] + "\n"
    assert strata("rm", "bg").stdout == "bg\n"
    assert strata("ps", "-aq").stdout == ""


def test_kill_pause_restart_exec(strata: Strata, busybox_image: str) -> None:
    strata("run", "-d", "--name", "kk", busybox_image, "sleep", "1000")
    assert "(Paused)" in strata("pause", "kk").stdout + strata("ps").stdout
    strata("unpause", "kk")
    assert strata("exec", "kk", "sh", "-c", "echo in-$(hostname)").stdout.startswith("in-")
    assert strata("exec", "kk", "sh", "-c", "exit 4", check=False).returncode == 4
    assert re.fullmatch(r"/dev/pts/\d+\r?\n", strata("exec", "-t", "kk", "busybox", "tty").stdout)
    sess = PtySession(strata.argv("exec", "-it", "kk", "sh"), strata.env)
    sess.expect(b"# ")
    sess.sendline("echo $TERM-$((6*7))")
    sess.expect(b"xterm-42")
    sess.sendline("exit 9")
    assert sess.wait() == 9
    assert strata("kill", "kk").stdout == "kk\n"
    assert strata("wait", "kk").stdout == "137\n"
    res = strata("kill", "kk", check=False)
    assert res.returncode == 1 and "is not running" in res.stderr
    strata("restart", "kk")
    assert re.search(r"Up (Less than a second|\d+ seconds?)\s+kk$", strata("ps").stdout.splitlines()[1])
    strata("rm", "-f", "kk")
    assert strata("ps", "-aq").stdout == ""


def test_run_options(strata: Strata, busybox_image: str, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from host\n")
    out = strata(
        "run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "-u", "nobody", "-v", f"{shared}:/data",
        "--hostname", "box", "--network", "none", busybox_image,
        "sh", "-c", "echo $FOO; pwd; id -u; hostname; cat /data/in.txt; cat /proc/net/dev | grep -c :",
    ).stdout.splitlines()
    assert out == ["bar", "/tmp", "65534", "box", "from host", "1"]  # only loopback with --network none
    assert strata("ps", "-aq").stdout == ""  # --rm
    res = strata("run", "--rm", "-v", f"{shared}:/data:ro", busybox_image, "touch", "/data/x", check=False)
    assert res.returncode != 0 and not (shared / "x").exists()


def test_vfs_driver_run_diff_commit(strata: Strata, busybox_image: str) -> None:
    strata("run", "--storage-driver", "vfs", "--name", "vv", busybox_image,
           "sh", "-c", "echo new > /added; rm /etc/group; echo more >> /etc/passwd")
    assert strata("diff", "vv").stdout.splitlines() == ["A /added", "C /etc", "D /etc/group", "C /etc/passwd"]
    strata("commit", "vv", "vfs:1")
    out = strata("run", "--rm", "vfs:1", "sh", "-c", "cat /added; ls /etc; tail -1 /etc/passwd").stdout
    assert out.splitlines() == ["new", "hostname", "hosts", "mtab", "passwd", "resolv.conf", "more"]


def test_falls_back_to_vfs_when_overlay_cannot_mount(tmp_path: Path, busybox_tar: Path) -> None:
    if reason := runtime_missing():
        pytest.skip(reason)
    # a ':' in the store path cannot be written in overlayfs' lowerdir option: the mount fails for real
    odd = Strata(tmp_path / "odd:root")
    try:
        odd("import", str(busybox_tar), "bb:1")
        odd("run", "--name", "fallback", "bb:1", "sh", "-c", "echo x > /x")
        assert odd("container", "inspect", "-f", "{{.Driver}}", "fallback").stdout == "vfs\n"
        assert odd("diff", "fallback").stdout == "A /x\n"
    finally:
        odd("rm", "-f", "fallback", check=False)


def test_exec_kill_and_tty_errors_as_docker(strata: Strata, busybox_image: str) -> None:
    strata("run", "-d", "--name", "ex", busybox_image, "sleep", "1000")
    # Docker's daemon writes it into the exec's stream, ending \r\n (text mode reads it as \n)
    res = strata("exec", "ex", "nosuch", check=False)
    assert (res.returncode, res.stdout, res.stderr) == (126, (
        'OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": '
        "executable file not found in $PATH: unknown\n"), "")
    res = strata("exec", "ex", "/etc/passwd", check=False)
    assert res.returncode == 126 and res.stdout.endswith('exec: "/etc/passwd": permission denied: unknown\n')
    res = strata("exec", "-u", "nosuchuser", "ex", "true", check=False)
    assert (res.returncode, res.stdout) == (126, "unable to find user nosuchuser: no matching entries "
                                                  "in passwd file\n")
    # the exec'd user's groups replace the container's (root's) groups; -e replaces PATH in place
    assert strata("exec", "-u", "nobody", "ex", "id").stdout == (
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n")
    out = strata("exec", "-e", "PATH=/x:/bin", "-e", "A=1", "ex", "sh", "-c", "echo $PATH $A ${TERM:-none}")
    assert out.stdout == "/x:/bin 1 none\n"
    res = strata("exec", "ex", "sh", "-c", "echo out; echo err >&2; sleep 100 & exit 3", check=False)
    assert (res.returncode, res.stdout, res.stderr) == (3, "out\n", "err\n")
    assert strata("exec", "-d", "ex", "sh", "-c", "echo hidden").stdout == ""
    assert strata("exec", "-i", "ex", "cat", input="piped\n").stdout == "piped\n"
    res = strata("exec", "-it", "ex", "true", input="", check=False)
    assert (res.returncode, res.stderr) == (1, "the input device is not a TTY\n")
    for sig in ("NOPE", "0"):
        res = strata("kill", "-s", sig, "ex", check=False)
        assert (res.returncode, res.stderr) == (1, f"Error: Invalid signal: {sig}\n")
    assert "Up " in strata("ps", "--format", "{{.Status}}").stdout
    assert strata("kill", "-s", "sigterm", "ex").stdout == "ex\n"  # PID 1 without a handler ignores it
    assert strata("kill", "-s", "9", "ex").stdout == "ex\n"
    assert strata("wait", "ex").stdout == "137\n"
    res = strata("run", "-u", "nosuchuser", "--name", "nouser", busybox_image, "true", check=False)
    assert (res.returncode, res.stderr) == (125, "Error: unable to find user nosuchuser: no matching entries "
                                                  "in passwd file\n")
    assert strata("ps", "-a", "-f", "name=nouser", "--format", "{{.Status}}").stdout == "Created\n"
    res = strata("run", "-it", "--name", "notty", busybox_image, "true", input="", check=False)
    assert (res.returncode, res.stderr) == (1, "the input device is not a TTY\n")
    assert strata("ps", "-aq", "-f", "name=notty").stdout == ""
    assert strata("run", "--rm", "-u", "nobody", busybox_image, "id").stdout == (
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n")


def test_ps_filters_sizes_prune_and_df(strata: Strata, busybox_image: str) -> None:
    strata("run", "--name", "one", "-l", "k=v", busybox_image, "true")
    strata("run", "--name", "big", busybox_image, "sh", "-c",
           "dd if=/dev/zero of=/f bs=1k count=1500 2>/dev/null; ln /f /g")  # a hard link counts once
    strata("run", "-d", "--name", "up", busybox_image, "sleep", "1000")
    fmt = ("--format", "{{.Names}}")
    assert strata("ps", *fmt).stdout == "up\n"
    assert strata("ps", "-f", "status=exited", *fmt).stdout == "big\none\n"  # a status filter lists stopped ones
    assert strata("ps", "-a", "-f", "name=^/on", "-f", "name=ig$", *fmt).stdout == "big\none\n"
    assert strata("ps", "-a", "-f", "label=k=v", "-f", "status=exited", *fmt).stdout == "one\n"
    assert strata("ps", "-a", "-f", "before=big", *fmt).stdout == "one\n"
    assert strata("ps", "-a", "-f", "since=big", *fmt).stdout == "up\n"
    assert strata("ps", "-a", "-f", f"ancestor={busybox_image}", "-q").stdout.count("\n") == 3
    assert strata("ps", "-n", "1", *fmt).stdout == "up\n"
    res = strata("ps", "-f", "status=bogus", check=False)
    assert (res.returncode, res.stderr) == (1, "Error: Invalid filter 'status=bogus'\n")
    res = strata("ps", "-f", "colour=red", check=False)
    assert (res.returncode, res.stderr) == (1, "Error: Invalid filter 'colour'\n")
    sizes = strata("ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}").stdout.splitlines()
    assert sizes == ["up 0B (virtual 1.98MB)", "big 1.54MB (virtual 3.52MB)", "one 0B (virtual 1.98MB)"]
    table = strata("ps", "-s").stdout.splitlines()
    assert table[0].split()[-2:] == ["NAMES", "SIZE"] and table[1].endswith("up        0B (virtual 1.98MB)")
    df = [line.split() for line in strata("system", "df").stdout.splitlines()]
    assert df[2] == ["Containers", "3", "1", "1.536MB", "1.536MB", "(100%)"]
    # prune: unknown filters refused before anything is removed; a refusal still prints the total
    res = strata("container", "prune", "-f", "--filter", "name=one", check=False)
    assert (res.returncode, res.stderr) == (1, "Error: Invalid filter 'name'\n")
    assert strata("container", "prune", "-f", "--filter", "until=1h").stdout == "Total reclaimed space: 0B\n"
    assert strata("container", "prune", input="n\n").stdout == (
        "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "
        "Total reclaimed space: 0B\n")
    big = strata("ps", "-aq", "--no-trunc", "-f", "name=big").stdout.strip()
    out = strata("container", "prune", "-f", "--filter", "label!=k").stdout.splitlines()
    assert out == ["Deleted Containers:", big, "", "Total reclaimed space: 1.536MB"]
    assert strata("ps", "-a", *fmt).stdout == "up\none\n"


def test_runtime_from_the_config_file(strata: Strata, busybox_image: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"default-runtime": "nosuch-runtime", "runtimes": {"mine": {"path": "runc"}}}')
    monkeypatch.setenv("STRATA_CONFIG", str(config))
    monkeypatch.delenv("STRATA_RUNTIME", raising=False)
    res = strata("run", "--rm", busybox_image, "true", check=False)
    assert res.returncode == 125
    assert res.stderr.startswith('Error: failed to create container: OCI runtime "nosuch-runtime": executable file')
    assert strata("run", "--rm", "--runtime", "mine", busybox_image, "echo", "ok").stdout == "ok\n"
    config.write_text('{"storage-driver": "vfs"}')
    strata("create", "--name", "vv", busybox_image, "true")
    assert strata("container", "inspect", "-f", "{{.Driver}} {{.HostConfig.Runtime}}", "vv").stdout == "vfs runc\n"
