"""How the near-miss set's pairs are found: real edits (the same function in two releases),
independent implementations (functions of different packages doing the same job), hard
negatives (different functions of one code base that look alike), and scattered-edit
variants of corpus functions. Each returns candidate pairs with their measured similarity;
nm_build.py chooses among them, writes the files and labels."""

from __future__ import annotations

import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from langs import LangSpec
from negatives import jaccard, words
import nm_funcs
from nm_funcs import Func, band, measure
import nm_scatter


@dataclass
class Cand:
    a: Func
    b: Func
    m: dict  # measure(): similarity, token_ratio, line_ratio, identical
    info: dict = field(default_factory=dict)

    @property
    def band(self) -> str:
        return band(self.m["similarity"], self.m["identical"])


# ---------------------------------------------------------------- real edits

def real_edits(old: list[Func], new: list[Func]) -> tuple[list[Cand], dict]:
    """The same function in two releases: same file path (relative to the code root), same
    qualified name, and for overloads the same parameter count. Ambiguous keys (two
    functions with one key in a release) are skipped; pairs identical in text are
    dropped (similarity 1)."""
    def index(funcs):
        by: dict = defaultdict(list)
        for f in funcs:
            by[(f.relpath, f.qual, f.params)].append(f)
        return by

    io, inew = index(old), index(new)
    stats = Counter()
    out = []
    for key, olds in io.items():
        news = inew.get(key)
        if not news:
            stats["unmatched"] += 1
            continue
        if len(olds) != 1 or len(news) != 1:
            stats["ambiguous"] += 1
            continue
        a, b = olds[0], news[0]
        if a.text == b.text:
            stats["unchanged"] += 1
            continue
        m = measure(a, b)
        if m["similarity"] >= 1.0:
            stats["same_after_normalising"] += 1
            continue
        out.append(Cand(a, b, m, {"key": f"{key[0]}#{key[1]}/{key[2]}"}))
        stats["changed"] += 1
    return out, dict(stats)


# ---------------------------------------------------------------- independent implementations

