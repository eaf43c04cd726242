"""An extra check of independent Python pairs: both functions are imported from their
unpacked packages and run on the same inputs (a fixed battery chosen by parameter count,
each argument order tried), in a child process with a time limit. A pair "agrees" when at
least one input runs in both and no input that runs in both gives different results;
generators and iterators are compared by their first 50 items."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = r'''
import importlib, itertools, json, signal, sys
from collections.abc import Iterator, Iterable, Mapping
jobs = json.loads(sys.stdin.read())
for root in {j[k] for j in jobs for k in ("root_a", "root_b")}:
    sys.path.insert(0, root)

class Timeout(Exception):
    pass

def alarm(*_):
    raise Timeout()

signal.signal(signal.SIGALRM, alarm)

def norm(x, depth=0):
    if depth > 3:
        return repr(x)
    if isinstance(x, (str, bytes, int, float, bool, type(None))):
        return x
    if isinstance(x, Mapping):
        return {repr(k): norm(v, depth + 1) for k, v in x.items()}
    if isinstance(x, (set, frozenset)):
        return sorted(repr(v) for v in x)
    if isinstance(x, (Iterator, Iterable)) and not callable(x):
        return [norm(v, depth + 1) for v in itertools.islice(iter(x), 50)]
    return repr(type(x))

SEQ = [3, 1, 2, 1, 3, 5]
BATTERY = {
    1: [(SEQ,), ("hello world",), ([[1, [2, 3]], 4],), ({"a": 1, "b": 2},), (5,), ([],)],
    2: [(SEQ, 2), ("hello world", 3), (SEQ, len), (SEQ, lambda v: v % 2), ([1, 2, 3], [4, 5, 6]),
        ({"a": 1, "b": 2}, ["a"]), (SEQ, None)],
    3: [(SEQ, 2, 1), ("hello world", 2, "x"), (SEQ, lambda v: v % 2, None)],
}

def call(fn, args):
    signal.alarm(1)
    try:
        return True, norm(fn(*args))
    except Timeout:
        return False, None
    except Exception:
        return False, None
    finally:
        signal.alarm(0)

out = []
for j in jobs:
    res = {"agree": 0, "disagree": 0}
    try:
        fa = getattr(importlib.import_module(j["mod_a"]), j["fn_a"])
        fb = getattr(importlib.import_module(j["mod_b"]), j["fn_b"])
    except Exception as e:
        res["error"] = type(e).__name__
        out.append(res)
        continue
    n = min(j["params_a"], j["params_b"]) or 1
    for args in BATTERY.get(n, []):
        ok_a, ra = call(fa, args)
        best = None
        for perm in ([args] if len(args) < 2 else [args, args[::-1]]):
            ok_b, rb = call(fb, perm)
            if ok_a and ok_b:
                best = (ra == rb) if best is None else (best or ra == rb)
        if best is True:
            res["agree"] += 1
        elif best is False:
            res["disagree"] += 1
    out.append(res)
print(json.dumps(out))
'''


def run(pairs: list, roots: dict[str, Path]) -> list[dict | None]:
    """For each (a, b) Func pair: {"agree", "disagree", "verdict"} or None when the pair is
    not two module-level Python functions."""
    jobs, index = [], []
    for k, (a, b) in enumerate(pairs):
        if a.lang != "python" or "." in a.qual or "." in b.qual:
            continue
        if a.origin not in roots or b.origin not in roots:
            continue
        jobs.append({"root_a": str(roots[a.origin]), "root_b": str(roots[b.origin]),
                     "mod_a": a.relpath[:-3].replace("/", ".").removesuffix(".__init__"),
                     "mod_b": b.relpath[:-3].replace("/", ".").removesuffix(".__init__"),
                     "fn_a": a.name, "fn_b": b.name, "params_a": a.params, "params_b": b.params})
        index.append(k)
    out: list[dict | None] = [None] * len(pairs)
    if not jobs:
        return out
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(jobs), text=True,
                              capture_output=True, timeout=120)
        results = json.loads(proc.stdout)
    except (subprocess.TimeoutExpired, ValueError):
        return out
    for k, r in zip(index, results):
        verdict = ("error" if "error" in r else "disagree" if r["disagree"] else
                   "agree" if r["agree"] else "untested")
        out[k] = {**r, "verdict": verdict}
    return out
