"""The Go text/template subset behind ``--format``: rendering, Go value printing, errors, tables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from strata.cli.format import human_size, render_table
from strata.errors import StrataError
from strata.gotemplate import (
    NIL_MAP,
    NIL_SLICE,
    Format,
    InspectFormat,
    Struct,
    TemplateError,
    go_json,
    go_sprint,
    parse,
)

IMAGE = {
    "Id": "sha256:3a9f10baaebd5c133185275bac1c8728c9e67bc8bcf95a396bd2755fffd0b97d",
    "RepoTags": ["myimage:0.1", "other:2"],
    "RepoDigests": [],
    "Parent": "",
    "Comment": "imported it",
    "Config": {
        "Cmd": ["/bin/sh"],
        "Env": ["A=b"],
        "Entrypoint": None,
        "Labels": {"zeta": "1", "alpha": "2"},
        "WorkingDir": "",
    },
    "Size": 1978000,
    "Ratio": 0.5,
    "Big": 1e21,
    "Flag": True,
    "Empty": "",
    "Nothing": None,
}


def render(text: str, data: Any = IMAGE) -> str:
    return parse(text).execute(data)


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("plain text", "plain text"),
        ("", ""),
        ("{{.Comment}}", "imported it"),
        ("{{ .Comment }}", "imported it"),
        ("{{.Config.Cmd}}", "[/bin/sh]"),
        ("{{.RepoTags}}", "[myimage:0.1 other:2]"),
        ("{{.RepoDigests}}", "[]"),
        ("{{.Config.Labels}}", "map[alpha:2 zeta:1]"),
        ("{{.Size}}", "1978000"),
        ("{{.Ratio}}", "0.5"),
        ("{{.Big}}", "1e+21"),
        ("{{.Flag}}", "true"),
        ("{{.Nothing}}", "<no value>"),
        ("{{.Missing}}", "<no value>"),
        ("{{.Missing.Deeper}}", "<no value>"),
        ("{{.Config.Entrypoint}}", "<no value>"),
        ("{{json .Config.Cmd}} {{json .Config.Env}}", '["/bin/sh"] ["A=b"]'),
        ("{{json .Config.Entrypoint}}", "null"),
        ("{{json .Comment}}", '"imported it"'),
        ("{{json .Size}}", "1978000"),
        ("{{json .Flag}}", "true"),
        ("{{json .Config.Labels}}", '{"zeta":"1","alpha":"2"}'),
        ("{{.Config.Cmd | json}}", '["/bin/sh"]'),
        ("{{range .RepoTags}}{{.}} {{end}}", "myimage:0.1 other:2 "),
        ("{{range .RepoDigests}}x{{else}}none{{end}}", "none"),
        ("{{range .Nothing}}x{{else}}nil{{end}}", "nil"),
        ("{{range $i, $t := .RepoTags}}{{$i}}={{$t}};{{end}}", "0=myimage:0.1;1=other:2;"),
        ("{{range $t := .RepoTags}}<{{$t}}>{{end}}", "<myimage:0.1><other:2>"),
        ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}", "alpha=2 zeta=1 "),
        ('{{range .RepoTags}}{{if eq . "other:2"}}{{break}}{{end}}{{.}}{{end}}', "myimage:0.1"),
        ('{{range .RepoTags}}{{if eq . "myimage:0.1"}}{{continue}}{{end}}{{.}}{{end}}', "other:2"),
        ("{{range .RepoTags}}{{$.Comment}};{{end}}", "imported it;imported it;"),
        ("{{if .Flag}}yes{{else}}no{{end}}", "yes"),
        ("{{if .Empty}}yes{{else}}no{{end}}", "no"),
        ("{{if .RepoDigests}}yes{{else}}no{{end}}", "no"),
        ("{{if .Nothing}}yes{{else if .Flag}}second{{else}}no{{end}}", "second"),
        ("{{if not .Empty}}empty{{end}}", "empty"),
        ("{{if and .Flag .Comment}}both{{end}}", "both"),
        ("{{and .Flag .Empty .Comment}}|", "|"),
        ("{{or .Empty .Comment}}", "imported it"),
        ("{{or .Empty .Nothing}}", "<no value>"),
        ("{{with .Config}}{{.Cmd}}{{end}}", "[/bin/sh]"),
        ("{{with .Empty}}x{{else}}fallback{{end}}", "fallback"),
        ("{{with .Nothing}}x{{else with .Comment}}{{.}}{{end}}", "imported it"),
        ("{{$x := .Comment}}{{$x}}", "imported it"),
        ("{{$x := 1}}{{if .Flag}}{{$x = 2}}{{end}}{{$x}}", "2"),
        ("{{$.Comment}}", "imported it"),
        ("{{$c := .Config}}{{$c.Cmd}}", "[/bin/sh]"),
        ('{{join .RepoTags ", "}}', "myimage:0.1, other:2"),
        ('{{split "a:b:c" ":"}}', "[a b c]"),
        ('{{index (split "a:b:c" ":") 1}}', "b"),
        ('{{lower "ABC"}} {{upper "abc"}}', "abc ABC"),
        ('{{title "hello wide-world foo_bar"}}', "Hello Wide-World Foo_bar"),
        ("{{pad .Comment 1 2}}|", " imported it  |"),
        ("{{pad .Empty 1 2}}|", "|"),
        ("{{truncate .Comment 5}}", "impor"),
        ("{{truncate .Comment 50}}", "imported it"),
        ("{{len .RepoTags}} {{len .Comment}} {{len .Config.Labels}}", "2 11 2"),
        ("{{index .RepoTags 1}}", "other:2"),
        ('{{index .Config.Labels "alpha"}}', "2"),
        ('{{index .Config.Labels "nope"}}', "<no value>"),
        ("{{(index .RepoTags 0)}}", "myimage:0.1"),
        ("{{slice .RepoTags 1}}", "[other:2]"),
        ("{{println .Comment}}", "imported it\n"),
        ('{{println 1 "a" 2}}', "1 a 2\n"),
        ('{{print 1 2 "a" 3}}', "1 2a3"),
        ('{{printf "%s has %d tags" .Comment (len .RepoTags)}}', "imported it has 2 tags"),
        (
            '{{printf "%-6s|%5d|%q|%v|%t" "ab" 42 "q" .RepoTags .Flag}}',
            'ab    |   42|"q"|[myimage:0.1 other:2]|true',
        ),
        ('{{printf "%d" "x"}}', "%!d(string=x)"),
        ('{{printf "%s %s" "x"}}', "x %!s(MISSING)"),
        ('{{.Comment | printf "%s!"}}', "imported it!"),
        ("{{eq .Size 1978000}}", "true"),
        ('{{ne .Comment "x"}}', "true"),
        ('{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge "b" "a"}}', "true true false true"),
        ('{{eq .Comment "a" "imported it"}}', "true"),
        ('{{"quoted\\t\\"x\\""}}', 'quoted\t"x"'),
        ("{{`raw \\n`}}", "raw \\n"),
        ("{{1.5}} {{0x1F}} {{-3}} {{'a'}} {{true}} {{1e3}}", "1.5 31 -3 97 true 1000"),
        ("a  {{- .Comment -}}  b", "aimported itb"),
        ("a {{- /* comment */ -}} b", "ab"),
        ("x{{/* a\nmultiline comment */}}y", "xy"),
        ("{{23 -}} < {{- 45}}", "23<45"),
        ("{{-3}}", "-3"),
        ("{{.Config.Labels.alpha}}", "2"),
        ('{{html "<a&b>"}} {{urlquery "a b&c"}}', "&lt;a&amp;b&gt; a+b%26c"),
        ("line1\n{{.Comment}}\nline3", "line1\nimported it\nline3"),
    ],
)
def test_render(text: str, out: str) -> None:
    assert render(text) == out


@dataclass
class Summary:
    ID: str
    Tags: list[str]

    def Short(self) -> str:
        return self.ID[:3]


class Context:
    """An object whose capitalised methods act as fields, like Docker's formatter contexts."""

    def __init__(self, repo: str) -> None:
        self._repo = repo

    def Repository(self) -> str:
        return self._repo

    def Join(self, sep: str, *parts: str) -> str:
        return sep.join(parts)


