"""``strata build`` on its own: cache reuse, failures leaving nothing behind, contexts from stdin,
errors in Docker's words, the context boundary."""

from __future__ import annotations

import gzip
import io
import os
import re
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from build_helpers import Strata, mounts_under

DOCKERFILE = """FROM strata-test/busybox:latest
ENV A=1
COPY first.txt /first.txt
RUN cat /first.txt > /copy
COPY second.txt /second.txt
RUN cat /second.txt >> /copy
CMD ["cat", "/copy"]
"""


def _ctx(tmp_path: Path, dockerfile: str = DOCKERFILE, **files: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in {"first.txt": "one\n", "second.txt": "two\n", **files}.items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(text)
    return ctx


def _steps(out: str) -> list[list[str]]:
    """Each step's output lines (after its ``Step`` line)."""
    steps: list[list[str]] = []
    for line in out.splitlines():
        if line.startswith("Step "):
            steps.append([])
        elif steps:
            steps[-1].append(line)
    return steps


def test_rebuild_uses_the_cache_and_a_changed_file_rebuilds_from_its_copy(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    first = strata("build", "-t", "cached:1", str(ctx))
    assert "Successfully tagged cached:1" in first.stdout
    image = strata("inspect", "--format", "{{.Id}}", "cached:1").stdout.strip()
    again = strata("build", "-t", "cached:1", str(ctx))
    assert all(" ---> Using cache" in s for s in _steps(again.stdout)[1:]), again.stdout
    assert strata("inspect", "--format", "{{.Id}}", "cached:1").stdout.strip() == image
    (ctx / "second.txt").write_text("changed\n")
    third = strata("build", "-t", "cached:1", str(ctx))
    cached = [" ---> Using cache" in s for s in _steps(third.stdout)]
    assert cached == [False, True, True, True, False, False, False], third.stdout
    assert strata("run", "--rm", "cached:1").stdout == "one\nchanged\n"
    nocache = strata("build", "--no-cache", str(ctx))
    assert "Using cache" not in nocache.stdout


def test_failing_run_leaves_nothing_behind(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    ctx = _ctx(tmp_path, "FROM strata-test/busybox:latest\nRUN echo out && false\n")
    r = strata("build", "-t", "broken:1", str(ctx), check=False)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == "Error: The command '/bin/sh -c echo out && false' returned a non-zero code: 1"
    assert "out" in r.stdout
    assert strata("ps", "-aq").stdout == ""
    assert mounts_under(root) == []
    assert strata("images", "-q", "broken").stdout == ""
    (ctx / "Dockerfile").write_text("FROM strata-test/busybox:latest\nRUN exit 3\n")
    assert strata("build", str(ctx), check=False).returncode == 3


def test_parse_error_is_dockers(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM strata-test/busybox:latest\nRUN true\nRUNN x\n")
    r = strata("build", str(ctx), check=False, input=b"")
    assert (r.returncode, r.stdout) == (1, b"Sending build context to Docker daemon  4.096kB\r\r\n")  # as Docker: sent, then parsed
    assert r.stderr == b"Error: dockerfile parse error line 3: unknown instruction: RUNN\n"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("COPY nope /x", "COPY failed: file not found in build context or excluded by .dockerignore: stat nope: file does not exist"),
        ("COPY ../first.txt /x", "COPY failed: forbidden path outside the build context: ../first.txt ()"),
        ("COPY *.nothing /x/", "COPY failed: no source files were specified"),
        ("COPY first.txt second.txt /x", "When using COPY with more than one source file, the destination must be a directory and end with a /"),
        ("COPY --from=nosuchstage /a /b", "invalid from flag value nosuchstage:"),
        ("COPY evil /x", "COPY failed: file not found in build context or excluded by .dockerignore: stat evil: file does not exist"),
    ],
)  # fmt: skip
def test_copy_errors(strata: Strata, busybox: str, tmp_path: Path, line: str, error: str) -> None:
    ctx = _ctx(tmp_path, f"FROM strata-test/busybox:latest\n{line}\n")
    os.symlink("/etc/hostname", ctx / "evil")  # outside the context: resolved inside it, so missing
    r = strata("build", str(ctx), check=False)
    assert r.returncode != 0
    assert r.stderr.startswith(f"Error: {error}"), r.stderr


def test_symlinks_stay_inside_the_context(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM strata-test/busybox:latest\nCOPY dir /dir\nCOPY inner /inner\n")
    (ctx / "dir").mkdir()
    os.symlink("/etc/shadow", ctx / "dir" / "abs")  # copied as a link, never followed
    os.symlink("/first.txt", ctx / "inner")  # a source symlink resolves inside the context
    strata("build", "-t", "links:1", str(ctx))
    out = strata("run", "--rm", "links:1", "sh", "-c", "readlink /dir/abs; cat /inner").stdout
    assert out == "/etc/shadow\none\n"


def test_context_tar_on_stdin_and_dockerfile_on_stdin(strata: Strata, busybox: str, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM strata-test/busybox:latest\nCOPY hello /hello\n"), ("hello", b"hi\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    r = strata("build", "-q", "-", input=gzip.compress(buf.getvalue()))
    image = bytes(r.stdout).decode().strip()  # type: ignore[arg-type]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image)
    assert strata("run", "--rm", image, "cat", "/hello").stdout == "hi\n"
    ctx = _ctx(tmp_path)
    iid = tmp_path / "iid"
    strata("build", "-f", "-", "--iidfile", str(iid), "-t", "stdin:1", str(ctx), input="FROM strata-test/busybox:latest\nCOPY first.txt /\n")
    assert iid.read_text() == strata("inspect", "--format", "{{.Id}}", "stdin:1").stdout.strip()


def test_heredoc_target_and_build_args(strata: Strata, busybox: str, tmp_path: Path) -> None:
    dockerfile = (
        "FROM strata-test/busybox:latest AS one\nARG WHO=world\n"
        "RUN <<EOF\necho hello $WHO > /greeting\nEOF\n"
        "RUN cat <<'X' > /literal\n$WHO stays\nX\n"
        "FROM one AS two\nRUN echo two > /two\n"
    )
    ctx = _ctx(tmp_path, dockerfile)
    r = strata("build", "--target", "one", "--build-arg", "WHO=you", "--build-arg", "UNUSED=1", "-t", "hd:1", str(ctx))
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in r.stdout
    assert "Step 5/" not in r.stdout or "/5 :" in r.stdout
    out = strata("run", "--rm", "hd:1", "sh", "-c", "cat /greeting /literal; ls /two 2>&1 || true").stdout
    assert out.splitlines()[:2] == ["hello you", "$WHO stays"]
    assert "No such file" in out
    history = strata("history", "--no-trunc", "--format", "{{.CreatedBy}}", "hd:1").stdout
    assert "|1 WHO=you /bin/sh -c" in history
    bad = strata("build", "--target", "nope", str(ctx), check=False)
    assert bad.stderr == "Error: failed to reach build target nope in Dockerfile\n"


def _ctrl_c_as_at_a_terminal() -> None:
    """SIGINT's default action in the build, as a shell gives a foreground command: a suite started in the
    background of a non-interactive shell (nohup, ``&``) inherits SIGINT ignored, and Python then installs
    no KeyboardInterrupt handler: the Ctrl-C test waited for the step's ``sleep 60``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_build(ctx: Path, root: Path) -> subprocess.Popen[str]:
    """A build running a long RUN, returned once its step container runs."""
    import time

    env = dict(os.environ, STRATA_ROOT=str(root))
    proc = subprocess.Popen([sys.executable, "-m", "strata", "build", "-t", "killed:1", str(ctx)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_as_at_a_terminal)  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while "Running in" not in proc.stdout.readline():
        assert time.monotonic() < deadline and proc.poll() is None
    return proc


def test_killed_build_leaves_nothing_after_the_next_build(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    """kill -9 during a RUN: no image is tagged; the next build removes the orphaned step container
    (and its mount)."""
    ctx = _ctx(tmp_path, "FROM strata-test/busybox:latest\nRUN sleep 60\n")
    proc = _start_build(ctx, root)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert strata("images", "-q", "killed").stdout == ""
    (ctx / "Dockerfile").write_text("FROM strata-test/busybox:latest\nENV A=1\n")
    strata("build", str(ctx))
    assert strata("ps", "-aq").stdout == ""
    assert mounts_under(root) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_build_cleans_up_at_once(strata: Strata, busybox: str, tmp_path: Path, root: Path, sig: int) -> None:
    """Ctrl-C (or SIGTERM) during a RUN whose process ignores it: the step is killed, nothing is left."""
    import time

    ctx = _ctx(tmp_path, "FROM strata-test/busybox:latest\nRUN sleep 60\n")
    proc = _start_build(ctx, root)
    t0 = time.monotonic()
    os.kill(proc.pid, sig)
    proc.communicate(timeout=50)  # the step's sleep 60 not waited for, with room for a loaded machine's cleanup
    assert proc.returncode == (130 if sig == signal.SIGINT else -sig) and time.monotonic() - t0 < 40  # SIGTERM: dies of it
    assert strata("ps", "-aq").stdout == ""
    assert mounts_under(root) == []
    assert strata("images", "-q", "killed").stdout == ""


def test_context_from_a_url(strata: Strata, busybox: str, tmp_path: Path) -> None:
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "ctx.tar.gz", "w:gz") as tar:
        for name, data in (("Dockerfile", b"FROM strata-test/busybox:latest\nCOPY f /f\n"), ("f", b"remote\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        strata("build", "-t", "remote:1", f"http://127.0.0.1:{server.server_port}/ctx.tar.gz")
    finally:
        server.shutdown()
        server.server_close()
    assert strata("run", "--rm", "remote:1", "cat", "/f").stdout == "remote\n"


def test_copy_heredoc(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM strata-test/busybox:latest\nCOPY <<EOF /etc/app.conf\nkey=value\nEOF\n")
    strata("build", "-t", "hdcopy:1", str(ctx))
    out = strata("run", "--rm", "hdcopy:1", "sh", "-c", "cat /etc/app.conf; stat -c %a /etc/app.conf").stdout
    assert out == "key=value\n644\n"


def test_run_mounts(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """RUN --mount: a cache kept between builds, a read-only bind of the context, a tmpfs; none of
    them in the image (of their mount points only the directories, as BuildKit leaves them)."""
    dockerfile = (
        "FROM strata-test/busybox:latest\n"
        "RUN --mount=type=cache,target=/cache echo $(date +%s%N) >> /cache/log && wc -l < /cache/log > /runs\n"
        "RUN --mount=type=bind,source=first.txt,target=/mnt/first cat /mnt/first > /from-bind "
        "&& ! touch /mnt/first 2>/dev/null\n"
        "RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch > /tmpfs-seen\n"
    )
    ctx = _ctx(tmp_path, dockerfile)
    strata("build", "-t", "mounts:1", str(ctx))
    strata("build", "--no-cache", "-t", "mounts:2", str(ctx))
    out = strata("run", "--rm", "mounts:2", "sh", "-c",
                 "cat /runs /from-bind /tmpfs-seen; ls -d /cache /mnt/first /scratch 2>&1 | grep -c 'No such'").stdout  # fmt: skip
    assert out.split() == ["2", "one", "x", "1"]
    bad = strata("build", str(_ctx(tmp_path, "FROM strata-test/busybox:latest\nRUN --mount=type=nfs,target=/x true\n")), check=False)
    assert bad.stderr == "Error: dockerfile parse error line 2: unsupported mount type \"nfs\"\n"
