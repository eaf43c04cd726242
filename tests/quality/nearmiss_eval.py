"""Scores Periodic on the near-miss set (tests/quality/work/nearmiss, pairs.json).

For each --similarity setting (the default and a sweep) it runs `periodic scan DATASET
--format json --no-index` with PERIODIC_TRACE_T3 pointing at a trace file, then reports:

- recall of the positive pairs per band, category, language (and their crossings);
- hard negatives flagged as direct pairs and after clustering (two members of one pattern:
  what a user sees);
- recall at a fixed 1% hard-negative flag rate, ranking pairs by the report's pair `score`
  (or `evidence.score`, else `similarity`; a field with one value for every pair is skipped);
- bootstrap 95% intervals (pairs resampled, 1,000 rounds, fixed seed);
- for every lost positive, the stage it was lost at, from the trace: no traced candidate
  between the two functions (units spanning >= 90% of each) = "candidates", traced but never accepted = "verification",
  accepted but not linked in the report = "other"; "untraced" when neither function is in
  any traced candidate (most likely not a unit: under Periodic's size minimum); "unknown"
  without a trace.

A labelled pair is detected when the lines the tool links between its two files cover at
least 50% of each function (the rule of evaluate.py). Writes tests/quality/nearmiss-results.json
and, from the default run's trace, one CSV per split (work/nearmiss-train.csv,
work/nearmiss-holdout.csv) of every traced candidate pair with its label and features."""

from __future__ import annotations

import bisect
import csv
import datetime
import hashlib
import json
import math
import os
import platform
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

from run import describe_binary, git_commit  # noqa: E402
COVER = 0.5
FLAG_RATE = 0.01
ROUNDS = 1000
BANDS = ["identical", "very_strong", "strong", "moderate", "weak"]
HEADLINE_BANDS = ["very_strong", "strong", "moderate"]
STAGES = ("candidates", "verification", "other", "untraced", "unknown")


def log(msg: str) -> None:
    print(f"[nearmiss] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- running the tool

def binary_path() -> Path:
    return Path(os.environ.get("PERIODIC_BIN", REPO / "target" / "debug" / "periodic"))


def run_scan(binary: Path, dataset: Path, work: Path, similarity: float | None) -> dict:
    tag = "default" if similarity is None else f"s{similarity:g}"
    out = work / f"nearmiss-scan-{tag}.json"
    trace = work / f"nearmiss-trace-{tag}.jsonl"
    for p in (out, trace):
        if p.exists():
            p.unlink()
    cmd = [str(binary), "scan", str(dataset), "--format", "json", "--no-index", "--output", str(out)]
    if similarity is not None:
        cmd += ["--similarity", str(similarity)]
    env = {**os.environ, "PERIODIC_TRACE_T3": str(trace)}
    t = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.monotonic() - t
    if proc.returncode not in (0, 1) or not out.exists():
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-800:]}", "tag": tag}
    return {"tag": tag, "similarity": similarity, "seconds": round(seconds, 2),
            "report": json.loads(out.read_text()), "trace": trace if trace.exists() else None}


# ---------------------------------------------------------------- links and detection

SCORE_FIELDS = ("score", "evidence.score", "similarity")


def _field(p: dict, name: str):
    v = p
    for part in name.split("."):
        v = v.get(part) if isinstance(v, dict) else None
    return float(v) if isinstance(v, (int, float)) else None


def ranking_field(pairs: list[dict]) -> str:
    """The first of SCORE_FIELDS that the report's near-miss pairs carry with more than one
    value (a constant placeholder ranks nothing)."""
    t3 = [p for p in pairs if p.get("kind") == "T3"] or pairs
    for name in SCORE_FIELDS:
        values = {_field(p, name) for p in t3}
        if None not in values and len(values) > 1:
            return name
    return "similarity"


