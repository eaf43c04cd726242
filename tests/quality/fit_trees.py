"""Fits the second stage of the Type-3 verifier (core/src/verify.rs): boosted trees over the
nine signals, `free_sub` among them, weighing the candidates the logistic regression lets
through, and writes them as Rust constants (core/src/verify_trees.rs).

Why trees: `free_sub` (how many of the names two units use without binding them differ)
tells template siblings from edited copies only in some ranges of the other signals, and
its effect is flat at first and then steep; a linear weight cannot express that
(docs/quality.md, "A signal for template siblings").

The verifier accepts a pair when both stages do, or, when its aligned free names all agree
(free_sub 0), when the first does:
    min(z + PREFILTER_MARGIN, trees - TREES_CUT) >= CUT_PER_SETTING * (setting - 0.725)
z: the logistic regression's log-odds (its early exits bound this stage); trees: the
boosted trees' log-odds. Fitted on the training projects' traced candidates
(work/nearmiss-train.csv, which nearmiss_eval.py writes from a default run with the trace
on) that pass the first stage; the cut is chosen on the held-out projects
(work/nearmiss-holdout.csv) as the lowest that flags at most `--target` of their hard
negatives while strong and moderate recall stay at or above 85 % / 40 % (else the cut that
meets the recall targets).

    tests/quality/.venv/bin/python tests/quality/fit_trees.py [--work DIR] [--fit-margin 1]
        [--margin M] [--target 0.005] [--cut C] [--write core/src/verify_trees.rs]

The checked-in module: --fit-margin 1 --cut 1.25 (docs/quality.md says why).

Deterministic: fixed seed, one thread.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import csv
import json
import math
import re
from pathlib import Path

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier

from fit_verifier import POSITIVE_BANDS

HERE = Path(__file__).resolve().parent
SIGNALS = ["tokens", "aligned", "runs", "names", "literals", "swaps", "size", "shape", "free_sub"]
FLOOR = 0.5  # the engine's token-similarity floor at the fitted setting (0.725)
NEGATIVE_WEIGHT = 4.0
TARGET_STRONG, TARGET_MODERATE = 0.85, 0.40
TREES, DEPTH, LEARNING_RATE, SUBSAMPLE, SEED = 200, 2, 0.05, 0.8, 0


def linear_model() -> tuple[list[float], float]:
    """The first stage's weights and intercept, as checked in (core/src/verify.rs)."""
    text = (HERE.parent.parent / "core" / "src" / "verify.rs").read_text()
    weights = re.search(r"const WEIGHTS: \[f64; SIGNALS\] = \[([^\]]*)\];", text)
    intercept = re.search(r"const INTERCEPT: f64 = ([-0-9.e]+);", text)
    if weights is None or intercept is None:
        raise SystemExit("core/src/verify.rs: WEIGHTS or INTERCEPT not found")
    return [float(w) for w in weights.group(1).split(",")], float(intercept.group(1))


WEIGHTS, INTERCEPT = linear_model()


def first_stage(x: list[float]) -> float:
    """The logistic regression's log-odds (the CSV's score is the whole model's)."""
    return INTERCEPT + sum(w * v for w, v in zip(WEIGHTS, x))


def links(unit: tuple[int, int], function: tuple[int, int]) -> bool:
    """Whether a traced unit covers half of a labelled function or more (`nearmiss_eval`'s
    rule for a link)."""
    overlap = min(unit[1], function[1]) - max(unit[0], function[0]) + 1
    return overlap * 2 >= function[1] - function[0] + 1


def load(path: Path, pairs: dict) -> list[dict]:
    """Labelled traced rows that would link their pair, with every signal."""
    by_files = {tuple(sorted((p["a"]["path"], p["b"]["path"]))): p for p in pairs.values()}
    rows = []
    with path.open() as f:
        for r in csv.DictReader(f):
            # nearmiss_eval.py leaves rows of units nested in the labelled functions
            # unlabelled; they take their pair's label here.
            p = pairs.get(r["pair_id"]) or by_files.get(tuple(sorted((r["a_path"], r["b_path"]))))
            if p is None:
                continue
            r["pair_id"], r["label"], r["band"] = p["id"], p["label"], p["band"]
            if r["label"] == "positive" and r["band"] not in POSITIVE_BANDS:
                continue
            sides = {p[s]["path"]: (p[s]["start_line"], p[s]["end_line"]) for s in ("a", "b")}
            a, b = (int(r["a_start"]), int(r["a_end"])), (int(r["b_start"]), int(r["b_end"]))
            # A row counts when accepting it would link the pair by the evaluation's rule
            # (its units cover half of each labelled function or more): a closure or a
            # nested class's method decides a pair as much as the function around it does.
            if not (links(a, sides.get(r["a_path"], (0, -1))) and links(b, sides.get(r["b_path"], (0, -1)))):
                continue
            try:
                x = [float(r[s]) for s in SIGNALS]
            except (KeyError, ValueError):
                continue  # settled before its signals were computed: never accepted
            if x[0] < FLOOR:
                continue
            rows.append({"pair": r["pair_id"], "y": int(r["label"] == "positive"), "x": x,
                         "z": first_stage(x)})
    return rows


