"""keepalived.conf's words and blocks, before they mean anything.

The file is read as keepalived reads it: words separated by blanks, ``{``
and ``}`` words of their own, ``#`` and ``!`` start comments, a block's
``{`` on the keyword's line or the next one.  :mod:`.keepalived_values`
reads the words, :mod:`.keepalived_servers` the virtual_server blocks,
:mod:`.keepalived_conf` the file.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterator

# First words that mark a keepalived file (format detection).
ROOT_WORDS = re.compile(r"^\s*(virtual_server|virtual_server_group|local_address_group|"
                        r"deny_group|allow_group|"
                        r"global_defs|vrrp_\w+|static_\w+|include|linkbeat_use_polling|"
                        r"net_namespace)\b", re.MULTILINE)


# ---------------------------------------------------------------- words and blocks
@dataclasses.dataclass
class Node:
    """A keyword with its words, its line, and its block (None: no block)."""

    word: str
    args: list[str]
    line: int
    block: list[Node] | None = None


class BlockError(Exception):
    """Unbalanced braces, at a line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def tokens(text: str) -> Iterator[tuple[str, int]]:
    """Words and their lines, as keepalived splits them: blanks separate,
    ``{`` and ``}`` are words of their own, ``#`` or ``!`` ends the line,
    a double-quoted string is one word (its quotes removed)."""
    for number, line in enumerate(text.splitlines(), 1):
        for match in re.finditer(r'"([^"]*)"?|[{}]|[#!].*|[^\s{}"#!]+', line):
            word = match.group(0)
            if word[0] in "#!":
                break
            yield (match.group(1) if word[0] == '"' else word), number


def parse_blocks(text: str) -> list[Node]:
    """The keyword tree of a keepalived text; BlockError on unbalanced braces."""
    stream = list(tokens(text))
    nodes, pos = _block(stream, 0, None)
    return nodes


def _block(stream: list[tuple[str, int]], pos: int, opened: int | None
           ) -> tuple[list[Node], int]:
    """The statements from ``pos`` to the ``}`` closing the block opened on
    line ``opened`` (None: to the end of the text)."""
    nodes: list[Node] = []
    while pos < len(stream):
        word, line = stream[pos]
        if word == "}":
            if opened is None:
                raise BlockError(line, "'}' without a block to close")
            return nodes, pos + 1
        if word == "{":
            raise BlockError(line, "'{' without a keyword before it")
        node = Node(word, [], line)
        pos += 1
        while pos < len(stream) and stream[pos][1] == line and stream[pos][0] not in "{}":
            node.args.append(stream[pos][0])
            pos += 1
        if pos < len(stream) and stream[pos][0] == "{" and stream[pos][1] in (line, line + 1):
            node.block, pos = _block(stream, pos + 1, stream[pos][1])
        nodes.append(node)
    if opened is not None:
        raise BlockError(opened, "the block opened here is not closed (missing '}')")
    return nodes, pos


def looks_like(text: str) -> bool:
    """Whether a text is a keepalived configuration (a root keyword of
    keepalived starts one of its lines)."""
    return ROOT_WORDS.search(text) is not None
