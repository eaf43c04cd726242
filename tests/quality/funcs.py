"""A function under test: its text (bytes), language and node type, how it is wrapped into a
file that parses, and its parse (node, tokens, gaps). Every variant the operators make is
re-parsed here, and rejected if tree-sitter reports an error."""

from __future__ import annotations

from dataclasses import dataclass
import functools

import tree_sitter as ts

from langs import LangSpec
from tokens import Tok, tokens_of, normalise


@functools.lru_cache(maxsize=None)
def _parser(spec_name: str, grammar: ts.Language) -> ts.Parser:
    return ts.Parser(grammar)


@dataclass
class Parsed:
    text: bytes
    node: ts.Node
    toks: list[Tok]
    base: int

    def gap_before(self, i: int) -> bytes:
        start = self.toks[i - 1].end if i > 0 else 0
        return self.text[start:self.toks[i].start]

    def line_start(self, offset: int) -> int:
        return self.text.rfind(b"\n", 0, offset) + 1

    def line_end(self, offset: int) -> int:
        """Offset just past the newline ending the line that holds `offset`."""
        nl = self.text.find(b"\n", offset)
        return len(self.text) if nl < 0 else nl + 1

    def indent_at(self, offset: int) -> bytes:
        ls = self.line_start(offset)
        j = ls
        while j < len(self.text) and self.text[j:j + 1] in (b" ", b"\t"):
            j += 1
        return self.text[ls:j]

    def first_on_line(self, offset: int) -> bool:
        return self.text[self.line_start(offset):offset].strip() == b""

    def rest_of_line_blank(self, offset: int) -> bool:
        return self.text[offset:self.line_end(offset)].strip() == b""

    def normalised(self) -> list[str]:
        return normalise(self.toks)


def parse_function(spec: LangSpec, text: bytes, node_type: str) -> Parsed | None:
    """Parses `text` wrapped as a file; None when the wrapped file has a syntax error or the
    function node is not where it should be."""
    header, footer = spec.wrap("", "probe", node_type)
    hb = header.encode()
    src = hb + text + footer.encode()
    tree = _parser(spec.name, spec.grammar).parse(src)
    if tree.root_node.has_error:
        return None
    node = tree.root_node.descendant_for_byte_range(len(hb), len(hb) + len(text))
    while node is not None and not (node.type in spec.function_types and node.start_byte == len(hb)):
        node = node.parent
    if node is None or node.end_byte != len(hb) + len(text):
        return None
    return Parsed(text, node, tokens_of(node, len(hb)), len(hb))


def ancestors(node: ts.Node, stop: ts.Node):
    n = node.parent
    while n is not None and n.id != stop.id:
        yield n
        n = n.parent


def apply_edits(text: bytes, edits: list[tuple[int, int, bytes]]) -> bytes | None:
    """Applies non-overlapping (start, end, replacement) edits; None when two overlap."""
    edits = sorted(edits, key=lambda e: (e[0], e[1]))
    out = []
    pos = 0
    for start, end, rep in edits:
        if start < pos:
            return None
        out.append(text[pos:start])
        out.append(rep)
        pos = end
    out.append(text[pos:])
    return b"".join(out)


def body_kinds(spec: LangSpec, node: ts.Node) -> tuple[str, ...]:
    """Types of the top-level statements of the function body (its shape)."""
    queue = list(node.children)
    while queue:
        n = queue.pop(0)
        if n.type in spec.block_types or n.type in ("block", "statement_block", "compound_statement"):
            kids = n.named_children
            if len(kids) == 1 and kids[0].type in spec.block_types:
                kids = kids[0].named_children
            return tuple(k.type for k in kids if "comment" not in k.type)
        queue.extend(n.children)
    return ()
