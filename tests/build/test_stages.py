"""Beyond the classic builder (BuildKit's behaviour): independent stages build at the same time, a stage
the target does not need never runs, a failing stage stops the others; the live view on a terminal;
the ``Sending build context`` line; a killed build cleaned up without waiting for the next one."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from build_helpers import BUSYBOX, Strata, mounts_under

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "container"))
from ptyrun import PtySession

# each stage marks its start in a cache both mount and ends once it sees the other's mark (at most 60 s):
# stage one can only end if stage two ran while it did (a fixed sleep to overlap in was outlasted by a
# second container's start on a loaded machine)
STAMP = ("RUN --mount=type=cache,id={cid},target=/c cut -d' ' -f1 /proc/uptime > /{0}.start && touch /c/{0}"
         " && for i in $(seq 600); do [ -e /c/{1} ] && break; sleep 0.1; done && [ -e /c/{1} ]"
         " && cut -d' ' -f1 /proc/uptime > /{0}.end")
CONCURRENT = f"""FROM {BUSYBOX} AS one
{STAMP.format("one", "two", cid="{cid}")}
FROM {BUSYBOX} AS two
{STAMP.format("two", "one", cid="{cid}")}
FROM {BUSYBOX} AS unused
RUN echo the unused stage ran && exit 7
FROM {BUSYBOX}
COPY --from=one /one.start /one.end /stamps/
COPY --from=two /two.start /two.end /stamps/
"""


def _ctx(tmp_path: Path, dockerfile: str, **files: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (ctx / name).write_text(text)
    return ctx


def test_independent_stages_run_at_once_and_unneeded_ones_never(strata: Strata, busybox: str, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, CONCURRENT.replace("{cid}", f"stages-{random.randrange(1 << 32):x}"))
    t0 = time.monotonic()
    r = strata("build", "--no-cache", "-t", "stages:1", str(ctx))
    elapsed = time.monotonic() - t0
    out = strata("run", "--rm", "stages:1", "cat", "/stamps/one.start", "/stamps/one.end",
                 "/stamps/two.start", "/stamps/two.end").stdout.split()  # fmt: skip
    one, two = (float(out[0]), float(out[1])), (float(out[2]), float(out[3]))
    assert one[0] < two[1] and two[0] < one[1], f"the two stages did not overlap: {one} {two}"
    assert "the unused stage ran" not in r.stdout and "exit 7" not in r.stdout
    # the output reads as a sequential classic build of the stages that run: 2 + 2 + 3 steps
    steps = re.findall(r"^Step (\d+)/(\d+) : ", r.stdout, re.M)
    assert steps == [(str(n), "7") for n in range(1, 8)], r.stdout
    assert r.stdout.index("/proc/uptime > /one.start") < r.stdout.index("FROM strata-test/busybox:latest AS two")
    print(f"two stages built at once in {elapsed:.1f} s")
    # --target: only what that stage needs
    t = strata("build", "--target", "two", str(ctx))
    assert "AS one" not in t.stdout and re.findall(r"^Step \d+/(\d+)", t.stdout, re.M) == ["2", "2"]


def test_a_failing_stage_stops_the_others(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    dockerfile = (f"FROM {BUSYBOX} AS slow\nRUN sleep 60\nFROM {BUSYBOX} AS bad\nRUN sleep 1; exit 3\n"
                  f"FROM {BUSYBOX}\nCOPY --from=slow /etc/hostname /a\nCOPY --from=bad /etc/hostname /b\n")  # fmt: skip
    t0 = time.monotonic()
    r = strata("build", "-t", "failing:1", str(_ctx(tmp_path, dockerfile)), check=False)
    assert time.monotonic() - t0 < 40
    assert r.returncode == 3
    assert r.stderr.splitlines()[-1] == "Error: The command '/bin/sh -c sleep 1; exit 3' returned a non-zero code: 3"
    assert strata("ps", "-aq").stdout == ""
    assert mounts_under(root) == []
    assert strata("images", "-q", "failing").stdout == ""


def test_sending_build_context_line(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """Docker's CLI size of the context tar: entries of 512-byte headers and padded contents, the
    ``.dockerignore``d ones left out (but never the Dockerfile), a long name's PAX header."""
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\n", a="hi\n", **{".dockerignore": "big\nDockerfile\n"})
    (ctx / "sub").mkdir()
    (ctx / "sub" / "b").write_bytes(os.urandom(3000))
    (ctx / "big").write_bytes(os.urandom(100_000))
    (ctx / ("d" * 120)).mkdir()
    r = strata("build", str(ctx), input=b"")
    # Dockerfile, .dockerignore, a: 1024 each; sub/ 512; sub/b 512 + 3072; d…d/ 1536; the end 1024
    assert bytes(r.stdout).startswith(b"Sending build context to Docker daemon  9.728kB\r\r\nStep 1/1 : ")  # type: ignore[arg-type]
    assert b"Sending build context" not in bytes(strata("build", "-q", str(ctx), input=b"").stdout)  # type: ignore[arg-type]


