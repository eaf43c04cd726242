"""Builds the labelled dataset: real functions from the corpus, their Type-1/2/3 variants
(plus far Type-3 variants, similarity 0.70-0.80), easy and hard negative pairs, each function
in its own file wrapped so that it parses, plus pairs.json."""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from funcs import Parsed, body_kinds, parse_function
from langs import LANGUAGES, LangSpec
from mutate import STATEMENT_OPS, layout, rename
from negatives import find_hard_negatives, function_name, words
from tokens import similarity

MIN_LINES, MAX_LINES, MIN_TOKENS = 8, 60, 60
T3_MIN_SIMILARITY = 0.70
# Far T3 variants: 2-4 edits, kept only inside this band, FAR_T3_PER_LANG per language, so
# that recall in the band the engine's default threshold sits on is measured on enough pairs.
FAR_T3_BAND = (0.70, 0.80)
FAR_T3_PER_LANG = 10
NEGATIVE_MAX_SIMILARITY = 0.50
HARD_NEGATIVES_PER_LANG = 40
EXTS = {"python": (".py",), "javascript": (".js", ".mjs", ".cjs"), "typescript": (".ts",),
        "java": (".java",), "rust": (".rs",), "go": (".go",), "c": (".c",)}


@dataclass
class Candidate:
    lang: str
    source: str  # corpus-relative path
    line: int  # 1-based start line in the corpus file
    node_type: str
    text: bytes
    lines: int
    normalised: list[str]
    kinds: tuple[str, ...]
    name: str = ""
    idents: frozenset = frozenset()  # identifier texts
    words: frozenset = frozenset()  # their snake/camel-case parts, lower case


@dataclass
class Variant:
    kind: str
    text: bytes
    ops: list[str] = field(default_factory=list)
    similarity: float = 1.0


def dedent(text: bytes, column: int) -> bytes:
    lines = text.split(b"\n")
    out = [lines[0]]
    for line in lines[1:]:
        k = 0
        while k < column and k < len(line) and line[k:k + 1] in (b" ", b"\t"):
            k += 1
        out.append(line[k:])
    return b"\n".join(out)


def extract(spec: LangSpec, root: Path, corpus_root: Path) -> list[Candidate]:
    import tree_sitter as ts
    parser = ts.Parser(spec.grammar)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in EXTS[spec.name])
    seen: set[str] = set()
    out: list[Candidate] = []
    for path in files:
        try:
            src = path.read_bytes()
        except OSError:
            continue
        tree = parser.parse(src)
        stack = [tree.root_node]
        while stack:
            n = stack.pop()
            stack.extend(n.children)
            if n.type not in spec.function_types or n.has_error:
                continue
            lines = n.end_point.row - n.start_point.row + 1
            if not (MIN_LINES <= lines <= MAX_LINES):
                continue
            if spec.name == "java" and n.child_by_field_name("body") is None:
                continue
            text = dedent(src[n.start_byte:n.end_byte], n.start_point.column)
            parsed = parse_function(spec, text, n.type)
            if parsed is None:
                continue
            norm = parsed.normalised()
            if len(norm) < MIN_TOKENS:
                continue
            key = hashlib.blake2b("\x00".join(norm).encode(), digest_size=16).hexdigest()
            if key in seen:
                continue
            seen.add(key)
            idents = frozenset(t.text.decode("utf-8", "replace") for t in parsed.toks
                               if t.kind == "id")
            out.append(Candidate(spec.name, str(path.relative_to(corpus_root)),
                                 n.start_point.row + 1, n.type, text, lines, norm,
                                 body_kinds(spec, parsed.node), function_name(parsed.node),
                                 idents, words(idents)))
    out.sort(key=lambda c: (c.source, c.line))
    return out


def _try(spec: LangSpec, node_type: str, text: bytes | None) -> Parsed | None:
    return None if text is None else parse_function(spec, text, node_type)


def make_t1(spec: LangSpec, c: Candidate, rng: random.Random) -> Variant | None:
    base = parse_function(spec, c.text, c.node_type)
    for _ in range(8):
        new = layout(spec, base, rng)
        p = _try(spec, c.node_type, new)
        if p is not None and new != c.text and p.normalised() == c.normalised:
            return Variant("T1", new, ["layout"], 1.0)
    return None


