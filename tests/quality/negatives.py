"""Hard negative pairs: two different real functions of one language, of similar size and
shape, whose normalised token streams are 55-85% alike by the harness's own measure, yet
which are not copies of each other (different files, different names, few identifier texts
in common). These are the pairs a clone detector is tempted to link; the easy negatives
(< 0.5) are in dataset.py."""

from __future__ import annotations

import random
import re
import time
from collections import Counter, defaultdict

import tree_sitter as ts

from tokens import similarity

HARD_BANDS = [(0.55, 0.65), (0.65, 0.75), (0.75, 0.85)]
HARD_MIN, HARD_MAX = HARD_BANDS[0][0], HARD_BANDS[-1][1]
SIZE_RATIO = 1.2  # token counts within 20% of each other
MAX_IDENT_JACCARD = 0.3  # identifier texts (exact)
MAX_WORD_JACCARD = 0.4  # identifier sub-words (snake/camel parts, lower case)
MAX_NAME_JACCARD = 0.5  # sub-words of the two function names
# Deterministic work limits per language: LCS computations in each pass. They keep the
# search to a few seconds per language on 2 cores.
SHAPE_PASS_LCS = 30000
SIZE_PASS_LCS = 20000
SHAPE_WINDOW = 40  # neighbours (by size) compared inside one shape bucket
SIZE_WINDOW = 60  # neighbours (by size) sampled in the shape-blind pass
# A source file takes part in at most this many selected pairs, so that one pair of big
# generated files (syn's visit.rs / visit_mut.rs) cannot fill a language's quota.
MAX_PAIRS_PER_FILE = 2

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def words(names) -> frozenset[str]:
    return frozenset(w.lower() for n in names for w in _WORD.findall(n))


def function_name(node: ts.Node) -> str:
    """The declared name: the `name` field, or for C the identifier inside the declarator."""
    name = node.child_by_field_name("name")
    if name is not None:
        return name.text.decode("utf-8", "replace")
    decl = node.child_by_field_name("declarator")
    while decl is not None:
        if decl.type in ("identifier", "field_identifier"):
            return decl.text.decode("utf-8", "replace")
        inner = decl.child_by_field_name("declarator")
        decl = inner
    return ""


def jaccard(a: frozenset, b: frozenset) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def band_of(sim: float) -> str | None:
    for lo, hi in HARD_BANDS:
        if lo <= sim < hi:
            return f"{lo:.2f}-{hi:.2f}"
    return None


def distinct_origin(c, d) -> bool:
    """Not copies of each other: different files, clearly different names, and few
    identifier texts or identifier words in common."""
    if c.source == d.source:
        return False
    if c.name and d.name and jaccard(words([c.name]), words([d.name])) >= MAX_NAME_JACCARD:
        return False
    if jaccard(c.idents, d.idents) >= MAX_IDENT_JACCARD:
        return False
    return jaccard(c.words, d.words) < MAX_WORD_JACCARD


def find_hard_negatives(pool: list, rng: random.Random, target: int) -> tuple[list, dict]:
    """Returns up to `target` pairs (i, j, similarity) of pool indices, each function used
    once and each source file in at most MAX_PAIRS_PER_FILE pairs, spread as evenly as the
    pool allows over HARD_BANDS, and search statistics.

    Pass 1 compares functions with exactly the same sequence of top-level statement kinds
    (the shape), neighbours by token count inside each shape; pass 2, shape-blind, compares
    random near neighbours by token count, to reach pairs whose shapes differ a little."""
    found: dict[str, list[tuple[int, int, float]]] = {band_of(lo): [] for lo, _ in HARD_BANDS}
    seen: set[tuple[int, int]] = set()
    stats = {"lcs": 0, "candidates": 0}
    started = time.monotonic()
    enough = 4 * target

    def consider(i: int, j: int) -> None:
        key = (i, j) if i < j else (j, i)
        if key in seen:
            return
        seen.add(key)
        c, d = pool[i], pool[j]
        n, m = len(c.normalised), len(d.normalised)
        if max(n, m) > SIZE_RATIO * min(n, m) or not distinct_origin(c, d):
            return
        stats["lcs"] += 1
        sim = similarity(c.normalised, d.normalised)
        band = band_of(sim)
        if band is not None:
            found[band].append((key[0], key[1], round(sim, 4)))
            stats["candidates"] += 1

    def saturated() -> bool:
        return all(len(v) >= enough for v in found.values())

    shapes: dict[tuple, list[int]] = defaultdict(list)
    for i, c in enumerate(pool):
        shapes[c.kinds].append(i)
    buckets = [sorted(v, key=lambda i: len(pool[i].normalised)) for v in shapes.values() if len(v) > 1]
    rng.shuffle(buckets)
    budget = stats["lcs"] + SHAPE_PASS_LCS
    for bucket in buckets:
        if stats["lcs"] >= budget or saturated():
            break
        for a, i in enumerate(bucket):
            for j in bucket[a + 1:a + 1 + SHAPE_WINDOW]:
                if len(pool[j].normalised) > SIZE_RATIO * len(pool[i].normalised):
                    break
                consider(i, j)

    by_size = sorted(range(len(pool)), key=lambda i: len(pool[i].normalised))
    starts = list(range(len(by_size)))
    rng.shuffle(starts)
    budget = stats["lcs"] + SIZE_PASS_LCS
    for a in starts:
        if stats["lcs"] >= budget or saturated():
            break
        i = by_size[a]
        window = by_size[a + 1:a + 1 + SIZE_WINDOW]
        for j in rng.sample(window, min(8, len(window))):
            consider(i, j)

    # Selection: bands round-robin, each function at most once, each file in at most
    # MAX_PAIRS_PER_FILE pairs; a band that runs out leaves its share to the others.
    used: set[int] = set()
    per_file: Counter = Counter()
    picked: list[tuple[int, int, float]] = []
    queues = {b: sorted(v, key=lambda p: rng.random()) for b, v in found.items()}
    stats["found_by_band"] = {b: len(v) for b, v in found.items()}
    while len(picked) < target and any(queues.values()):
        for band in list(queues):
            q = queues[band]
            while q:
                i, j, sim = q.pop()
                files = (pool[i].source, pool[j].source)
                if i in used or j in used or any(per_file[f] >= MAX_PAIRS_PER_FILE for f in files):
                    continue
                used.update((i, j))
                per_file.update(files)
                picked.append((i, j, sim))
                break
            if len(picked) >= target:
                break
    stats["picked_by_band"] = dict(Counter(band_of(sim) for _, _, sim in picked))
    stats["seconds"] = round(time.monotonic() - started, 2)
    return picked, stats
