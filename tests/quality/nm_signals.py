"""Measures `free_sub`, a candidate ninth signal for the Type-3 verifier (core/src/verify.rs),
on the near-miss evaluation set, against the eight signals the verifier has now.

Why: most hard negatives the verifier flags are template siblings. One skeleton is
instantiated with different constants, types or callees (`SYS_BIND` / `SYS_SOCKET`,
`Long` / `Double`), and those swaps are spread over the whole body. An edited copy is the
same function: it keeps those names and adds or removes statements. The names that make the
difference are the *free* identifiers, the ones a function does not bind itself.

`free_sub` of a pair of units:
  1. tokens: the unit's tree-sitter leaves from the start of its function's body onward
     (the header, that is the name, parameters, their types and the return type, is left
     out), comments dropped;
  2. bound set: the names the function binds (parameters, locals, loop and pattern
     variables: `mutate.bound_names` with `langs.binding_types`) plus its own name;
     a free identifier is an identifier token whose text is not in that set;
  3. the two normalised streams (identifiers -> ID, literals -> LIT; the streams the
     verifier already aligns) are aligned by LCS with traceback;
  4. over the aligned positions where both tokens are free identifiers, with weight
     w = max(idf(x), idf(y)), idf(x) = ln(1 + N / (1 + df(x))) (df: files of the set, per
     language, that hold x; N: the set's files of that language):
     free_sub = sum of w where the texts differ / sum of all w (0 when nothing aligned).

What is printed, over the labelled rows that fit_verifier.py fits on (the traced unit is the
labelled function; positives very strong / strong / moderate, and hard negatives):
  * free_sub's AUC on held-out projects (positives against hard negatives, one row a pair),
    beside the eight signals';
  * recall of strong and moderate pairs at 0.5 %, 1 % and 2 % hard-negative flags on
    held-out projects, and `minflag`, the lowest flag rate at which strong >= 85 % and
    moderate >= 40 % (the verifier's targets), for: the checked-in model (the CSV's `score`),
    logistic regression on the 8 signals and on 8 + free_sub, and boosted trees on each
    (several seeds); every model fitted on the training projects only;
  * the same from 5-fold cross-validation grouped by project, on the training projects
    alone and on all projects, which does not depend on the held-out split's 342 negatives.

A pair scores its best row; rows under the engine's token-similarity floor are never
flagged; an untraced pair counts as missed (a positive) or unflagged (a negative). At flag
rate r over N negatives the cut is the (floor(r*N)+1)-th highest negative score, and a pair
is found when it scores strictly above the cut.

    tests/quality/.venv/bin/python tests/quality/nm_signals.py [--work tests/quality/work]

Needs numpy and scikit-learn in the venv beside tree-sitter and the grammars.
"""

from __future__ import annotations

import os

# One BLAS thread: the fits are small, and a fixed thread count keeps the figures
# reproducible.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import csv
import json
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np
import tree_sitter as ts
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from fit_verifier import POSITIVE_BANDS, SIGNALS, covers
from funcs import Parsed
from langs import build_specs
from mutate import bound_names
from nm_funcs import EXPRESSION_TYPES
from tokens import Tok, normalise, tokens_of

HERE = Path(__file__).resolve().parent
FLOOR = 0.5  # the engine's token-similarity floor at the default settings
NEGATIVE_WEIGHT = 4.0  # as fit_verifier.py weighs hard negatives
RATES = (0.005, 0.01, 0.02)
TARGET_STRONG, TARGET_MODERATE = 0.85, 0.40
SEEDS = (0, 1, 2)
NEW = "free_sub"


# ---------------------------------------------------------------- tokens and names

class Files:
    """Parsed files of the set (work/nearmiss/...), each parsed once."""

    def __init__(self, root: Path):
        self.root = root
        self.specs = build_specs()
        self.lang_of_ext = {"." + s.ext: name for name, s in self.specs.items()}
        self.parsers = {name: ts.Parser(s.grammar) for name, s in self.specs.items()}
        self.trees: dict[str, tuple[ts.Tree, list[Tok]]] = {}

    def parse(self, lang: str, path: str) -> tuple[ts.Tree, list[Tok]]:
        if path not in self.trees:
            tree = self.parsers[lang].parse((self.root / path).read_bytes())
            self.trees[path] = (tree, [t for t in tokens_of(tree.root_node, 0) if t.kind != "comment"])
        return self.trees[path]

    def idf(self) -> dict:
        """Per language, x -> ln(1 + N / (1 + df(x))) over the set's files. Each file holds
        one function (with its wrapper), so a file is a unit here."""
        df = {lang: Counter() for lang in self.specs}
        n = Counter()
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            lang = self.lang_of_ext.get(path.suffix)
            if lang is None:
                continue
            tree = self.parsers[lang].parse(path.read_bytes())
            df[lang].update({t.text.decode("utf-8", "replace") for t in tokens_of(tree.root_node, 0) if t.kind == "id"})
            n[lang] += 1
        return {lang: (lambda x, d=df[lang], total=n[lang]: math.log(1 + total / (1 + d.get(x, 0))))
                for lang in self.specs}


