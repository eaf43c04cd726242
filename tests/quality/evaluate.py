"""Scores a tool's links against the labelled pairs. A labelled pair (A, B) is detected when
the union of the regions the tool links between files A and B covers at least 50% of the
function's lines in A and at least 50% in B. The same rule is used for every tool."""

from __future__ import annotations

from collections import defaultdict

from negatives import band_of
from tools import Link

COVER = 0.5
TYPES = ["T1", "T2", "T3"]
NEGATIVES = ["negative_easy", "negative_hard"]
T3_BANDS = [(0.7, 0.8), (0.8, 0.9), (0.9, 1.0)]


def t3_band(sim: float) -> str:
    for lo, hi in T3_BANDS:
        if sim < hi:
            return f"{lo:.1f}-{hi:.1f}"
    return f"{T3_BANDS[-1][0]:.1f}-{T3_BANDS[-1][1]:.1f}"


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


def score(links: list[Link], meta: dict, reported: dict | None = None) -> dict:
    """`reported` maps a file pair (sorted) to the similarity the tool reported for it, when
    the tool reports one; it is copied into the lists of misses and false positives."""
    index = coverage_index(links)
    files = meta["files"]
    reported = reported or {}
    tally = defaultdict(lambda: [0, 0])  # key -> [detected, total]
    t3_buckets = defaultdict(lambda: [0, 0])
    t3_lang_buckets = defaultdict(lambda: [0, 0])
    hard_buckets = defaultdict(lambda: [0, 0])
    t3_recipes = defaultdict(lambda: [0, 0])
    misses = defaultdict(list)
    for pair in meta["pairs"]:
        hit = detected(index, files, pair["a"], pair["b"])
        kind, lang = pair["type"], pair["lang"]
        for key in ((kind, "all"), (kind, lang)):
            tally[key][0] += hit
            tally[key][1] += 1
        if kind == "T3":
            bucket = t3_band(pair["similarity"])
            recipe = pair.get("recipe", "T3")
            for counter in (t3_buckets[bucket], t3_lang_buckets[(lang, bucket)], t3_recipes[recipe]):
                counter[0] += hit
                counter[1] += 1
        if kind == "negative_hard":
            bucket = band_of(pair["similarity"])
            hard_buckets[bucket][0] += hit
            hard_buckets[bucket][1] += 1
        key = (pair["a"], pair["b"]) if pair["a"] < pair["b"] else (pair["b"], pair["a"])
        if kind in TYPES and not hit:
            misses[kind].append({**pair, "reported_similarity": reported.get(key)})
        if kind in NEGATIVES and hit:
            misses["false_positive_" + kind.split("_")[1]].append(
                {**pair, "reported_similarity": reported.get(key)})
    tp = sum(tally[(t, "all")][0] for t in TYPES)
    positives = sum(tally[(t, "all")][1] for t in TYPES)

    def ratio(d, n):
        return round(d / n, 4) if n else None

    def precision(lang: str, negatives: list[str]) -> float | None:
        ltp = sum(tally[(t, lang)][0] for t in TYPES)
        lfp = sum(tally[(n, lang)][0] for n in negatives)
        return ratio(ltp, ltp + lfp)

    fp_easy, n_easy = tally[("negative_easy", "all")]
    fp_hard, n_hard = tally[("negative_hard", "all")]
    result = {
        "recall": {t: ratio(*tally[(t, "all")]) for t in TYPES},
        "recall_all": ratio(tp, positives),
        "precision": precision("all", NEGATIVES),
        "precision_easy": precision("all", ["negative_easy"]),
        "precision_hard": precision("all", ["negative_hard"]),
        "tp": tp, "positives": positives,
        "fp_easy": fp_easy, "negatives_easy": n_easy,
        "fp_hard": fp_hard, "negatives_hard": n_hard,
        "hard_flag_rate": ratio(fp_hard, n_hard),
        "hard_by_similarity": {b: {"flagged": v[0], "n": v[1], "rate": ratio(*v)}
                               for b, v in sorted(hard_buckets.items())},
        "by_language": {},
        "t3_by_similarity": {b: {"recall": ratio(*v), "n": v[1]} for b, v in sorted(t3_buckets.items())},
        "t3_by_recipe": {r: {"recall": ratio(*v), "n": v[1]} for r, v in sorted(t3_recipes.items())},
        "misses": {k: v for k, v in misses.items()},
    }
    langs = sorted({p["lang"] for p in meta["pairs"]})
    for lang in langs:
        result["by_language"][lang] = {
            **{t: ratio(*tally[(t, lang)]) for t in TYPES},
            "precision": precision(lang, NEGATIVES),
            "precision_easy": precision(lang, ["negative_easy"]),
            "precision_hard": precision(lang, ["negative_hard"]),
            "fp_easy": tally[("negative_easy", lang)][0],
            "negatives_easy": tally[("negative_easy", lang)][1],
            "fp_hard": tally[("negative_hard", lang)][0],
            "negatives_hard": tally[("negative_hard", lang)][1],
            "t3_by_similarity": {b: {"recall": ratio(*v), "n": v[1]}
                                 for (l, b), v in sorted(t3_lang_buckets.items()) if l == lang},
        }
    p, r = result["precision"] or 0.0, result["recall_all"] or 0.0
    result["f1"] = round(2 * p * r / (p + r), 4) if p + r else 0.0
    return result
