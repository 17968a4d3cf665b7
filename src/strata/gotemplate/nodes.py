"""The parse tree of a template (``parse/node.go``); ``str()`` of a node is Go's ``String()``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ActionNode",
    "BranchNode",
    "ChainNode",
    "CommandNode",
    "ConstNode",
    "DotNode",
    "FieldNode",
    "IdentNode",
    "ListNode",
    "LoopControl",
    "NilNode",
    "Node",
    "PipeNode",
    "Text",
    "VarNode",
]


@dataclass
class Node:
    pos: int


@dataclass
class Text(Node):
    text: str


@dataclass
class FieldNode(Node):
    idents: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


@dataclass
class VarNode(Node):
    idents: list[str]  # first is the variable name ("$x")

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass
class DotNode(Node):
    def __str__(self) -> str:
        return "."


@dataclass
class NilNode(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass
class ConstNode(Node):
    value: Any
    text: str
    kind: str = "number"  # bool / number / string

    def __str__(self) -> str:
        return self.text


@dataclass
class IdentNode(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class CommandNode(Node):
    args: list[Node]

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


@dataclass
class PipeNode(Node):
    decl: list[str]
    is_assign: bool
    cmds: list[CommandNode]

    def __str__(self) -> str:
        text = " | ".join(str(c) for c in self.cmds)
        if self.decl:
            text = ", ".join(self.decl) + (" = " if self.is_assign else " := ") + text
        return text


@dataclass
class ChainNode(Node):
    node: Node
    fields: list[str]

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return inner + "".join("." + f for f in self.fields)


@dataclass
class ActionNode(Node):
    pipe: PipeNode


@dataclass
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)


@dataclass
class BranchNode(Node):
    kind: str  # if / range / with
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass
class LoopControl(Node):
    kind: str  # break / continue
