"""Start-up: each everyday command imports only what it uses, and the import set does not grow back.

Every command runs in a fresh interpreter, as the ``strata`` console script does; the modules it
loaded are compared with what the command needs (issue 12: no asyncio, aiohttp, cryptography, yaml …
for ``images``; ``--version`` builds no parser at all). ``bench/startup_bench.py`` measures the time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from imagegen import generate, put
from strata.container.records import Container, ContainerStore, new_id

SRC = Path(__file__).resolve().parents[1] / "src"
IMAGE = "startup/test:1"

# never needed to list or inspect images or containers: the registry server, TLS, HTTP, compression
# codecs of layers, YAML, threads and subprocesses (images/inspect/history only)
HEAVY = frozenset({"asyncio", "aiohttp", "cryptography", "yaml", "ssl", "http", "email", "bcrypt",
                   "isal", "zstandard", "concurrent", "multiprocessing", "urllib.request", "strata.server",
                   "strata.distribution", "strata.transports", "strata.copy"})
IMAGE_ONLY = HEAVY | {"socket", "subprocess", "ctypes", "threading", "strata.container.lifecycle", "strata.cli.containers",
                      "strata.gotemplate"}
# what issue 12's start-up work took off the image commands' path, each worth a few percent of their run:
# dataclasses (inspect, ast, dis, tokenize), typing, OpenSSL's hashlib, tarfile, tempfile, shutil (bz2,
# lzma), contextlib, unicodedata (ASCII tables need no Unicode database), fcntl (no lock to read), and the
# parts of strata only writing commands use
LEAN = IMAGE_ONLY | {"dataclasses", "inspect", "ast", "typing", "hashlib", "tarfile", "tempfile", "shutil", "bz2",
                     "lzma", "contextlib", "unicodedata", "fcntl", "strata.image.config", "strata.image.api",
                     "strata.store.delete", "strata.archive"}
# ps -a reads only the container table: no image store (engine, store database, image model), no typing,
# no secrets (hashlib, hmac, random), no dataclasses (inspect, ast, dis, tokenize); the container runtime only for a record that is not settled
# issue 12's second round (measured with callgrind; each was a tenth to a sixth of a listing command's run):
# argparse (with gettext and locale: the words are read by strata.cli.listing), pathlib (with fnmatch,
# urllib.parse, ipaddress: str paths), re and json (hand-checked shapes, strata.jsonfast), datetime (UTC
# seconds computed) and the sqlite3 package (its C module _sqlite3 is used directly)
SECOND_ROUND = frozenset({"argparse", "gettext", "locale", "pathlib", "fnmatch", "urllib", "ipaddress", "re", "json",
                          "datetime", "sqlite3", "strata.cli.parser", "strata.cli.pflag", "strata.cli.helpformat"})
LEAN |= SECOND_ROUND
PS_LEAN = SECOND_ROUND | HEAVY | {"dataclasses", "inspect", "ast", "dis", "tokenize", "typing", "secrets", "hashlib", "hmac", "random", "strata.engine", "strata.store.db",
                   "strata.store.images", "strata.image", "strata.ops", "strata.reference",
                   "strata.container.lifecycle", "strata.container.network"}
# modules beyond a bare interpreter's: today's count plus a little room; raise it only with a reason
# (the image commands loaded 120 before the start-up work, 75 after, 77 with the image package and the
# rootless check; ps -a, 139, still loaded the container runtime: see the note in docs/ARCHITECTURE.md's
# start-up rules; 105 once ps reconciled only unsettled records; 78 once it stopped opening the image
# store and loading typing and secrets; 66 once container.records.Container stopped being a dataclass)
# ps -a: 71 with the container group's new command modules (cli.containerio, cli.resources: registered under
# `container`) and store.tagread (IMAGE shows the ID once the tag moves, read without the engine);
# inspect: 80 with strata.events (Metadata.LastTagTime comes from the event journal)
# second round (SECOND_ROUND above): images 48, ps -a 37, inspect 49, history 48, --version 4
BUDGET = {"images": 50, "ps -a": 39, "inspect": 51, "history": 50, "--version": 4}

DRIVER = """
import sys
from strata.cli.main import main
rc = main(sys.argv[2:])
modules = sorted(sys.modules)
sys.stdout.flush()
import json
with open(sys.argv[1], "w") as f:
    json.dump({"rc": rc, "modules": modules}, f)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC)}


