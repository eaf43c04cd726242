"""Functions of real source trees for the near-miss set: extraction with their qualified
name (class / impl / receiver + name), parameter count, called and accessed names, and the
set's similarity measure.

Similarity (as BigCloneBench measures it): identifiers -> ID, literals -> LIT, comments
dropped; token ratio = LCS of the normalised token streams / the longer stream; line ratio
= LCS of the normalised lines (each line's normalised tokens joined without whitespace,
lines with no token dropped) / the longer line list; similarity = the smaller of the two.
Bands: very_strong >= 0.9 (and not identical after normalisation), strong 0.7-0.9,
moderate 0.5-0.7, weak below."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter as ts

from dataset import dedent
from funcs import Parsed, parse_function
from langs import LangSpec
from negatives import function_name, words
from tokens import Tok, lcs_length, normalise, tokens_of

BANDS = [("very_strong", 0.9), ("strong", 0.7), ("moderate", 0.5), ("weak", 0.0)]
POSITIVE_BANDS = ["very_strong", "strong", "moderate"]
# JavaScript functions bound to a name (`const f = (...) => {...}`, `var f = fn(function
# (...) {...})`): the file holds `const f = <function>;`, the unit is the function itself.
EXPRESSION_TYPES = {"arrow_function", "function_expression", "function"}
CONTAINERS = {"class_definition", "class_declaration", "class", "interface_declaration",
              "enum_declaration", "record_declaration", "impl_item", "trait_item",
              "mod_item", "object", "abstract_class_declaration", "class_body"}
MEMBER_ACCESS = {".", "->", "::", "?."}


def band(sim: float, identical: bool = False) -> str:
    if identical:
        return "identical"
    for name, lo in BANDS:
        if sim >= lo:
            return name
    return "weak"


@dataclass
class Func:
    lang: str
    origin: str  # tree label (package-version)
    project: str
    relpath: str  # file path relative to the tree's code directory
    line: int  # 1-based first line in the source file
    node_type: str
    text: bytes
    name: str
    qual: str  # container chain + name, e.g. "HashMap.get"
    params: int
    toks: list[str] = field(repr=False, default_factory=list)  # normalised tokens
    lines: list[str] = field(repr=False, default_factory=list)  # normalised lines
    raw: list[str] = field(repr=False, default_factory=list)  # token texts, comments dropped
    called: frozenset = frozenset()  # names used after a member access or before a call
    idents: frozenset = frozenset()
    words: frozenset = frozenset()
    kinds: tuple = ()
    # comment texts of at least 20 characters (whitespace collapsed): two functions sharing
    # one have a common origin
    comments: frozenset = frozenset()

    @property
    def n_lines(self) -> int:
        return self.text.count(b"\n") + 1

    @property
    def key(self) -> str:
        return f"{self.origin}:{self.relpath}:{self.line}"

    @property
    def digest(self) -> str:
        return hashlib.blake2b("\x00".join(self.toks).encode(), digest_size=12).hexdigest()

    @property
    def source(self) -> str:
        return f"{self.origin}/{self.relpath}:{self.line}"


def parse(spec: LangSpec, text: bytes, node_type: str) -> Parsed | None:
    """funcs.parse_function, plus JavaScript/TypeScript functions written as expressions."""
    if node_type not in EXPRESSION_TYPES:
        return parse_function(spec, text, node_type)
    hb = b"const f = "
    parser = ts.Parser(spec.grammar)
    tree = parser.parse(hb + text + b";\n")
    if tree.root_node.has_error:
        return None
    node = tree.root_node.descendant_for_byte_range(len(hb), len(hb) + len(text))
    while node is not None and not (node.type in EXPRESSION_TYPES and node.start_byte == len(hb)):
        node = node.parent
    if node is None or node.end_byte != len(hb) + len(text):
        return None
    return Parsed(text, node, tokens_of(node, len(hb)), len(hb))


def wrap(spec: LangSpec, text: bytes, file_id: str, node_type: str) -> tuple[bytes, int, int]:
    """The file holding one function: (content, first line, last line of the function)."""
    if node_type in EXPRESSION_TYPES:
        header, footer = "const f = ", ";\n"
    else:
        header, footer = spec.wrap("", file_id, node_type)
    start = header.count("\n") + 1
    return header.encode() + text + footer.encode(), start, start + text.count(b"\n")


def normalised_lines(p: Parsed) -> list[str]:
    by_line: dict[int, list[str]] = {}
    text = p.text
    line = 0
    pos = 0
    for t, norm in zip((t for t in p.toks if t.kind != "comment"), normalise(p.toks)):
        line += text.count(b"\n", pos, t.start)
        pos = t.start
        by_line.setdefault(line, []).append(norm)
    return ["".join(v) for _, v in sorted(by_line.items())]


def called_names(toks: list[Tok]) -> frozenset:
    """Identifiers right after a member access or right before a call's `(`: the APIs a
    function uses (what two functions of one class share when they do similar work)."""
    out = set()
    code = [t for t in toks if t.kind != "comment"]
    for i, t in enumerate(code):
        if t.kind != "id":
            continue
        prev = code[i - 1].text.decode() if i else ""
        nxt = code[i + 1].text.decode() if i + 1 < len(code) else ""
        if prev in MEMBER_ACCESS or nxt == "(":
            out.add(t.text.decode("utf-8", "replace"))
    return frozenset(out)


def _param_count(spec: LangSpec, node: ts.Node) -> int:
    params = node.child_by_field_name("parameters")
    if params is None:
        decl = node.child_by_field_name("declarator")
        while decl is not None and params is None:
            params = decl.child_by_field_name("parameters")
            decl = decl.child_by_field_name("declarator")
    if params is None:
        p = node.child_by_field_name("parameter")  # a single arrow-function parameter
        return 1 if p is not None else 0
    n = 0
    for k in params.named_children:
        if "comment" in k.type:
            continue
        if spec.name == "go":
            n += max(1, sum(1 for c in k.named_children if c.type == "identifier"))
        elif k.type == "parameter_declaration" and k.text.strip() == b"void":
            continue
        else:
            n += 1
    return n


def _container_names(node: ts.Node) -> list[str]:
    out = []
    n = node.parent
    while n is not None:
        if n.type in CONTAINERS and n.type != "class_body":
            name = n.child_by_field_name("name") or n.child_by_field_name("type")
            if name is not None:
                out.append(name.text.decode("utf-8", "replace"))
        n = n.parent
    return list(reversed(out))


def _go_receiver(node: ts.Node) -> str:
    recv = node.child_by_field_name("receiver")
    if recv is None:
        return ""
    m = re.findall(rb"[A-Za-z_][A-Za-z0-9_]*", recv.text)
    return m[-1].decode() if m else ""


def _bound_name(node: ts.Node) -> str:
    """The name a JS function expression is bound to: `const NAME = ...`, `NAME: ...`,
    `exports.NAME = ...`, possibly through a wrapping call (`curry(function ...)`)."""
    n = node.parent
    for _ in range(4):
        if n is None:
            return ""
        if n.type == "variable_declarator":
            name = n.child_by_field_name("name")
            return name.text.decode() if name is not None and name.type == "identifier" else ""
        if n.type == "pair":
            key = n.child_by_field_name("key")
            return key.text.decode().strip("'\"") if key is not None else ""
        if n.type == "assignment_expression":
            left = n.child_by_field_name("left")
            if left is None:
                return ""
            prop = left.child_by_field_name("property")
            return (prop or left).text.decode()
        if n.type not in ("arguments", "call_expression", "parenthesized_expression"):
            return ""
        n = n.parent
    return ""


ENGINE_IDENTIFIER_KINDS = {"primitive_type", "predefined_type", "integral_type",
                           "floating_point_type", "boolean_type", "void_type",
                           "sized_type_specifier"}
ENGINE_LITERAL_KINDS = {"string", "concatenated_string", "template_string", "integer", "float",
                        "true", "false", "none", "null", "undefined", "number", "regex",
                        "string_literal", "char_literal", "number_literal", "system_lib_string",
                        "raw_string_literal", "interpreted_string_literal", "rune_literal",
                        "int_literal", "float_literal", "imaginary_literal", "boolean_literal",
                        "integer_literal", "float_literal", "character_literal", "text_block",
                        "decimal_integer_literal", "hex_integer_literal", "octal_integer_literal",
                        "binary_integer_literal", "decimal_floating_point_literal",
                        "hex_floating_point_literal", "null_literal", "nil", "iota"}


def engine_tokens(node: ts.Node) -> int:
    """The number of tokens Periodic counts for a unit (core/src/analysis.rs): a named node
    whose kind ends in "identifier" (a whole `a::b::c` path among them), a literal or a
    built-in type name is one token, comments none, any other leaf one. Periodic skips
    units under 50 of them, so labelled functions must clear it."""
    count = 0
    stack = [node]
    while stack:
        n = stack.pop()
        t = n.type
        if n.is_named and "comment" in t:
            continue
        if n.is_named and (t.endswith("identifier") or t in ENGINE_IDENTIFIER_KINDS
                           or t in ENGINE_LITERAL_KINDS):
            count += 1
            continue
        if n.child_count == 0:
            count += n.end_byte > n.start_byte
            continue
        stack.extend(n.children)
    return count




def make_func(spec: LangSpec, p: Parsed, origin: str, project: str, relpath: str, line: int,
              node_type: str, name: str, qual: str, params: int) -> Func:
    idents = frozenset(t.text.decode("utf-8", "replace") for t in p.toks if t.kind == "id")
    from funcs import body_kinds
    comments = frozenset(c for c in (" ".join(t.text.decode("utf-8", "replace").strip("/*#! \t\n").split())
                                     for t in p.toks if t.kind == "comment") if len(c) >= 20)
    return Func(spec.name, origin, project, relpath, line, node_type, p.text, name, qual, params,
                normalise(p.toks), normalised_lines(p),
                [t.text.decode("utf-8", "replace") for t in p.toks if t.kind != "comment"],
                called_names(p.toks), idents, words(idents), body_kinds(spec, p.node), comments)


def extract_file(spec: LangSpec, src: bytes, origin: str, project: str, relpath: str,
                 min_lines: int, max_lines: int, min_tokens: int,
                 expressions: bool = False) -> list[Func]:
    parser = ts.Parser(spec.grammar)
    tree = parser.parse(src)
    out: list[Func] = []
    types = set(spec.function_types)
    if expressions and spec.name in ("javascript", "typescript"):
        types |= EXPRESSION_TYPES
    stack = [tree.root_node]
    while stack:
        n = stack.pop()
        stack.extend(n.children)
        if n.type not in types or n.has_error:
            continue
        lines = n.end_point.row - n.start_point.row + 1
        if not (min_lines <= lines <= max_lines):
            continue
        if spec.name == "java" and n.child_by_field_name("body") is None:
            continue
        if n.type in EXPRESSION_TYPES:
            name = _bound_name(n)
            if name in ("exports", "module.exports", "default"):
                # `module.exports = function (...)`: the module is the function
                name = relpath.rsplit("/", 1)[-1].split(".")[0]
            if not name:
                continue
        else:
            name = function_name(n)
        text = dedent(src[n.start_byte:n.end_byte], n.start_point.column)
        if engine_tokens(n) < min_tokens:
            continue
        p = parse(spec, text, n.type)
        if p is None:
            continue
        containers = _container_names(n)
        if spec.name == "go":
            recv = _go_receiver(n)
            containers = [recv] if recv else []
        qual = ".".join(containers + [name])
        out.append(make_func(spec, p, origin, project, relpath, n.start_point.row + 1, n.type,
                             name, qual, _param_count(spec, n)))
    out.sort(key=lambda f: f.line)
    return out


EXTS = {"python": (".py",), "javascript": (".js", ".mjs", ".cjs"), "typescript": (".ts",),
        "java": (".java",), "rust": (".rs",), "go": (".go",), "c": (".c",)}


def extract_tree(spec: LangSpec, root: Path, dirs: list[str], origin: str, project: str,
                 min_lines: int = 6, max_lines: int = 120, min_tokens: int = 50,
                 expressions: bool = False, max_bytes: int = 400_000,
                 exclude: str | None = None) -> list[Func]:
    skip = re.compile(exclude) if exclude else None
    out: list[Func] = []
    for d in dirs:
        base = root / d
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file() and p.suffix in EXTS[spec.name]):
            if path.name.endswith((".d.ts", ".min.js")) or path.stat().st_size > max_bytes:
                continue
            rel = path.relative_to(base).as_posix() if d == "." else f"{d}/{path.relative_to(base).as_posix()}"
            if skip is not None and skip.search(rel):
                continue
            out.extend(extract_file(spec, path.read_bytes(), origin, project, rel, min_lines,
                                    max_lines, min_tokens, expressions))
    return out


# ---------------------------------------------------------------- similarity

def _ratio(a: list[str], b: list[str]) -> float:
    if not a and not b:
        return 1.0
    return lcs_length(a, b) / max(len(a), len(b))


def measure(a: Func | tuple, b: Func | tuple) -> dict:
    """{"similarity", "token_ratio", "line_ratio", "identical"} for two functions (or
    (tokens, lines) tuples)."""
    ta, la = (a.toks, a.lines) if isinstance(a, Func) else a
    tb, lb = (b.toks, b.lines) if isinstance(b, Func) else b
    tr = _ratio(ta, tb)
    lr = _ratio(la, lb)
    return {"similarity": round(min(tr, lr), 4), "token_ratio": round(tr, 4),
            "line_ratio": round(lr, 4), "identical": ta == tb}


def token_upper_bound(a: Func, b: Func) -> float:
    """An upper bound of the token ratio from sizes alone (LCS <= shorter length)."""
    n, m = len(a.toks), len(b.toks)
    return min(n, m) / max(n, m) if max(n, m) else 1.0


def bag_upper_bound(a: Func, b: Func) -> float:
    """A tighter bound: the LCS is at most the multiset intersection of the tokens."""
    from collections import Counter
    ca, cb = Counter(a.toks), Counter(b.toks)
    inter = sum((ca & cb).values())
    return inter / max(len(a.toks), len(b.toks)) if a.toks or b.toks else 1.0


def raw_similarity(a: Func, b: Func) -> float:
    """LCS / longer stream over the tokens' own texts (no normalisation): high for an
    edited copy, low for two functions that only share a shape."""
    return _ratio(a.raw, b.raw)