def test_structs_dataclasses_and_objects() -> None:
    st = Struct("types.Config", {"Cmd": ["sh"], "User": "", "Tty": False})
    assert render("{{.Cmd}}", st) == "[sh]"
    assert render("{{.}}", st) == "{[sh]  false}"
    assert render("{{json .}}", st) == '{"Cmd":["sh"],"User":"","Tty":false}'
    with pytest.raises(TemplateError) as info:
        render("{{.Nope}}", st)
    assert (
        str(info.value)
        == 'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type types.Config'
    )
    summary = Summary("abcdef", ["a"])
    assert render("{{.ID}} {{.Tags}} {{.Short}}", summary) == "abcdef [a] abc"
    assert render("{{.}}", summary) == "{abcdef [a]}"
    assert render("{{json .}}", summary) == '{"ID":"abcdef","Tags":["a"]}'
    ctx = Context("ubuntu")
    assert render("{{.Repository}}", ctx) == "ubuntu"
    assert render('{{.Join "-" "a" "b"}}', ctx) == "a-b"
    with pytest.raises(TemplateError, match="can't evaluate field Tag in type Context"):
        render("{{.Tag}}", ctx)


def test_typed_nils() -> None:
    data = {"Slice": NIL_SLICE, "Map": NIL_MAP}
    assert render("{{.Slice}} {{.Map}} {{json .Slice}} {{json .Map}}", data) == "[] map[] null null"
    assert render("{{len .Slice}}{{if .Slice}}x{{end}}{{range .Map}}y{{else}}e{{end}}", data) == "0e"
    assert render("{{.Map.Key}}", data) == "<no value>"


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (None, "<no value>"),
        ([None, 1], "[<nil> 1]"),
        ({"b": [1, 2], "a": {"x": None}}, "map[a:map[x:<nil>] b:[1 2]]"),
        ({2: "b", 1: "a"}, "map[1:a 2:b]"),
        (1.0, "1"),
        (100000.0, "100000"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (1e20, "1e+20"),
        (1e21, "1e+21"),
        (1.5e-5, "1.5e-05"),
        (0.0001, "0.0001"),
        (-2.5, "-2.5"),
        (float("inf"), "+Inf"),
        (b"ab", "[97 98]"),
        (False, "false"),
        ((1, "a"), "[1 a]"),
    ],
)
def test_go_sprint(value: Any, printed: str) -> None:
    assert go_sprint(value) == printed


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ({"a": "<b>&", "n": None}, '{"a":"<b>&","n":null}'),
        ('tab\tnl\nquote"back\\', '"tab\\tnl\\nquote\\"back\\\\"'),
        ("\x01\u2028é", '"\\u0001\\u2028é"'),
        ([1, 2.5, 1e21, 1e-7, 100.0], "[1,2.5,1e+21,1e-7,100]"),
        ([], "[]"),
        (b"hi", '"aGk="'),
        (True, "true"),
    ],
)
def test_go_json(value: Any, encoded: str) -> None:
    assert go_json(value) == encoded