# Names of one job in different libraries (lower case, underscores dropped); a name not
# listed is its own task.
SYNONYMS = {
    "chunk": ["chunked", "chunks", "partitionall", "splitevery", "cluster", "batched",
              "inchunks", "chunk", "arraychunk"],
    "flatten": ["flatten", "flat", "flattenit", "flattendeep", "flattendepth", "collapse",
                "flattenlist"],
    "unique": ["uniq", "unique", "uniqueeverseen", "distinct", "dedupe", "arrayunique"],
    "groupby": ["groupby", "group", "bucket"],
    "deepequal": ["isequal", "deepequal", "dequal", "isdeepequal", "equal", "equals"],
    "camelcase": ["camelcase", "camelize", "tocamelcase", "camel"],
    "kebabcase": ["kebabcase", "kebab", "dasherize", "tokebabcase", "paramcase"],
    "snakecase": ["snakecase", "tosnakecase", "snake", "underscored"],
    "escapehtml": ["escapehtml", "escape", "htmlescape", "htmlspecialchars"],
    "unescapehtml": ["unescapehtml", "unescape", "htmlunescape"],
    "compareversions": ["compareversions", "semvercompare", "versioncompare"],
    "pick": ["pick", "selectkeys", "project"],
    "omit": ["omit", "omitkeys", "dissoc"],
    "zip": ["zip", "zipit", "ziplongest", "zipall"],
    "memoize": ["memoize", "memoized", "memo"],
    "clone": ["clone", "clonedeep", "deepclone", "deepcopy"],
    "retry": ["retry", "pretry", "retrying"],
    "first": ["first", "head"],
    "tail": ["tail", "rest"],
    "interleave": ["interleave", "roundrobin"],
    "frequencies": ["frequencies", "countby", "counter"],
    "windowed": ["windowed", "sliding", "slidingwindow", "aperture"],
    "partition": ["partition", "splitwith"],
    "compact": ["compact", "removefalsy"],
    "difference": ["difference", "without", "arraydiff"],
    "mergedeep": ["mergedeep", "deepmerge", "merge"],
    "debounce": ["debounce", "debounced"],
    "throttle": ["throttle", "throttled"],
    "range": ["range", "numericrange", "frange"],
    "strtol": ["strtol", "strtoll"], "strtoul": ["strtoul", "strtoull"],
    # PHP names (locutus) for the utility libraries' jobs
    "repeat": ["repeat", "strrepeat"], "pad": ["pad", "strpad"],
    "capitalize": ["capitalize", "ucfirst", "upperfirst"], "sum": ["sum", "arraysum"],
    "includes": ["includes", "inarray"], "join": ["join", "implode"],
    "split": ["split", "explode"], "reverse": ["reverse", "strrev", "arrayreverse"],
    "intersection": ["intersection", "intersect", "arrayintersect"],
    "filter": ["filter", "arrayfilter"], "map": ["map", "arraymap"],
    "reduce": ["reduce", "arrayreduce"], "sample": ["sample", "arrayrand"],
    "trimstart": ["trimstart", "ltrim", "trimleft"], "trimend": ["trimend", "rtrim", "trimright"],
    "invert": ["invert", "arrayflip"], "keys": ["keys", "arraykeys"],
    "values": ["values", "arrayvalues"], "fill": ["fill", "arrayfill"],
    "levenshtein": ["levenshtein", "leven", "levenshteindistance"],
    "wordwrap": ["wordwrap", "wrap"], "striptags": ["striptags", "stripTags"],
}
SYNONYM_OF = {n: task for task, names in SYNONYMS.items() for n in names}
# Interface methods every container or stream has: the same name in two libraries is two
# data structures, not one job.
GENERIC_NAMES = {
    "get", "set", "put", "add", "remove", "size", "isempty", "clear", "contains", "equals",
    "hashcode", "tostring", "iterator", "next", "hasnext", "run", "apply", "call", "accept",
    "test", "compareto", "compare", "close", "read", "write", "flush", "keyset", "values",
    "entryset", "main", "init", "create", "build", "reset", "skip", "available", "mark",
    "ready", "getkey", "getvalue", "setvalue", "containskey", "containsvalue", "putall",
    "removeall", "retainall", "addall", "toarray", "readobject", "writeobject", "finalize",
    "sublist", "listiterator", "previous", "hasprevious", "nextindex", "previousindex",
    "descendingiterator", "spliterator", "foreach", "foreachremaining", "replaceall",
    "computeifabsent", "compute", "getordefault", "length", "charat", "append",
    "insert", "delete", "valueof", "of", "copyof", "wrap", "unwrap", "handle", "visit",
    "default", "exports", "constructor", "inner", "helper", "impl", "wrapper", "func", "fn",
    "f", "g", "h", "cb", "callback", "next_", "__init__", "__repr__", "__str__", "__eq__",
    "__hash__", "__iter__", "__next__", "__len__", "__getitem__", "__setitem__",
    "__contains__", "__call__", "__enter__", "__exit__",
}


# Java methods that override or implement a contract of their own class: the same name in
# two libraries is two classes' behaviour, not one job (found by reading the pairs).
JAVA_GENERIC = {"clone", "equals", "hashcode", "tryadvance", "trysplit", "transform",
                "translate", "nextentry", "estimatesize", "characteristics", "accept", "test",
                "apply", "evaluate", "iterator", "spliterator", "toarray"}


def generic_name(name: str, lang: str) -> bool:
    n = name.lower().strip("_$").replace("_", "")
    return n in GENERIC_NAMES or name.lower() in GENERIC_NAMES or \
        (lang == "java" and n in JAVA_GENERIC)


def shared_origin(a: Func, b: Func) -> str:
    """Why two functions of different packages are not independent work, or ''."""
    if a.comments & b.comments:
        return "a comment in common"
    packages = {re.sub(r"-\d.*$", "", a.origin), re.sub(r"-\d.*$", "", b.origin)}
    if packages == {"libcommons-lang3-java", "commons-text"}:
        return "commons-text took its text classes from commons-lang3"
    return ""


def task_of(name: str) -> str:
    n = name.lstrip("_$")
    n = re.sub(r"(Implementation|Impl|_impl|_impl_)$", "", n)
    if re.match(r"base[A-Z]", n):  # lodash keeps the work in baseX
        n = n[4:]
    n = n.lower().replace("_", "")
    return SYNONYM_OF.get(n, n)


def pair_id(a: Func, b: Func) -> str:
    """Stable across runs (pinned releases): package, file, qualified name, parameter count
    and first line of both functions."""
    x, y = sorted([f"{a.origin}/{a.relpath}#{a.qual}/{a.params}@{a.line}",
                   f"{b.origin}/{b.relpath}#{b.qual}/{b.params}@{b.line}"])
    return f"{x} ~ {y}"