def _modules_of(tmp_path: Path, *args: str) -> tuple[int, str, set[str]]:
    report = tmp_path / "modules.json"
    res = subprocess.run([sys.executable, "-c", DRIVER, str(report), *args], capture_output=True, text=True,
                         env=_env(), timeout=120)
    data = json.loads(report.read_text())
    return data["rc"], res.stdout, set(data["modules"])


def _baseline(tmp_path: Path) -> set[str]:
    out = tmp_path / "base.json"
    code = "import sys\nmodules = sorted(sys.modules)\nimport json\njson.dump(modules, open(sys.argv[1], 'w'))"
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, env=_env())
    return set(json.loads(out.read_text()))


def _loaded(modules: set[str], names: frozenset[str]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".") for m in modules))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("startup")
    image = generate(root / "blobs", [{"hello": b"hello\n"}], history=["ADD hello /"])
    put(image, f"strata:{IMAGE}", root=root / "store")
    with ContainerStore(root / "store") as containers:  # one exited container: a settled record
        containers.add(Container(id=new_id(), name="startup_exited", image_id=str(image.image_id()),
                                 image_name=IMAGE, created=time.time() - 60, path="/bin/true", args=[],
                                 state="exited", exit_code=3, started_at=time.time() - 45,
                                 finished_at=time.time() - 30))
    return root / "store"


@pytest.mark.parametrize(
    ("command", "args", "shows"),
    [
        ("images", ["images"], "startup/test"),
        ("inspect", ["inspect", IMAGE], '"startup/test:1"'),
        ("history", ["history", IMAGE], "ADD hello /"),
        ("ps -a", ["ps", "-a"], "Exited (3) "),
    ],
)
def test_a_command_imports_only_what_it_uses(store: Path, tmp_path: Path, command: str, args: list[str],
                                             shows: str) -> None:
    rc, out, modules = _modules_of(tmp_path, "--root", str(store), *args)
    assert rc == 0 and shows in out  # the command did its job
    forbidden = PS_LEAN if command == "ps -a" else LEAN
    assert _loaded(modules, forbidden) == []
    grown = len(modules - _baseline(tmp_path))
    assert grown <= BUDGET[command], f"{command} imports {grown} modules beyond a bare interpreter"


@pytest.mark.parametrize(("args", "parsed_by_argparse"), [(["images", "-q"], False), (["image", "ls", "-q"], True),
                                                         (["images", "--bogus"], True), (["history"], True)])
def test_only_what_the_listing_table_cannot_read_loads_argparse(store: Path, tmp_path: Path, args: list[str],
                                                                parsed_by_argparse: bool) -> None:
    """The table (strata.cli.listing) reads the everyday command lines; a group word, a bad flag or a
    missing argument goes to argparse (strata.cli.parser), which words Docker's errors."""
    rc, _, modules = _modules_of(tmp_path, "--root", str(store), *args)
    assert rc == (0 if args[-1] in ("-q",) else 125 if args[-1] == "--bogus" else 1)
    assert _loaded(modules, frozenset({"argparse", "strata.cli.parser"})) == (
        ["argparse", "strata.cli.parser"] if parsed_by_argparse else [])


def test_version_builds_no_parser(tmp_path: Path) -> None:
    rc, out, modules = _modules_of(tmp_path, "--version")
    assert (rc, out) == (0, "strata 0.1.0\n")
    assert sorted(m for m in modules if m.startswith("strata")) == ["strata", "strata.cli", "strata.cli.main"]
    assert _loaded(modules, frozenset({"argparse", "sqlite3", "dataclasses", "typing", "pathlib", "json"})) == []
    assert len(modules - _baseline(tmp_path)) <= BUDGET["--version"]


def test_version_without_site_loads_only_strata(tmp_path: Path) -> None:
    """The console script starts with ``python -S`` (nothing but the interpreter's own modules loaded,
    not even ``os``): ``--version`` then adds strata's three modules (and ``__future__``, which their first line names)."""
    code = ("import sys\nbase = set(sys.modules)\nfrom strata.cli.main import main\nmain(['--version'])\n"
            "print(sorted(set(sys.modules) - base))")
    res = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert res.stdout.splitlines() == ["strata 0.1.0", "['__future__', 'strata', 'strata.cli', 'strata.cli.main']"], res.stderr


