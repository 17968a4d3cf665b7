"""Executing a parsed template (``exec.go``): walking the tree, fields, pipelines, calls, Go's errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from strata.gotemplate.funcs import BASIC_FUNCTIONS, SIGNATURES, ArgError, CallError, fn_and, fn_or
from strata.gotemplate.nodes import (
    ActionNode,
    BranchNode,
    ChainNode,
    CommandNode,
    ConstNode,
    DotNode,
    FieldNode,
    IdentNode,
    ListNode,
    LoopControl,
    NilNode,
    Node,
    PipeNode,
    Text,
    VarNode,
)
from strata.gotemplate.parser import Parser
from strata.gotemplate.quote import go_quote
from strata.gotemplate.values import (
    INVALID,
    MISSING,
    NIL_MAP,
    Function,
    GoMap,
    Nil,
    Pointer,
    Struct,
    TemplateError,
    go_sprint,
    is_true,
    sort_key,
    struct_fields,
    type_name,
)

__all__ = ["Template", "parse"]


class _ExecError(Exception):
    pass


class _Break(Exception):
    pass


class _Continue(Exception):
    pass




@dataclass
class _State:
    text: str
    funcs: Mapping[str, Function]
    missing_error: bool
    out: list[str]
    vars: list[tuple[str, Any]]
    node: Node | None = None

    def fail(self, message: str) -> NoReturn:
        raise _ExecError(message)




class Template:
    """A parsed template. ``execute(data)`` renders it; errors raise :class:`TemplateError`."""

    def __init__(self, text: str, funcs: Mapping[str, Function] | None = None) -> None:
        self.text = text
        self.funcs: dict[str, Function] = {**BASIC_FUNCTIONS, **(funcs or {})}
        self._root = Parser(text, self.funcs).parse()

    def execute(
        self,
        data: Any,
        *,
        missing_key_error: bool = False,
        funcs: Mapping[str, Function] | None = None,
        partial: list[str] | None = None,
    ) -> str:
        """Render with ``data`` as dot. ``funcs`` overrides functions by name (as Go's ``Funcs``
        before ``Execute``); ``partial`` receives the output written before an error."""
        state = _State(
            self.text,
            {**self.funcs, **(funcs or {})},
            missing_key_error,
            partial if partial is not None else [],
            [("$", data)],
        )
        try:
            _walk(state, data, self._root)
        except _ExecError as e:
            raise TemplateError(self._exec_message(state, str(e))) from None
        return "".join(state.out)

    def _exec_message(self, state: _State, message: str) -> str:
        node = state.node
        if node is None:
            return f'template: : executing "" at <>: {message}'
        before = self.text[: node.pos]
        line = before.count("\n") + 1
        col = len(before[before.rfind("\n") + 1 :].encode())
        context = str(node)
        return f'template: :{line}:{col}: executing "" at <{context}>: {message}'


def parse(text: str, funcs: Mapping[str, Function] | None = None) -> Template:
    """Parse ``text`` with Docker's function set (plus ``funcs``)."""
    return Template(text, funcs)


def _walk(state: _State, dot: Any, node: Node) -> None:
    if isinstance(node, Text):
        state.out.append(node.text)
    elif isinstance(node, ListNode):
        for child in node.nodes:
            _walk(state, dot, child)
    elif isinstance(node, ActionNode):
        value = _eval_pipeline(state, dot, node.pipe)
        if not node.pipe.decl:
            state.out.append(go_sprint(value))
    elif isinstance(node, BranchNode):
        _walk_branch(state, dot, node)
    elif isinstance(node, LoopControl):
        raise _Break() if node.kind == "break" else _Continue()


def _walk_branch(state: _State, dot: Any, node: BranchNode) -> None:
    mark = len(state.vars)
    try:
        value = _eval_pipeline(state, dot, node.pipe)
        if node.kind == "range":
            _walk_range(state, dot, node, value)
        elif is_true(value):
            _walk(state, value if node.kind == "with" else dot, node.body)
        elif node.else_body is not None:
            _walk(state, dot, node.else_body)
    finally:
        del state.vars[mark:]


