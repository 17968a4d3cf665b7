"""Help pages and usage errors laid out as Docker 20.10's (cobra's template, pflag's flag columns), from
the facts in ``strata.cli.helptext`` and the flags a strata command really has. Loaded only to print
help or a usage error."""

from __future__ import annotations

import argparse
import os

from strata.cli.helptext import COMMANDS, Entry

__all__ = ["flag_rows", "help_page", "render_flags", "root_page", "usage_error", "width"]

Row = tuple[str, str, str, str]  # shorthand, name, value name, text


def width() -> int:
    """Docker's: the width of the terminal on stdin, else 80."""
    try:
        return os.get_terminal_size(0).columns or 80
    except OSError:
        return 80


def _split(prog: str) -> tuple[str, str]:
    program, _, path = prog.partition(" ")
    return program, path


def _short(path: str) -> str | None:
    """A command's one-line description: its line in its group's (or the program's) command list."""
    parent, _, name = path.rpartition(" ")
    for row in COMMANDS.get(parent, COMMANDS[""])[4]:
        if row[0] == name:
            return row[1]
    entry = COMMANDS.get(path)
    return entry[1].split("\n\n")[0] if entry else None


def usage_error(prog: str, sentence: str, fallback: str) -> str:
    """cobra's arity error: the sentence, where to get help, the usage line and the short description."""
    program, path = _split(prog)
    entry = COMMANDS.get(path)
    usage = _usage(program, entry) if entry else f"{prog} [OPTIONS]"
    short = _short(path) or fallback
    return f"{sentence}\nSee '{prog} --help'.\n\nUsage:  {usage}\n\n{short}"


def _usage(program: str, entry: Entry) -> str:
    return "\n\t".join(program + line[len("docker"):] if line.startswith("docker") else line for line in entry[0])


# --- pflag's flag columns ------------------------------------------------------------------------


def _wrap_n(i: int, slop: int, s: str) -> tuple[str, str]:
    if i + slop > len(s):
        return s, ""
    w = max(s.rfind(c, 0, i) for c in " \t\n")
    if w <= 0:
        return s, ""
    nl = s.rfind("\n", 0, i)
    if 0 < nl < w:
        return s[:nl], s[nl + 1:]
    return s[:w], s[w + 1:]


def _wrap(indent: int, cols: int, s: str) -> str:
    """The text of a flag, wrapped to ``cols`` with continuation lines indented by ``indent``."""
    room = cols - indent
    out = ""
    if room < 24:
        indent, room = 16, cols - 16
        out = "\n" + " " * indent
    if room < 24:
        return s.replace("\n", out)
    room -= 5
    pad = "\n" + " " * indent
    line, s = _wrap_n(room, 5, s)
    out += line.replace("\n", pad)
    while s:
        line, s = _wrap_n(room, 5, s)
        out += pad + line.replace("\n", pad)
    return out


def render_flags(rows: list[Row], cols: int) -> str:
    """The ``Options:`` lines: ``  -a, --all`` or ``      --digests``, the value name, the text in a
    column after the longest, wrapped to ``cols``."""
    heads = []
    for short, name, var, _text in rows:
        head = f"  -{short}, --{name}" if short else f"      --{name}"
        heads.append(head + (f" {var}" if var else ""))
    longest = max((len(h) for h in heads), default=0) + 1
    lines = [f"{h} {' ' * (longest - len(h))} {_wrap(longest + 2, cols, row[3])}" for h, row in zip(heads, rows, strict=True)]
    return "\n".join(line.rstrip() for line in lines)


def flag_rows(parser: argparse.ArgumentParser, entry: Entry | None) -> list[Row]:
    """The flags ``parser`` has, each as Docker describes it where Docker has it, sorted by name."""
    docker = {row[1]: row for row in entry[3]} if entry else {}
    rows: list[Row] = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        long = next((o[2:] for o in action.option_strings if o.startswith("--")), None)
        if isinstance(action, argparse._HelpAction) and long not in docker:
            continue  # Docker lists --help only where -h is another flag (run, create)
        short = next((o[1:] for o in action.option_strings if len(o) == 2 and o[1] != "-"), "")
        if long is None:
            continue
        if long in docker:
            rows.append(docker[long])
        else:
            var = "" if action.nargs == 0 or action.const in (True, "true") else str(action.metavar or "string")
            rows.append((short, long, var, action.help or ""))
    return sorted(rows, key=lambda r: r[1])


# --- pages -------------------------------------------------------------------------------------------


def _commands(path: str, entry: Entry | None, words: list[str], parser: argparse.ArgumentParser) -> str:
    known: dict[str, str] = {row[0]: row[1] for row in entry[4]} if entry else {}
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    helps = {c.dest: str(c.help or "") for c in sub._choices_actions} if sub else {}
    shown = [(w, known[w]) for w in words if w in known]
    shown += [(w, helps.get(w, "")) for w in words if w not in known and w in helps]
    pad = max(11, *(len(w) for w, _ in shown)) if shown else 11
    lines = [f"  {w.ljust(pad)} {text}" for w, text in sorted(shown)]
    return "\nCommands:\n" + "\n".join(lines)


def help_page(parser: argparse.ArgumentParser, group_words: list[str] | None = None) -> str | None:
    """``strata X --help`` in Docker's layout, or None for the program's own page."""
    program, path = _split(parser.prog)
    if not path:
        return None
    entry = COMMANDS.get(path)
    if entry is None:  # a command of strata's own: argparse's page
        return None
    usage = f"{parser.prog} COMMAND" if group_words is not None else _usage(program, entry)
    description = entry[1]
    parts = [f"\nUsage:  {usage}\n", description]
    if entry[2]:
        parts.append(f"\nAliases:\n  {', '.join(entry[2])}")
    if entry[6]:
        parts.append("\nExamples:\n" + entry[6].replace("$ docker ", f"$ {program} "))
    rows = flag_rows(parser, entry)
    if rows:
        parts.append("\nOptions:\n" + render_flags(rows, width() - 1))
    if group_words is not None:
        parts.append(_commands(path, entry, group_words, parser))
        parts.append(f"\nRun '{parser.prog} COMMAND --help' for more information on a command.")
    return "\n".join(parts) + "\n"


def root_page(parser: argparse.ArgumentParser) -> str:
    """``strata --help`` as ``docker --help`` is laid out: the program's flags, then its command groups
    (``Management Commands:``) and commands, each with Docker's line where Docker has the command."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: str(c.help or "") for c in sub._choices_actions}
    docker = {row[0]: row[1] for row in COMMANDS[""][4]}
    groups: list[tuple[str, str]] = []
    commands: list[tuple[str, str]] = []
    for name, command in sub.choices.items():
        entry = COMMANDS.get(name)
        text = docker.get(name) or (entry[1] if entry and entry[4] else "") or helps.get(name, "")
        has_sub = any(isinstance(a, argparse._SubParsersAction) for a in command._actions)
        (groups if has_sub else commands).append((name, text))
    pad = max(11, *(len(n) for n in sub.choices))
    rows = flag_rows(parser, None)
    parts = [f"\nUsage:  {parser.prog} [OPTIONS] COMMAND\n", str(parser.description or "")]
    parts.append("\nOptions:\n" + render_flags(rows, width() - 1))
    for title, listed in (("Management Commands", groups), ("Commands", commands)):
        parts.append(f"\n{title}:\n" + "\n".join(f"  {n.ljust(pad)} {t}" for n, t in sorted(listed)))
    parts.append(f"\nRun '{parser.prog} COMMAND --help' for more information on a command.")
    return "\n".join(parts) + "\n"