def test_the_check_sees_a_heavy_import(tmp_path: Path) -> None:
    """The same driver, made to import asyncio, is caught: the test can fail."""
    report = tmp_path / "m.json"
    code = DRIVER.replace("from strata.cli.main import main", "import asyncio\nfrom strata.cli.main import main")
    subprocess.run([sys.executable, "-c", code, str(report), "--version"], check=True, capture_output=True, env=_env())
    assert _loaded(set(json.loads(report.read_text())["modules"]), HEAVY) == ["asyncio", "concurrent", "ssl"]


# --- the shortcuts the start-up work took must answer exactly as the long way ----------------------


@pytest.mark.parametrize(
    "name",
    [
        "docker.io/library/busybox:1",
        "docker.io/user/app:v1.2-rc",
        "localhost:5000/a/b/c:latest",
        "localhost:5000/a/b@sha256:" + "ab" * 32,
        "registry.example.com/x:tag@sha256:" + "0f" * 32,
        "[::1]:5000/ns/img:7",
    ],
)
def test_stored_names_split_as_the_grammar_parses_them(name: str) -> None:
    from strata.reference import parse, parse_stored

    assert parse_stored(name) == parse(name)
    assert parse_stored(name).string() == name


@pytest.mark.parametrize("name", ["busybox", "busybox:1", "UPPER/x:1", "docker.io/a:b:c", "docker.io/x@sha256:12"])
def test_names_a_store_never_writes_take_the_grammar(name: str) -> None:
    """Short, odd or invalid text goes through ``parse``: the same value or the same error."""
    from strata.errors import InvalidReference
    from strata.reference import parse, parse_stored

    try:
        want = parse(name)
    except InvalidReference as e:
        with pytest.raises(InvalidReference, match=str(e)):
            parse_stored(name)
    else:
        assert parse_stored(name) == want


