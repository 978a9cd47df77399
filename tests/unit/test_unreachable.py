"""No statement of ours follows a return, raise, continue or break in the
same block: such a statement never runs, and where one was left behind by
an edit (a method inserted in the middle of another) the line it ended
was silently lost from the method it belonged to."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.unit.test_architecture import ROOT, sources

ENDS = (ast.Return, ast.Raise, ast.Continue, ast.Break)
BLOCKS = ("body", "orelse", "finalbody")


def unreachable(source: str) -> list[int]:
    """Lines of statements that follow a block's return/raise/continue/break."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        for field in BLOCKS:
            block = getattr(node, field, None)
            if isinstance(block, list):
                lines += [after.lineno for before, after in zip(block, block[1:])
                          if isinstance(before, ENDS)]
    return lines


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_statement_after_a_return(path: Path):
    assert unreachable(path.read_text()) == []


@pytest.mark.parametrize("source, lines", [
    ("def f():\n    return 1\n    x = 2\n", [3]),
    ("for i in x:\n    if i:\n        continue\n        y()\n", [4]),
    ("try:\n    raise E\n    z()\nfinally:\n    pass\n", [3]),
    ("def f():\n    if a:\n        return 1\n    return 2\n", []),
])
def test_the_check_sees_a_dead_statement(source, lines):
    assert unreachable(source) == lines
