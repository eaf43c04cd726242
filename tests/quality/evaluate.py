"""Scores a tool's links against the labelled pairs. A labelled pair (A, B) is detected when
the union of the regions the tool links between files A and B covers at least 50% of the
function's lines in A and at least 50% in B. The same rule is used for every tool."""

from __future__ import annotations

from collections import defaultdict

from tools import Link

COVER = 0.5
TYPES = ["T1", "T2", "T3"]


def coverage_index(links: list[Link]) -> dict[tuple[str, str], dict[str, set[int]]]:
    index: dict[tuple[str, str], dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for fa, sa, ea, fb, sb, eb in links:
        if fa == fb:
            continue
        key = (fa, fb) if fa < fb else (fb, fa)
        index[key][fa].update(range(sa, ea + 1))
        index[key][fb].update(range(sb, eb + 1))
    return index


def detected(index, files: dict, a: str, b: str) -> bool:
    key = (a, b) if a < b else (b, a)
    sides = index.get(key)
    if not sides:
        return False
    for f in (a, b):
        region = range(files[f]["start_line"], files[f]["end_line"] + 1)
        covered = sum(1 for line in region if line in sides.get(f, ()))
        if covered < COVER * len(region):
            return False
    return True


def score(links: list[Link], meta: dict) -> dict:
    index = coverage_index(links)
    files = meta["files"]
    tally = defaultdict(lambda: [0, 0])  # key -> [detected, total]
    t3_buckets = defaultdict(lambda: [0, 0])
    misses = defaultdict(list)
    for pair in meta["pairs"]:
        hit = detected(index, files, pair["a"], pair["b"])
        kind, lang = pair["type"], pair["lang"]
        for key in ((kind, "all"), (kind, lang)):
            tally[key][0] += hit
            tally[key][1] += 1
        if kind == "T3":
            bucket = "0.9-1.0" if pair["similarity"] >= 0.9 else (
                "0.8-0.9" if pair["similarity"] >= 0.8 else "0.7-0.8")
            t3_buckets[bucket][0] += hit
            t3_buckets[bucket][1] += 1
        if kind in TYPES and not hit:
            misses[kind].append(pair)
        if kind == "negative" and hit:
            misses["false_positive"].append(pair)
    tp = sum(tally[(t, "all")][0] for t in TYPES)
    fp = tally[("negative", "all")][0]
    positives = sum(tally[(t, "all")][1] for t in TYPES)

    def ratio(d, n):
        return round(d / n, 4) if n else None

    result = {
        "recall": {t: ratio(*tally[(t, "all")]) for t in TYPES},
        "recall_all": ratio(tp, positives),
        "precision": ratio(tp, tp + fp),
        "tp": tp, "fp_negatives": fp, "negatives": tally[("negative", "all")][1],
        "by_language": {},
        "t3_by_similarity": {b: {"recall": ratio(*v), "n": v[1]} for b, v in sorted(t3_buckets.items())},
        "misses": {k: v for k, v in misses.items()},
    }
    langs = sorted({p["lang"] for p in meta["pairs"]})
    for lang in langs:
        ltp = sum(tally[(t, lang)][0] for t in TYPES)
        lfp = tally[("negative", lang)][0]
        result["by_language"][lang] = {
            **{t: ratio(*tally[(t, lang)]) for t in TYPES},
            "precision": ratio(ltp, ltp + lfp),
            "fp_negatives": lfp,
        }
    p, r = result["precision"] or 0.0, result["recall_all"] or 0.0
    result["f1"] = round(2 * p * r / (p + r), 4) if p + r else 0.0
    return result