def independent(families: dict[str, list[list[Func]]], min_sim: float, copy_raw: float,
                max_per_task: int, rng: random.Random) -> tuple[list[Cand], dict]:
    """Pairs of functions from different packages of one family whose names name the same
    task and whose parameter counts are comparable (equal in Java and C, within one
    elsewhere), with similarity >= min_sim. Pairs whose raw (unnormalised) token texts are
    >= copy_raw alike are copies between the packages, not independent work: dropped and
    counted."""
    out: list[Cand] = []
    stats: dict = {}
    for lang, packages in families.items():
        st = Counter()
        by_task: dict[str, list[tuple[int, Func]]] = defaultdict(list)
        for pi, funcs in enumerate(packages):
            for f in funcs:
                t = task_of(f.name)
                if len(t) < 3 or t in GENERIC_NAMES or generic_name(f.name, lang):
                    continue
                by_task[t].append((pi, f))
        for task in sorted(by_task):
            impls = by_task[task]
            found = []
            for i in range(len(impls)):
                for j in range(i + 1, len(impls)):
                    (pa, a), (pb, b) = impls[i], impls[j]
                    if pa == pb:
                        continue
                    dp = abs(a.params - b.params)
                    if dp > (0 if lang in ("java", "c") else 1):
                        continue
                    if nm_funcs.token_upper_bound(a, b) < min_sim:
                        continue
                    st["compared"] += 1
                    m = measure(a, b)
                    if m["similarity"] < min_sim:
                        continue
                    raw = nm_funcs.raw_similarity(a, b)
                    if raw >= copy_raw:
                        st["dropped_copies"] += 1
                        continue
                    if shared_origin(a, b):
                        st["dropped_shared_origin"] += 1
                        continue
                    found.append(Cand(a, b, m, {"task": task, "raw_similarity": round(raw, 4)}))
            # The densest tasks (overloads in Java, many near-identical helpers) would fill the
            # set: keep at most max_per_task per task, spread over package pairs.
            rng.shuffle(found)
            found.sort(key=lambda c: (c.a.origin, c.b.origin))
            seen_pk = Counter()
            chosen = []
            for c in sorted(found, key=lambda c: seen_pk[(c.a.origin, c.b.origin)]):
                if len(chosen) >= max_per_task:
                    break
                seen_pk[(c.a.origin, c.b.origin)] += 1
                chosen.append(c)
            st["pairs"] += len(chosen)
            st["tasks_with_pairs"] += bool(chosen)
            out.extend(chosen)
        stats[lang] = dict(st)
    return out, stats


# ---------------------------------------------------------------- hard negatives

ACCESSOR_WORDS = {"get", "set", "is", "has", "add", "remove", "put", "to", "from", "with",
                  "without", "can", "should", "do", "on", "try", "un", "re", "new", "make",
                  "read", "write", "load", "save", "init", "reset", "clear", "update"}


def name_twins(a: Func, b: Func) -> bool:
    """Overloads, and names that differ only by an accessor verb (getX / setX / hasX)."""
    if a.name == b.name:
        return True
    wa, wb = words([a.name]), words([b.name])
    if jaccard(wa, wb) >= 0.5:
        return True
    ra, rb = wa - ACCESSOR_WORDS, wb - ACCESSOR_WORDS
    return bool(ra) and ra == rb