def make_t2(spec: LangSpec, c: Candidate, rng: random.Random) -> Variant | None:
    base = parse_function(spec, c.text, c.node_type)
    for _ in range(8):
        renamed = rename(spec, base, rng)
        p = _try(spec, c.node_type, renamed)
        if p is None or p.normalised() != c.normalised:
            continue
        new = layout(spec, p, rng, intensity=0.6)
        q = _try(spec, c.node_type, new)
        if q is None or q.normalised() != c.normalised:
            continue
        return Variant("T2", new, ["rename", "layout"], 1.0)
    return None


def make_t3(spec: LangSpec, c: Candidate, rng: random.Random, edits=(1, 2, 3),
            band=(T3_MIN_SIMILARITY, 1.0), attempts: int = 12) -> Variant | None:
    """1-3 statement edits (by default); then half the variants also get renaming, half get
    layout changes (independently). Kept only when the similarity is inside `band`
    (default: >= 0.70 and < 1)."""
    for attempt in range(attempts):
        n_edits = rng.choice(edits) if attempt < 2 * attempts // 3 else edits[0]
        p = parse_function(spec, c.text, c.node_type)
        ops: list[str] = []
        for _ in range(n_edits):
            for _try_op in range(6):
                op = rng.choice(STATEMENT_OPS)
                res = op(spec, p, rng)
                if res is None:
                    continue
                q = _try(spec, c.node_type, res[0])
                if q is None:
                    continue
                p = q
                ops.append(res[1])
                break
        if not ops:
            continue
        if rng.random() < 0.5:
            q = _try(spec, c.node_type, rename(spec, p, rng))
            if q is not None:
                p = q
                ops.append("rename")
        if rng.random() < 0.5:
            q = _try(spec, c.node_type, layout(spec, p, rng, intensity=0.6))
            if q is not None:
                p = q
                ops.append("layout")
        sim = similarity(c.normalised, p.normalised())
        if band[0] <= sim < band[1]:
            return Variant("T3", p.text, ops, round(sim, 4))
    return None


def make_t3_far(spec: LangSpec, c: Candidate, rng: random.Random) -> Variant | None:
    """2-4 statement edits (plus the same optional renaming and layout), kept only when the
    similarity falls in FAR_T3_BAND."""
    return make_t3(spec, c, rng, edits=(2, 3, 4), band=FAR_T3_BAND, attempts=12)


def choose_negative(c: Candidate, pool: list[Candidate], used: set[int],
                    rng: random.Random) -> tuple[int, float] | None:
    """A different real function of similar size (lines within 20%) and, as far as the pool
    allows, the same top-level statement kinds; never a clone (similarity < 0.5)."""
    kinds = set(c.kinds)
    scored = []
    for j, d in enumerate(pool):
        if d is c or abs(d.lines - c.lines) > 0.2 * c.lines:
            continue
        other = set(d.kinds)
        jac = len(kinds & other) / len(kinds | other) if kinds | other else 1.0
        same_seq = 1 if d.kinds == c.kinds else 0
        scored.append((-same_seq, -jac, j in used, rng.random(), j))
    scored.sort()
    for *_, j in scored[:400]:
        sim = similarity(c.normalised, pool[j].normalised)
        if sim < NEGATIVE_MAX_SIMILARITY:
            return j, round(sim, 4)
    return None


def wrap_file(spec: LangSpec, text: bytes, file_id: str, node_type: str) -> tuple[bytes, int, int]:
    header, footer = spec.wrap("", file_id, node_type)
    start = header.count("\n") + 1
    end = start + text.count(b"\n")
    return header.encode() + text + footer.encode(), start, end


