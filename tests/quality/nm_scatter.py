"""Scattered edits: the near-miss set's synthetic operator. A variant gets several edits
spread through the function (edit j of k lands in the j-th k-th of its lines), each one of:

- guard: an early-return / throw guard on one of the function's variables;
- log: a logging statement;
- modify: a binary operator swapped, an operand wrapped in a call, an argument added;
- delete: a statement of at most 10 lines removed;
- loop: a loop rewritten (C-family `for (i; c; u)` -> `i; while (c) { ...; u; }`, `while (c)`
  -> `for (; c; )`, for-each -> index or iterator loop: Python `for x in xs` ->
  `for i in range(len(xs)): x = xs[i]`, `for i in range(n)` -> a `while` loop, JS `for
  (const x of xs)` -> an index loop, Java `for (T x : xs)` -> an iterator loop, Go `range`
  -> an index loop, Rust `for p in e` -> `while let Some(p) = it.next()`);
- extract: a sub-expression moved into a new local variable declared just before;
- wrap: a call wrapped in another call;
- invert: `if c {A} else {B}` -> `if !(c) {B} else {A}`.

Edits are applied from the last window to the first, so earlier windows keep their lines.
Every intermediate text is re-parsed and rejected on syntax errors; then half of the variants
get the existing T2 renaming/literal operator. Loops are only rewritten when their body has
no `continue` (which would skip the moved update)."""

from __future__ import annotations

import random
import re

from funcs import Parsed, ancestors
from langs import LangSpec
from mutate import (BINARY_PARENTS, OP_SWAPS, bound_names, fresh_name, name_style, rename,
                    statements)
import nm_funcs

GUARDS = {
    "python": ["if {v} is None:\n{ind}    return None", "if not {v}:\n{ind}    raise ValueError(\"{w}\")"],
    "javascript": ["if ({v} == null) {{\n{ind}  return;\n{ind}}}",
                   "if (!{v}) {{\n{ind}  throw new Error(\"{w}\");\n{ind}}}"],
    "typescript": ["if ({v} == null) {{\n{ind}  return;\n{ind}}}",
                   "if (!{v}) {{\n{ind}  throw new Error(\"{w}\");\n{ind}}}"],
    "java": ["if ({v} == null) {{\n{ind}    throw new IllegalArgumentException(\"{w}\");\n{ind}}}",
             "Objects.requireNonNull({v}, \"{w}\");"],
    "rust": ["if {v}.is_empty() {{\n{ind}    return Default::default();\n{ind}}}",
             "debug_assert!({w}(&{v}));"],
    "go": ["if {v} == nil {{\n{ind}\treturn\n{ind}}}", "if {v} == nil {{\n{ind}\tpanic(\"{w}\")\n{ind}}}"],
    "c": ["if (!{v})\n{ind}\treturn -EINVAL;", "if ({v} == NULL) {{\n{ind}\terrno = EINVAL;\n{ind}\treturn -1;\n{ind}}}"],
}
LOGS = {
    "python": ["logger.debug(\"{w}: %r\", {v})", "print(\"{w}\", {v})"],
    "javascript": ["console.debug(\"{w}\", {v});"],
    "typescript": ["console.debug(\"{w}\", {v});"],
    "java": ["LOG.fine(\"{w}: \" + {v});", "System.err.println(\"{w} \" + {v});"],
    "rust": ["tracing::debug!(\"{w}: {{:?}}\", {v});"],
    "go": ["log.Printf(\"{w}: %v\", {v})"],
    "c": ["pr_debug(\"{w}: %d\\n\", {v});", "fprintf(stderr, \"{w}\\n\");"],
}
DECLARE = {"python": "{n} = {e}", "javascript": "const {n} = {e};", "typescript": "const {n} = {e};",
           "java": "var {n} = {e};", "rust": "let {n} = {e};", "go": "{n} := {e}",
           "c": "long {n} = {e};"}
CALLS = {"call", "call_expression", "method_invocation"}
EXPRESSIONS = CALLS | BINARY_PARENTS
NESTED = {"lambda", "lambda_expression", "arrow_function", "function_expression", "function",
          "closure_expression", "func_literal", "list_comprehension", "generator_expression",
          "dictionary_comprehension", "set_comprehension", "conditional_expression",
          "ternary_expression", "macro_invocation", "token_tree"}