def function_node(spec, tree: ts.Tree, start: int, end: int) -> ts.Node | None:
    """The function (or function expression) the traced lines start..end stand for: the one
    sharing the most lines with them, less a hundredth of a line per line of length
    difference (so an enclosing function loses to the one that fits)."""
    best, best_score = None, 0.0
    stack = [tree.root_node]
    while stack:
        n = stack.pop()
        if n.type in spec.function_types or n.type in EXPRESSION_TYPES:
            s0, e0 = n.start_point[0] + 1, n.end_point[0] + 1
            score = min(e0, end) - max(s0, start) + 1 - 0.01 * abs((e0 - s0) - (end - start))
            if score > best_score:
                best, best_score = n, score
        stack.extend(n.children)
    return best


def unit_view(files: Files, lang: str, path: str, start: int, end: int, own: str):
    """(normalised stream, texts, free flags) of a unit's body tokens."""
    spec = files.specs[lang]
    tree, toks = files.parse(lang, path)
    node = function_node(spec, tree, start, end)
    if node is None:  # no function in the range: the whole range is the body
        body, bound = (start - 1, 0), {own}
    else:
        b = node.child_by_field_name("body")
        # The header is signature information: the body alone is compared.
        body = (b if b is not None else node).start_point
        bound = bound_names(spec, Parsed(b"", node, [], 0))[0] | {own}
    toks = [t for t in toks
            if start <= t.node.start_point[0] + 1 <= end and tuple(t.node.start_point) >= tuple(body)]
    texts = [t.text.decode("utf-8", "replace") for t in toks]
    free = [t.kind == "id" and x not in bound for t, x in zip(toks, texts)]
    return normalise(toks), texts, free


