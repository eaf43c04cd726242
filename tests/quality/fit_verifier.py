"""Fits the Type-3 verifier (core/src/verify.rs) on the near-miss evaluation set.

Reads the candidate CSVs that nearmiss_eval.py writes from the engine's trace
(work/nearmiss-train.csv, work/nearmiss-holdout.csv; scan run with a low --similarity so
that every candidate's signals are traced), fits an L2-regularised logistic regression
(Newton's method, standard library only) on the training projects, and chooses the
decision threshold on the held-out projects: the lowest score whose hard-negative flag
rate stays at or under the target. Prints the weights as the Rust constants to check in,
and recall / flag figures per band on both splits.

    python3 tests/quality/fit_verifier.py [--work DIR] [--target 0.005] [--floor 0.5]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIGNALS = ["tokens", "aligned", "runs", "names", "literals", "swaps", "size", "shape"]
# The previous verifier (token similarity >= t and strict-run evidence >= t - 0.08 at the
# default t = 0.7): the operating point the new one must dominate.
def previous_rule(row: dict) -> bool:
    return float(row["tokens"]) >= 0.7 and float(row["old_evidence"]) >= 0.62
POSITIVE_BANDS = {"very_strong", "strong", "moderate"}


def covers(unit: tuple[int, int], function: tuple[int, int]) -> bool:
    """Whether a traced unit is the labelled function itself (90% of each covered by the
    other), not a closure or inner class inside it, which may be a copy of its own."""
    overlap = min(unit[1], function[1]) - max(unit[0], function[0]) + 1
    return overlap * 10 >= 9 * (function[1] - function[0] + 1) and overlap * 10 >= 9 * (unit[1] - unit[0] + 1)


def load(path: Path, floor: float, ranges: dict):
    """Labelled rows with every signal: (x, y, band, pair_id, category)."""
    rows = []
    with path.open() as f:
        for r in csv.DictReader(f):
            if r["label"] not in ("positive", "negative"):
                continue
            labelled = ranges.get(r["pair_id"])
            if labelled is None:
                continue
            sides = {labelled[0][0]: labelled[0][1], labelled[1][0]: labelled[1][1]}
            a = (int(r["a_start"]), int(r["a_end"]))
            b = (int(r["b_start"]), int(r["b_end"]))
            if not (covers(a, sides.get(r["a_path"], (0, -1))) and covers(b, sides.get(r["b_path"], (0, -1)))):
                continue
            if r["label"] == "positive" and r["band"] not in POSITIVE_BANDS:
                continue
            try:
                x = [float(r[s]) for s in SIGNALS]
            except (KeyError, ValueError):
                continue
            if x[0] < floor:
                continue
            rows.append((x, 1 if r["label"] == "positive" else 0, r["band"], r["pair_id"], r["category"], previous_rule(r)))
    return rows


def solve(matrix, vector):
    """Gaussian elimination with partial pivoting."""
    n = len(vector)
    a = [row[:] + [vector[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        if abs(a[col][col]) < 1e-12:
            continue
        for r in range(n):
            if r != col:
                factor = a[r][col] / a[col][col]
                for c in range(col, n + 1):
                    a[r][c] -= factor * a[col][c]
    return [a[i][n] / a[i][i] if abs(a[i][i]) > 1e-12 else 0.0 for i in range(n)]


def fit(rows, l2: float, negative_weight: float):
    """Weighted logistic regression; returns [intercept, w1..wk]."""
    k = len(SIGNALS) + 1
    w = [0.0] * k
    for _ in range(50):
        grad = [0.0] * k
        hess = [[0.0] * k for _ in range(k)]
        for x, y, *_ in rows:
            z = [1.0] + x
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, sum(wi * zi for wi, zi in zip(w, z))))))
            weight = 1.0 if y == 1 else negative_weight
            for i in range(k):
                grad[i] += weight * (p - y) * z[i]
                for j in range(k):
                    hess[i][j] += weight * p * (1 - p) * z[i] * z[j]
        for i in range(1, k):
            grad[i] += l2 * w[i]
            hess[i][i] += l2
        step = solve(hess, grad)
        w = [wi - si for wi, si in zip(w, step)]
        if max(abs(s) for s in step) < 1e-7:
            break
    return w


def score(w, x):
    return sum(wi * zi for wi, zi in zip(w, [1.0] + x))


def per_pair(rows, w):
    """Best score per labelled pair (a pair may be traced more than once)."""
    best = {}
    for x, y, band, pair, category, previous in rows:
        s = score(w, x)
        if pair not in best or s > best[pair][0]:
            best[pair] = (s, y, band, category, previous or best.get(pair, (0, 0, 0, 0, False))[4])
    return best


def report(name, best, cut):
    counts = defaultdict(lambda: [0, 0])
    for s, y, band, category, _ in best.values():
        key = band if y == 1 else "negative"
        counts[key][0] += 1
        counts[key][1] += s >= cut
        if y == 1:
            counts[f"{category}/{band}"][0] += 1
            counts[f"{category}/{band}"][1] += s >= cut
    parts = [f"{k} {v[1]}/{v[0]} ({100.0 * v[1] / max(1, v[0]):.1f}%)" for k, v in sorted(counts.items())]
    print(f"{name}: " + "; ".join(parts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=str(HERE / "work"))
    ap.add_argument("--target", type=float, default=None,
                    help="hard-negative flag rate on held-out projects (default: the previous verifier's rate there)")
    ap.add_argument("--floor", type=float, default=0.5, help="lowest token similarity considered")
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--negative-weight", type=float, default=4.0)
    args = ap.parse_args()
    work = Path(args.work)
    meta = json.loads((work / "pairs.json").read_text())
    ranges = {p["id"]: [(p[side]["path"], (p[side]["start_line"], p[side]["end_line"])) for side in ("a", "b")] for p in meta["pairs"]}
    train = load(work / "nearmiss-train.csv", args.floor, ranges)
    holdout = load(work / "nearmiss-holdout.csv", args.floor, ranges)
    print(f"train rows {len(train)} (positives {sum(r[1] for r in train)}), holdout rows {len(holdout)}")
    w = fit(train, args.l2, args.negative_weight)
    best_holdout = per_pair(holdout, w)
    negatives = sorted((s for s, y, *_ in best_holdout.values() if y == 0), reverse=True)
    previous = [p for s, y, b, c, p in best_holdout.values() if y == 0]
    target = args.target if args.target is not None else sum(previous) / max(1, len(previous))
    print(f"target flag rate on held-out negatives: {target:.4f}")
    allowed = int(target * len(negatives))
    # The cut sits just above the (allowed+1)-th highest negative score.
    cut = negatives[allowed] + 1e-9 if len(negatives) > allowed else min(negatives, default=0.0)
    print("weights:", ", ".join(f"{n} {v:+.4f}" for n, v in zip(["intercept"] + SIGNALS, w)))
    print(f"cut (score) {cut:.4f}: intercept to check in {w[0] - cut:+.4f}")
    report("train", per_pair(train, w), cut)
    report("holdout", best_holdout, cut)
    report("holdout, previous verifier", {k: (1.0 if v[4] else -1.0,) + v[1:] for k, v in best_holdout.items()}, 0.0)
    print("const WEIGHTS: [f64; %d] = [%s];" % (len(SIGNALS), ", ".join(f"{v:.4}" for v in w[1:])))
    print(f"const INTERCEPT: f64 = {w[0] - cut:.4};")


if __name__ == "__main__":
    main()