def test_json_of_nan_prints_nothing_as_docker() -> None:
    assert render("[{{json .}}]", float("nan")) == "[]"


# --- parse errors: Go's messages ----------------------------------------------------------------

PARSE_ERRORS = [
    ("{{.Foo", "template: :1: unclosed action"),
    ("{{.Foo}", "template: :1: bad character U+007D '}'"),
    ("{{json .Config.Labels}", "template: :1: bad character U+007D '}'"),
    ("{{.Foo }", 'template: :1: unexpected "}" in operand'),
    ("{{foo}}", 'template: :1: function "foo" not defined'),
    ("{{if .X}}", "template: :1: unexpected EOF"),
    ("{{range .X}}a", "template: :1: unexpected EOF"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{}}", "template: :1: missing value for command"),
    ("{{if}}x{{end}}", "template: :1: missing value for if"),
    ("{{range}}x{{end}}", "template: :1: missing value for range"),
    ('{{.A | "x"}}', "template: :1: non executable command in pipeline stage 2"),
    ("{{$y}}", 'template: :1: undefined variable "$y"'),
    ('{{"abc}}', "template: :1: unterminated quoted string"),
    ("{{`abc}}", "template: :1: unterminated raw quoted string"),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{(.A}}", "template: :1: unclosed left paren"),
    ("{{.A)}}", "template: :1: unexpected right paren"),
    ("{{1e}}", 'template: :1: illegal number syntax: "1e"'),
    ("{{/* x }}", "template: :1: unclosed comment"),
    ("{{/* x */ .A}}", "template: :1: comment ends before closing delimiter"),
    ("{{.A!}}", "template: :1: bad character U+0021 '!'"),
    ("{{é}}", 'template: :1: function "é" not defined'),
    ("{{€}}", "template: :1: unrecognized character in action: U+20AC '€'"),
    ("{{3x}}", 'template: :1: bad number syntax: "3x"'),
    ('{{"a".B}}', 'template: :1: unexpected . after term "\\"a\\""'),
    ("{{:}}", "template: :1: expected :="),
    ("line1\nline2 {{.A", "template: :2: unclosed action"),
    ("{{if .A}}\n{{else}}\n{{else}}{{end}}", "template: :3: expected end; found {{else}}"),
]