def _range_items(state: _State, value: Any) -> list[tuple[Any, Any]] | None:
    if value is None or value is MISSING or isinstance(value, Nil):
        return []
    if isinstance(value, list | tuple | bytes | bytearray):
        return list(enumerate(value))
    if isinstance(value, dict):
        return [(k, value[k]) for k in sorted(value, key=sort_key)]
    if isinstance(value, int) and not isinstance(value, bool):
        return [(i, i) for i in range(value)]
    return None


def _walk_range(state: _State, dot: Any, node: BranchNode, value: Any) -> None:
    items = _range_items(state, value)
    if items is None:
        state.node = node.pipe
        state.fail(f"range can't iterate over {go_sprint(value)}")
    if not items:
        if node.else_body is not None:
            _walk(state, dot, node.else_body)
        return
    decl = node.pipe.decl
    for key, elem in items:
        if len(decl) == 1:
            _set_var(state, decl[0], elem, node.pipe.is_assign)
        elif len(decl) == 2:
            _set_var(state, decl[0], key, node.pipe.is_assign)
            _set_var(state, decl[1], elem, node.pipe.is_assign)
        try:
            _walk(state, elem, node.body)
        except _Break:
            break
        except _Continue:
            continue


def _set_var(state: _State, name: str, value: Any, assign: bool) -> None:
    if assign:
        for i in range(len(state.vars) - 1, -1, -1):
            if state.vars[i][0] == name:
                state.vars[i] = (name, value)
                return
        state.fail(f"undefined variable: {name}")
    state.vars.append((name, value))


def _var(state: _State, name: str) -> Any:
    for var_name, value in reversed(state.vars):
        if var_name == name:
            return value
    state.fail(f"undefined variable: {name}")


def _eval_pipeline(state: _State, dot: Any, pipe: PipeNode) -> Any:
    value: Any = MISSING
    first = True
    for cmd in pipe.cmds:
        value = _eval_command(state, dot, cmd, MISSING if first else value)
        first = False
    for name in pipe.decl:
        _set_var(state, name, value, pipe.is_assign)
    return value


def _eval_command(state: _State, dot: Any, cmd: CommandNode, final: Any) -> Any:
    first = cmd.args[0]
    state.node = first
    if isinstance(first, FieldNode):
        return _eval_fields(state, dot, dot, first, first.idents, cmd.args, final)
    if isinstance(first, ChainNode):
        base = _eval_arg(state, dot, first.node)
        return _eval_fields(state, dot, base, first, first.fields, cmd.args, final)
    if isinstance(first, VarNode):
        value = _var(state, first.idents[0])
        if len(first.idents) == 1:
            _not_a_function(state, cmd.args, final, first)
            return value
        return _eval_fields(state, dot, value, first, first.idents[1:], cmd.args, final)
    if isinstance(first, IdentNode):
        return _eval_function(state, dot, first, cmd, cmd.args, final)
    _not_a_function(state, cmd.args, final, first)
    if isinstance(first, PipeNode):
        return _eval_pipeline(state, dot, first)
    if isinstance(first, DotNode):
        return dot
    if isinstance(first, NilNode):
        state.fail("nil is not a command")
    if isinstance(first, ConstNode):
        return first.value
    state.fail(f"can't evaluate command {first}")


def _not_a_function(state: _State, args: Sequence[Node], final: Any, node: Node) -> None:
    if len(args) > 1 or final is not MISSING:
        state.node = node
        state.fail(f"can't give argument to non-function {args[0]}")