class Links:
    """The report as links between line ranges of two files: direct (reported pairs) and
    clustered (pairs plus pattern co-membership)."""

    def __init__(self, report: dict):
        self.direct: dict[tuple, list] = defaultdict(list)  # (fa, fb) sorted -> [(fa, sa, ea, fb, sb, eb, score)]
        self.ranked_by = ranking_field(report.get("pairs", []))
        for p in report.get("pairs", []):
            a, b = p["a"], p["b"]
            if a["path"] == b["path"]:
                continue
            key = tuple(sorted((a["path"], b["path"])))
            self.direct[key].append((a["path"], a["start_line"], a["end_line"],
                                     b["path"], b["start_line"], b["end_line"],
                                     _field(p, self.ranked_by) or 0.0))
        self.members: dict[str, list] = defaultdict(list)  # file -> [(pattern index, start, end)]
        for k, pat in enumerate(report.get("patterns", [])):
            for m in pat.get("members", []):
                self.members[m["path"]].append((k, m["start_line"], m["end_line"]))

    def covered_direct(self, fa: str, fb: str) -> tuple[set, set]:
        la, lb = set(), set()
        for x in self.direct.get(tuple(sorted((fa, fb))), ()):
            (pa, sa, ea, pb, sb, eb, _) = x
            for path, s, e in ((pa, sa, ea), (pb, sb, eb)):
                (la if path == fa else lb).update(range(s, e + 1))
        return la, lb

    def covered_clustered(self, fa: str, fb: str) -> tuple[set, set]:
        la, lb = self.covered_direct(fa, fb)
        pats_b = defaultdict(list)
        for k, s, e in self.members.get(fb, ()):
            pats_b[k].append((s, e))
        shared = set()
        for k, s, e in self.members.get(fa, ()):
            if k in pats_b:
                la.update(range(s, e + 1))
                shared.add(k)
        for k in shared:
            for s, e in pats_b[k]:
                lb.update(range(s, e + 1))
        return la, lb

    def best_score(self, a: dict, b: dict) -> float | None:
        best = None
        for (pa, sa, ea, pb, sb, eb, score) in self.direct.get(tuple(sorted((a["path"], b["path"]))), ()):
            ra = (sa, ea) if pa == a["path"] else (sb, eb)
            rb = (sb, eb) if pa == a["path"] else (sa, ea)
            if _overlap(ra, (a["start_line"], a["end_line"])) and _overlap(rb, (b["start_line"], b["end_line"])):
                best = score if best is None else max(best, score)
        return best


def _overlap(r1, r2) -> bool:
    return r1[0] <= r2[1] and r2[0] <= r1[1]


def _same_unit(traced: dict, side: dict) -> bool:
    """A traced unit is the labelled function when it spans at least 90% of its lines (a
    nested closure or lambda inside it is a unit of its own, not the function)."""
    lo = max(traced["start_line"], side["start_line"])
    hi = min(traced["end_line"], side["end_line"])
    return hi - lo + 1 >= 0.9 * (side["end_line"] - side["start_line"] + 1)


def _covers(lines: set, side: dict) -> bool:
    region = range(side["start_line"], side["end_line"] + 1)
    return sum(1 for x in region if x in lines) >= COVER * len(region)


def detect(links: Links, pair: dict) -> tuple[bool, bool]:
    a, b = pair["a"], pair["b"]
    la, lb = links.covered_direct(a["path"], b["path"])
    direct = _covers(la, a) and _covers(lb, b)
    if direct:
        return True, True
    la, lb = links.covered_clustered(a["path"], b["path"])
    return False, _covers(la, a) and _covers(lb, b)


# ---------------------------------------------------------------- the trace

