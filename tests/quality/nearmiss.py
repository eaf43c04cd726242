"""Near-miss evaluation entry point (called by scripts/quality-nearmiss): builds the set into
tests/quality/work/nearmiss/ (+ pairs.json, manifest.json) with nm_build.py, then scores
Periodic on it with nearmiss_eval.py."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from langs import build_specs  # noqa: E402
import nm_build  # noqa: E402
import nearmiss_eval  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="smaller set (fewer pairs and distractors, no Linux releases)")
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--corpus", default=os.environ.get("CORPUS", str(REPO.parent / "corpus")))
    ap.add_argument("--work", default=str(HERE / "work"))
    ap.add_argument("--results", default=str(HERE / "nearmiss-results.json"))
    ap.add_argument("--sweep", default="0.6,0.5",
                    help="--similarity values run besides the default (comma-separated)")
    ap.add_argument("--no-build", action="store_true", help="evaluate the existing set")
    ap.add_argument("--no-families", action="store_true",
                    help="skip the dense-family runs (nm_family.py)")
    ap.add_argument("--no-eval", action="store_true", help="build the set only")
    ap.add_argument("--dump-independent", metavar="FILE",
                    help="write both bodies of every independent candidate pair to FILE")
    args = ap.parse_args()

    corpus = Path(args.corpus).resolve()
    work = Path(args.work).resolve()
    if not args.no_build:
        if not all((corpus / "large" / f".done-{lang}").exists() for lang in
                   ("python", "javascript", "typescript", "java", "rust", "go", "c")):
            sys.exit(f"corpus not ready: {corpus}/large/.done-<lang> missing "
                     f"(build it with ../shared/bench/corpus.sh {corpus} --size large)")
        t = time.monotonic()
        meta = nm_build.build(build_specs(), corpus, work / "nearmiss", args.seed, args.quick,
                              Path(args.dump_independent) if args.dump_independent else None)
        c = nm_build.counts(meta["pairs"])
        nm_build.log(f"built {len(meta['files'])} files, {c['total']} pairs in "
                     f"{time.monotonic() - t:.0f} s")
    if args.no_eval:
        return 0
    sweep = [float(x) for x in args.sweep.split(",") if x]
    corpus_for_families = None if args.no_families else Path(args.corpus).resolve()
    return nearmiss_eval.main(work, Path(args.results), sweep, args.seed, corpus_for_families)


if __name__ == "__main__":
    sys.exit(main())