@pytest.mark.parametrize("columns", ["57", "200", None])
def test_help_width_is_argparses_without_shutil(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    import argparse

    from strata.cli.parser import _Formatter

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    ours, theirs = _Formatter("strata"), argparse.HelpFormatter("strata")
    assert (ours._width, ours._max_help_position) == (theirs._width, theirs._max_help_position)


def test_a_current_store_database_opens_without_schema_work(tmp_path: Path) -> None:
    """A new database gets the schema, WAL and ``user_version``; an older one (tables, no version) is
    brought up to date keeping its rows; a current one is only opened (nothing written)."""
    import sqlite3

    from strata.store.db import SCHEMA_VERSION, connect

    path = tmp_path / "strata.db"
    conn = connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("INSERT INTO tags VALUES ('docker.io/library/a:1', 'sha256:x', 1)")
    conn.execute("PRAGMA user_version=0")  # as a store made before the version was kept
    conn.close()
    connect(path).close()
    old = sqlite3.connect(path)
    assert old.execute("SELECT name FROM tags").fetchall() == [("docker.io/library/a:1",)]
    assert old.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    changes = old.total_changes
    old.close()
    conn = connect(path)
    assert conn.total_changes == changes == 0  # the current database was read, not written
    conn.close()


@pytest.mark.parametrize(
    "text",
    ["a/b", "a:5000/b", "localhost/x", "host:5000", "a.b/c/d:1", "foo/bar@sha256:" + "1" * 64, "[::1]/x:y",
     "Upper.example/x", "a-b.c:1/d__e/f-g:h", "x", "x.y", "x.y/z", "1.2.3.4:80/a/b/c"],
)
def test_one_match_splits_the_domain_as_the_name_grammar_does(text: str) -> None:
    """parse() takes domain and path from the reference match itself (one pattern compiled, not two):
    the split must be what distribution's anchored name expression gives for the matched name."""
    import re

    from strata import reference as r

    ref = r.parse(text)
    name = r.Reference(ref.domain, ref.path).repository
    m = re.fullmatch(rf"(?:({r._DOMAIN_AND_PORT})/)?({r._REMOTE_NAME})", name, re.ASCII)
    assert m is not None and (m.group(1) or "", m.group(2)) == (ref.domain, ref.path)


def test_the_container_record_behaves_as_the_dataclass_did() -> None:
    """``Container`` is written out by hand (no dataclasses on ps's path): the same constructor, defaults
    (a new list or dict each), equality, repr order, JSON round trip and unhashability."""
    from strata.container.records import Container

    a = Container("a" * 64, "n", "sha256:x", "img", 1.0, "sh", ["-c", "true"], state="exited")
    b = Container(id="a" * 64, name="n", image_id="sha256:x", image_name="img", created=1.0, path="sh",
                  args=["-c", "true"], state="exited")
    assert a == b and a.config == {} and a.config is not b.config and a.ports == [] and a.health is None
    assert (a.driver, a.runtime, a.pid, a.restart_count, a.manually_stopped) == ("overlay", "runc", 0, 0, False)
    assert repr(a).startswith("Container(id='" + "a" * 64 + "', name='n', image_id='sha256:x', ")
    assert repr(a).endswith(", mounts=[], health=None)")
    back = Container.from_json(a.to_json())
    assert back == a and json.loads(a.to_json())["state"] == "exited"
    assert Container.from_json(json.dumps({**json.loads(a.to_json()), "gone": 1})) == a  # unknown keys dropped
    b.state = "running"
    assert a != b and b.running and a != "a"
    with pytest.raises(TypeError, match="unhashable"):
        hash(a)
    with pytest.raises(TypeError, match="missing required argument: 'args'"):
        Container("a", "n", "i", "img", 1.0, "sh")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Container(*"abcd", 1.0, "sh", [], colour=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for argument 'id'"):
        Container("a", "n", "i", "img", 1.0, "sh", [], id="b")  # type: ignore[misc]


def test_the_console_script_starts_without_site_and_finds_the_dependencies(tmp_path: Path) -> None:
    """``make venv`` writes the ``strata`` script with scripts/entry_script.py: ``python -S`` (no .pth
    files run) with the directories ``site`` would add written in, so third-party modules still import."""
    import importlib.util

    import aiohttp

    spec = importlib.util.spec_from_file_location("entry_script", SRC.parent / "scripts" / "entry_script.py")
    assert spec is not None and spec.loader is not None
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    paths = entry.site_paths()
    assert str(Path(aiohttp.__file__).parents[1]) in paths  # the venv's site-packages
    target = tmp_path / "strata"
    assert entry.main(str(target)) == 0
    assert target.read_text().splitlines()[0] == f"#!{os.path.abspath(sys.executable)} -S"
    res = subprocess.run([str(target), "--version"], capture_output=True, text=True, env=_env(), timeout=60)
    assert (res.returncode, res.stdout) == (0, "strata 0.1.0\n")
    probe = target.read_text().replace("from strata.cli.main import run\nrun()\n",
                                       "import aiohttp\nprint('site' in sys.modules)\n")
    target.write_text(probe)
    res = subprocess.run([str(target)], capture_output=True, text=True, env=_env(), timeout=60)
    assert (res.returncode, res.stdout) == (0, "False\n"), res.stderr


@pytest.mark.parametrize(("args", "collecting"), [(["images"], "False"), (["ps", "-a"], "False"),
                                                  (["image", "ls"], "True")])
def test_short_lived_commands_run_without_the_cyclic_collector(store: Path, args: list[str], collecting: str) -> None:
    """As the program (``main()`` reading ``sys.argv``), the listing commands leave the collector off;
    any other command gets it back before its handler runs."""
    code = "import gc, sys\nfrom strata.cli.main import main\nrc = main()\nprint(rc, gc.isenabled())"
    res = subprocess.run([sys.executable, "-c", code, "--root", str(store), *args], capture_output=True, text=True,
                         env=_env(), timeout=120)
    assert res.stdout.splitlines()[-1] == f"0 {collecting}", res.stderr


@pytest.mark.parametrize("enabled", [True, False])
def test_main_in_process_leaves_the_collector_as_it_found_it(store: Path, capsys: pytest.CaptureFixture[str],
                                                             enabled: bool) -> None:
    import gc

    from strata.cli.main import main

    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        assert main(["--root", str(store), "images"]) == 0
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
    assert "startup/test" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "rc", "torn_down"), [(["images"], 0, False), (["inspect", "startup/none"], 1, False),
                                                        (["--version"], 0, False), (["image", "ls"], 0, True)])