def read_trace(trace: Path | None, pairs: list[dict], files: dict):
    """Per labelled pair: (traced, accepted, best traced score); and an iterator source for
    the CSV. None when there is no trace."""
    if trace is None or not trace.exists():
        return None
    by_file_pair: dict[tuple, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        by_file_pair[tuple(sorted((p["a"]["path"], p["b"]["path"])))].append(i)
    seen = [[False, False, None] for _ in pairs]
    touched: set[str] = set()  # files with a function in any traced candidate
    stats = Counter()
    with trace.open() as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                t = json.loads(line)
                ta, tb = t["a"], t["b"]
            except (ValueError, KeyError, TypeError):
                stats["malformed"] += 1
                continue
            stats["lines"] += 1
            touched.update((ta["path"], tb["path"]))
            stats[f"source:{t.get('source')}"] += 1
            stats["accepted"] += bool(t.get("accepted"))
            for i in by_file_pair.get(tuple(sorted((ta["path"], tb["path"]))), ()):
                p = pairs[i]
                A, B = p["a"], p["b"]
                ra, rb = (ta, tb) if ta["path"] == A["path"] else (tb, ta)
                if _same_unit(ra, A) and _same_unit(rb, B):
                    s = seen[i]
                    s[0] = True
                    s[1] = s[1] or bool(t.get("accepted"))
                    if isinstance(t.get("score"), (int, float)):
                        s[2] = t["score"] if s[2] is None else max(s[2], t["score"])
    for i, p in enumerate(pairs):
        seen[i].append(p["a"]["path"] in touched or p["b"]["path"] in touched)
    return seen, dict(stats)


def write_csvs(trace: Path | None, meta: dict, work: Path) -> dict:
    """Every traced candidate pair, by split, with its label: the band of a positive pair,
    "negative", or "unlabelled" (distractors and cross-pair combinations)."""
    out = {}
    if trace is None or not trace.exists():
        return {"written": False}
    files = meta["files"]
    labelled = {}
    for p in meta["pairs"]:
        labelled[tuple(sorted((p["a"]["path"], p["b"]["path"])))] = p
    keys: set[str] = set()
    with trace.open() as f:
        for line in f:
            try:
                keys.update((json.loads(line).get("features") or {}).keys())
            except ValueError:
                continue
    feat = sorted(keys)
    handles, writers, counts = {}, {}, Counter()
    for split in ("train", "holdout"):
        path = work / f"nearmiss-{split}.csv"
        handles[split] = path.open("w", newline="")
        writers[split] = csv.writer(handles[split])
        writers[split].writerow(["label", "band", "category", "language", "pair_id", "a_path",
                                 "a_start", "a_end", "b_path", "b_start", "b_end", "source",
                                 "accepted", "score", *feat])
        out[split] = str(path)
    with trace.open() as f:
        for line in f:
            try:
                t = json.loads(line)
                ta, tb = t["a"], t["b"]
            except (ValueError, KeyError, TypeError):
                continue
            sa = files.get(ta["path"], {}).get("split")
            sb = files.get(tb["path"], {}).get("split")
            if sa is None or sb is None or sa != sb:
                counts["mixed_or_unknown_split"] += 1
                continue
            p = labelled.get(tuple(sorted((ta["path"], tb["path"]))))
            if p is not None:
                ra, rb = (ta, tb) if ta["path"] == p["a"]["path"] else (tb, ta)
                if not (_same_unit(ra, p["a"]) and _same_unit(rb, p["b"])):
                    p = None  # units nested inside the labelled functions
            if p is not None:
                label = "positive" if p["label"] == "positive" else "negative"
                row = [label, p["band"], p["category"], p["language"], p["id"]]
            else:
                row = ["unlabelled", "", "", files[ta["path"]].get("language", ""), ""]
            features = t.get("features") or {}
            writers[sa].writerow(row + [ta["path"], ta["start_line"], ta["end_line"], tb["path"],
                                        tb["start_line"], tb["end_line"], t.get("source"),
                                        int(bool(t.get("accepted"))), t.get("score"),
                                        *[features.get(k) for k in feat]])
            counts[f"{sa}:{row[0]}"] += 1
    for h in handles.values():
        h.close()
    out["rows"] = dict(counts)
    out["written"] = True
    return out


# ---------------------------------------------------------------- statistics

class Boot:
    """Bootstrap 95% intervals with one seeded stream."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self._cdf: dict = {}

    def _binomial_cdf(self, n: int, k: int) -> list[float]:
        key = (n, k)
        if key not in self._cdf:
            p = k / n
            if p in (0.0, 1.0):
                self._cdf[key] = None
            else:
                cdf, acc = [], 0.0
                logp, logq = math.log(p), math.log(1 - p)
                for x in range(n + 1):
                    acc += math.exp(math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(n - x + 1)
                                    + x * logp + (n - x) * logq)
                    cdf.append(acc)
                self._cdf[key] = cdf
        return self._cdf[key]

    def proportion(self, k: int, n: int) -> list[float] | None:
        """Resampling n 0/1 outcomes with k ones is a Binomial(n, k/n) draw."""
        if n == 0:
            return None
        cdf = self._binomial_cdf(n, k)
        if cdf is None:
            return [round(k / n, 4), round(k / n, 4)]
        draws = sorted(min(bisect.bisect_left(cdf, self.rng.random() * cdf[-1]), n) / n
                       for _ in range(ROUNDS))
        return [round(draws[int(0.025 * ROUNDS)], 4), round(draws[int(0.975 * ROUNDS) - 1], 4)]


def ratio(k: int, n: int):
    return round(k / n, 4) if n else None


def operating_point(pos: list[float | None], neg: list[float | None], rate: float):
    """The lowest score threshold at which at most `rate` of the negatives score at or above
    it, and the share of positives that do."""
    n_neg = len(neg)
    if not pos or not n_neg:
        return None, None
    allowed = math.floor(rate * n_neg)
    negs = sorted((s for s in neg if s is not None), reverse=True)
    if len(negs) <= allowed:
        threshold = -math.inf  # everything the tool linked is within the budget
    else:
        threshold = math.nextafter(negs[allowed], math.inf)  # strictly above the (allowed+1)-th
    hits = sum(1 for s in pos if s is not None and s >= threshold)
    return (None if threshold == -math.inf else round(threshold, 4)), hits / len(pos)


def score_run(run: dict, meta: dict, boot: Boot, trace_info) -> dict:
    links = Links(run["report"])
    pairs = meta["pairs"]
    res: dict = {"similarity": run["similarity"], "seconds": run["seconds"],
                 "report_stats": {k: run["report"].get("stats", {}).get(k) for k in
                                  ("files", "units", "patterns", "clone_pairs",
                                   "files_with_syntax_errors", "skipped")},
                 "ranked_by": links.ranked_by}
    det = [detect(links, p) for p in pairs]
    scores = [links.best_score(p["a"], p["b"]) for p in pairs]
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        if p["label"] == "positive":
            for key in (("band", p["band"]), ("category", p["category"]),
                        ("language", p["language"]), ("category_band", p["category"], p["band"]),
                        ("language_band", p["language"], p["band"]),
                        ("split_band", p["split"], p["band"])):
                groups[("pos",) + key].append(i)
        else:
            for key in (("all",), ("band", p["band"]), ("language", p["language"]),
                        ("from", (p.get("info") or {}).get("from", "")),
                        ("split", p["split"])):
                groups[("neg",) + key].append(i)

    def block(idx: list[int], which: int) -> dict:
        k = sum(1 for i in idx if det[i][which])
        return {"n": len(idx), "hit": k, "rate": ratio(k, len(idx)),
                "ci95": boot.proportion(k, len(idx))}

    recall: dict = defaultdict(dict)
    flags: dict = defaultdict(dict)
    for key, idx in sorted(groups.items(), key=lambda kv: str(kv[0])):
        name = "/".join(str(x) for x in key[2:]) or "all"
        if key[0] == "pos":
            recall[key[1]][name] = {**block(idx, 1), "direct": block(idx, 0)["rate"]}
        else:
            flags[key[1]][name] = {"direct": block(idx, 0), "clustered": block(idx, 1)}
    res["recall"] = recall
    res["hard_negative_flags"] = flags

    # recall at a fixed hard-negative flag rate (direct pairs ranked by score)
    neg_idx = groups[("neg", "all")]
    neg_scores = [scores[i] if det[i][0] else None for i in neg_idx]
    at = {}
    for b in HEADLINE_BANDS + ["all_headline"]:
        idx = (groups.get(("pos", "band", b), []) if b != "all_headline" else
               [i for bb in HEADLINE_BANDS for i in groups.get(("pos", "band", bb), [])])
        pos_scores = [scores[i] if det[i][0] else None for i in idx]
        thr, rec = operating_point(pos_scores, neg_scores, FLAG_RATE)
        draws = []
        for _ in range(ROUNDS):
            ps = boot.rng.choices(pos_scores, k=len(pos_scores)) if pos_scores else []
            ns = boot.rng.choices(neg_scores, k=len(neg_scores)) if neg_scores else []
            draws.append(operating_point(ps, ns, FLAG_RATE)[1] or 0.0)
        draws.sort()
        at[b] = {"n": len(idx), "threshold": thr, "recall": None if rec is None else round(rec, 4),
                 "ci95": [round(draws[int(0.025 * ROUNDS)], 4), round(draws[int(0.975 * ROUNDS) - 1], 4)]
                 if idx else None}
    res["recall_at_1pct_flags"] = at

    # where lost positives were lost
    stages: dict = defaultdict(Counter)
    lost_list = []
    seen = trace_info[0] if trace_info else None
    for i, p in enumerate(pairs):
        if p["label"] != "positive" or det[i][1]:
            continue
        if seen is None:
            stage = "unknown"
        elif not seen[i][0] and not seen[i][3]:
            stage = "untraced"  # neither function in any candidate: not a unit (too small)?
        elif not seen[i][0]:
            stage = "candidates"
        elif not seen[i][1]:
            stage = "verification"
        else:
            stage = "other"
        for key in (f"band/{p['band']}", f"category/{p['category']}",
                    f"category_band/{p['category']}/{p['band']}", f"language/{p['language']}"):
            stages[key][stage] += 1
        lost_list.append({"id": p["id"], "category": p["category"], "band": p["band"],
                          "language": p["language"], "similarity": p["similarity"],
                          "stage": stage, "a": p["a"]["path"], "b": p["b"]["path"],
                          "names": p.get("names"), "trace_score": seen[i][2] if seen else None})
    res["lost_by_stage"] = {k: dict(v) for k, v in sorted(stages.items())}
    if trace_info:
        res["trace"] = trace_info[1]
        flagged_stage = Counter()
        for i, p in enumerate(pairs):
            if p["label"] == "negative":
                flagged_stage["traced" if seen[i][0] else "not_traced"] += 1
                flagged_stage["accepted" if seen[i][1] else "not_accepted"] += 1
        res["hard_negative_trace"] = dict(flagged_stage)
    else:
        res["trace"] = None
    res["lost"] = lost_list
    res["flagged"] = [{"id": p["id"], "band": p["band"], "language": p["language"],
                       "similarity": p["similarity"], "direct": det[i][0], "a": p["a"]["path"],
                       "b": p["b"]["path"], "names": p.get("names"), "score": scores[i]}
                      for i, p in enumerate(pairs) if p["label"] == "negative" and det[i][1]]
    return res


# ---------------------------------------------------------------- printing

def pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def ci(c) -> str:
    return "" if not c else f" [{100 * c[0]:.0f}-{100 * c[1]:.0f}]"


def print_tables(runs: list[dict]) -> None:
    heads = [r["tag"] for r in runs]
    print("\nRecall of positive pairs (clustered links; [bootstrap 95%])")
    print("| group | n | " + " | ".join(heads) + " |")
    print("|---|---|" + "---|" * len(heads))
    for kind in ("band", "category", "language", "category_band"):
        names = sorted({n for r in runs for n in r["recall"].get(kind, {})},
                       key=lambda n: [BANDS.index(x) if x in BANDS else x for x in n.split("/")][::-1]
                       if kind == "band" else n)
        for n in names:
            first = next(r["recall"][kind][n] for r in runs if n in r["recall"].get(kind, {}))
            cells = []
            for r in runs:
                v = r["recall"].get(kind, {}).get(n)
                cells.append("n/a" if v is None else f"{pct(v['rate'])}{ci(v['ci95'])}")
            print(f"| {kind}: {n} | {first['n']} | " + " | ".join(cells) + " |")
    print("\nHard negatives flagged: direct pairs / after clustering")
    print("| group | n | " + " | ".join(heads) + " |")
    print("|---|---|" + "---|" * len(heads))
    for kind in ("all", "band", "language", "from", "split"):
        names = sorted({n for r in runs for n in r["hard_negative_flags"].get(kind, {})})
        for n in names:
            first = next(r["hard_negative_flags"][kind][n] for r in runs
                         if n in r["hard_negative_flags"].get(kind, {}))
            cells = []
            for r in runs:
                v = r["hard_negative_flags"].get(kind, {}).get(n)
                cells.append("n/a" if v is None else
                             f"{pct(v['direct']['rate'])} / {pct(v['clustered']['rate'])}"
                             f"{ci(v['clustered']['ci95'])}")
            print(f"| {kind}: {n} | {first['direct']['n']} | " + " | ".join(cells) + " |")
    print("\nRecall at a 1% hard-negative flag rate (direct pairs ranked by "
          + ", ".join(f"{r['tag']}: {r['ranked_by']}" for r in runs) + ")")
    print("| band | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(heads))
    for b in HEADLINE_BANDS + ["all_headline"]:
        cells = []
        for r in runs:
            v = r["recall_at_1pct_flags"].get(b)
            cells.append("n/a" if not v or v["recall"] is None else
                         f"{pct(v['recall'])}{ci(v['ci95'])} (t={v['threshold']})")
        print(f"| {b} | " + " | ".join(cells) + " |")
    print("\nLost positives by stage (" + " / ".join(STAGES) + ")")
    print("| group | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(heads))
    keys = sorted({k for r in runs for k in r["lost_by_stage"] if not k.startswith("language/")})
    for k in keys:
        cells = []
        for r in runs:
            v = r["lost_by_stage"].get(k, {})
            cells.append(" / ".join(str(v.get(s, 0)) for s in STAGES))
        print(f"| {k} | " + " | ".join(cells) + " |")


# ---------------------------------------------------------------- main



def main(work: Path, results_path: Path, sweep: list[float], seed: int,
         families_from: Path | None = None) -> int:
    meta_path = work / "pairs.json"
    dataset = work / "nearmiss"
    if not meta_path.exists() or not dataset.is_dir():
        log(f"no near-miss set in {work}: build it first")
        return 2
    meta = json.loads(meta_path.read_text())
    binary = binary_path()
    if not binary.exists():
        log(f"periodic binary not found: {binary} (set PERIODIC_BIN or cargo build -p periodic)")
        return 2
    started = time.monotonic()
    runs = []
    csvs = None
    for sim in [None] + sweep:
        run = run_scan(binary, dataset, work, sim)
        if "error" in run:
            log(f"periodic scan ({run['tag']}) failed: {run['error']}")
            return 1
        trace_info = read_trace(run["trace"], meta["pairs"], meta["files"])
        if trace_info is None:
            log(f"{run['tag']}: no trace written (PERIODIC_TRACE_T3): loss stages unknown")
        res = score_run(run, meta, Boot(seed), trace_info)
        res["tag"] = run["tag"]
        if sim is None:
            csvs = write_csvs(run["trace"], meta, work)
        runs.append(res)
        log(f"{run['tag']}: scan {run['seconds']} s, "
            f"{res['report_stats']['clone_pairs']} pairs, {res['report_stats']['patterns']} patterns")
    print_tables(runs)
    families = None
    if families_from is not None:
        import nm_family
        log("dense families (tests/quality/nm_family.py)")
        families = nm_family.run_all(families_from, work, str(binary), seed)
    from nm_build import counts
    out = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": {"system": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "periodic_binary": describe_binary(binary),
        "dataset": {"mode": meta.get("mode"), "seed": meta.get("seed"),
                    "files": len(meta["files"]), "counts": counts(meta["pairs"]),
                    "distractors": meta["stats"].get("distractors")},
        "rules": {"cover": COVER, "flag_rate": FLAG_RATE, "bootstrap_rounds": ROUNDS,
                  "bootstrap_seed": seed},
        "csv": csvs,
        "runs": runs,
        "dense_families": families,
        "seconds": round(time.monotonic() - started, 1),
    }
    results_path.write_text(json.dumps(out, indent=1))
    log(f"wrote {results_path} ({out['seconds']} s)")
    return 0