def build(specs: dict[str, LangSpec], corpus: Path, subset: str, out_dir: Path, per_lang: int,
          seed: int, langs: list[str], log) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = []
    files_meta: dict[str, dict] = {}
    stats: dict[str, dict] = {}
    for lang in langs:
        spec = specs[lang]
        rng = random.Random(f"{seed}:{lang}")
        pool = extract(spec, corpus / subset / lang, corpus)
        log(f"{lang}: {len(pool)} eligible functions in {subset}")
        order = list(range(len(pool)))
        rng.shuffle(order)
        lang_dir = out_dir / lang
        lang_dir.mkdir(parents=True, exist_ok=True)
        written: dict[int, str] = {}
        used_neg: set[int] = set()
        # Separate random streams for the additions, so the T1/T2/T3 variants and the easy
        # negatives stay the same as without them.
        far_rng = random.Random(f"{seed}:{lang}:far")
        hard_rng = random.Random(f"{seed}:{lang}:hard")
        counts = {"functions": 0, "T1": 0, "T2": 0, "T3": 0, "t3_far": 0, "negative_easy": 0,
                  "negative_hard": 0, "t3_rejected": 0, "t3_similarity_sum": 0.0,
                  "pool": len(pool)}

        def write(idx: int, text: bytes, name: str, origin: Candidate, node_type: str) -> str:
            body, start, end = wrap_file(spec, text, name, node_type)
            rel = f"{lang}/{name}.{spec.ext}"
            (out_dir / rel).write_bytes(body)
            files_meta[rel] = {"start_line": start, "end_line": end,
                               "source": f"{origin.source}:{origin.line}"}
            return rel

        chosen = 0
        for idx in order:
            if chosen >= per_lang:
                break
            c = pool[idx]
            if idx in used_neg:
                continue
            t1 = make_t1(spec, c, rng)
            t2 = make_t2(spec, c, rng)
            t3 = make_t3(spec, c, rng)
            if t3 is None:
                counts["t3_rejected"] += 1
            if t1 is None or t2 is None:
                continue
            chosen += 1
            fid = f"f{chosen:03d}"
            orig = written.get(idx) or write(idx, c.text, f"{fid}_orig", c, c.node_type)
            written[idx] = orig
            far = make_t3_far(spec, c, far_rng) if counts["t3_far"] < FAR_T3_PER_LANG else None
            for v, suffix, recipe in ((t1, "t1", "T1"), (t2, "t2", "T2"), (t3, "t3", "T3"),
                                      (far, "t3f", "T3-far")):
                if v is None:
                    continue
                rel = write(idx, v.text, f"{fid}_{suffix}", c, c.node_type)
                pairs.append({"lang": lang, "type": v.kind, "recipe": recipe, "a": orig,
                              "b": rel, "similarity": v.similarity, "ops": v.ops})
                counts[v.kind] += 1
                if recipe == "T3-far":
                    counts["t3_far"] += 1
                if v.kind == "T3":
                    counts["t3_similarity_sum"] += v.similarity
            neg = choose_negative(c, pool, used_neg, rng)
            if neg is not None:
                j, sim = neg
                used_neg.add(j)
                d = pool[j]
                partner = written.get(j) or write(j, d.text, f"{fid}_neg", d, d.node_type)
                written[j] = partner
                pairs.append({"lang": lang, "type": "negative_easy", "a": orig, "b": partner,
                              "similarity": sim, "ops": []})
                counts["negative_easy"] += 1
        counts["functions"] = chosen
        hard, search = find_hard_negatives(pool, hard_rng, HARD_NEGATIVES_PER_LANG)
        for k, (i, j, sim) in enumerate(hard, 1):
            sides = []
            for idx, side in ((i, "a"), (j, "b")):
                d = pool[idx]
                written[idx] = written.get(idx) or write(idx, d.text, f"h{k:03d}{side}", d,
                                                         d.node_type)
                sides.append(written[idx])
            pairs.append({"lang": lang, "type": "negative_hard", "a": sides[0], "b": sides[1],
                          "similarity": sim, "ops": []})
            counts["negative_hard"] += 1
        counts["hard_search"] = search
        n3 = counts["T3"]
        counts["t3_mean_similarity"] = round(counts.pop("t3_similarity_sum") / n3, 4) if n3 else None
        stats[lang] = counts
        log(f"{lang}: {chosen} functions, T1 {counts['T1']}, T2 {counts['T2']}, "
            f"T3 {counts['T3']} (far {counts['t3_far']}), negatives easy "
            f"{counts['negative_easy']} hard {counts['negative_hard']} "
            f"(picked by band {search['picked_by_band']} from {search['found_by_band']}; "
            f"{search['lcs']} LCS in {search['seconds']} s)")
    meta = {"seed": seed, "subset": subset, "per_lang": per_lang, "files": files_meta,
            "pairs": pairs, "stats": stats}
    (out_dir.parent / "pairs.json").write_text(json.dumps(meta, indent=1))
    return meta