@pytest.mark.parametrize(("text", "message"), PARSE_ERRORS)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse(text)
    assert str(info.value) == message
    assert isinstance(info.value, StrataError)


EXEC_ERRORS = [
    (
        "{{.Nothing.X}}",
        'template: :1:10: executing "" at <.Nothing.X>: nil pointer evaluating interface {}.X',
    ),
    (
        "{{.Comment.X}}",
        'template: :1:10: executing "" at <.Comment.X>: can\'t evaluate field X in type string',
    ),
    (
        "{{index .RepoTags 5}}",
        'template: :1:2: executing "" at <index .RepoTags 5>: error calling index: index out of range: 5',
    ),
    (
        "ab\ncd {{len .Size}}",
        'template: :2:5: executing "" at <len .Size>: error calling len: len of type int',
    ),
    (
        "{{upper .RepoTags}}",
        'template: :1:8: executing "" at <.RepoTags>: wrong type for value; expected string; got []interface {}',
    ),
    ("{{upper 3}}", 'template: :1:8: executing "" at <3>: expected string; found 3'),
    ('{{pad "x" "1" 2}}', 'template: :1:10: executing "" at <"1">: expected integer; found "1"'),
    ('{{pad "x" 1.5 2}}', 'template: :1:10: executing "" at <1.5>: expected integer; found 1.5'),
    ("{{upper nil}}", 'template: :1:8: executing "" at <nil>: cannot assign nil to string'),
    ("{{upper .Nothing}}", 'template: :1:8: executing "" at <.Nothing>: invalid value; expected string'),
    ('{{join "a" ","}}', 'template: :1:7: executing "" at <"a">: can\'t handle "a" for arg of type []string'),
    (
        '{{join .Comment ","}}',
        'template: :1:7: executing "" at <.Comment>: wrong type for value; expected []string; got string',
    ),
    (
        "{{range .Comment}}x{{end}}",
        'template: :1:8: executing "" at <.Comment>: range can\'t iterate over imported it',
    ),
    (
        "{{.Comment 1}}",
        'template: :1:2: executing "" at <.Comment>: Comment is not a method but has arguments',
    ),
    (
        '{{eq .Size "x"}}',
        'template: :1:2: executing "" at <eq .Size "x">: error calling eq: incompatible types for comparison',
    ),
    (
        "{{lt true false}}",
        'template: :1:2: executing "" at <lt true false>: error calling lt: invalid type for comparison',
    ),
    ("{{lower}}", 'template: :1:2: executing "" at <lower>: wrong number of args for lower: want 1 got 0'),
    ("{{and}}", 'template: :1:2: executing "" at <and>: wrong number of args for and: want at least 1 got 0'),
    ("{{nil}}", 'template: :1:2: executing "" at <nil>: nil is not a command'),
    ("{{1 2}}", 'template: :1:2: executing "" at <1>: can\'t give argument to non-function 1'),
    (
        "{{call 1}}",
        'template: :1:2: executing "" at <call 1>: error calling call: non-function 1 of type int',
    ),
    (
        "{{.Config.Cmd.VeryLongFieldNameHere}}",
        'template: :1:9: executing "" at <.Config.Cmd.VeryLongFieldNameHere>: '
        "can't evaluate field VeryLongFieldNameHere in type []interface {}",
    ),
]


