"""The parser of Go's ``text/template`` (``parse.go``): tokens to a node tree, Go's parse errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

from strata.gotemplate.lexer import Lexer, Tok
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
from strata.gotemplate.quote import go_quote, unquote
from strata.gotemplate.values import TemplateError

__all__ = ["Parser"]


_OPERAND_START = {
    "BOOL",
    "CHARCONST",
    "DOT",
    "FIELD",
    "IDENT",
    "NUMBER",
    "NIL",
    "RAW",
    "STRING",
    "VAR",
    "LPAREN",
}


class Parser:
    def __init__(self, text: str, funcs: Mapping[str, Any]) -> None:
        self.text = text
        self.tokens = Lexer(text).run()
        self.i = 0
        self.funcs = funcs
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0

    # token helpers
    def next(self) -> Tok:
        tok = self.tokens[self.i]
        self.i += 1
        if tok.kind == "ERROR":
            self.fail(tok.val, tok.line)
        return tok

    def backup(self) -> None:
        self.i -= 1

    def peek(self) -> Tok:
        tok = self.tokens[self.i]
        if tok.kind == "ERROR":
            self.i += 1
            self.fail(tok.val, tok.line)
        return tok

    def next_non_space(self) -> Tok:
        tok = self.next()
        while tok.kind == "SPACE":
            tok = self.next()
        return tok

    def peek_non_space(self) -> Tok:
        tok = self.next_non_space()
        self.backup()
        return tok

    def fail(self, message: str, line: int | None = None) -> NoReturn:
        if line is None:
            line = self.tokens[max(self.i - 1, 0)].line
        raise TemplateError(f"template: :{line}: {message}")

    def unexpected(self, tok: Tok, context: str) -> NoReturn:
        self.fail(f"unexpected {_describe(tok)} in {context}", tok.line)

    # grammar
    def parse(self) -> ListNode:
        root = ListNode(0)
        while self.peek().kind != "EOF":
            tok = self.peek()
            if tok.kind == "LEFT":
                self.next()
                kw = self.peek_non_space()
                if kw.kind == "KEYWORD" and kw.val in ("end", "else"):
                    self.fail(f"unexpected {{{{{kw.val}}}}}", kw.line)
                root.nodes.append(self.action())
            else:
                root.nodes.append(self.text_node())
        return root

    def text_node(self) -> Node:
        tok = self.next()
        return Text(tok.pos, tok.val)

    def item_list(self) -> tuple[ListNode, str]:
        """Nodes up to ``{{end}}`` or ``{{else}}``; returns which one ended it."""
        lst = ListNode(self.peek().pos)
        while True:
            tok = self.peek()
            if tok.kind == "EOF":
                self.fail("unexpected EOF", tok.line)
            if tok.kind == "LEFT":
                self.next()
                kw = self.peek_non_space()
                if kw.kind == "KEYWORD" and kw.val in ("end", "else"):
                    self.next_non_space()
                    return lst, kw.val
                lst.nodes.append(self.action())
            else:
                lst.nodes.append(self.text_node())

    def action(self) -> Node:
        tok = self.next_non_space()
        self.action_line = tok.line
        if tok.kind == "KEYWORD":
            if tok.val in ("if", "range", "with"):
                return self.control(tok)
            if tok.val in ("break", "continue"):
                return self.loop_control(tok)
            if tok.val in ("define", "template", "block"):
                self.fail(f"{{{{{tok.val}}}}} is not supported", tok.line)
        self.backup()
        pos = self.peek().pos
        pipe = self.pipeline("command", "RIGHT")
        return ActionNode(pos, pipe)

    def loop_control(self, tok: Tok) -> Node:
        end = self.next_non_space()
        if end.kind != "RIGHT":
            self.unexpected(end, f"{{{{{tok.val}}}}}")
        if self.range_depth == 0:
            self.fail(f"{{{{{tok.val}}}}} outside {{{{range}}}}", tok.line)
        return LoopControl(tok.pos, tok.val)

    def control(self, tok: Tok) -> Node:
        kind = tok.val
        mark = len(self.vars)
        pipe = self.pipeline(kind, "RIGHT")
        if kind == "range":
            self.range_depth += 1
        body, ended = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        else_body: ListNode | None = None
        if ended == "else":
            nxt = self.peek_non_space()
            if kind in ("if", "with") and nxt.kind == "KEYWORD" and nxt.val == kind:
                # "{{else if …}}" / "{{else with …}}": a nested branch that consumes the {{end}}.
                inner_tok = self.next_non_space()
                else_body = ListNode(inner_tok.pos, [self.control(inner_tok)])
            else:
                end = self.next_non_space()
                if end.kind != "RIGHT":
                    self.unexpected(end, "else")
                else_body, ended2 = self.item_list()
                if ended2 != "end":
                    self.fail("expected end; found {{else}}", self.tokens[self.i - 1].line)
                self.expect_right("end")
        else:
            self.expect_right("end")
        del self.vars[mark:]
        return BranchNode(tok.pos, kind, pipe, body, else_body)

    def expect_right(self, context: str) -> None:
        tok = self.next_non_space()
        if tok.kind != "RIGHT":
            self.unexpected(tok, context)

    def pipeline(self, context: str, end: str) -> PipeNode:
        start = self.peek_non_space()
        decl: list[str] = []
        is_assign = False
        if start.kind == "VAR":
            decl, is_assign = self.declarations(context)
        pipe = PipeNode(start.pos, decl, is_assign, [])
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.kind in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def declarations(self, context: str) -> tuple[list[str], bool]:
        save = self.i
        var = self.next_non_space()
        nxt = self.peek_non_space()
        if nxt.kind in ("DECLARE", "ASSIGN"):
            self.next_non_space()
            if nxt.kind == "DECLARE":
                self.vars.append(var.val)
            elif var.val not in self.vars:
                self.fail(f"undefined variable {go_quote(var.val)}", var.line)
            return [var.val], nxt.kind == "ASSIGN"
        if nxt.kind == "CHAR" and nxt.val == ",":
            self.next_non_space()
            second = self.next_non_space()
            op = self.next_non_space()
            if context == "range" and second.kind == "VAR" and op.kind in ("DECLARE", "ASSIGN"):
                if op.kind == "DECLARE":
                    self.vars.extend([var.val, second.val])
                return [var.val, second.val], op.kind == "ASSIGN"
            self.fail(f"too many declarations in {context}", var.line)
        self.i = save
        return [], False

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.fail(f"missing value for {context}")
        for n, cmd in enumerate(pipe.cmds[1:], start=2):
            first = cmd.args[0]
            if isinstance(first, ConstNode | DotNode | NilNode):
                self.fail(f"non executable command in pipeline stage {n}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos, [])
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == "SPACE":
                continue
            if tok.kind in ("RIGHT", "RPAREN"):
                self.backup()
            elif tok.kind != "PIPE":
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.fail("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == "FIELD":
            pos = self.peek().pos  # Go positions a chain at its first chained field
            fields: list[str] = []
            while self.peek().kind == "FIELD":
                fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(pos, node.idents + fields)
            if isinstance(node, VarNode):
                return VarNode(pos, node.idents + fields)
            if isinstance(node, ConstNode | NilNode | DotNode):
                self.fail(f"unexpected . after term {go_quote(str(node))}")
            return ChainNode(pos, node, fields)
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        kind = tok.kind
        if kind == "IDENT":
            if tok.val not in self.funcs:
                self.fail(f"function {go_quote(tok.val)} not defined", tok.line)
            return IdentNode(tok.pos, tok.val)
        if kind == "DOT":
            return DotNode(tok.pos)
        if kind == "NIL":
            return NilNode(tok.pos)
        if kind == "VAR":
            name = tok.val.split(".", 1)[0]
            if name not in self.vars:
                self.fail(f"undefined variable {go_quote(name)}", tok.line)
            return VarNode(tok.pos, [tok.val])
        if kind == "FIELD":
            return FieldNode(tok.pos, [tok.val[1:]])
        if kind == "BOOL":
            return ConstNode(tok.pos, tok.val == "true", tok.val, "bool")
        if kind in ("NUMBER", "CHARCONST"):
            return ConstNode(tok.pos, self.number_value(tok), tok.val)
        if kind == "LPAREN":
            pipe = self.pipeline("parenthesized pipeline", "RPAREN")
            return pipe
        if kind in ("STRING", "RAW"):
            if kind == "RAW":
                return ConstNode(tok.pos, tok.val[1:-1].replace("\r", ""), tok.val, "string")
            try:
                return ConstNode(tok.pos, unquote(tok.val), tok.val, "string")
            except ValueError:
                self.fail("invalid syntax", tok.line)
        self.backup()
        return None

    def number_value(self, tok: Tok) -> int | float:
        text = tok.val
        if tok.kind == "CHARCONST":
            try:
                value = unquote(text)
            except ValueError:
                self.fail(f"malformed character constant: {text}", tok.line)
            if len(value) != 1:
                self.fail(f"malformed character constant: {text}", tok.line)
            return ord(value)
        clean = text.replace("_", "")
        try:
            if text.endswith("i"):
                raise ValueError
            if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)", clean):
                sign = -1 if clean.startswith("-") else 1
                body = clean.lstrip("+-")
                if re.fullmatch(r"0[0-7]+", body):
                    return sign * int(body, 8)
                return sign * int(body, 0)
            return float(clean)
        except ValueError:
            self.fail(f"illegal number syntax: {go_quote(text)}", tok.line)


def _describe(tok: Tok) -> str:
    if tok.kind == "EOF":
        return "EOF"
    if tok.kind == "KEYWORD":
        return f"<{tok.val}>"
    if tok.kind == "RIGHT":
        return '"}}"'
    if len(tok.val) > 10:
        return go_quote(tok.val)[:11] + '"...'
    return go_quote(tok.val)