def hard_negatives(pool: list[Func], group_of, rng: random.Random, per_band: int,
                   bands: list[tuple[str, float, float]], size_ratio: float, min_called: float,
                   max_raw: float, lcs_budget: int, per_func: int = 2,
                   max_group: int = 300) -> tuple[list[Cand], dict]:
    """Different functions of one group (same file, same class or same module: `group_of`
    returns the keys of a function's groups) with token counts within size_ratio, called /
    accessed names overlapping >= min_called (Jaccard), different names (no overloads, no
    accessor twins), no comment in common and raw token texts < max_raw alike (not an
    edited copy), and similarity in
    one of `bands` ((name, lo, hi)). At most per_band per band, each function in at most
    per_func pairs, each file pair once."""
    started = time.monotonic()
    groups: dict = defaultdict(list)
    for i, f in enumerate(pool):
        for g in group_of(f):
            groups[g].append(i)
    cand_pairs = set()
    for g in sorted(groups, key=str):
        members = groups[g]
        if len(members) < 2:
            continue
        if len(members) > max_group:
            members = rng.sample(members, max_group)
        ms = sorted(members, key=lambda i: len(pool[i].toks))
        for x, i in enumerate(ms):
            for j in ms[x + 1:]:
                if len(pool[j].toks) > size_ratio * len(pool[i].toks):
                    break
                cand_pairs.add((i, j) if i < j else (j, i))
    cand_pairs = sorted(cand_pairs)
    rng.shuffle(cand_pairs)
    found: dict[str, list[Cand]] = {name: [] for name, _, _ in bands}
    st = Counter(candidate_pairs=len(cand_pairs))
    lo_all = min(lo for _, lo, _ in bands)
    hi_all = max(hi for _, _, hi in bands)
    for i, j in cand_pairs:
        open_bands = [(lo, hi) for name, lo, hi in bands if len(found[name]) < 3 * per_band]
        if st["lcs"] >= lcs_budget or not open_bands:
            break
        a, b = pool[i], pool[j]
        if a.relpath == b.relpath and a.origin == b.origin and \
                a.line <= b.line + b.n_lines and b.line <= a.line + a.n_lines:
            st["nested"] += 1  # one function inside the other
            continue
        if a.digest == b.digest or name_twins(a, b):
            st["names"] += 1
            continue
        if a.comments & b.comments:
            st["shared_comment"] += 1  # a comment copied along: an edited copy
            continue
        if jaccard(a.called, b.called) < min_called:
            st["called"] += 1
            continue
        # The similarity is at most the bag bound: skip pairs that can only land in bands
        # already full (the weak band fills first; the strong one is rare).
        bound = nm_funcs.bag_upper_bound(a, b)
        if not any(lo <= bound for lo, _ in open_bands):
            st["bound"] += 1
            continue
        st["lcs"] += 1
        m = measure(a, b)
        s = m["similarity"]
        if not (lo_all <= s < hi_all) or m["identical"]:
            continue
        raw = nm_funcs.raw_similarity(a, b)
        if raw >= max_raw:
            st["copies"] += 1
            continue
        for name, lo, hi in bands:
            if lo <= s < hi:
                found[name].append(Cand(a, b, m, {"raw_similarity": round(raw, 4),
                                                  "called_jaccard": round(jaccard(a.called, b.called), 3)}))
    used = Counter()
    out = []
    for name, _, _ in bands:
        k = 0
        for c in found[name]:
            if k >= per_band:
                break
            if used[c.a.key] >= per_func or used[c.b.key] >= per_func:
                continue
            used[c.a.key] += 1
            used[c.b.key] += 1
            out.append(c)
            k += 1
        st[f"found_{name}"] = len(found[name])
        st[f"picked_{name}"] = k
    st["seconds"] = round(time.monotonic() - started, 1)
    return out, dict(st)


# ---------------------------------------------------------------- scattered edits

SCATTER_EDITS = {"very_strong": (1, 2, 2), "strong": (2, 3, 4, 5), "moderate": (5, 6, 8, 10, 12)}


def scattered(spec: LangSpec, pool: list[Func], targets: dict[str, int], rng: random.Random,
              attempts: int = 4) -> tuple[list[Cand], dict]:
    """Variants of pool functions (in order) until each band has its target count: for the
    band that needs most, k scattered edits (k from SCATTER_EDITS), renaming on every other
    variant; a variant is kept when it falls in a band that still needs pairs."""
    need = dict(targets)
    out: list[Cand] = []
    st = Counter()
    donors = nm_scatter.donor_statements(spec, pool, random.Random(rng.random()))
    for f in pool:
        if all(v <= 0 for v in need.values()):
            break
        target = max(need, key=lambda b: need[b])
        renaming = len(out) % 2 == 1
        for attempt in range(attempts):
            k = rng.choice(SCATTER_EDITS[target])
            res = nm_scatter.scatter(spec, f, rng, k, renaming, donors)
            st["tries"] += 1
            if res is None:
                st["too_few_edits"] += 1
                continue
            text, ops = res
            p = nm_funcs.parse(spec, text, f.node_type)
            if p is None:
                st["syntax_error"] += 1
                continue
            g = nm_funcs.make_func(spec, p, f.origin, f.project, f.relpath, f.line, f.node_type,
                                   f.name, f.qual, f.params)
            m = measure(f, g)
            b = band(m["similarity"], m["identical"])
            if need.get(b, 0) > 0:
                need[b] -= 1
                out.append(Cand(f, g, m, {"ops": ops, "edits": k, "renamed": "rename" in ops}))
                st[f"kept_{b}"] += 1
                break
            st[f"outside_{b}"] += 1
    st["functions_tried"] = len({c.a.key for c in out}) + 0
    return out, dict(st)