def best_per_pair(rows, values) -> dict[str, float]:
    best: dict[str, float] = {}
    for r, v in zip(rows, values):
        best[r["pair"]] = max(best.get(r["pair"], -math.inf), float(v))
    return best


class Judge:
    """Recall per band and hard-negative flag rate over one split's labelled pairs (pairs
    with no traced row count as missed / unflagged)."""

    def __init__(self, pairs: list[dict]):
        self.neg = [p["id"] for p in pairs if p["label"] == "negative"]
        self.band = {b: [p["id"] for p in pairs if p["label"] == "positive" and p["band"] == b]
                     for b in ("very_strong", "strong", "moderate")}

    def at(self, best, cut) -> dict[str, float]:
        out = {b: sum(best.get(k, -math.inf) >= cut for k in ids) / max(1, len(ids)) for b, ids in self.band.items()}
        out["flags"] = sum(best.get(k, -math.inf) >= cut for k in self.neg) / max(1, len(self.neg))
        return out

    def line(self, best, cut) -> str:
        r = self.at(best, cut)
        return (f"very strong {100 * r['very_strong']:5.1f}  strong {100 * r['strong']:5.1f}  "
                f"moderate {100 * r['moderate']:5.1f}  hard negatives flagged {100 * r['flags']:4.1f} %")


def combined(rows, trees_raw, margin, cut_offset):
    """The engine's model value: both stages, except that a pair whose aligned free names
    all agree (`free_sub` 0) is judged by the first stage alone."""
    out = []
    for r, t in zip(rows, trees_raw):
        both = min(r["z"] + margin, t - cut_offset)
        out.append(max(both, r["z"]) if r["x"][SIGNALS.index("free_sub")] == 0.0 else both)
    return out