@pytest.mark.parametrize(("text", "message"), EXEC_ERRORS)
def test_execution_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(text)
    assert str(info.value) == message


def test_missing_key_error_option() -> None:
    tmpl = parse("{{.Config.Nope}}")
    assert tmpl.execute(IMAGE) == "<no value>"
    with pytest.raises(TemplateError) as info:
        tmpl.execute(IMAGE, missing_key_error=True)
    assert (
        str(info.value) == 'template: :1:9: executing "" at <.Config.Nope>: map has no entry for key "Nope"'
    )


def test_partial_output_before_error_is_kept() -> None:
    partial: list[str] = []
    with pytest.raises(TemplateError):
        parse("before {{.Nothing.X}} after").execute(IMAGE, partial=partial)
    assert "".join(partial) == "before "


def test_extra_functions() -> None:
    tmpl = parse("{{double 21}}", {"double": lambda n: n * 2})
    assert tmpl.execute(None) == "42"
    assert tmpl.execute(None, funcs={"double": lambda n: n * 3}) == "63"


# --- Docker's --format layer ----------------------------------------------------------------------

HEADERS = {
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "ID": "IMAGE ID",
    "CreatedSince": "CREATED",
    "Size": "SIZE",
}
ROWS = [
    {
        "Repository": "myimage",
        "Tag": "0.1",
        "ID": "3a9f10baaebd",
        "CreatedSince": "Less than a second ago",
        "Size": human_size(1978000),
        "Digest": "<none>",
    },
    {
        "Repository": "myimage",
        "Tag": "0.2",
        "ID": "c0a46f290ded",
        "CreatedSince": "Less than a second ago",
        "Size": "1.98MB",
        "Digest": "<none>",
    },
    {
        "Repository": "myimage",
        "Tag": "0.0",
        "ID": "f1f4d94ee505",
        "CreatedSince": "Less than a second ago",
        "Size": "1.98MB",
        "Digest": "<none>",
    },
    {
        "Repository": "ubuntu",
        "Tag": "14.04",
        "ID": "7caf0cf03434",
        "CreatedSince": "2 seconds ago",
        "Size": "1.98MB",
        "Digest": "<none>",
    },
]
# docker images, from /work/shared/reference/docker/save-load-export-import.txt
IMAGES_OUTPUT = (
    "REPOSITORY   TAG       IMAGE ID       CREATED                  SIZE\n"
    "myimage      0.1       3a9f10baaebd   Less than a second ago   1.98MB\n"
    "myimage      0.2       c0a46f290ded   Less than a second ago   1.98MB\n"
    "myimage      0.0       f1f4d94ee505   Less than a second ago   1.98MB\n"
    "ubuntu       14.04     7caf0cf03434   2 seconds ago            1.98MB\n"
)
DEFAULT_IMAGES_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"


def test_default_images_table_matches_transcript() -> None:
    fmt = Format(DEFAULT_IMAGES_FORMAT)
    assert fmt.is_table
    assert fmt.render(ROWS, HEADERS) == IMAGES_OUTPUT
    cells = [[r["Repository"], r["Tag"], r["ID"], r["CreatedSince"], r["Size"]] for r in ROWS]
    assert render_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], cells) == IMAGES_OUTPUT


