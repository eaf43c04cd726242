"""The harness's mutation operators. Each works on the real parse of a function (tokens and
the whitespace between them, or statement nodes) and returns new text or None; callers
re-parse the result and reject anything tree-sitter does not accept.

- layout (Type-1): re-indent, add/remove blank lines, add/remove comments, spaces inside
  brackets, line breaks after commas inside parentheses.
- rename (Type-2): consistent renaming of bound names (parameters, locals, the function
  name) and of type names, changed literal values.
- statement edits (Type-3): insert a statement, delete a statement, modify an expression.
"""

from __future__ import annotations

import math
import random
import re

from funcs import Parsed, ancestors, apply_edits
from langs import LangSpec

WORDS = ["alpha", "item", "node", "entry", "acc", "cursor", "result", "datum", "elem", "slot",
         "count", "total", "buffer", "index", "state", "record", "handle", "target", "probe",
         "token", "chunk", "frame", "piece", "delta", "limit", "marker", "origin", "scope"]
PHRASES = ["check the input first", "keep this in sync", "see the caller", "fast path",
           "note: order matters here", "handle the common case", "TODO: simplify",
           "edge case", "fall back to the default", "validate before use"]
KEYWORDS = {
    "and", "or", "not", "if", "else", "for", "while", "in", "is", "def", "class", "return",
    "let", "fn", "func", "var", "const", "type", "struct", "impl", "match", "loop", "new",
    "this", "self", "super", "null", "None", "true", "false", "int", "char", "void", "case",
    "default", "switch", "do", "goto", "break", "continue", "import", "package", "try",
}
OP_SWAPS = {
    "+": "-", "-": "+", "<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==",
    "&&": "||", "||": "&&", "and": "or", "or": "and", "*": "/", "===": "!==", "!==": "===",
}
BINARY_PARENTS = {"binary_expression", "binary_operator", "comparison_operator",
                  "boolean_operator"}
ARG_LISTS = {"argument_list", "arguments"}
NO_RENAME = {"self", "cls", "this", "_", "super"}
SKIP_FIELDS = {"value", "right", "body", "type", "condition", "alternative", "arguments",
               "function", "object", "return_type", "default", "consequence", "iterable",
               "size", "dimensions", "annotation"}


def _is_preproc(p: Parsed, tok_index: int) -> bool:
    node = p.toks[tok_index].node
    return any(a.type.startswith("preproc") for a in ancestors(node, p.node)) if node else False


def fresh_name(rng: random.Random, taken: set[str], style: str) -> str:
    while True:
        a, b = rng.choice(WORDS), rng.choice(WORDS)
        name = f"{a}_{b}" if style == "snake" else a + b[0].upper() + b[1:]
        if rng.random() < 0.3:
            name += str(rng.randint(2, 9))
        if name not in taken and name not in KEYWORDS:
            taken.add(name)
            return name


def name_style(spec: LangSpec) -> str:
    return "snake" if spec.name in ("python", "rust", "c") else "camel"


# ---------------------------------------------------------------- Type-1: layout

