"""Writes ``src/strata/cli/helptext.py`` from the Docker 20.10 client's own ``--help`` pages (facts:
usage lines, descriptions, aliases, flag names and texts) and the arity its usage errors state.

Run by hand (no daemon needed: the client answers help and usage errors alone):
``python tests/cli/helpgen.py /usr/bin/docker > src/strata/cli/helptext.py``.
The help is read through a pseudo-terminal a few thousand columns wide, so no text comes wrapped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

GROUPS = ("container", "image", "manifest", "network", "system", "volume")
_FLAG = re.compile(r"^  (?:-(\S), |    )--(\S+?)(?: (\S+))?  +(.*)$")


def _help(docker: str, path: list[str]) -> str:
    cmd = " ".join([docker, *path, "--help"])
    res = subprocess.run(["script", "-qc", f"stty cols 4000; {cmd}", "/dev/null"], capture_output=True, text=True,
                         env=_env(), check=True)
    return res.stdout.replace("\r", "")


def _env() -> dict[str, str]:
    config = tempfile.mkdtemp(prefix="helpgen-docker-config-")  # never a /nonexistent other tests rely on
    return {**os.environ, "DOCKER_HOST": f"unix://{config}/no-docker.sock", "DOCKER_CONFIG": config}


def _sections(text: str) -> dict[str, list[str]]:
    """``Usage:``, the description (key ``""``), ``Aliases:``, ``Options:``, ``Commands:`` ... as lines."""
    out: dict[str, list[str]] = {}
    key = ""
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        head = lines[0]
        if head.startswith("Usage:"):
            out["Usage"] = [head[len("Usage:"):].strip(), *(x.strip() for x in lines[1:])]
            key = ""
        elif head.endswith(":") and head[:-1] in ("Aliases", "Options", "Commands", "Management Commands"):
            out[head[:-1]] = lines[1:]
            key = head[:-1]
        elif key == "":  # the description, in paragraphs
            out.setdefault(key, []).extend(["", *lines] if key in out else lines)
        elif key == "Options" and head.startswith(" "):  # a flag's text with a blank line
            out[key].extend(["", *lines])
    return out


def _flags(lines: list[str]) -> list[tuple[str, str, str, str]]:
    flags: list[tuple[str, str, str, str]] = []
    for line in lines:
        m = _FLAG.match(line)
        if m:
            flags.append((m.group(1) or "", m.group(2), m.group(3) or "", m.group(4)))
        elif flags and line.strip():  # a usage text with its own line break
            short, long, var, text = flags[-1]
            flags[-1] = (short, long, var, text + "\n" + line.strip())
    return flags


def _arity(docker: str, path: list[str]) -> tuple[int, int | None]:
    """(least, most) arguments, from the usage errors of 0 and of 12 arguments."""
    least, most = 0, None
    for args in ([], ["a"] * 12):
        err = subprocess.run([docker, *path, *args], capture_output=True, text=True, env=_env()).stderr
        first = err.split("\n")[0]
        if "accepts no arguments" in first:
            return 0, 0
        m = re.search(r"requires exactly (\d+)", first)
        if m:
            return int(m.group(1)), int(m.group(1))
        m = re.search(r"requires at least (\d+) and at most (\d+)", first)
        if m:
            return int(m.group(1)), int(m.group(2))
        m = re.search(r"requires at least (\d+)", first)
        if m:
            least = int(m.group(1))
        m = re.search(r"requires at most (\d+)", first)
        if m:
            most = int(m.group(1))
    return least, most


def _examples(text: str) -> tuple[str, str]:
    """(the page without its ``Examples:`` section, the section's text as the template prints it)."""
    m = re.search(r"\n\nExamples:\n(.*?)\n\n(?=Options:|Commands:|Run ')|\n\nExamples:\n(.*)$", text, re.S)
    if m is None:
        return text, ""
    return text[:m.start()] + "\n\n" + text[m.end():], m.group(1) if m.group(1) is not None else m.group(2)


def _entry(docker: str, path: list[str], group: bool) -> tuple[object, ...]:
    page, examples = _examples(_help(docker, path))
    s = _sections(page)
    usage = tuple(s["Usage"])
    description = "\n".join(s.get("", [])).strip("\n")
    aliases = tuple(a.strip() for a in " ".join(s.get("Aliases", [])).split(","))
    if aliases == ("",):
        aliases = ()
    flags = tuple(_flags(s.get("Options", [])))
    listed = s.get("Management Commands", []) + s.get("Commands", [])
    commands = tuple(sorted(tuple(line.strip().split(None, 1)) for line in listed if line.strip()))
    arity = (0, None) if group else _arity(docker, path)
    return usage, description, aliases, flags, commands, arity, examples


def _subcommands(docker: str, path: list[str]) -> list[str]:
    s = _sections(_help(docker, path))
    return [line.split()[0] for line in s.get("Commands", []) if line.strip()]


def main(docker: str) -> None:
    table: dict[str, tuple[object, ...]] = {"": _entry(docker, [], True)}
    for word in _subcommands(docker, []):
        table[word] = _entry(docker, [word], False)
    for group in GROUPS:
        table[group] = _entry(docker, [group], True)
        for word in _subcommands(docker, [group]):
            table[f"{group} {word}"] = _entry(docker, [group, word], False)
    print('"""Docker 20.10\'s help pages as data: for each command path, its usage lines, description, aliases,')
    print("flags (shorthand, name, value name, text), sub-commands, arity (least, most; None: no limit) and examples.")
    print("")
    print("Written by tests/cli/helpgen.py from ``docker X --help``; imported only to print help or a usage error.")
    print('"""')
    print("")
    print("from __future__ import annotations")
    print("")
    print('__all__ = ["COMMANDS"]')
    print("")
    print("Flag = tuple[str, str, str, str]")
    print("Entry = tuple[tuple[str, ...], str, tuple[str, ...], tuple[Flag, ...], tuple[tuple[str, ...], ...],")
    print("              tuple[int, int | None], str]")
    print("")
    print("# fmt: off")
    print("COMMANDS: dict[str, Entry] = {")
    for key, value in table.items():
        print(f"    {key!r}: {value!r},")
    print("}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/usr/bin/docker")