def test_table_with_literal_escapes_and_header_functions() -> None:
    fmt = Format(r"table {{.Repository}}\t{{json .Tag}}\t{{lower .ID}}")
    assert fmt.render(ROWS[:2], HEADERS) == (
        'REPOSITORY   TAG       IMAGE ID\nmyimage      "0.1"     3a9f10baaebd\nmyimage      "0.2"     c0a46f290ded\n'
    )
    # A field without a header shows <no value> in the header, as Docker's header map does.
    assert Format("table {{.Repository}}\t{{.Other}}").render([], HEADERS) == "REPOSITORY   <no value>\n"
    # pad is not a header function: it pads the header too, keeping columns aligned.
    assert Format("table {{pad .Tag 1 1}}|").render(ROWS[:1], HEADERS) == " TAG |\n 0.1 |\n"


def test_plain_formats() -> None:
    assert Format("{{.Repository}}:{{.Tag}}").render(ROWS[:2], HEADERS) == "myimage:0.1\nmyimage:0.2\n"
    assert Format(r"{{.ID}}\t{{.Repository}}").render(ROWS[:1]) == "3a9f10baaebd\tmyimage\n"
    assert Format(r"{{.ID}}\n").render(ROWS[:1]) == "3a9f10baaebd\n\n"
    assert Format("  {{.ID}}  ").render(ROWS[:1]) == "3a9f10baaebd\n"
    assert Format("{{json .}}").render([{"ID": "x", "Size": "1B"}]) == '{"ID":"x","Size":"1B"}\n'
    assert Format("json").render([{"ID": "x"}]) == "json\n"  # Docker 20.10: no json shorthand (23.0 added it)
    assert Format("{{.ID}}").render([]) == ""


def test_format_errors_are_docker_messages() -> None:
    with pytest.raises(TemplateError) as info:
        Format("{{.Repository")
    assert str(info.value) == "template parsing error: template: :1: unclosed action"
    assert info.value.exit_code == 1
    with pytest.raises(TemplateError) as info:
        Format("{{.Foo}}").render(ROWS, HEADERS, struct_name="*formatter.imageContext")
    assert str(info.value) == (
        'template parsing error: template: :1:2: executing "" at <.Foo>: '
        "can't evaluate field Foo in type *formatter.imageContext"
    )
    # Plain mappings act as Go maps: an unknown field is <no value>.
    assert Format("{{.Foo}}").render(ROWS[:1]) == "<no value>\n"


def test_inspect_format() -> None:
    fmt = InspectFormat("{{json .Config.Cmd}} {{json .Config.Env}}")
    assert fmt.render(IMAGE) == '["/bin/sh"] ["A=b"]\n'
    # Inspect keeps \t literal (no escape processing).
    assert InspectFormat(r"{{.Comment}}\t").render(IMAGE) == "imported it\\t\n"
    with pytest.raises(TemplateError) as info:
        InspectFormat("{{.Config.Cmd}")
    assert str(info.value) == "template parsing error: template: :1: bad character U+007D '}'"
    assert info.value.exit_code == 64
    typed = Struct("types.ImageInspect", {"Id": "x", "Config": Struct("container.Config", {"Cmd": ["sh"]})})
    raw = {"Id": "x", "Config": {"Cmd": ["sh"], "Extra": "e"}}
    assert InspectFormat("{{.Config.Cmd}}").render(typed, raw) == "[sh]\n"
    # Fails on the typed value, falls back to the raw JSON map.
    assert InspectFormat("{{.Config.Extra}}").render(typed, raw) == "e\n"
    with pytest.raises(TemplateError) as info:
        InspectFormat("{{.Nope}}").render(typed, raw)
    assert str(info.value) == (
        'template parsing error: template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"'
    )
    assert info.value.exit_code == 1
    with pytest.raises(
        TemplateError, match=re.escape("can't evaluate field Nope in type types.ImageInspect")
    ):
        InspectFormat("{{.Nope}}").render(typed)


# --- cross-check against the real docker CLI (client side only: no daemon needed) -----------------

