"""Builds the near-miss evaluation set (tests/quality/work/nearmiss/ and pairs.json) from the
benchmark corpus and from pinned registry releases: scattered-edit variants, real edits
across releases, independent implementations of one job, hard negatives, Type-1/Type-2
controls and distractors. docs/quality.md ("Near-miss evaluation set") describes it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import random
import re
import shutil
import time
from collections import Counter, defaultdict
from pathlib import Path

from dataset import Candidate, make_t1, make_t2
from langs import LANGUAGES, LangSpec
import nm_funcs
from nm_funcs import Func, band, measure
import nm_behaviour
import nm_pairs
from nm_pairs import Cand
import nm_sources
import registry

HERE = Path(__file__).resolve().parent
REVIEW_FILE = HERE / "nearmiss_review.json"
CODE_FILES = ["nm_funcs.py", "langs.py", "tokens.py", "funcs.py", "negatives.py"]

# Periodic's unit minimum is 6 lines and 50 of its tokens (nm_funcs.engine_tokens): a margin
# of 4 tokens keeps every labelled function a unit.
MIN_LINES, MAX_LINES, MIN_TOKENS = 6, 150, 54
# Pair quotas per language (full set; --quick divides them).
REAL_EDIT_CAPS = {"very_strong": 40, "strong": 60, "moderate": 60, "weak": 15}
SCATTER_TARGETS = {"very_strong": 10, "strong": 30, "moderate": 30}
INDEPENDENT_CAP_PER_LANG = {"very_strong": 40, "strong": 120, "moderate": 200}
INDEPENDENT_MIN_SIMILARITY = 0.5
INDEPENDENT_COPY_RAW = 0.85
INDEPENDENT_PER_TASK = 6
HARD_BANDS = [("weak", 0.4, 0.5), ("moderate", 0.5, 0.7), ("strong", 0.7, 0.9)]
HARD_PER_BAND = 45
LIB_HARD_PER_BAND = 15
HARD_SIZE_RATIO = 1.3
HARD_MIN_CALLED = 0.3
HARD_MAX_RAW = 0.7
HARD_LCS_BUDGET = 12000
T12_PER_LANG = 12
DISTRACTORS_PER_LANG = 4000
DISTRACTORS_PER_FILE = 8
SPLIT_HOLDOUT = 0.4


def log(msg: str) -> None:
    registry.say(msg)


# ---------------------------------------------------------------- extraction (cached)

def _code_hash() -> str:
    h = hashlib.sha256()
    for name in CODE_FILES:
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:12]


def load_funcs(spec: LangSpec, root: Path, dirs: list[str], origin: str, project: str,
               expressions: bool = False, stamp: Path | None = None,
               exclude: str | None = None) -> list[Func]:
    stamp = stamp or root / ".unpacked"
    mark = stamp.stat().st_mtime_ns if stamp.exists() else 0
    key = hashlib.sha256(json.dumps([str(root), dirs, origin, project, expressions, mark, exclude,
                                     MIN_LINES, MAX_LINES, MIN_TOKENS, _code_hash()]).encode()).hexdigest()[:20]
    path = registry.CACHE / "funcs" / f"{origin.replace('/', '_')}-{key}.pkl"
    if path.exists():
        with path.open("rb") as f:
            return pickle.load(f)
    t = time.monotonic()
    funcs = nm_funcs.extract_tree(spec, root, dirs, origin, project, MIN_LINES, MAX_LINES,
                                  MIN_TOKENS, expressions, exclude=exclude)
    # Packages ship the same code twice (.js and .mjs builds, compat copies): keep one.
    seen, unique = set(), []
    for f in funcs:
        if f.digest not in seen:
            seen.add(f.digest)
            unique.append(f)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pickle.dump(unique, fh)
    log(f"{origin}: {len(unique)} functions ({time.monotonic() - t:.1f} s)")
    return unique


# ---------------------------------------------------------------- projects and splits

GENERIC_DIRS = {"src", "lib", "dist", "java.base", "java", "internal", "modules", "esm", "cjs",
                "main", "package"}


def project_of(upstream: str, relpath: str) -> str:
    """upstream:component, the component being the first two meaningful directories of the
    file (so that single big projects, one per language in the corpus, still split)."""
    parts = relpath.split("/")[:-1]
    joined = "/".join(parts)
    if joined.startswith("drivers/net/ethernet/intel"):
        parts = parts[4:]
    while parts and (parts[0] in GENERIC_DIRS or parts[0] == upstream):
        parts = parts[1:]
    return f"{upstream}:{'/'.join(parts[:2]) or '_root'}"


def corpus_project(f: Func) -> str:
    pkg, _, rest = f.relpath.partition("/")
    upstream = re.sub(r"-\d.*$", "", pkg)
    return project_of(upstream, rest)


def assign_splits(pairs: list[dict], seed: int) -> dict[str, str]:
    """project -> train/holdout: deterministic (projects in hash order), about
    SPLIT_HOLDOUT of the labelled pairs held out, the holdout holding at least one project
    of every category and, for Java and C, of every category that has them in more than one
    project."""
    by_project: dict[str, Counter] = defaultdict(Counter)
    langs: dict[str, set] = defaultdict(set)
    for p in pairs:
        by_project[p["project"]][p["category"]] += 1
        langs[p["project"]].add(p["language"])

    def order(pr):
        return hashlib.sha256(f"{seed}:{pr}".encode()).hexdigest()

    projects = sorted(by_project, key=order)
    total = sum(sum(c.values()) for c in by_project.values())
    holdout: set[str] = set()
    categories = sorted({c for cnt in by_project.values() for c in cnt})
    needs = [(c, None) for c in categories] + [(c, l) for c in categories for l in ("java", "c")]
    for cat, lang in needs:
        having = [pr for pr in projects if by_project[pr][cat] and (lang is None or lang in langs[pr])]
        if len(having) < 2 or any(pr in holdout for pr in having):
            continue
        # the smallest qualifying project in hash order, so that one requirement does not
        # pull a whole large project into the holdout
        having.sort(key=lambda pr: (sum(by_project[pr].values()) > total * 0.1, order(pr)))
        holdout.add(having[0])
    size = sum(sum(by_project[pr].values()) for pr in holdout)
    for pr in projects:
        n = sum(by_project[pr].values())
        if pr in holdout:
            continue
        if size + n <= SPLIT_HOLDOUT * total * 1.02:
            holdout.add(pr)
            size += n
    return {pr: ("holdout" if pr in holdout else "train") for pr in projects}


# ---------------------------------------------------------------- the build

class Writer:
    """Writes each labelled function once, one per file, and remembers where it is."""

    def __init__(self, specs: dict[str, LangSpec], out: Path):
        self.specs, self.out = specs, out
        self.files: dict[str, dict] = {}
        self.by_key: dict[str, str] = {}
        self.counter = Counter()

    def put(self, f: Func, category: str, project: str) -> dict:
        key = f"{f.key}:{hashlib.blake2b(f.text, digest_size=12).hexdigest()}"
        if key not in self.by_key:
            spec = self.specs[f.lang]
            self.counter[(category, f.lang)] += 1
            fid = f"{category[0]}{self.counter[(category, f.lang)]:05d}"
            node_type = f.node_type
            content, start, end = nm_funcs.wrap(spec, f.text, fid, node_type)
            ext = spec.ext
            rel = f"{category}/{f.lang}/{fid}.{ext}"
            (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.out / rel).write_bytes(content)
            self.files[rel] = {"start_line": start, "end_line": end, "language": f.lang,
                               "source": f.source, "name": f.qual, "project": project,
                               "digest": f.digest}
            self.by_key[key] = rel
        rel = self.by_key[key]
        return {"path": rel, "start_line": self.files[rel]["start_line"],
                "end_line": self.files[rel]["end_line"]}


def _cap_by_band(cands: list[Cand], caps: dict[str, int], rng: random.Random,
                 per_file: int = 3) -> list[Cand]:
    rng.shuffle(cands)
    out, n, files = [], Counter(), Counter()
    for c in cands:
        b = c.band
        if n[b] >= caps.get(b, 0) or files[c.a.relpath] >= per_file:
            continue
        n[b] += 1
        files[c.a.relpath] += 1
        out.append(c)
    return out


def _fresh(pool: list[Func], used: set[str], rng: random.Random, lines: tuple[int, int],
           min_tokens: int) -> list[Func]:
    """Pool functions of a size range not yet in a labelled pair, in a seeded order."""
    out = [f for f in pool if lines[0] <= f.n_lines <= lines[1] and len(f.toks) >= min_tokens
           and f.digest not in used]
    rng.shuffle(out)
    return out


def _review() -> dict:
    if REVIEW_FILE.exists():
        return json.loads(REVIEW_FILE.read_text())
    return {"reviewed": {}}


def build(specs: dict[str, LangSpec], corpus: Path, out_dir: Path, seed: int, quick: bool,
          dump_independent: Path | None = None) -> dict:
    started = time.monotonic()
    scale = 0.4 if quick else 1.0
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    w = Writer(specs, out_dir)
    pairs: list[dict] = []
    stats: dict = {"timings": {}}
    used_digests: set[str] = set()

    def add(c: Cand, category: str, label: str, project: str, extra: dict | None = None):
        a = w.put(c.a, category, project)
        b = w.put(c.b, category, project)
        used_digests.update((c.a.digest, c.b.digest))
        pairs.append({
            "id": f"{category}:{len(pairs):05d}", "a": a, "b": b, "language": c.a.lang,
            "label": label, "category": category, "project": project,
            "band": c.band, "similarity": c.m["similarity"], "token_ratio": c.m["token_ratio"],
            "line_ratio": c.m["line_ratio"],
            # the same ratio over the tokens' own texts (no normalisation): how much of the
            # text itself is shared (an edited copy scores high, a look-alike low)
            "raw_ratio": round(nm_funcs.raw_similarity(c.a, c.b), 4),
            "sources": [c.a.source, c.b.source], "names": [c.a.qual, c.b.qual],
            **({"info": {**c.info, **(extra or {})}} if c.info or extra else {}),
        })

    def lap(name: str, t0: float) -> float:
        stats["timings"][name] = round(time.monotonic() - t0, 1)
        return time.monotonic()

    t0 = time.monotonic()
    # The corpus holds one release of several of these projects: every stage below takes
    # from the corpus only functions whose normalised tokens are not already in a labelled
    # pair (used_digests), so that no labelled function has an identical twin in the set.
    real_trees = nm_sources.real_edit_pairs(quick)
    families = nm_sources.independent_families(quick)
    t0 = lap("fetch", t0)
    real_funcs = []
    for old, new in real_trees:
        spec = specs[old.language]
        fo = load_funcs(spec, old.root, old.dirs, old.label, old.project)
        if old.rename:
            src, dst = old.rename
            fo = [dataclasses.replace(f, relpath=dst + f.relpath[len(src):])
                  if f.relpath.startswith(src) else f for f in fo]
        fn = load_funcs(spec, new.root, new.dirs, new.label, new.project)
        real_funcs.append((old, new, fo, fn))
    fam_funcs: dict[str, list[list[Func]]] = {}
    fam_labels: dict[str, list[str]] = {}
    for lang, trees in families.items():
        spec = specs[lang]
        fam_funcs[lang] = [load_funcs(spec, t.root, t.dirs, t.label, t.project,
                                      expressions=lang in ("javascript", "typescript"),
                                      exclude=t.exclude)
                           for t in trees]
        fam_labels[lang] = [t.label for t in trees]
    corpus_pool: dict[str, list[Func]] = {}
    for lang in LANGUAGES:
        root = corpus / "large" / lang
        corpus_pool[lang] = load_funcs(specs[lang], root, ["."], f"corpus-{lang}", lang,
                                       stamp=corpus / "large" / f".done-{lang}")
    t0 = lap("extract", t0)

    # ---- real edits
    re_stats = {}
    for old, new, fo, fn in real_funcs:
        rng = random.Random(f"{seed}:real:{old.project}")
        cands, st = nm_pairs.real_edits(fo, fn)
        caps = {b: max(2, round(v * scale)) for b, v in REAL_EDIT_CAPS.items()}
        chosen = _cap_by_band(cands, caps, rng)
        st["by_band_found"] = dict(Counter(c.band for c in cands))
        st["by_band_kept"] = dict(Counter(c.band for c in chosen))
        re_stats[f"{old.label} -> {new.label}"] = st
        for c in sorted(chosen, key=lambda c: (c.a.relpath, c.a.line)):
            add(c, "real_edit", "positive", project_of(old.project, c.a.relpath),
                {"releases": [old.label, new.label]})
        log(f"real edits {old.label} -> {new.label}: {st['by_band_kept']} "
            f"(found {st['by_band_found']})")
    stats["real_edit"] = re_stats
    t0 = lap("real_edit", t0)

    # ---- independent implementations
    # The candidates do not depend on the seed, so that every seed draws from the pairs
    # that were read (nearmiss_review.json).
    rng = random.Random("independent")
    # A function already in a real-edit pair (commons-lang3) stays out of this category.
    fam_free = {lang: [[f for f in fs if f.digest not in used_digests] for fs in packages]
                for lang, packages in fam_funcs.items()}
    cands, ind_stats = nm_pairs.independent(fam_free, INDEPENDENT_MIN_SIMILARITY,
                                            INDEPENDENT_COPY_RAW, INDEPENDENT_PER_TASK, rng)
    review = _review()["reviewed"]
    kept, rejected, reviewed_in, shared = [], 0, 0, 0
    for c in cands:
        pid = nm_pairs.pair_id(c.a, c.b)
        verdict = review.get(pid, {}).get("verdict")
        if verdict is not None:
            reviewed_in += 1
        if verdict == "different_job":
            rejected += 1
            continue
        if verdict == "shared_origin":
            shared += 1
            continue
        c.info["reviewed"] = verdict is not None
        c.info["pair_id"] = pid
        kept.append(c)
    # Python pairs: run both functions on the same inputs (an extra check beside reading).
    roots = {t.label: t.root for trees in families.values() for t in trees}
    behaviour = nm_behaviour.run([(c.a, c.b) for c in kept], roots)
    for c, bres in zip(kept, behaviour):
        if bres is not None:
            c.info["behaviour"] = bres
    ran = [b for b in behaviour if b is not None]
    if dump_independent is not None:
        dump_pairs(kept, dump_independent)
    per_lang = defaultdict(list)
    for c in kept:
        per_lang[c.a.lang].append(c)
    ind_kept = Counter()
    for lang, cs in sorted(per_lang.items()):
        caps = {b: max(2, round(v * scale)) for b, v in INDEPENDENT_CAP_PER_LANG.items()}
        chosen = _cap_by_band(cs, caps, random.Random(f"{seed}:independent:{lang}"), per_file=6)
        for c in sorted(chosen, key=lambda c: (c.info["task"], c.a.origin, c.b.origin)):
            add(c, "independent", "positive", f"{lang}-libraries:{c.info['task']}")
            ind_kept[(lang, c.band)] += 1
    stats["independent"] = {
        "families": fam_labels, "search": ind_stats,
        "candidates_after_review": len(kept), "review_file": REVIEW_FILE.name,
        "reviewed_total": len(review),
        "reviewed_rejected_total": sum(1 for v in review.values() if v.get("verdict") == "different_job"),
        "reviewed_shared_origin_total": sum(1 for v in review.values() if v.get("verdict") == "shared_origin"),
        "reviewed_among_candidates": reviewed_in, "rejected_among_candidates": rejected,
        "shared_origin_among_candidates": shared,
        "kept": {f"{l}/{b}": n for (l, b), n in sorted(ind_kept.items())},
        "behaviour_check": dict(Counter(b["verdict"] for b in ran)),
    }
    log(f"independent: {sum(ind_kept.values())} pairs kept of {len(kept)} "
        f"(review: {reviewed_in} candidates read, {rejected} rejected, {shared} shared origin)")
    t0 = lap("independent", t0)

    # ---- scattered edits (corpus functions)
    sc_stats = {}
    for lang in LANGUAGES:
        spec = specs[lang]
        rng = random.Random(f"{seed}:scattered:{lang}")
        pool = _fresh(corpus_pool[lang], used_digests, rng, (10, 80), 70)
        targets = {b: max(2, round(v * scale)) for b, v in SCATTER_TARGETS.items()}
        cands, st = nm_pairs.scattered(spec, pool, targets, rng)
        sc_stats[lang] = st
        for c in cands:
            add(c, "scattered", "positive", corpus_project(c.a))
        log(f"scattered {lang}: {dict(Counter(c.band for c in cands))}")
    stats["scattered"] = sc_stats
    t0 = lap("scattered", t0)

    # ---- Type-1 / Type-2 controls (the existing generator)
    t12 = Counter()
    for lang in LANGUAGES:
        spec = specs[lang]
        rng = random.Random(f"{seed}:t12:{lang}")
        pool = _fresh(corpus_pool[lang], used_digests, rng, (8, 60), 60)
        n = 0
        for f in pool:
            if n >= max(2, round(T12_PER_LANG * scale)):
                break
            c = Candidate(lang, f.relpath, f.line, f.node_type, f.text, f.n_lines, f.toks, f.kinds)
            v1, v2 = make_t1(spec, c, rng), make_t2(spec, c, rng)
            if v1 is None or v2 is None:
                continue
            n += 1
            for v, cat in ((v1, "type1"), (v2, "type2")):
                p = nm_funcs.parse(spec, v.text, f.node_type)
                g = nm_funcs.make_func(spec, p, f.origin, f.project, f.relpath, f.line,
                                       f.node_type, f.name, f.qual, f.params)
                add(Cand(f, g, measure(f, g), {"ops": v.ops}), cat, "positive", corpus_project(f))
                t12[cat] += 1
    stats["type12"] = dict(t12)
    t0 = lap("type12", t0)

    # ---- hard negatives: corpus code bases, then the independent packages
    hn_stats = {}
    bands_per = max(3, round(HARD_PER_BAND * scale))

    def corpus_groups(f: Func):
        """Same file, same class (or impl / receiver type) in the package, same directory."""
        cls = f.qual.rsplit(".", 1)[0] if "." in f.qual else ""
        d = f.relpath.rsplit("/", 1)[0]
        return ([("file", f.relpath), ("dir", d)]
                + ([("class", f.relpath.split("/")[0], cls)] if cls else []))

    for lang in LANGUAGES:
        rng = random.Random(f"{seed}:hard:{lang}")
        pool = [f for f in corpus_pool[lang] if f.digest not in used_digests]
        cands, st = nm_pairs.hard_negatives(pool, corpus_groups, rng, bands_per, HARD_BANDS,
                                            HARD_SIZE_RATIO, HARD_MIN_CALLED, HARD_MAX_RAW,
                                            HARD_LCS_BUDGET)
        for c in cands:
            add(c, "hard_negative", "negative", corpus_project(c.a), {"from": "corpus"})
        hn_stats[lang] = st
        log(f"hard negatives {lang}: {dict(Counter(c.band for c in cands))} ({st['seconds']} s)")

    def lib_groups(f: Func):
        d = f.relpath.rsplit("/", 1)[0] if "/" in f.relpath else ""
        return [("pkg", f.origin, d)]

    lib_per = max(2, round(LIB_HARD_PER_BAND * scale))
    for lang, packages in fam_funcs.items():
        rng = random.Random(f"{seed}:libhard:{lang}")
        pool = [f for fs in packages for f in fs if f.digest not in used_digests]
        cands, st = nm_pairs.hard_negatives(pool, lib_groups, rng, lib_per, HARD_BANDS,
                                            HARD_SIZE_RATIO, HARD_MIN_CALLED, HARD_MAX_RAW,
                                            HARD_LCS_BUDGET // 2)
        for c in cands:
            upstream = re.sub(r"-\d.*$", "", c.a.origin)
            add(c, "hard_negative", "negative", f"{lang}-libraries-pkg:{upstream}",
                {"from": "independent packages"})
        hn_stats[f"{lang} (libraries)"] = st
        log(f"hard negatives {lang} libraries: {dict(Counter(c.band for c in cands))}")
    stats["hard_negative"] = hn_stats
    t0 = lap("hard_negative", t0)

    # ---- splits
    split_of = assign_splits(pairs, seed)
    for p in pairs:
        p["split"] = split_of[p["project"]]
    for rel, meta in w.files.items():
        meta["split"] = split_of.get(meta["project"], "train")

    # ---- distractors: real corpus functions in no labelled pair, several per file
    n_dis = distractors(specs, corpus_pool, used_digests, out_dir, w.files, seed,
                        round(DISTRACTORS_PER_LANG * (0.12 if quick else 1.0)), split_of)
    stats["distractors"] = n_dis
    t0 = lap("distractors", t0)

    stats["seconds"] = round(time.monotonic() - started, 1)
    meta = {"version": 1, "seed": seed, "mode": "quick" if quick else "full",
            "similarity": "min(token LCS/max, line LCS/max) after identifiers->ID, literals->LIT",
            "bands": {"very_strong": [0.9, 1.0], "strong": [0.7, 0.9], "moderate": [0.5, 0.7],
                      "weak": [0.0, 0.5]},
            "files": w.files, "pairs": pairs, "stats": stats,
            "splits": {pr: s for pr, s in sorted(split_of.items())}}
    manifest = {"sources": registry.LOG.as_json(), "corpus": str(corpus),
                "corpus_manifest": (corpus / "MANIFEST.txt").read_text().splitlines()
                if (corpus / "MANIFEST.txt").exists() else [],
                "parameters": {k: v for k, v in globals().items() if k.isupper() and
                               isinstance(v, (int, float, dict, list, str))},
                "counts": counts(pairs), "stats": stats}
    (out_dir.parent / "pairs.json").write_text(json.dumps(meta, indent=1))
    (out_dir.parent / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
    return meta


def distractors(specs, pools, used: set[str], out_dir: Path, files_meta: dict, seed: int,
                per_lang: int, split_of: dict) -> dict:
    counts = {}
    for lang in LANGUAGES:
        spec = specs[lang]
        rng = random.Random(f"{seed}:distractors:{lang}")
        pool = [f for f in pools[lang] if f.digest not in used]
        rng.shuffle(pool)
        pool = pool[:per_lang]
        # Group by source file (then node type, which decides the wrapper), in source order.
        groups: dict = defaultdict(list)
        for f in pool:
            groups[(f.relpath, f.node_type)].append(f)
        n_files = n_funcs = 0
        for (relpath, node_type), fs in sorted(groups.items()):
            fs.sort(key=lambda f: f.line)
            for k in range(0, len(fs), DISTRACTORS_PER_FILE):
                chunk = fs[k:k + DISTRACTORS_PER_FILE]
                n_files += 1
                fid = f"d{n_files:05d}"
                header, footer = spec.wrap("", fid, node_type)
                body = header.encode()
                line = header.count("\n") + 1
                spans = []
                for f in chunk:
                    spans.append((f, line, line + f.text.count(b"\n")))
                    body += f.text + b"\n\n"
                    line += f.text.count(b"\n") + 2
                body += footer.encode()
                rel = f"distractors/{lang}/{fid}.{spec.ext}"
                (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                (out_dir / rel).write_bytes(body)
                project = corpus_project(chunk[0])
                files_meta[rel] = {"language": lang, "project": project,
                                   "split": split_of.get(project, "train"), "distractor": True,
                                   "functions": [{"start_line": s, "end_line": e,
                                                  "source": f.source, "name": f.qual}
                                                 for f, s, e in spans]}
                n_funcs += len(chunk)
        counts[lang] = {"functions": n_funcs, "files": n_files}
        log(f"distractors {lang}: {n_funcs} functions in {n_files} files")
    counts["total_functions"] = sum(v["functions"] for v in counts.values())
    return counts


COUNT_KEYS = {"by_category_band": ("category", "band"),
              "by_category_language": ("category", "language"),
              "by_label_band_language": ("label", "band", "language"),
              "by_split_category": ("split", "category"),
              "by_split_language": ("split", "language")}


def counts(pairs: list[dict]) -> dict:
    out: dict = {"total": len(pairs)}
    for name, fields in COUNT_KEYS.items():
        c = Counter(tuple(p[f] for f in fields) for p in pairs if all(f in p for f in fields))
        out[name] = {"/".join(k): v for k, v in sorted(c.items())}
    return out


def dump_pairs(cands: list[Cand], path: Path) -> None:
    """Both bodies of every independent candidate, for reading (label review)."""
    with path.open("w") as f:
        for c in sorted(cands, key=lambda c: (c.a.lang, c.info["task"], c.info["pair_id"])):
            f.write(f"=== {c.info['pair_id']}\n")
            f.write(f"--- lang {c.a.lang} task {c.info['task']} similarity {c.m['similarity']} "
                    f"raw {c.info['raw_similarity']} band {c.band} reviewed {c.info['reviewed']}"
                    f" behaviour {c.info.get('behaviour', {}).get('verdict', '-')}\n")
            f.write(f"--- A {c.a.source}\n{c.a.text.decode('utf-8', 'replace')}\n")
            f.write(f"--- B {c.b.source}\n{c.b.text.decode('utf-8', 'replace')}\n\n")