def layout(spec: LangSpec, p: Parsed, rng: random.Random, intensity: float = 1.0) -> bytes | None:
    toks = p.toks
    n = len(toks)
    ops = {op for op in ("indent", "blank", "comment_add", "comment_del", "spacing", "wrap")
           if rng.random() < 0.55 * intensity}
    if not ops:
        ops = {rng.choice(["indent", "comment_add", "blank"])}
    python = spec.name == "python"

    # Indentation mapping: Python needs an injective, monotone map of indent widths.
    widths = []
    for i in range(1, n):
        g = p.gap_before(i)
        if b"\n" in g:
            widths.append(len(g.rsplit(b"\n", 1)[1].expandtabs(8)))
    has_tabs = any(b"\t" in p.gap_before(i) for i in range(1, n))
    halve = python and all(w % 2 == 0 for w in widths)
    unit = 4
    if not python and not has_tabs:
        nonzero = [w for w in widths if w]
        unit = functools_gcd(nonzero) if nonzero else 4
        unit = unit if unit in (2, 4, 8) else 4

    def reindent(ind: bytes) -> bytes:
        if python:
            w = len(ind.expandtabs(8))
            return b" " * (w // 2 if halve else w * 2)
        if has_tabs:
            return ind.replace(b"\t", b"    ")
        # Spaces stay spaces (code indented with spaces never has tabs in practice):
        # 4-space levels become 2-space levels and 2-space levels become 4-space ones.
        w = len(ind)
        levels, rest = divmod(w, unit)
        return b" " * (levels * (2 if unit >= 4 else 4) + rest)

    depth = 0
    depths = []
    for t in toks:
        depths.append(depth)
        if t.kind == "other" and t.text in (b"(", b"["):
            depth += 1
        elif t.kind == "other" and t.text in (b")", b"]"):
            depth = max(0, depth - 1)

    new_gaps: list[bytes] = [b""] * n
    new_texts: list[bytes] = [t.text for t in toks]
    deleted = [False] * n
    changed = False
    prefix = spec.comment_prefix.encode()

    for i in range(n):
        gap = p.gap_before(i) if i > 0 else b""
        new = gap
        frozen = b"\\" in gap or _is_preproc(p, i) or (i > 0 and _is_preproc(p, i - 1))
        if i > 0 and not frozen:
            if b"\n" in gap:
                head, ind = gap.rsplit(b"\n", 1)
                lines_n = gap.count(b"\n")
                if "indent" in ops:
                    ind = reindent(ind)
                if "blank" in ops and rng.random() < 0.25:
                    lines_n = 1 if lines_n > 1 else 2
                new = b"\n" * lines_n + ind
                if "comment_add" in ops and toks[i].kind != "comment" and rng.random() < 0.12:
                    phrase = rng.choice(PHRASES).encode()
                    new = new + prefix + b" " + phrase + b"\n" + ind
                if ("comment_add" in ops and toks[i - 1].kind != "comment"
                        and rng.random() < 0.08):
                    phrase = rng.choice(PHRASES).encode()
                    new = b"  " + prefix + b" " + phrase + new
            else:
                prev = toks[i - 1]
                if "spacing" in ops and prev.kind == "other" and prev.text in (b"(", b"[") \
                        and toks[i].text not in (b")", b"]") and rng.random() < 0.5:
                    new = b"" if gap else b" "
                elif "spacing" in ops and toks[i].kind == "other" and toks[i].text in (b")", b"]") \
                        and prev.text not in (b"(", b"[") and rng.random() < 0.5:
                    new = b"" if gap else b" "
                elif "wrap" in ops and prev.kind == "other" and prev.text == b"," \
                        and depths[i] > 0 and rng.random() < 0.3:
                    ind = reindent(p.indent_at(prev.start)) if "indent" in ops else p.indent_at(prev.start)
                    new = b"\n" + ind + (b"    " if python or b"\t" not in ind else b"\t")
        if "comment_del" in ops and toks[i].kind == "comment" and not frozen and rng.random() < 0.7:
            # Python keeps a comment when it is the only thing between a colon and the block.
            deleted[i] = True
        new_gaps[i] = new
        if new != gap:
            changed = True

    out = []
    pending_gap = None
    for i in range(n):
        if deleted[i]:
            # Drop the comment and the gap before it, but keep a line break if one was there.
            g = new_gaps[i]
            if pending_gap is None:
                pending_gap = g
            elif b"\n" in g and b"\n" not in pending_gap:
                pending_gap = g
            changed = True
            continue
        g = new_gaps[i]
        if pending_gap is not None:
            if b"\n" in pending_gap and b"\n" not in g:
                g = pending_gap
            elif not g and not pending_gap.strip():
                g = pending_gap or b" "
            pending_gap = None
        out.append(g)
        out.append(new_texts[i])
    if not changed:
        return None
    return b"".join(out)


def functools_gcd(values: list[int]) -> int:
    g = 0
    for v in values:
        g = math.gcd(g, v)
    return g


# ---------------------------------------------------------------- Type-2: renaming

def bound_names(spec: LangSpec, p: Parsed) -> tuple[set[str], bytes | None]:
    """Names bound by the function (parameters, locals) and the function's own name."""
    names: set[str] = set()

    def collect(node, field_name=None):
        for idx, child in enumerate(node.children):
            fname = node.field_name_for_child(idx)
            if fname in SKIP_FIELDS:
                continue
            if child.type == "identifier":
                names.add(child.text.decode("utf-8", "replace"))
            elif child.type in spec.function_types or child.type in ("block", "statement_block"):
                continue
            else:
                collect(child)

    stack = [p.node]
    while stack:
        n = stack.pop()
        if n.type in spec.binding_types:
            if n.type in ("identifier",):
                names.add(n.text.decode())
            collect(n)
        stack.extend(n.children)
    fn_name_node = p.node.child_by_field_name("name")
    if fn_name_node is None and spec.name == "c":
        d = p.node.child_by_field_name("declarator")
        while d is not None and d.type != "identifier":
            d = d.child_by_field_name("declarator")
        fn_name_node = d
    fn_name = fn_name_node.text if fn_name_node is not None else None
    if fn_name:
        names.add(fn_name.decode())
    return {x for x in names if x not in NO_RENAME}, fn_name


def _rename_skipped(spec: LangSpec, tok) -> bool:
    node = tok.node
    parent = node.parent
    if parent is None:
        return False
    for idx, child in enumerate(parent.children):
        if child.id == node.id:
            field = parent.field_name_for_child(idx)
            break
    else:
        field = None
    if parent.type == "attribute" and field == "attribute":
        return True
    if parent.type == "keyword_argument" and field == "name":
        return True
    if parent.type == "field_access" and field == "field":
        return True
    if parent.type == "method_invocation" and field == "name":
        return True
    return False


def _new_literal(text: str, rng: random.Random, spec: LangSpec) -> str | None:
    m = re.fullmatch(r"([0-9]+)([uUlLiz][A-Za-z0-9]*)?", text)
    if m:
        old = int(m.group(1))
        new = old
        while new == old:
            new = rng.randint(0, 64) if old < 64 else rng.randint(65, 4096)
        return str(new) + (m.group(2) or "")
    m = re.fullmatch(r"0[xX]([0-9a-fA-F]+)([uUlL]*)", text)
    if m:
        return hex(int(m.group(1), 16) ^ rng.randint(1, 255)) + m.group(2)
    m = re.fullmatch(r"([0-9]+)\.([0-9]+)([fFdD]?)", text)
    if m:
        return f"{rng.randint(0, 99)}.{rng.randint(1, 99)}{m.group(3)}"
    if text in ("true", "false", "True", "False"):
        return {"true": "false", "false": "true", "True": "False", "False": "True"}[text]
    m = re.fullmatch(r"([a-zA-Z]{0,2})([\"'`])(.*)\2", text, re.S)
    if m and "\n" not in text:
        pre, quote, body = m.groups()
        if "f" in pre.lower() or "r" in pre.lower() and spec.name == "rust":
            return None
        if any(c in body for c in "\\{}$%"):
            return None
        if quote == "'" and spec.name in ("c", "java", "rust", "go"):
            return None  # a char literal
        if quote == "`" and spec.name == "go":
            pass
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        if body == words:
            words += " x"
        return f"{pre}{quote}{words}{quote}"
    return None


def rename(spec: LangSpec, p: Parsed, rng: random.Random) -> bytes | None:
    names, fn_name = bound_names(spec, p)
    taken = {t.text.decode("utf-8", "replace") for t in p.toks if t.kind == "id"}
    style = name_style(spec)
    mapping: dict[str, str] = {}
    for name in sorted(names):
        if name == (fn_name or b"").decode() or rng.random() < 0.8:
            mapping[name] = fresh_name(rng, taken, style)
    type_map: dict[str, str] = {}
    for t in p.toks:
        if t.type == "type_identifier":
            name = t.text.decode()
            if name in spec.builtin_types or name in type_map or len(name) <= 1 and spec.name == "go":
                continue
            if rng.random() < 0.6:
                w = rng.choice(WORDS)
                type_map[name] = name + w[0].upper() + w[1:]
    lit_map: dict[str, str | None] = {}
    edits = []
    for i, t in enumerate(p.toks):
        text = t.text.decode("utf-8", "replace")
        if t.kind == "id":
            if t.type == "type_identifier" and text in type_map:
                edits.append((t.start, t.end, type_map[text].encode()))
            elif text in mapping and (t.type == "identifier" or
                                      (fn_name is not None and t.text == fn_name
                                       and t.node.parent.id == p.node.id)):
                if t.type == "identifier" and _rename_skipped(spec, t):
                    continue
                edits.append((t.start, t.end, mapping[text].encode()))
        elif t.kind == "lit":
            if text not in lit_map:
                lit_map[text] = _new_literal(text, rng, spec) if rng.random() < 0.5 else None
            if lit_map[text] is not None:
                edits.append((t.start, t.end, lit_map[text].encode()))
    if not edits:
        return None
    return apply_edits(p.text, edits)


# ---------------------------------------------------------------- Type-3: statement edits

def statements(spec: LangSpec, p: Parsed) -> list:
    out = []
    stack = [p.node]
    while stack:
        n = stack.pop()
        if n.type in spec.block_types:
            kids = [k for k in n.named_children if "comment" not in k.type]
            for k in kids:
                out.append((k, n, len(kids)))
        stack.extend(n.children)
    out.sort(key=lambda x: x[0].start_byte)
    return out


def _local(p: Parsed, node) -> tuple[int, int]:
    return node.start_byte - p.base, node.end_byte - p.base


def stmt_delete(spec: LangSpec, p: Parsed, rng: random.Random) -> tuple[bytes, str] | None:
    cands = []
    for stmt, block, siblings in statements(spec, p):
        s, e = _local(p, stmt)
        if siblings < 2 or not p.first_on_line(s) or not p.rest_of_line_blank(e):
            continue
        if stmt.type in spec.no_insert_before and spec.name != "c":
            continue
        if stmt.type in ("case_statement", "labeled_statement", "switch_label"):
            continue
        span = stmt.end_point.row - stmt.start_point.row + 1
        if span > 10:
            continue
        cands.append((stmt, s, e))
    if not cands:
        return None
    stmt, s, e = rng.choice(cands)
    new = p.text[:p.line_start(s)] + p.text[p.line_end(e):]
    return new, f"delete {stmt.type} at line {stmt.start_point.row - p.node.start_point.row + 1}"


def stmt_insert(spec: LangSpec, p: Parsed, rng: random.Random) -> tuple[bytes, str] | None:
    names, fn_name = bound_names(spec, p)
    fn = (fn_name or b"").decode()
    variables = sorted(x for x in names if x != fn) or ["value"]
    cands = []
    for stmt, block, siblings in statements(spec, p):
        s, _ = _local(p, stmt)
        if stmt.type in spec.no_insert_before or not p.first_on_line(s):
            continue
        cands.append((stmt, s))
    if not cands:
        return None
    stmt, s = rng.choice(cands)
    ind = p.indent_at(s).decode()
    taken = {t.text.decode("utf-8", "replace") for t in p.toks if t.kind == "id"}
    template = rng.choice(spec.insert_templates)
    line = template.format(v=rng.choice(variables), w=fresh_name(rng, taken, name_style(spec)),
                           ind=ind)
    ls = p.line_start(s)
    new = p.text[:ls] + (ind + line + "\n").encode() + p.text[ls:]
    return new, f"insert before line {stmt.start_point.row - p.node.start_point.row + 1}"


def stmt_modify(spec: LangSpec, p: Parsed, rng: random.Random) -> tuple[bytes, str] | None:
    choices = []
    taken = {t.text.decode("utf-8", "replace") for t in p.toks if t.kind == "id"}
    names, fn_name = bound_names(spec, p)
    variables = sorted(x for x in names if x != (fn_name or b"").decode()) or ["value"]
    for t in p.toks:
        node = t.node
        parent = node.parent
        if parent is None:
            continue
        if t.kind == "other" and t.text.decode() in OP_SWAPS and parent.type in BINARY_PARENTS:
            choices.append(("op", t))
        elif t.kind == "id" and t.type == "identifier" and (
                parent.type in ("argument_list", "arguments", "return_statement")
                or parent.type in BINARY_PARENTS):
            choices.append(("wrap", t))
    stack = [p.node]
    while stack:
        n = stack.pop()
        if n.type in ARG_LISTS and n.named_child_count >= 1:
            last = n.named_children[-1]
            ok = last.type not in ("variadic_argument", "generator_expression", "comment")
            if spec.name == "python" and any(k.type == "generator_expression" for k in n.named_children):
                ok = False
            if ok and n.children and n.children[-1].type == ")":
                choices.append(("arg", n))
        stack.extend(n.children)
    if not choices:
        return None
    kind, obj = rng.choice(choices)
    if kind == "op":
        new = apply_edits(p.text, [(obj.start, obj.end, OP_SWAPS[obj.text.decode()].encode())])
        return new, f"operator {obj.text.decode()} -> {OP_SWAPS[obj.text.decode()]}"
    if kind == "wrap":
        w = fresh_name(rng, taken, name_style(spec))
        new = apply_edits(p.text, [(obj.start, obj.end, f"{w}({obj.text.decode()})".encode())])
        return new, f"wrap {obj.text.decode()} in a call"
    close = obj.children[-1]
    s, _ = _local(p, close)
    v = rng.choice(variables)
    # Python: a keyword argument is valid after any positional, *args or **kwargs.
    extra = f", {fresh_name(rng, taken, 'snake')}={v}" if spec.name == "python" else f", {v}"
    # A trailing comma before ')' already separates.
    before = p.text[:s].rstrip()
    if before.endswith(b","):
        extra = extra[2:]
    new = p.text[:s] + extra.encode() + p.text[s:]
    return new, "add argument"


STATEMENT_OPS = [stmt_insert, stmt_delete, stmt_modify]