def test_the_program_skips_the_teardown_of_a_short_lived_command(store: Path, args: list[str], rc: int,
                                                                 torn_down: bool) -> None:
    """``run()`` (the console script, ``python -m strata``): images, ps, inspect, history and --version
    exit without the interpreter's teardown (an ``atexit`` function is the witness), their output and
    exit code intact; any other command exits the ordinary way."""
    code = "import atexit, sys\natexit.register(print, 'torn down')\nfrom strata.cli.main import run\nrun()"
    res = subprocess.run([sys.executable, "-c", code, "--root", str(store), *args], capture_output=True, text=True,
                         env=_env(), timeout=120)
    assert res.returncode == rc, res.stderr
    assert ("torn down" in res.stdout) is torn_down
    if rc:
        assert res.stderr == "Error: No such object: startup/none\n"
    else:
        assert res.stdout.startswith("REPOSITORY" if args[-1] != "--version" else "strata 0.1.0\n")


def test_the_program_exits_the_ordinary_way_when_its_output_is_gone(store: Path) -> None:
    """Output to a closed pipe: the flush fails, so run() leaves through sys.exit as Python would."""
    import select

    code = "from strata.cli.main import run\nrun()"
    proc = subprocess.Popen([sys.executable, "-c", code, "--root", str(store), "images"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env())
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # nobody reads: the command's write or flush meets a broken pipe
    select.select([proc.stderr], [], [], 60)
    assert proc.wait(timeout=60) in (120, 141)
    proc.stderr.close()


# --- names and digests read without regular expressions answer as the grammar does ---------------


def _grammar_parse(text: str) -> object:
    """``reference.parse`` by the grammar alone (the shortcut turned off)."""
    from strata import reference as r
    from strata.errors import InvalidReference

    saved = r._parse_plain
    r._parse_plain = lambda text: None
    try:
        return r.parse(text)
    except InvalidReference as e:
        return f"error: {e}"
    finally:
        r._parse_plain = saved


def _names() -> list[str]:
    import random

    rng = random.Random(12)

    def word(alphabet: str, most: int) -> str:  # mostly alphanumeric, now and then a separator or worse
        return "".join(rng.choice(alphabet if rng.random() < 0.2 else "ab0") for _ in range(rng.randint(0, most)))

    made = ["".join(rng.choice("ab0Z.-_:/@[]") for _ in range(rng.randint(1, 12))) for _ in range(1000)]
    for _ in range(3000):  # shaped as names: a host, path components, a tag, each now and then malformed
        host = word("ab0Z-.", 5) + (":" + word("05a", 3) if rng.random() < 0.3 else "")
        path = "/".join(word("ab0-._", 5) for _ in range(rng.randint(1, 3)))
        made.append(host + "/" + path + (":" + word("aZ0_.-", 4) if rng.random() < 0.5 else ""))
    return [*made, "docker.io/library/busybox:latest", "docker.io/startup/test:1", "localhost:5000/a/b:v1",
            "a.b-c.d:443/x__y/z--w:T_1", "a/b", "A/b", "a-/b", "-a/b", "a/b_", "a/b___c", "a/b..c", "a/b.-c",
            "a:/b", "a:5x/b", "a/b:", "a/b:.x", "a/b:" + "x" * 128, "a/b:" + "x" * 129, "a/" + "b" * 254,
            "a/" + "b" * 253, "[::1]:5000/x", "a/b@sha256:" + "0" * 64, "ex\u00e4mple.com/a", "a:\u00b2/b"]


def test_a_plain_name_is_split_as_the_grammar_splits_it() -> None:
    from strata import reference as r
    from strata.errors import InvalidReference

    for text in _names():
        try:
            ours: object = r.parse(text)
        except InvalidReference as e:
            ours = f"error: {e}"
        assert ours == _grammar_parse(text), text


def test_a_digest_is_read_as_the_expression_reads_it() -> None:
    """``Digest.parse``'s shortcuts (the usual ``sha256:<hex>``, text that cannot be a digest) give the
    value or the error the regular expression gives."""
    import random

    from strata.digest import Digest
    from strata.errors import InvalidDigest

    rng = random.Random(7)
    texts = ["sha256:" + "a" * 64, "sha512:" + "0" * 128, "sha384:" + "f" * 96, "sha256:" + "a" * 64 + "\n",
             "sha256:" + "A" * 64, "sha256:" + "a" * 63, "md5:" + "a" * 32, "sha256", ":abc", "a/b:c", "a+b.c:x=y",
             "sha256:" + "a" * 32 + ":" + "a" * 31, "Sha256:" + "a" * 64, ""]
    texts += ["".join(rng.choice("sha256:af0Z+./-=\n") for _ in range(rng.randint(0, 70))) for _ in range(3000)]
    def outcome(parse: Callable[[str], Digest], text: str) -> object:
        try:
            return parse(text)
        except InvalidDigest as e:
            return f"error: {e}"

    for text in texts:
        assert outcome(Digest.parse, text) == outcome(Digest._parse_slowly, text), repr(text)


# --- times read and written without datetime answer as datetime does ------------------------------


def test_go_time_writes_the_second_datetime_writes() -> None:
    """``cli.output.go_time`` (time.gmtime after datetime's rounding to microseconds) against
    ``datetime.fromtimestamp(ts, UTC).strftime``, near second boundaries and datetime's limits too."""
    import random
    from datetime import UTC, datetime

    from strata.cli.output import go_time

    rng = random.Random(9)
    stamps = [rng.uniform(-7e10, 2.6e11) for _ in range(3000)] + [rng.randint(0, 2**31) + x for x in
                                                                   (0.9999994, 0.9999995, 0.9999996, 0.0000004)]
    stamps += [1.9999999, -0.5, -1.0000004, 0.4999995, 1700000000.9999996, 253402300799.9999994, 253402300799.9999996,
               -62135596800.0, -62135596800.5, 253402300800.0, 1e18, -1e18]
    for ts in stamps:
        for rfc, form in ((False, "%Y-%m-%d %H:%M:%S +0000 UTC"), (True, "%Y-%m-%dT%H:%M:%SZ")):
            try:
                want: object = datetime.fromtimestamp(ts, UTC).strftime(form)
            except (ValueError, OverflowError, OSError) as e:
                want = type(e)
            try:
                ours: object = go_time(ts, rfc)
            except (ValueError, OverflowError, OSError) as e:
                ours = type(e)
            assert ours == want, ts


def test_a_utc_time_is_read_as_datetime_reads_it() -> None:
    """``compat.gotime._utc_seconds`` gives fromisoformat's timestamp or leaves the text to datetime, and
    ``parse_time`` answers as it did with datetime alone."""
    import random
    from datetime import datetime

    from strata.compat import gotime

    rng = random.Random(4)

    def field(width: int, top: int) -> str:
        return str(rng.randint(0, top)).zfill(width) if rng.random() < 0.97 else rng.choice(["a", "1", "\u0661" * width])

    texts = [f"{field(4, 10000)}-{field(2, 13)}-{field(2, 32)}{rng.choice('T t_')}{field(2, 25)}:{field(2, 61)}:{field(2, 61)}"
             for _ in range(5000)]
    texts += ["2000-02-29T00:00:00", "1900-02-29T00:00:00", "2100-02-28T23:59:59", "0001-01-01T00:00:00",
              "9999-12-31T23:59:59", "0000-01-01T00:00:00", "2024-04-31T00:00:00", "2024-01-01T24:00:00", "2024-01-01"]
    taken = 0
    for text in texts:
        ours = gotime._utc_seconds(text)
        try:
            want: float | None = datetime.fromisoformat(text + "+00:00").timestamp()
        except ValueError:
            want = None
        if ours is not None:
            taken += 1
            assert ours == want, text
    assert taken > 2000  # the short way is the usual one
    for text in ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123456789Z", "2024-01-02T03:04:05+02:00", "2024-01-02T03:04:05",
                 "2024-13-02T03:04:05Z", "garbage", "", "2024-01-02T03:04:05.5-01:30"]:
        saved = gotime._utc_seconds
        gotime._utc_seconds = lambda text: None  # type: ignore[assignment]
        try:
            want_time = gotime.parse_time(text)
        finally:
            gotime._utc_seconds = saved
        assert gotime.parse_time(text) == want_time, text
