"""Dense families: many variants of one function, each with its own scattered edits, placed
among a whole corpus tree, so that every pair of members is a labelled near-miss pair.

This is the shape of a real benchmark's functionality families (hundreds of "copy a file"
methods, every pair of them a clone), which pairs of two functions do not show: a member
has hundreds of partners, its k-grams and names are common in the tree, and recall per
pair depends on the candidate stage's caps, on how many candidates a unit may verify, and
on whether clustering joins the family into one pattern.

Usage (from scripts/quality-nearmiss's venv):
    python nm_family.py --corpus DIR --work DIR [--lang java] [--families 3] [--members 200]
                        [--bin periodic] [--no-build] [--similarity 0.7]
Prints recall per band (direct pairs / clustered into patterns) and how many patterns each
family was split into; pairs of members of two different families are the negatives
(flagged when linked).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from langs import build_specs  # noqa: E402
import nm_build  # noqa: E402
import nm_funcs  # noqa: E402
import nm_scatter  # noqa: E402
from nearmiss_eval import Links, detect  # noqa: E402

EDITS = list(range(1, 11))
MAX_PAIRS_PER_FAMILY = 20000


def build(corpus: Path, out: Path, lang: str, families: int, members: int, seed: int) -> dict:
    specs = build_specs()
    spec = specs[lang]
    pool = nm_build.load_funcs(spec, corpus / "large" / lang, ["."], f"corpus-{lang}", lang,
                               stamp=corpus / "large" / f".done-{lang}")
    rng = random.Random(f"{seed}:family:{lang}")
    bases = [f for f in pool if 15 <= f.n_lines <= 45 and len(f.toks) >= 120]
    rng.shuffle(bases)
    donors = nm_scatter.donor_statements(spec, pool, random.Random(rng.random()))
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(corpus / "large" / lang, out / "tree", symlinks=False)
    files, fams = {}, []
    for base in bases:
        if len(fams) == families:
            break
        variants = [base]
        tries = 0
        while len(variants) < members and tries < members * 4:
            tries += 1
            res = nm_scatter.scatter(spec, base, rng, rng.choice(EDITS), rng.random() < 0.5, donors)
            if res is None:
                continue
            p = nm_funcs.parse(spec, res[0], base.node_type)
            if p is None:
                continue
            variants.append(nm_funcs.make_func(spec, p, base.origin, base.project, base.relpath,
                                               base.line, base.node_type, base.name, base.qual,
                                               base.params))
        if len(variants) < members // 2:
            continue
        fam = []
        for k, v in enumerate(variants):
            fid = f"f{len(fams):02d}m{k:03d}"
            content, start, end = nm_funcs.wrap(spec, v.text, fid, v.node_type)
            rel = f"family/{fid}.{spec.ext}"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(content)
            files[rel] = {"path": rel, "start_line": start, "end_line": end}
            fam.append((rel, v))
        fams.append(fam)
    pairs = []
    for fi, fam in enumerate(fams):
        # Every pair of a small family; a sample of a large one's (each pair's measure is
        # an LCS in Python).
        index_pairs = [(i, j) for i in range(len(fam)) for j in range(i + 1, len(fam))]
        if len(index_pairs) > MAX_PAIRS_PER_FAMILY:
            index_pairs = sorted(rng.sample(index_pairs, MAX_PAIRS_PER_FAMILY))
        for i, j in index_pairs:
                m = nm_funcs.measure(fam[i][1], fam[j][1])
                pairs.append({"a": files[fam[i][0]], "b": files[fam[j][0]], "family": fi,
                              "label": "positive", "band": nm_funcs.band(m["similarity"], m["identical"]),
                              "similarity": m["similarity"]})
    # Negatives: members of two different families (as many as one family's pairs).
    for _ in range(min(len(pairs), 5000)):
        fa, fb = rng.sample(range(len(fams)), 2) if len(fams) > 1 else (0, 0)
        if fa == fb:
            break
        a, b = rng.choice(fams[fa]), rng.choice(fams[fb])
        pairs.append({"a": files[a[0]], "b": files[b[0]], "family": -1, "label": "negative",
                      "band": "cross", "similarity": 0.0})
    meta = {"lang": lang, "families": [len(f) for f in fams], "pairs": pairs}
    (out / "family-meta.json").write_text(json.dumps(meta))
    return meta


def evaluate(binary: str, out: Path, meta: dict, similarity: float | None) -> dict:
    report_path = out.parent / f"{out.name}-scan.json"
    cmd = [binary, "scan", str(out), "--format", "json", "--no-index", "--output", str(report_path)]
    if similarity is not None:
        cmd += ["--similarity", str(similarity)]
    t = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.monotonic() - t
    if proc.returncode not in (0, 1):
        sys.exit(proc.stderr[-2000:])
    report = json.loads(report_path.read_text())
    links = Links(report)
    found = defaultdict(Counter)
    for p in meta["pairs"]:
        direct, clustered = detect(links, p)
        key = p["band"]
        found[key]["n"] += 1
        found[key]["direct"] += direct
        found[key]["clustered"] += clustered
    print(f"scan {seconds:.1f} s; {len(report.get('pairs', []))} pairs, "
          f"{len(report.get('patterns', []))} patterns; families {meta['families']}")
    for band in ("identical", "very_strong", "strong", "moderate", "weak", "cross"):
        c = found.get(band)
        if c:
            print(f"  {band:12} n={c['n']:6}  direct {100 * c['direct'] / c['n']:5.1f}%  "
                  f"clustered {100 * c['clustered'] / c['n']:5.1f}%")
    # How many patterns hold each family's members (a family split in many pieces loses
    # the pairs between its pieces).
    per_family = defaultdict(Counter)
    member_family = {}
    for p in meta["pairs"]:
        if p["family"] >= 0:
            member_family[p["a"]["path"]] = p["family"]
            member_family[p["b"]["path"]] = p["family"]
    for k, pat in enumerate(report.get("patterns", [])):
        for m in pat.get("members", []):
            if m["path"] in member_family:
                per_family[member_family[m["path"]]][k] += 1
    pieces = []
    for fi, n in enumerate(meta["families"]):
        sizes = sorted(per_family[fi].values(), reverse=True)
        pieces.append({"members": n, "patterns": len(sizes), "largest": sizes[:6]})
        print(f"  family {fi}: {n} members, in {len(sizes)} patterns, largest {sizes[:6]}")
    return {"lang": meta["lang"], "seconds": round(seconds, 1),
            "bands": {band: dict(c) for band, c in found.items()}, "families": pieces}


# The dense-family runs of scripts/quality-nearmiss: (language, families, members).
RUNS = [("java", 2, 700), ("python", 2, 400), ("c", 2, 400)]


def run_all(corpus: Path, work: Path, binary: str, seed: int) -> list[dict]:
    out = []
    for lang, families, members in RUNS:
        meta = build(corpus, work / "family" / lang, lang, families, members, seed)
        out.append(evaluate(binary, work / "family" / lang, meta, None))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", default=os.environ.get("CORPUS", str(HERE.parent.parent.parent / "corpus")))
    ap.add_argument("--work", default=str(HERE / "work" / "family"))
    ap.add_argument("--lang", default="java")
    ap.add_argument("--families", type=int, default=3)
    ap.add_argument("--members", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--bin", default=os.environ.get("PERIODIC_BIN", str(HERE.parent.parent / "target/debug/periodic")))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--similarity", type=float)
    args = ap.parse_args()
    out = Path(args.work) / args.lang
    if args.no_build:
        meta = json.loads((out / "family-meta.json").read_text())
    else:
        meta = build(Path(args.corpus), out, args.lang, args.families, args.members, args.seed)
    evaluate(args.bin, out, meta, args.similarity)
    return 0


if __name__ == "__main__":
    sys.exit(main())