EXTRACT_STATEMENTS = {"expression_statement", "return_statement", "local_variable_declaration",
                      "lexical_declaration", "variable_declaration", "let_declaration",
                      "short_var_declaration", "declaration", "assignment", "if_statement",
                      "if_expression"}
LOOP_TYPES = {"for_statement", "for_in_statement", "enhanced_for_statement", "while_statement",
              "for_expression"}


def _indent_unit(spec: LangSpec, ind: str) -> str:
    if "\t" in ind or spec.name in ("go", "c") and not ind.startswith(" "):
        return "\t"
    return "  " if spec.name in ("javascript", "typescript") else "    "


class Editor:
    """Edits of one parsed function, each restricted to the lines [lo, hi) (relative to the
    function's first line)."""

    def __init__(self, spec: LangSpec, p: Parsed, rng: random.Random, lo: int, hi: int,
                 donors: dict | None = None):
        self.spec, self.p, self.rng, self.lo, self.hi = spec, p, rng, lo, hi
        self.donors = donors or {}
        self.taken = {t.text.decode("utf-8", "replace") for t in p.toks if t.kind == "id"}
        names, fn = bound_names(spec, p)
        self.fn = (fn or b"").decode()
        self.vars = sorted(x for x in names if x != self.fn) or ["value"]

    # ------------------------------------------------------------ helpers
    def row(self, node) -> int:
        return node.start_point.row - self.p.node.start_point.row

    def inside(self, node) -> bool:
        return self.lo <= self.row(node) < self.hi

    def local(self, node) -> tuple[int, int]:
        return node.start_byte - self.p.base, node.end_byte - self.p.base

    def text(self, node) -> str:
        s, e = self.local(node)
        return self.p.text[s:e].decode("utf-8", "replace")

    def fresh(self, style=None) -> str:
        return fresh_name(self.rng, self.taken, style or name_style(self.spec))

    def replace(self, node, new: str) -> bytes:
        s, e = self.local(node)
        return self.p.text[:s] + new.encode() + self.p.text[e:]

    def line_stmts(self):
        """Block statements that start their own line, inside the window."""
        out = []
        for stmt, block, n in statements(self.spec, self.p):
            s, _ = self.local(stmt)
            if self.inside(stmt) and self.p.first_on_line(s) \
                    and stmt.type not in self.spec.no_insert_before:
                out.append((stmt, block, n))
        return out

    def insert_before(self, stmt, line: str) -> bytes:
        s, _ = self.local(stmt)
        ls = self.p.line_start(s)
        ind = self.p.indent_at(s).decode()
        return self.p.text[:ls] + (ind + line + "\n").encode() + self.p.text[ls:]

    def nodes(self, types):
        stack = [self.p.node]
        while stack:
            n = stack.pop()
            if n.type in types and n.id != self.p.node.id and self.inside(n):
                yield n
            stack.extend(n.children)

    # ------------------------------------------------------------ operators
    def guard(self):
        return self._insert(GUARDS[self.spec.name], "guard")

    def log(self):
        return self._insert(LOGS[self.spec.name], "log")

    def _insert(self, templates, what):
        cands = self.line_stmts()
        if not cands:
            return None
        stmt, _, _ = self.rng.choice(cands)
        s, _ = self.local(stmt)
        ind = self.p.indent_at(s).decode()
        line = self.rng.choice(templates).format(v=self.rng.choice(self.vars), w=self.fresh(),
                                                  ind=ind)
        return self.insert_before(stmt, line), f"{what} at line {self.row(stmt) + 1}"

    def replace_stmt(self):
        """A one-line statement swapped for a real one-line statement of another function
        (a changed line: lowers the token and the line ratio alike)."""
        if not self.donors:
            return None
        cands = [stmt for stmt, _, _ in self.line_stmts()
                 if stmt.type in REPLACEABLE and b"\n" not in stmt.text
                 and self.p.rest_of_line_blank(self.local(stmt)[1])]
        if not cands:
            return None
        stmt = self.rng.choice(cands)
        kind = "return" if stmt.type == "return_statement" else "other"
        pool = self.donors.get(kind) or []
        if not pool:
            return None
        donor = self.rng.choice(pool)
        if donor == self.text(stmt):
            return None
        return self.replace(stmt, donor), f"replace {stmt.type} at line {self.row(stmt) + 1}"

    def delete(self):
        cands = []
        for stmt, block, siblings in self.line_stmts():
            s, e = self.local(stmt)
            if siblings < 2 or not self.p.rest_of_line_blank(e) or \
                    stmt.end_point.row - stmt.start_point.row >= 10 or \
                    stmt.type in ("case_statement", "labeled_statement", "switch_label",
                                  "return_statement", "local_variable_declaration",
                                  "lexical_declaration", "declaration", "let_declaration",
                                  "short_var_declaration"):
                continue
            cands.append((stmt, s, e))
        if not cands:
            return None
        stmt, s, e = self.rng.choice(cands)
        return (self.p.text[:self.p.line_start(s)] + self.p.text[self.p.line_end(e):],
                f"delete {stmt.type} at line {self.row(stmt) + 1}")

    def modify(self):
        choices = []
        for t in self.p.toks:
            node, parent = t.node, t.node.parent if t.node is not None else None
            if parent is None or not self.inside(node):
                continue
            if t.kind == "other" and t.text.decode() in OP_SWAPS and parent.type in BINARY_PARENTS:
                choices.append(("op", t))
            elif t.kind == "id" and t.type == "identifier" and parent.type in (
                    "argument_list", "arguments", "return_statement", *BINARY_PARENTS):
                choices.append(("wrap", t))
        for n in self.nodes({"argument_list", "arguments"}):
            if n.named_child_count and n.children and n.children[-1].type == ")" and \
                    not any(k.type in ("generator_expression", "variadic_argument", "comment")
                            for k in n.named_children):
                choices.append(("arg", n))
        if not choices:
            return None
        kind, obj = self.rng.choice(choices)
        text = self.p.text
        if kind == "op":
            new = OP_SWAPS[obj.text.decode()]
            return (text[:obj.start] + new.encode() + text[obj.end:],
                    f"operator {obj.text.decode()} -> {new}")
        if kind == "wrap":
            w = self.fresh()
            return (text[:obj.start] + f"{w}({obj.text.decode()})".encode() + text[obj.end:],
                    "wrap operand in a call")
        close = obj.children[-1]
        s, _ = self.local(close)
        v = self.rng.choice(self.vars)
        extra = f", {self.fresh('snake')}={v}" if self.spec.name == "python" else f", {v}"
        if text[:s].rstrip().endswith(b","):
            extra = extra[2:]
        return text[:s] + extra.encode() + text[s:], "add argument"

    def wrap(self):
        cands = [n for n in self.nodes(CALLS)
                 if b"\n" not in n.text and not any(a.type in NESTED for a in ancestors(n, self.p.node))
                 and n.parent is not None and n.parent.type not in CALLS | {"field_expression",
                                                                            "member_expression",
                                                                            "attribute",
                                                                            "selector_expression",
                                                                            "await_expression"}]
        if not cands:
            return None
        n = self.rng.choice(cands)
        w = self.fresh()
        return self.replace(n, f"{w}({self.text(n)})"), f"wrap call at line {self.row(n) + 1}"

    def extract(self):
        cands = []
        stmts = {stmt.id: stmt for stmt, _, _ in self.line_stmts() if stmt.type in EXTRACT_STATEMENTS}
        for n in self.nodes(EXPRESSIONS):
            if b"\n" in n.text or len(n.text) < 6:
                continue
            chain = list(ancestors(n, self.p.node))
            owner = next((a for a in chain if a.id in stmts), None)
            if owner is None:
                continue
            between = chain[:chain.index(owner)]
            if any(a.type in NESTED or a.type in self.spec.block_types or a.type in LOOP_TYPES
                   or a.type in ("block", "statement_block", "compound_statement",
                                 "else_clause", "elif_clause")
                   for a in between):
                continue
            if owner.type in ("if_statement", "if_expression"):
                cond = owner.child_by_field_name("condition")
                if cond is None or not (cond.start_byte <= n.start_byte and n.end_byte <= cond.end_byte):
                    continue
            if n.parent is not None and n.parent.type in ("expression_statement",) and \
                    owner.type == "expression_statement":
                continue  # the whole statement: nothing left behind
            cands.append((n, owner))
        if not cands:
            return None
        n, owner = self.rng.choice(cands)
        name = self.fresh()
        decl = DECLARE[self.spec.name].format(n=name, e=self.text(n))
        s, e = self.local(n)
        text = self.p.text[:s] + name.encode() + self.p.text[e:]
        os_, _ = self.local(owner)
        ls = self.p.line_start(os_)
        ind = self.p.indent_at(os_).decode()
        return (text[:ls] + (ind + decl + "\n").encode() + text[ls:],
                f"extract expression at line {self.row(n) + 1}")

    def invert(self):
        out = []
        for n in self.nodes({"if_statement", "if_expression"}):
            r = self._invert_one(n)
            if r is not None:
                out.append((n, r))
        if not out:
            return None
        n, new = self.rng.choice(out)
        return new, f"invert if at line {self.row(n) + 1}"

    def _invert_one(self, n):
        cond = n.child_by_field_name("condition")
        cons = n.child_by_field_name("consequence")
        alt = n.child_by_field_name("alternative")
        if cond is None or cons is None or alt is None:
            return None
        if self.spec.name == "python":
            if len([c for c in n.children if c.type in ("elif_clause", "else_clause")]) != 1 \
                    or alt.type != "else_clause":
                return None
            body = alt.child_by_field_name("body")
            if body is None or cons.start_point.row == n.start_point.row:
                return None
            s, _ = self.local(n)
            ind = self.p.indent_at(s).decode()
            body_ind = self.p.indent_at(self.local(cons)[0]).decode()
            return self.replace(n, f"if not ({self.text(cond)}):\n{body_ind}{self.text(body)}\n"
                                   f"{ind}else:\n{body_ind}{self.text(cons)}")
        if alt.type == "else_clause":
            blocks = [c for c in alt.named_children if "comment" not in c.type]
            if len(blocks) != 1:
                return None
            other = blocks[0]
        else:
            other = alt
        block_types = {"statement_block", "block", "compound_statement"}
        if cons.type not in block_types or other.type not in block_types:
            return None
        if self.spec.name == "go" and n.child_by_field_name("initializer") is not None:
            return None
        if self.spec.name == "rust" and cond.type in ("let_condition", "let_chain"):
            return None
        c = self.text(cond)
        if cond.type == "parenthesized_expression":
            new_cond = f"(!{c})"
        else:
            new_cond = f"!({c})"
        kw = "if"
        return self.replace(n, f"{kw} {new_cond} {self.text(other)} else {self.text(cons)}")

    def loop(self):
        out = []
        for n in self.nodes(LOOP_TYPES):
            if b"continue" in n.text:
                continue
            r = self._loop_one(n)
            if r is not None:
                out.append((n, r))
        if not out:
            return None
        n, new = self.rng.choice(out)
        return new, f"rewrite {n.type} at line {self.row(n) + 1}"

    def _c_header(self, n):
        """(init, cond, update) texts of a C-family `for (...)` header."""
        kids = n.children
        try:
            open_i = next(i for i, k in enumerate(kids) if k.type == "(")
            close_i = max(i for i, k in enumerate(kids) if k.type == ")")
        except (StopIteration, ValueError):
            return None
        s = kids[open_i].end_byte - self.p.base
        e = kids[close_i].start_byte - self.p.base
        inner = self.p.text[s:e].decode("utf-8", "replace")
        parts, depth, cur, quote = [], 0, "", None
        for ch in inner:
            if quote:
                cur += ch
                if ch == quote:
                    quote = None
                continue
            if ch in "\"'":
                quote = ch
            elif ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            if ch == ";" and depth == 0:
                parts.append(cur.strip())
                cur = ""
                continue
            cur += ch
        parts.append(cur.strip())
        if len(parts) != 3 or "\n" in inner or "," in parts[0] and self.spec.name != "python" \
                and "(" not in parts[0]:
            return None
        return parts

    def _loop_one(self, n):
        spec = self.spec.name
        body = n.child_by_field_name("body")
        if body is None:
            return None
        s, _ = self.local(n)
        ind = self.p.indent_at(s).decode()
        first_stmt = next((k for k in body.named_children if "comment" not in k.type), None)
        body_ind = (self.p.indent_at(self.local(first_stmt)[0]).decode()
                    if first_stmt is not None and first_stmt.start_point.row != n.start_point.row
                    else ind + _indent_unit(self.spec, ind))
        if spec == "python":
            if n.type != "for_statement" or n.child_by_field_name("alternative") is not None:
                return None
            left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
            if left is None or right is None or body.start_point.row == n.start_point.row:
                return None
            lt, rt = self.text(left), self.text(right)
            m = re.fullmatch(r"range\(([^,()]+)\)", rt)
            bs, _ = self.local(body)
            rest = self.p.text[bs:self.local(n)[1]].decode("utf-8", "replace")
            if m and re.fullmatch(r"[A-Za-z_]\w*", lt):
                return self.replace(n, f"{lt} = 0\n{ind}while {lt} < {m.group(1)}:\n{body_ind}{rest}"
                                       f"\n{body_ind}{lt} += 1")
            if right.type in ("identifier", "attribute"):
                i = self.fresh("snake")
                return self.replace(n, f"for {i} in range(len({rt})):\n{body_ind}{lt} = {rt}[{i}]"
                                       f"\n{body_ind}{rest}")
            return None
        if spec == "go":
            if n.type != "for_statement":
                return None
            clause = next((k for k in n.named_children if k.type in ("for_clause", "range_clause")), None)
            if clause is None or body.type != "block":
                return None
            inner = self.text(body)[1:].rstrip()[:-1].rstrip()
            if clause.type == "for_clause":
                init = clause.child_by_field_name("initializer")
                cond = clause.child_by_field_name("condition")
                upd = clause.child_by_field_name("update")
                if init is None or cond is None or upd is None:
                    return None
                return self.replace(n, f"{self.text(init)}\n{ind}for {self.text(cond)} {{{inner}\n"
                                       f"{body_ind}{self.text(upd)}\n{ind}}}")
            left = clause.child_by_field_name("left")
            right = clause.child_by_field_name("right")
            if left is None or right is None or right.type not in ("identifier", "selector_expression"):
                return None
            names = [x.strip() for x in self.text(left).split(",")]
            if len(names) != 2 or not all(re.fullmatch(r"\w+", x) for x in names) or names[1] == "_":
                return None
            i = names[0] if names[0] != "_" else self.fresh()
            rt = self.text(right)
            return self.replace(n, f"for {i} := 0; {i} < len({rt}); {i}++ {{\n{body_ind}{names[1]} := "
                                   f"{rt}[{i}]{inner}\n{ind}}}")
        if spec == "rust":
            if n.type != "for_expression":
                return None
            pat, val = n.child_by_field_name("pattern"), n.child_by_field_name("value")
            if pat is None or val is None or "\n" in self.text(val):
                return None
            it = self.fresh("snake")
            return self.replace(n, f"let mut {it} = ({self.text(val)}).into_iter();\n{ind}while let "
                                   f"Some({self.text(pat)}) = {it}.next() {self.text(body)}")
        # C family: JavaScript, TypeScript, Java, C
        if n.type == "while_statement":
            cond = n.child_by_field_name("condition")
            if cond is None:
                return None
            c = self.text(cond)
            c = c[1:-1] if cond.type == "parenthesized_expression" else c
            gap = self.p.text[self.local(cond)[1]:self.local(body)[0]].decode("utf-8", "replace")
            return self.replace(n, f"for (; {c}; ){gap or ' '}{self.text(body)}")
        if body.type not in ("statement_block", "block", "compound_statement"):
            return None
        inner = self.text(body)[1:].rstrip()[:-1].rstrip()
        if n.type == "for_statement":
            parts = self._c_header(n)
            if parts is None or not all(parts):
                return None
            init, cond, upd = parts
            return self.replace(n, f"{init};\n{ind}while ({cond}) {{{inner}\n{body_ind}{upd};\n{ind}}}")
        if n.type == "for_in_statement":
            left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
            op = n.child_by_field_name("operator")
            if left is None or right is None or op is None or op.text != b"of" or \
                    right.type not in ("identifier", "member_expression"):
                return None
            kind = n.child_by_field_name("kind")
            decl = self.text(kind) if kind is not None else "const"
            i = self.fresh()
            rt = self.text(right)
            return self.replace(n, f"for (let {i} = 0; {i} < {rt}.length; {i}++) {{\n{body_ind}{decl} "
                                   f"{self.text(left)} = {rt}[{i}];{inner}\n{ind}}}")
        if n.type == "enhanced_for_statement":
            typ, name, value = (n.child_by_field_name(f) for f in ("type", "name", "value"))
            if typ is None or name is None or value is None or "\n" in self.text(value):
                return None
            it = self.fresh()
            t = self.text(typ)
            return self.replace(n, f"for (Iterator<{t}> {it} = {self.text(value)}.iterator(); "
                                   f"{it}.hasNext();) {{\n{body_ind}{t} {self.text(name)} = "
                                   f"{it}.next();{inner}\n{ind}}}")
        return None


