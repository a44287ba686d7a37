"""What the project's code uses, as opposed to what its comments and docstrings mention.

Tests that check a doc or a deployment file against the code ("this setting is read", "this name exists") ask
here, never `name in file.read_text()`: a substring search passes on a comment, a docstring or an error message
that merely mentions the name, so it cannot fail on the drift it guards.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A shell or Dockerfile comment: `#` at a line's start or after blank space, to the end of the line.
SHELL_COMMENT = re.compile(r"(?:^|(?<=\s))#.*$", re.M)


@dataclass(frozen=True)
class CodeNames:
    """The names code uses, by how it uses them."""

    strings: frozenset[str]  # Python string literals, docstrings and bare string statements left out
    defined: frozenset[str]  # Python names code defines: functions, classes, assigned names and attributes, keywords
    words: frozenset[str]  # the words of non-Python files (Dockerfile, shell scripts) outside their comments

    def reads_setting(self, name: str) -> bool:
        """A setting is read where code spells its name as a whole string (an environment key, a settings
        alias) or a non-Python file uses it outside a comment."""
        return name in self.strings or name in self.words

    def has(self, name: str) -> bool:
        """A name exists if code defines it or spells it as a whole string (a tool or field name)."""
        return name in self.defined or name in self.strings


def _unused_strings(tree: ast.AST) -> set[int]:
    """The ids of string constants that are statements of their own: docstrings, and text used as comments."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }


def _python_names(source: str) -> tuple[set[str], set[str]]:
    tree = ast.parse(source)
    unused = _unused_strings(tree)
    strings, defined = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in unused:
            strings.add(node.value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            defined.add(node.attr)
        elif isinstance(node, ast.keyword | ast.arg) and node.arg:  # a parameter, or one a call passes
            defined.add(node.arg)
    return strings, defined


def code_names(paths: Iterable[Path]) -> CodeNames:
    """The names the files use: Python files by their syntax tree, any other file by its words outside comments."""
    strings: set[str] = set()
    defined: set[str] = set()
    words: set[str] = set()
    for path in paths:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".py":
            found_strings, found_defined = _python_names(text)
            strings |= found_strings
            defined |= found_defined
        else:
            words |= set(WORD.findall(SHELL_COMMENT.sub("", text)))
    return CodeNames(frozenset(strings), frozenset(defined), frozenset(words))
