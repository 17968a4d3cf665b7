"""The Dockerfile language: parsing (``parser``), argument words (``words``) and Docker's variable
substitution (``shell``). Nothing here touches images; ``image.config`` and ``build`` use it."""

from strata.dockerfile.errors import DockerfileError, ParseError
from strata.dockerfile.parser import INSTRUCTIONS, Dockerfile, Heredoc, Instruction, parse, parse_instruction
from strata.dockerfile.shell import expand, expand_words, getenv

__all__ = [
    "INSTRUCTIONS",
    "Dockerfile",
    "DockerfileError",
    "Heredoc",
    "Instruction",
    "ParseError",
    "expand",
    "expand_words",
    "getenv",
    "parse",
    "parse_instruction",
]