OPERATORS = ["guard", "log", "modify", "delete", "loop", "extract", "wrap", "invert",
             "replace_stmt"]
# Structural operators first choice: they are what makes a scattered edit different from
# a contiguous insertion; the rest fill in where a window has none. Insertions (guard, log,
# extract) lower the line ratio more than the token ratio; replacements and deletions lower
# both, as edits of real code do.
WEIGHTS = {"guard": 2, "log": 1, "modify": 3, "delete": 2, "loop": 3, "extract": 2, "wrap": 2,
           "invert": 3, "replace_stmt": 3}
REPLACEABLE = {"expression_statement", "return_statement", "local_variable_declaration",
               "lexical_declaration", "variable_declaration", "let_declaration",
               "short_var_declaration", "assignment_statement", "declaration"}


def donor_statements(spec: LangSpec, funcs: list, rng: random.Random, n: int = 400) -> dict:
    """One-line statements of real functions, to replace statements with: {"return": [...],
    "other": [...]}."""
    out = {"return": [], "other": []}
    for f in rng.sample(funcs, min(n, len(funcs))):
        p = nm_funcs.parse(spec, f.text, f.node_type)
        if p is None:
            continue
        for stmt, _, _ in statements(spec, p):
            t = stmt.text
            if stmt.type in REPLACEABLE and b"\n" not in t and 12 <= len(t) <= 90:
                out["return" if stmt.type == "return_statement" else "other"].append(
                    t.decode("utf-8", "replace"))
    return out