def lcs_alignment(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Aligned index pairs (i, j) of one longest common subsequence, in order. The traceback
    runs from the end and takes a match whenever it lies on an optimal path, so where
    several alignments are optimal, matches are placed as late as possible."""
    if not a or not b:
        return []
    vocab: dict[str, int] = {}
    ia = np.array([vocab.setdefault(x, len(vocab)) for x in a], dtype=np.int32)
    ib = np.array([vocab.setdefault(x, len(vocab)) for x in b], dtype=np.int32)
    table = np.zeros((len(a) + 1, len(b) + 1), dtype=np.int32)
    for i in range(1, len(a) + 1):
        prev = table[i - 1]
        table[i, 1:] = np.maximum.accumulate(np.maximum(prev[1:], prev[:-1] + (ib == ia[i - 1])))
    i, j = len(a), len(b)
    out = []
    while i > 0 and j > 0:
        if a[i - 1] == b[j - 1] and table[i, j] == table[i - 1, j - 1] + 1:
            out.append((i - 1, j - 1))
            i -= 1
            j -= 1
        elif table[i - 1, j] >= table[i, j - 1]:
            i -= 1
        else:
            j -= 1
    out.reverse()
    return out


def free_sub(ua, ub, weight) -> float:
    (na, ta, fa), (nb, tb, fb) = ua, ub
    total = swapped = 0.0
    for i, j in lcs_alignment(na, nb):
        if fa[i] and fb[j]:
            w = max(weight(ta[i]), weight(tb[j]))
            total += w
            if ta[i] != tb[j]:
                swapped += w
    return swapped / total if total else 0.0


# ---------------------------------------------------------------- labelled rows

def load_rows(work: Path, pairs: dict) -> dict[str, list[dict]]:
    """The labelled rows fit_verifier.py keeps (without its floor: a row under the floor still
    counts for the signal's AUC, and is never flagged)."""
    out = {}
    for split in ("train", "holdout"):
        rows = []
        with (work / f"nearmiss-{split}.csv").open() as f:
            for r in csv.DictReader(f):
                p = pairs.get(r["pair_id"])
                if r["label"] not in ("positive", "negative") or p is None:
                    continue
                if r["label"] == "positive" and r["band"] not in POSITIVE_BANDS:
                    continue
                sides = {p[s]["path"]: (p[s]["start_line"], p[s]["end_line"]) for s in ("a", "b")}
                a, b = (int(r["a_start"]), int(r["a_end"])), (int(r["b_start"]), int(r["b_end"]))
                if not (covers(a, sides.get(r["a_path"], (0, -1))) and covers(b, sides.get(r["b_path"], (0, -1)))):
                    continue
                r["y"] = int(r["label"] == "positive")
                r["x"] = [float(r[s]) for s in SIGNALS]
                rows.append(r)
        out[split] = rows
    return out


def own_names(p: dict) -> dict[str, str]:
    """Path -> the labelled function's own (unqualified) name."""
    return {p[side]["path"]: (name or "").split(".")[-1].split("::")[-1]
            for side, name in zip(("a", "b"), p.get("names") or ["", ""])}


def add_free_sub(rows: list[dict], pairs: dict, files: Files, weights: dict) -> None:
    for r in rows:
        lang, own = r["language"], own_names(pairs[r["pair_id"]])
        ua = unit_view(files, lang, r["a_path"], int(r["a_start"]), int(r["a_end"]), own.get(r["a_path"], ""))
        ub = unit_view(files, lang, r["b_path"], int(r["b_start"]), int(r["b_end"]), own.get(r["b_path"], ""))
        r[NEW] = free_sub(ua, ub, weights[lang])


def features(rows, new: bool) -> np.ndarray:
    return np.array([r["x"] + ([r[NEW]] if new else []) for r in rows])


# ---------------------------------------------------------------- scoring

def auc(pos: list[float], neg: list[float]) -> float:
    """P(positive > negative), ties counting one half (Mann-Whitney)."""
    ranked = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        rank_sum += (i + j + 1) / 2 * sum(y for _, y in ranked[i:j])
        i = j
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def best_per_pair(rows, scores) -> dict[str, float]:
    """A pair's score is that of its best row; rows under the floor are never flagged."""
    best: dict[str, float] = {}
    for r, s in zip(rows, scores):
        s = float(s) if float(r["tokens"]) >= FLOOR else -math.inf
        if s > best.get(r["pair_id"], -math.inf):
            best[r["pair_id"]] = s
    return best


class Judge:
    """Recall and minflag over a set of labelled pairs (untraced ones included)."""

    def __init__(self, pairs: list[dict]):
        self.neg = [p["id"] for p in pairs if p["label"] == "negative"]
        self.band = {b: [p["id"] for p in pairs if p["label"] == "positive" and p["band"] == b]
                     for b in ("strong", "moderate")}

    def _cuts(self, best):
        return sorted((best.get(k, -math.inf) for k in self.neg), reverse=True)

    def _found(self, best, band, cut):
        return sum(best.get(k, -math.inf) > cut for k in self.band[band])

    def recall(self, best, rate) -> tuple[float, float]:
        cut = self._cuts(best)[int(rate * len(self.neg))]
        return tuple(self._found(best, b, cut) / len(self.band[b]) for b in ("strong", "moderate"))

    def minflag(self, best) -> float:
        for flagged, cut in enumerate(self._cuts(best)):
            if (self._found(best, "strong", cut) >= TARGET_STRONG * len(self.band["strong"])
                    and self._found(best, "moderate", cut) >= TARGET_MODERATE * len(self.band["moderate"])):
                return flagged / len(self.neg)
        return 1.0

    def line(self, best) -> str:
        cells = ["%.0f/%.0f" % tuple(100 * v for v in self.recall(best, r)) for r in RATES]
        cells.append(f"{100 * self.minflag(best):.1f} %")
        return "".join(c.rjust(9) for c in cells)


def fit_predict(kind: str, train_rows, test_rows, new: bool, seed: int = 0) -> np.ndarray:
    """Fits on the training rows at or above the floor; returns the test rows' scores."""
    train_rows = [r for r in train_rows if float(r["tokens"]) >= FLOOR]
    x, y = features(train_rows, new), np.array([r["y"] for r in train_rows])
    weight = np.where(y == 1, 1.0, NEGATIVE_WEIGHT)
    xt = features(test_rows, new)
    if kind == "LR":
        scaler = StandardScaler().fit(x)
        model = LogisticRegression(C=1.0, max_iter=5000).fit(scaler.transform(x), y, sample_weight=weight)
        return model.decision_function(scaler.transform(xt))
    # Depth 2: a swap share matters only in some ranges of the other signals, and its effect
    # is flat at first and then steep, which a linear weight cannot express.
    model = GradientBoostingClassifier(max_depth=2, n_estimators=200, subsample=0.8,
                                       learning_rate=0.05, random_state=seed)
    return model.fit(x, y, sample_weight=weight).decision_function(xt)


def cross_validated(kind, rows, pairs, new, seed=0) -> dict[str, float]:
    """Out-of-fold scores, 5 folds grouped by project (no project on both sides of a fold)."""
    groups = [pairs[r["pair_id"]]["project"] for r in rows]
    scores = np.zeros(len(rows))
    for train, test in GroupKFold(n_splits=5).split(np.zeros(len(rows)), groups=groups):
        scores[test] = fit_predict(kind, [rows[i] for i in train], [rows[i] for i in test], new, seed)
    return best_per_pair(rows, scores)


def models(seeds):
    yield "LR 8", "LR", False, 0
    yield f"LR 8 + {NEW}", "LR", True, 0
    for new in (False, True):
        for seed in seeds:
            yield f"GBT 8{' + ' + NEW if new else ''} (seed {seed})", "GBT", new, seed


def header(title: str) -> None:
    print(f"\n{title}")
    print(f"  {'model':32s}" + "".join(f"{100 * r:g} %".rjust(9) for r in RATES) + "minflag".rjust(9))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=str(HERE / "work"))
    args = ap.parse_args()
    work = Path(args.work)
    t0 = time.time()

    meta = json.loads((work / "pairs.json").read_text())
    pairs = {p["id"]: p for p in meta["pairs"]}
    labelled = [p for p in meta["pairs"]
                if p["label"] == "negative" or (p["label"] == "positive" and p["band"] in POSITIVE_BANDS)]
    data = load_rows(work, pairs)
    files = Files(work / "nearmiss")
    weights = files.idf()
    for split in ("train", "holdout"):
        add_free_sub(data[split], pairs, files, weights)
    train, holdout = data["train"], data["holdout"]
    held = Judge([p for p in labelled if p["split"] == "holdout"])
    print(f"rows: train {len(train)} ({len({r['pair_id'] for r in train})} pairs), "
          f"holdout {len(holdout)} ({len({r['pair_id'] for r in holdout})} pairs); held-out pairs: "
          f"{len(held.neg)} hard negatives, {len(held.band['strong'])} strong, {len(held.band['moderate'])} moderate "
          f"({time.time() - t0:.0f} s to compute {NEW})")

    # AUC over one row per pair: the row the checked-in model scores best.
    top: dict[str, dict] = {}
    for r in holdout:
        if r["pair_id"] not in top or float(r["score"]) > float(top[r["pair_id"]]["score"]):
            top[r["pair_id"]] = r
    print("\nholdout AUC, positives against hard negatives (- : lower values mark positives)")
    for name in [NEW] + SIGNALS:
        value = lambda r: r[NEW] if name == NEW else float(r[name])
        a = auc([value(r) for r in top.values() if r["y"]], [value(r) for r in top.values() if not r["y"]])
        print(f"  {name:10s} {max(a, 1 - a):.3f}{'-' if a < 0.5 else ''}")

    header(f"held-out projects ({len(held.neg)} hard negatives): strong/moderate recall % at hard-negative flag rates")
    print(f"  {'checked-in model (score)':32s}" + held.line(best_per_pair(holdout, [r["score"] for r in holdout])))
    for name, kind, new, seed in models(SEEDS):
        print(f"  {name:32s}" + held.line(best_per_pair(holdout, fit_predict(kind, train, holdout, new, seed))), flush=True)

    everyone = train + holdout
    for title, rows, judged in (
            ("training projects only", train, [p for p in labelled if p["split"] == "train"]),
            ("all projects", everyone, labelled)):
        judge = Judge(judged)
        header(f"5-fold CV grouped by project, {title} ({len(judge.neg)} hard negatives)")
        for name, kind, new, seed in models(SEEDS):
            print(f"  {name:32s}" + judge.line(cross_validated(kind, rows, pairs, new, seed)), flush=True)
    print(f"\n{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
