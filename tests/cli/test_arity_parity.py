"""The command line side by side with the Docker 20.10 client: arity errors of every command both have,
and flag forms as pflag reads them (Go booleans, ``-itd``, values starting with ``-``, ``--``), compared
as text and exit code (strata prints ``Error: `` before Docker's text, as for every error).

Values the client parsed cannot be seen without a daemon; ``test_values_as_docker_reads_them`` runs the
same command lines in a private dockerd and in strata."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cliparity import ACCEPTED, both_have, docker, strata

from strata.cli.parser import parse_args

# Docker's arity and strata's differ, each for a reason: strata refuses an import's third argument
# (Docker ignores it), ``start --all`` (strata's boot mode) takes no container, ``manifest inspect``
# reads one manifest (no MANIFEST_LIST MANIFEST pair)
KNOWN_ARITY = {"import", "image import", "start", "container start", "manifest inspect"}


def _same(d: tuple[int, str, str], s: tuple[int, str, str]) -> bool:
    return (d[0], d[2]) == (s[0], s[2].removeprefix("Error: "))


@pytest.mark.peers
def test_arity_errors_read_as_dockers() -> None:
    differ = set()
    for path in both_have():
        for extra in ([], ["a"] * 12):
            d, s = docker(*path.split(), *extra), strata(*path.split(), *extra)
            if not _same(d, s):
                differ.add(path)
    assert differ == KNOWN_ARITY


@pytest.mark.peers
def test_the_arity_check_can_fail() -> None:
    """The comparison sees a wrong sentence: Docker's ``tag`` error against strata's ``images``."""
    assert not _same(docker("tag"), strata("images", "a", "b"))
    assert _same(docker("tag"), strata("tag"))


@pytest.mark.peers
@pytest.mark.parametrize("argv", [
    ("tag", "a"),
    ("images", "a", "b"),
    ("image", "ls", "a", "b"),
    ("image", "list", "a", "b"),
    ("container", "ps", "x"),
    ("ps", "--quiet=T", "x"),
    ("rm",),
    ("commit", "a", "b", "c"),
    ("exec", "c"),
    ("run", "-itd=false"),
])
def test_usage_errors(argv: tuple[str, ...]) -> None:
    d, s = docker(*argv), strata(*argv)
    assert d[0] == 1 and s[0] == 1 and s[2] == "Error: " + d[2], (d, s)


@pytest.mark.peers
@pytest.mark.parametrize("argv", [
    ("ps", "-q=maybe"),            # a Go boolean's value
    ("run", "--rm=", "img"),
    ("ps", "--all=yes"),
    ("images", "--na"),            # no abbreviations
    ("ps", "--al"),
    ("run", "-x"),                 # unknown shorthand, in a cluster too
    ("run", "-itx", "img"),
    ("run", "--bogus", "img"),
    ("run", "--name"),             # a value missing
    ("run", "-u"),
    ("run", "-n"),
    ("run", "-du"),
    ("stop", "-t", "x", "c"),      # a value its type refuses
    ("ps", "-n", "x"),
    ("history", "-H=maybe", "x"),
    ("commit", "--pause=maybe", "c"),
    ("image", "-q"),               # a group's flag error comes with the group's help
    ("image", "--bogus", "ls"),
])
def test_flag_errors(argv: tuple[str, ...]) -> None:
    d, s = docker(*argv), strata(*argv)
    assert d[0] == s[0] == 125 and s[2] == "Error: " + d[2], (d, s)


@pytest.mark.peers
@pytest.mark.parametrize("argv", [
    ("run", "--rm=true", "-t=false", "--interactive=false", "-d=true", "img"),
    ("run", "-itd", "img"),
    ("run", "-it=false", "img", "sh"),
    ("run", "-e", "-x", "img"),           # a value that starts with '-'
    ("run", "--name", "--rm", "img"),
    ("run", "img", "--bogus"),            # after the image: the container's arguments
    ("run", "--", "img", "-x"),
    ("exec", "-it", "c", "ls", "-l"),
    ("commit", "-p", "c", "img"),         # -p is a plain boolean
    ("commit", "-p=false", "c"),
    ("history", "-H=false", "x"),
    ("rm", "x", "-f"),                    # flags after arguments
    ("rm", "--", "-f"),
    ("images", "-aq=1"),
    ("ps", "--all=0", "-q=T"),
    ("image", "ls", "-a"),
    ("container", "ls", "-a"),
    ("container", "rm", "-f", "x"),
    ("image", "tag", "a", "b"),
])
def test_accepted_as_docker_accepts(argv: tuple[str, ...]) -> None:
    d, s = docker(*argv), strata(*argv)
    assert d == s == (0, "", ACCEPTED), (d, s)


@pytest.mark.parametrize(("argv", "want"), [
    (["run", "--rm=true", "-t=false", "--interactive=false", "-d=true", "img"],
     {"rm": True, "tty": False, "interactive": False, "detach": True, "image": "img"}),
    (["run", "-itd", "img"], {"interactive": True, "tty": True, "detach": True}),
    (["run", "-itd=false", "img"], {"interactive": True, "tty": True, "detach": False}),
    (["run", "--rm", "--rm=false", "img"], {"rm": False}),
    (["run", "-e", "-x", "--name", "-n", "img"], {"env": ["-x"], "name": "-n"}),
    (["run", "img", "--rm", "-t"], {"rm": False, "tty": False, "command": ["--rm", "-t"]}),
    (["run", "img", "--", "x"], {"command": ["--", "x"]}),
    (["exec", "c", "--", "ls"], {"container": "c", "command": ["--", "ls"]}),
    (["commit", "-p", "c", "img"], {"pause": True, "container": "c", "repository": "img"}),
    (["commit", "--pause=f", "c"], {"pause": False, "repository": None}),
    (["history", "-H=0", "x"], {"human": "false", "image": "x"}),
    (["rm", "x", "-fv"], {"containers": ["x"], "force": True, "volumes": True}),
    (["rm", "--", "-f"], {"containers": ["-f"], "force": False}),
    (["container", "rm", "-f", "x"], {"containers": ["x"], "force": True}),
    (["unshare", "sh", "-c", "id"], {"command": ["sh", "-c", "id"]}),  # a command line as first argument
    (["unshare", "--", "-x"], {"command": ["-x"]}),
    (["unshare"], {"command": []}),
    (["build", "--rm", "."], {"rm": "true", "path": "."}),  # --rm[=BOOL] never takes the path
])
def test_values_as_pflag_gives_them(argv: list[str], want: dict[str, Any]) -> None:
    got = vars(parse_args(argv))
    assert {k: got[k] for k in want} == want


@pytest.mark.peers
def test_values_as_docker_reads_them(dockerd: Any, tmp_path: Path) -> None:
    """The same command lines in a private dockerd and in strata: what each printed (values the parser
    gave the command show in its output)."""
    import peers

    img = dockerd.import_busybox("cliparse-values:1")
    tar = peers.busybox_rootfs_tar(tmp_path / "rootfs.tar")
    env = {**os.environ, "STRATA_ROOT": str(tmp_path / "store")}

    def st(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "strata", *args], capture_output=True, text=True, env=env,
                              timeout=300)

    assert st("import", "-c", "CMD [\"sh\"]", str(tar), img).returncode == 0
    try:
        _side_by_side(dockerd, st, img)
    finally:
        dockerd.run("rmi", "-f", img, "cliparse-values:2", check=False)


def _side_by_side(dockerd: Any, st: Any, img: str) -> None:
    for args in (
        ("run", "--rm=true", "-t=false", "--interactive=false", img, "echo", "hi"),
        ("run", "--rm", "-e", "-x=1", img, "grep", "-aoe", "-x=1", "/proc/1/environ"),  # -e took "-x=1"
        ("run", "--rm", img, "echo", "--rm", "-t"),
        ("run", "--rm", "--", img, "echo", "after", "--"),
        ("rm", "-f", "cliparse-nosuch"),              # Docker: the error printed, exit 0
        ("rm", "-f", "cliparse-nosuch", "cliparse-nosuch2"),
        ("rm", "cliparse-nosuch"),                    # exit 1
        ("commit", "-p", "cliparse-nosuch", "cliparse-img"),  # -p takes no value: the container is the argument
        ("image", "tag", img, "cliparse-values:2"),   # the group words
        ("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "cliparse-values:2"),
        ("image", "list", "-q=false", "--format={{.Tag}}", "cliparse-values:2"),
        ("image", "rm", "cliparse-values:2"),
        ("container", "ls", "-a", "--filter", "name=cliparse-nosuch"),
        ("container", "rm", "--force=true", "cliparse-nosuch"),
    ):
        d, s = dockerd.run(*args, check=False), st(*args)
        derr = d.stderr.replace("Error response from daemon: ", "Error: ")
        assert (s.returncode, s.stdout, s.stderr) == (d.returncode, d.stdout, derr), args