def _eval_arg(state: _State, dot: Any, node: Node) -> Any:
    state.node = node
    if isinstance(node, DotNode):
        return dot
    if isinstance(node, NilNode):
        return None
    if isinstance(node, ConstNode):
        return node.value
    if isinstance(node, FieldNode):
        return _eval_fields(state, dot, dot, node, node.idents, [node], MISSING)
    if isinstance(node, VarNode):
        value = _var(state, node.idents[0])
        if len(node.idents) == 1:
            return value
        return _eval_fields(state, dot, value, node, node.idents[1:], [node], MISSING)
    if isinstance(node, PipeNode):
        return _eval_pipeline(state, dot, node)
    if isinstance(node, ChainNode):
        base = _eval_arg(state, dot, node.node)
        return _eval_fields(state, dot, base, node, node.fields, [node], MISSING)
    if isinstance(node, IdentNode):
        return _eval_function(state, dot, node, node, [node], MISSING)
    state.fail(f"can't handle {node} for arg")


def _eval_fields(
    state: _State,
    dot: Any,
    receiver: Any,
    node: Node,
    idents: Sequence[str],
    args: Sequence[Node],
    final: Any,
) -> Any:
    for ident in idents[:-1]:
        receiver = _eval_field(state, dot, ident, node, [node], MISSING, receiver)
    return _eval_field(state, dot, idents[-1], node, args, final, receiver)


def _eval_field(
    state: _State,
    dot: Any,
    name: str,
    node: Node,
    args: Sequence[Node],
    final: Any,
    receiver: Any,
) -> Any:
    state.node = node
    has_args = len(args) > 1 or final is not MISSING
    if receiver is INVALID:  # read from a typed map's missing key: Go's zero, whatever missingkey says
        return INVALID
    if isinstance(receiver, GoMap) and name not in receiver and not has_args:
        return INVALID
    if receiver is MISSING:
        if state.missing_error:
            state.fail(f"nil data; no entry for key {go_quote(name)}")
        return MISSING
    if receiver is None:
        state.fail(f"nil pointer evaluating interface {{}}.{name}")
    if isinstance(receiver, Pointer):  # Go's templates look through a pointer for a field
        receiver = receiver.target
    if isinstance(receiver, dict):
        if has_args:
            state.fail(f"{name} is not a method but has arguments")
        if name in receiver:
            return receiver[name]
        if state.missing_error:
            state.fail(f"map has no entry for key {go_quote(name)}")
        return MISSING
    if receiver is NIL_MAP:
        if state.missing_error:
            state.fail(f"map has no entry for key {go_quote(name)}")
        return MISSING
    methods = getattr(receiver, "go_methods", None) if isinstance(receiver, str) else None
    if methods is not None:  # a named string type with methods (container.NetworkMode's IsHost …)
        if name in methods:
            return _call(state, dot, methods[name], name, node, args, final)
        state.fail(f"can't evaluate field {name} in type {type_name(receiver)}")
    fields = struct_fields(receiver)
    if fields is not None:
        value = receiver.field(name) if isinstance(receiver, Struct) else fields.get(name, MISSING)
        if value is not MISSING:
            if callable(value) and not isinstance(value, type):
                return _call(state, dot, value, name, node, args, final)
            if has_args:
                state.fail(f"{name} has arguments but cannot be invoked as function")
            return value
        method = getattr(receiver, name, None) if not isinstance(receiver, Struct) else None
        if callable(method):
            return _call(state, dot, method, name, node, args, final)
        state.fail(f"can't evaluate field {name} in type {type_name(receiver)}")
    if (
        not isinstance(receiver, str | int | float | bool | list | tuple | bytes | Nil)
        and name[:1].isupper()
    ):
        attr = getattr(receiver, name, MISSING)
        if attr is not MISSING:
            if callable(attr):
                return _call(state, dot, attr, name, node, args, final)
            if has_args:
                state.fail(f"{name} has arguments but cannot be invoked as function")
            return attr
    state.fail(f"can't evaluate field {name} in type {type_name(receiver)}")