def scatter(spec: LangSpec, func: nm_funcs.Func, rng: random.Random, k: int,
            renaming: bool, donors: dict | None = None) -> tuple[bytes, list[str]] | None:
    """A variant with k edits spread over the function (None when fewer than k/2 landed)."""
    p = nm_funcs.parse(spec, func.text, func.node_type)
    if p is None:
        return None
    n_lines = func.text.count(b"\n") + 1
    ops_done: list[str] = []
    # Windows over the body (line 0 is the signature): last window first.
    bounds = [1 + round(j * (n_lines - 1) / k) for j in range(k + 1)]
    for j in reversed(range(k)):
        lo, hi = bounds[j], max(bounds[j + 1], bounds[j] + 1)
        ops = list(OPERATORS)
        rng.shuffle(ops)
        ops.sort(key=lambda o: -WEIGHTS[o] * rng.random())
        for op in ops:
            ed = Editor(spec, p, rng, lo, hi, donors)
            res = getattr(ed, op)()
            if res is None:
                continue
            q = nm_funcs.parse(spec, res[0], func.node_type)
            if q is None:
                continue
            p = q
            ops_done.append(res[1])
            break
    if len(ops_done) < max(1, k // 2):
        return None
    ops_done.reverse()
    if renaming:
        q = None
        new = rename(spec, p, rng)
        if new is not None:
            q = nm_funcs.parse(spec, new, func.node_type)
        if q is not None:
            p = q
            ops_done.append("rename")
    return p.text, ops_done