def test_live_view_on_a_terminal(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN echo first-line && sleep 1 && echo second-line\nENV A=1\n")
    env = dict(os.environ, STRATA_ROOT=str(root))
    for argv in (["build", str(ctx)], ["build", "--progress", "tty", "--no-cache", str(ctx)]):
        s = PtySession([sys.executable, "-m", "strata", *argv], env, rows=10, cols=70)
        s.expect(b"[+] Building ", timeout=60)
        s.expect(b"[2/3] RUN echo first-line", timeout=60)
        s.expect(b"=> => # first-line", timeout=60)  # the running step's output, while it runs
        assert s.wait(60) == 0
        assert b"\x1b[" in s.output and b"FINISHED" in s.output and b"Step 1/3" not in s.output
    cached = PtySession([sys.executable, "-m", "strata", "build", "--progress", "tty", str(ctx)], env)
    cached.expect(b"CACHED [2/3] RUN echo first-line", timeout=60)
    assert cached.wait(60) == 0
    plain = PtySession([sys.executable, "-m", "strata", "build", "--progress", "plain", str(ctx)], env)
    plain.expect(b"Step 2/3 : RUN echo first-line", timeout=60)
    assert plain.wait(60) == 0 and b"\x1b[" not in plain.output


def test_killed_build_is_cleaned_up_at_once(strata: Strata, busybox: str, tmp_path: Path, root: Path) -> None:
    """kill -9 of ``strata build`` during a RUN: within seconds, and with no further strata command,
    no step container runs, no rootfs stays mounted, no image was made."""
    secs = str(random.randrange(100_000, 1_000_000))  # this test's own: the machine may run another's
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN sleep {secs}\n")
    env = dict(os.environ, STRATA_ROOT=str(root))
    proc = subprocess.Popen([sys.executable, "-m", "strata", "build", "-t", "killed:1", str(ctx)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while "Running in" not in proc.stdout.readline():
        assert time.monotonic() < deadline and proc.poll() is None
    while not _sleepers(secs):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    deadline = time.monotonic() + 60  # the watchdog: a process of its own, late on a loaded machine
    while (_sleepers(secs) or mounts_under(root)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sleepers(secs) == [] and mounts_under(root) == []
    assert strata("ps", "-aq").stdout == ""
    assert strata("images", "-q", "killed").stdout == ""


def _sleepers(secs: str) -> list[int]:
    """Processes running ``sleep SECS`` (the killed build's step)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read() in (f"sleep\x00{secs}\x00".encode(), f"/bin/sh\x00-c\x00sleep {secs}\x00".encode()):
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_quiet_build_shows_its_output_when_it_fails(strata: Strata, busybox: str, tmp_path: Path) -> None:
    """Docker's ``-q``: nothing but the ID on success; on failure the build's output on stderr."""
    ctx = _ctx(tmp_path, f"FROM {BUSYBOX}\nRUN echo from-the-step && false\n")
    r = strata("build", "-q", str(ctx), check=False)
    assert (r.returncode, r.stdout) == (1, "")
    lines = r.stderr.splitlines()
    assert lines[0].startswith("Sending build context to Docker daemon")
    assert "Step 2/2 : RUN echo from-the-step && false" in lines
    assert "from-the-step" in lines and lines[-1] == "Error: The command '/bin/sh -c echo from-the-step && false' returned a non-zero code: 1"
    ok = strata("build", "-q", str(_ctx(tmp_path, f"FROM {BUSYBOX}\nENV A=1\n")))
    assert ok.stderr == "" and re.fullmatch(r"sha256:[0-9a-f]{64}\n", ok.stdout)