def _call(
    state: _State, dot: Any, fn: Function, name: str, node: Node, args: Sequence[Node], final: Any
) -> Any:
    values = [_eval_arg(state, dot, a) for a in args[1:]]
    if final is not MISSING:
        values.append(final)
    state.node = node
    try:
        return fn(*values)
    except TypeError as e:
        state.fail(f"wrong number of args for {name}: {e}")
    except _ExecError:
        raise
    except Exception as e:
        state.fail(f"error calling {name}: {e}")


def _eval_function(
    state: _State, dot: Any, ident: IdentNode, cmd: Node, args: Sequence[Node], final: Any
) -> Any:
    name = ident.name
    fn = state.funcs.get(name)
    if fn is None:
        state.fail(f"{go_quote(name)} is not a defined function")
    if fn is fn_and or fn is fn_or:
        return _eval_logic(state, dot, ident, cmd, args, final)
    nodes = list(args[1:])
    count = len(nodes) + (0 if final is MISSING else 1)
    sig = SIGNATURES.get(fn)
    if sig is not None:
        fixed, variadic = sig
        if (variadic is None and count != len(fixed)) or count < len(fixed):
            state.node = cmd
            least = "at least " if variadic is not None else ""
            state.fail(f"wrong number of args for {name}: want {least}{len(fixed)} got {count}")
        kinds = [fixed[i] if i < len(fixed) else (variadic or "any") for i in range(count)]
        values = [_eval_typed_arg(state, dot, n, k) for n, k in zip(nodes, kinds, strict=False)]
        if final is not MISSING:
            values.append(_validate(state, final, kinds[-1]))
    else:
        values = [_eval_arg(state, dot, n) for n in nodes]
        if final is not MISSING:
            values.append(final)
    state.node = cmd
    try:
        return fn(*values)
    except ArgError as e:
        state.fail(str(e))
    except _ExecError:
        raise
    except CallError as e:
        state.fail(f"error calling {name}: {e}")
    except TypeError:
        if sig is not None:
            raise
        want, variadic_fn = _arity(fn)
        least = "at least " if variadic_fn else ""
        state.fail(f"wrong number of args for {name}: want {least}{want} got {len(values)}")


def _eval_typed_arg(state: _State, dot: Any, node: Node, kind: str) -> Any:
    """Go's evalArg: constants must suit the parameter, other values are checked after evaluation."""
    if kind != "any" and isinstance(node, ConstNode):
        state.node = node
        if kind == "string":
            if node.kind != "string":
                state.fail(f"expected string; found {node}")
            return node.value
        if kind == "int":
            value = node.value
            if node.kind != "number" or (isinstance(value, float) and not value.is_integer()):
                state.fail(f"expected integer; found {node}")
            return int(value)
        state.fail(f"can't handle {node} for arg of type {kind}")
    if kind != "any" and isinstance(node, NilNode):
        state.node = node
        if kind == "[]string":
            return []
        state.fail(f"cannot assign nil to {kind}")
    value = _eval_arg(state, dot, node)
    state.node = node
    return _validate(state, value, kind)


def _validate(state: _State, value: Any, kind: str) -> Any:
    if kind == "any":
        return value
    if value is None or value is MISSING or isinstance(value, Nil):
        if kind == "[]string":
            return []
        state.fail(f"invalid value; expected {kind}")
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    if not ok:
        state.fail(f"wrong type for value; expected {kind}; got {type_name(value)}")
    return value


def _arity(fn: Function) -> tuple[int, bool]:
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 0, True
    params = list(sig.parameters.values())
    variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
    fixed = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(fixed), variadic


def _eval_logic(
    state: _State, dot: Any, ident: IdentNode, cmd: Node, args: Sequence[Node], final: Any
) -> Any:
    nodes = list(args[1:])
    count = len(nodes) + (0 if final is MISSING else 1)
    if count < 1:
        state.node = cmd
        state.fail(f"wrong number of args for {ident.name}: want at least 1 got 0")
    want = ident.name == "or"
    value: Any = MISSING
    for n in nodes:
        value = _eval_arg(state, dot, n)
        if is_true(value) == want:
            return value
    if final is not MISSING:
        value = final
    return value
