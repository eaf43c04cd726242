"""Token view of a function: the tree-sitter leaves of its node (strings, regexes and comments
kept whole), the whitespace between them, and the harness's own similarity measure:
2*LCS/(n+m) over the normalised token streams (identifiers -> ID, literals -> LIT,
comments dropped)."""

from __future__ import annotations

from dataclasses import dataclass

import tree_sitter as ts

from langs import ATOMIC_STRINGS, COMMENTS, IDENTIFIER_LEAVES, LITERAL_LEAVES


@dataclass
class Tok:
    text: bytes
    type: str
    kind: str  # "id", "lit", "comment", "other"
    start: int  # byte offsets relative to the function start
    end: int
    node: ts.Node | None


def classify(node: ts.Node) -> str:
    t = node.type
    if t in COMMENTS or t.endswith("doc_comment"):
        return "comment"
    if t in ATOMIC_STRINGS or LITERAL_LEAVES.match(t):
        return "lit"
    if node.is_named and IDENTIFIER_LEAVES.search(t):
        return "id"
    return "other"


def leaves(node: ts.Node):
    """Yields the token nodes below `node` in source order."""
    stack = [node]
    out = []
    while stack:
        n = stack.pop()
        if n.type in ATOMIC_STRINGS or n.type in COMMENTS or n.child_count == 0:
            if n.end_byte > n.start_byte:
                out.append(n)
            continue
        stack.extend(reversed(n.children))
    return out


def tokens_of(node: ts.Node, base: int) -> list[Tok]:
    return [
        Tok(n.text, n.type, classify(n), n.start_byte - base, n.end_byte - base, n)
        for n in leaves(node)
    ]


def normalise(toks: list[Tok]) -> list[str]:
    out = []
    for t in toks:
        if t.kind == "comment":
            continue
        if t.kind == "id":
            out.append("ID")
        elif t.kind == "lit":
            out.append("LIT")
        else:
            out.append(t.text.decode("utf-8", "replace"))
    return out


def lcs_length(a: list[str], b: list[str]) -> int:
    """Bit-parallel LCS length (Hyyro 2004): one big-integer step per symbol of `b`."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, sym in enumerate(a):
        masks[sym] = masks.get(sym, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for sym in b:
        u = v & masks.get(sym, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


def similarity(a: list[str], b: list[str]) -> float:
    if not a and not b:
        return 1.0
    return 2.0 * lcs_length(a, b) / (len(a) + len(b))
