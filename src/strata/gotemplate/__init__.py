"""The Go ``text/template`` language as Docker's ``--format`` uses it, split as Go's package is.

Supported: text and actions with ``{{-``/``-}}`` trimming and ``{{/* comments */}}``; fields and chains
(``.Config.Cmd``, ``$v.Name``, ``(index .RepoTags 0).X``); pipelines ``a | b``; variables
(``$x := …``, ``$x = …``, ``$``); ``if``/``else if``/``else``, ``range`` (with ``$i, $e :=``,
``else``, ``break``, ``continue``), ``with``/``else with``; string, raw string, number, char, bool
and nil constants; Go's builtins (``and or not len index slice print printf println eq ne lt le gt
ge html js urlquery call``) and Docker's (``json join split lower upper title pad truncate``).

Values are Python data seen as Go values: ``dict`` is a Go map (printed ``map[k:v]`` with sorted
keys; JSON keeps insertion order, so build struct-like dicts in Docker's field order), ``list``/
``tuple`` a slice (``[a b]``), ``None`` a nil interface (``<no value>`` when printed on its own,
``<nil>`` inside a composite), :class:`Struct` and dataclasses Go structs (``{a b}``; an unknown
field is an error, as for Docker's typed contexts), other objects expose attributes and zero-argument
methods as fields.

Errors carry Go's messages (``template: :1: unclosed action``); :class:`Format` (list commands) and
:class:`InspectFormat` (``inspect``) wrap them the way the Docker CLI does.

Modules: ``values`` (the Go value model, ``fmt.Sprint``), ``gojson`` (``encoding/json``), ``quote``
(``strconv`` quoting), ``lexer``, ``nodes``, ``parser``, ``executor`` (``Template``), ``funcs`` (the
builtins), ``formatter`` (Docker's ``--format`` forms).
"""

from strata.gotemplate.executor import Template, parse
from strata.gotemplate.formatter import Format, InspectFormat
from strata.gotemplate.funcs import BASIC_FUNCTIONS, HEADER_FUNCTIONS
from strata.gotemplate.gojson import go_json
from strata.gotemplate.values import NIL_MAP, NIL_SLICE, Pointer, Struct, TemplateError, go_sprint

__all__ = [
    "BASIC_FUNCTIONS",
    "HEADER_FUNCTIONS",
    "NIL_MAP",
    "NIL_SLICE",
    "Format",
    "InspectFormat",
    "Pointer",
    "Struct",
    "Template",
    "TemplateError",
    "go_json",
    "go_sprint",
    "parse",
]