def rust_module(model, margin: float, cut: float, checks: list[list[float]]) -> str:
    nodes, roots = [], []
    # The raw prediction of sklearn's binomial deviance is the prior's log-odds plus the
    # learning rate times each tree's leaf value; the prior's part is what is left over.
    probe = np.zeros((1, len(SIGNALS)), dtype=np.float32)
    raw0 = float(model.decision_function(probe)[0]) - sum(
        LEARNING_RATE * float(e.predict(probe)[0]) for e in model.estimators_[:, 0])
    for estimator in model.estimators_[:, 0]:
        tree = estimator.tree_
        offset = len(nodes)
        roots.append(offset)
        for i in range(tree.node_count):
            left, right = int(tree.children_left[i]), int(tree.children_right[i])
            if left == -1:
                nodes.append((255, 0.0, 0, 0, LEARNING_RATE * float(tree.value[i][0][0])))
            else:
                nodes.append((int(tree.feature[i]), float(tree.threshold[i]), offset + left, offset + right, 0.0))
    lines = [
        "//! The second stage of the Type-3 verifier: boosted trees over the nine signals of",
        "//! `verify::Evidence`, generated by `tests/quality/fit_trees.py` from the near-miss",
        "//! evaluation set (training projects; the cut chosen on the held-out ones). Do not edit",
        "//! by hand: fit again and regenerate.",
        "",
        "/// A tree node: a split (`signal <= threshold` goes left) or, with `signal == LEAF`, a",
        "/// leaf whose value (the learning rate already applied) adds to the log-odds.",
        "pub(crate) struct Node {",
        "    pub signal: u8,",
        "    pub threshold: f64,",
        "    pub left: u16,",
        "    pub right: u16,",
        "    pub value: f64,",
        "}",
        "",
        "pub(crate) const LEAF: u8 = 255;",
        "",
        "/// The trees' log-odds before any tree: the training set's prior.",
        f"pub(crate) const BASE: f64 = {raw0!r};",
        "/// How far below the logistic regression's cut a pair may lie and still be weighed by",
        "/// the trees.",
        f"pub(crate) const PREFILTER_MARGIN: f64 = {margin!r};",
        "/// The trees' log-odds cut at the fitted setting (`--similarity 0.725`).",
        f"pub(crate) const TREES_CUT: f64 = {cut!r};",
        "",
        f"pub(crate) const ROOTS: [u16; {len(roots)}] = [",
    ]
    for i in range(0, len(roots), 16):
        lines.append("    " + ", ".join(str(r) for r in roots[i:i + 16]) + ",")
    lines.append("];")
    lines.append("")
    lines.append("#[rustfmt::skip]")
    lines.append(f"pub(crate) static NODES: [Node; {len(nodes)}] = [")
    for signal, threshold, left, right, value in nodes:
        lines.append(f"    Node {{ signal: {signal}, threshold: {threshold!r}, left: {left}, right: {right}, value: {value!r} }},")
    lines.append("];")
    lines.append("")
    lines.append("/// Signals of held-out candidates and the log-odds the fitted model gives them: the")
    lines.append("/// engine's evaluation of the trees must give the same.")
    lines.append("#[cfg(test)]")
    lines.append(f"pub(crate) const CHECKS: [([f32; {len(SIGNALS)}], f64); {len(checks)}] = [")
    x = np.array(checks, dtype=np.float32)
    for row, value in zip(x, model.decision_function(x)):
        # The shortest text of each f32 value, which reads back as the same f32.
        lines.append("    ([" + ", ".join(str(np.float32(v)) for v in row) + f"], {float(value)!r}),")
    lines.append("];")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=str(HERE / "work"))
    ap.add_argument("--fit-margin", type=float, default=1.0,
                    help="the trees are fitted on the training rows within this margin of the first stage's cut")
    ap.add_argument("--margin", type=float, help="the first stage's margin to use and write (default: --fit-margin)")
    ap.add_argument("--target", type=float, default=0.01)
    ap.add_argument("--cut", type=float, help="the trees' cut to write instead of the one chosen for --target")
    ap.add_argument("--write", help="path of the Rust module to write")
    args = ap.parse_args()
    work = Path(args.work)
    meta = json.loads((work / "pairs.json").read_text())
    pairs = {p["id"]: p for p in meta["pairs"]}
    labelled = [p for p in meta["pairs"]
                if p["label"] == "negative" or (p["label"] == "positive" and p["band"] in POSITIVE_BANDS)]
    train, holdout = load(work / "nearmiss-train.csv", pairs), load(work / "nearmiss-holdout.csv", pairs)
    judge = {s: Judge([p for p in labelled if p["split"] == s]) for s in ("train", "holdout")}
    print(f"rows: train {len(train)}, holdout {len(holdout)}; held-out pairs: {len(judge['holdout'].neg)} hard "
          f"negatives, {len(judge['holdout'].band['strong'])} strong, {len(judge['holdout'].band['moderate'])} moderate")

    print("\nthe logistic regression alone at the default (z >= 0):")
    for split, rows in (("train", train), ("holdout", holdout)):
        print(f"  {split:8s}" + judge[split].line(best_per_pair(rows, [r["z"] for r in rows]), 0.0))
    print("the first stage at margins (z + margin >= 0): what the trees may still accept")
    for margin in (1.0, 2.0, 3.0, 4.0, 6.0):
        print(f"  {margin:4.1f}    " + judge["holdout"].line(best_per_pair(holdout, [r["z"] + margin for r in holdout]), 0.0))

    margin = args.fit_margin if args.margin is None else args.margin
    fit_rows = [r for r in train if r["z"] + args.fit_margin >= 0]
    x = np.array([r["x"] for r in fit_rows], dtype=np.float32)
    y = np.array([r["y"] for r in fit_rows])
    model = GradientBoostingClassifier(max_depth=DEPTH, n_estimators=TREES, subsample=SUBSAMPLE,
                                       learning_rate=LEARNING_RATE, random_state=SEED)
    model.fit(x, y, sample_weight=np.where(y == 1, 1.0, NEGATIVE_WEIGHT))
    print(f"\ntrees fitted on {len(fit_rows)} training rows (margin {args.fit_margin}); first stage's margin {margin}")
    raw = {name: model.decision_function(np.array([r["x"] for r in rows], dtype=np.float32))
           for name, rows in (("train", train), ("holdout", holdout))}

    # The cut on held-out projects: the combined value is min(z + margin, trees - c) >= 0.
    held = judge["holdout"]
    meeting = []
    print("\nheld-out projects at trees cuts:")
    for c in np.arange(-3.0, 4.01, 0.25):
        best = best_per_pair(holdout, combined(holdout, raw["holdout"], margin, c))
        r = held.at(best, 0.0)
        print(f"  cut {c:+5.2f}  " + held.line(best, 0.0))
        if r["strong"] >= TARGET_STRONG and r["moderate"] >= TARGET_MODERATE:
            meeting.append((float(c), r))
    if not meeting:
        raise SystemExit("no cut meets the recall targets")
    # The most recall within the flag target, else the fewest flags that keep the recall.
    within = [m for m in meeting if m[1]["flags"] <= args.target]
    chosen = within[0] if within else meeting[-1]
    cut = chosen[0] if args.cut is None else args.cut
    print(f"\nchosen cut {cut:+.2f}" + (" (given)" if args.cut is not None else ""))
    for split, rows in (("train", train), ("holdout", holdout)):
        print(f"  {split:8s}" + judge[split].line(best_per_pair(rows, combined(rows, raw[split], margin, cut)), 0.0))
    if args.write:
        checks = [r["x"] for r in holdout[:: max(1, len(holdout) // 12)]][:12]
        Path(args.write).write_text(rust_module(model, margin, cut, checks))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