DOCKER_CASES = [
    '{{printf "%v" 1e6}} {{1e6}} {{1234567.0}} {{123456.0}} {{0.00001}} {{0.0001}} {{1e21}} {{-2.5}}',
    '{{json 1e21}} {{json 1e-7}} {{json "a\\u2028<&>\\x01"}} {{json 100.0}} {{json 1.5}}',
    '{{title "hello wide-world foo_bar o\'neil"}}',
    '{{print 1 2 "a" 3 nil}}|{{println 1 "a"}}',
    '{{len "héllo"}} {{index "abc" 1}} {{slice "abcdef" 1 3}}',
    '{{printf "%d %s %5.2f %x %q" "x" 3 3.14159 "hi" "q"}}',
    '{{printf "%s %v %t %d" true nil 1 2}}',
    '{{printf "%-5s|%05d|%+d|%x|%X" "ab" 42 3 255 255}}',
    '{{printf "%s" "a" "b"}} {{printf "%d"}}',
    '{{html "<a&b>\\"\'"}} {{js "a\'<b>"}} {{urlquery "a b&c/"}}',
    '{{pad "" 1 1}}|{{split "abc" ""}}|{{split "a,b" ","}}|{{pad "x" 2 1}}|',
    '{{eq 1 1}} {{eq "a" "b" "a"}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}}',
    '{{and 1 0 2}} {{or 0 "" "x"}} {{not 0}} {{not "x"}}',
    '{{1 | printf "%d"}} {{"x" | printf "%s-%s" "a"}}',
    '{{$x := 1}}{{$x}}{{$x = 2}}{{$x}} {{with $y := "o"}}{{$y}}{{end}}',
    '{{range $i, $e := split "a,b" ","}}{{$i}}{{$e}}{{end}} {{range split "a,b,c" ","}}{{if eq . "b"}}{{continue}}{{end}}{{.}}{{end}}',
    "{{23 -}} < {{- 45}} {{-3}} {{+3}} {{0x1F}} {{017}} {{'a'}} {{1.5e3}}",
    '{{"\\x41\\u00e9\\101"}} {{printf "%q" "a\\"b\\n"}} {{join (split "a b c" " ") "-"}}',
    '{{truncate "abcdef" 3}} {{truncate "ab" 3}} {{upper "abc"}} {{lower "ABC"}}',
    '{{json (split "a,b" ",")}} {{json nil}} {{json true}} {{json 3}} {{print "a" "b" 1 2 "c"}}',
    '{{printf "%v %v" (split "a,b" ",") 1.5}} {{printf "%6.2f|%.3g" 3.14159 1234.5678}}',
    "{{if 1}}a{{else if 0}}b{{else}}c{{end}} {{if 0}}a{{else if 1}}b{{end}} {{with 0}}x{{else}}y{{end}}",
    "a {{- /* comment */ -}} b",
]


@pytest.mark.peers
@pytest.mark.parametrize("text", DOCKER_CASES)
def test_matches_docker_cli(text: str, tmp_path: Any) -> None:
    import os
    import shutil
    import subprocess

    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not installed")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        "DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock",
    }
    proc = subprocess.run(
        [docker, "version", "--format", text], capture_output=True, text=True, env=env, timeout=60
    )
    assert "template" not in proc.stderr, proc.stderr
    assert proc.stdout == parse(text).execute({}) + "\n"


def test_header_stops_at_a_header_function_on_a_missing_column() -> None:
    fmt = Format("table {{.Name}}\t{{json .Current}}\t{{.Name}}")
    assert fmt.render([{"Name": "default", "Current": True}], {"Name": "NAME"}) == (
        "NAME      \ndefault   true      default\n"
    )


@pytest.mark.peers
def test_table_matches_docker_context_ls(tmp_path: Any) -> None:
    import os
    import shutil
    import subprocess

    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not installed")
    sock = f"unix://{tmp_path}/no-daemon.sock"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        "DOCKER_HOST": sock,
    }
    text = "table {{.Name}}\\t{{.Description}}\\t{{.DockerEndpoint}}\\t{{json .Current}}\\t{{upper .Name}}"
    proc = subprocess.run(
        [docker, "context", "ls", "--format", text], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    row = {
        "Name": "default",
        "Description": "Current DOCKER_HOST based configuration",
        "DockerEndpoint": sock,
        "Current": True,
    }
    headers = {"Name": "NAME", "Description": "DESCRIPTION", "DockerEndpoint": "DOCKER ENDPOINT"}
    assert proc.stdout == Format(text).render([row], headers)
