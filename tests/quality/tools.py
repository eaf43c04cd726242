"""Runs the detectors on the dataset and turns each report into links: (file A, lines in A,
file B, lines in B) meaning "the tool says these regions are clones of each other"."""

from __future__ import annotations

import json
import os
import subprocess
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

Link = tuple[str, int, int, str, int, int]

# PMD CPD language ids for our dataset languages (CPD has no separate C lexer: C goes to cpp).
CPD_LANGUAGE = {"python": "python", "javascript": "ecmascript", "typescript": "typescript",
                "java": "java", "rust": "rust", "go": "go", "c": "cpp"}
JSCPD_FORMATS = "python,javascript,typescript,java,rust,go,c"


@dataclass
class ToolRun:
    tool: str
    config: str
    links: list[Link] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    skipped_files: int = 0  # files the tool could not read (lexical errors)
    # (file, file) sorted -> the highest similarity the tool reported between the two files
    reported: dict[tuple[str, str], float] = field(default_factory=dict)

    def note_similarity(self, fa: str, fb: str, sim) -> None:
        if sim is None or fa == fb:
            return
        key = (fa, fb) if fa < fb else (fb, fa)
        self.reported[key] = max(self.reported.get(key, 0.0), float(sim))


def _rel(path: str, dataset: Path) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            return p.resolve().relative_to(dataset.resolve()).as_posix()
        except ValueError:
            return p.as_posix()
    return p.as_posix()


def _group_links(members: list[tuple[str, int, int]]) -> list[Link]:
    return [(a[0], a[1], a[2], b[0], b[1], b[2]) for a, b in combinations(members, 2)]


def run_periodic(binary: Path, dataset: Path, work: Path, extra: list[str]) -> ToolRun:
    out = work / ("periodic" + "".join(extra).replace("--", "-") + ".json")
    run = ToolRun("periodic", " ".join(extra) or "defaults")
    cmd = [str(binary), "scan", str(dataset), "--format", "json", "--no-index",
           "--output", str(out), *extra]
    t = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    run.seconds = time.monotonic() - t
    if proc.returncode not in (0, 1) or not out.exists():
        run.error = f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"
        return run
    report = json.loads(out.read_text())
    for pair in report.get("pairs", []):
        a, b = pair["a"], pair["b"]
        run.links.append((_rel(a["path"], dataset), a["start_line"], a["end_line"],
                          _rel(b["path"], dataset), b["start_line"], b["end_line"]))
        run.note_similarity(run.links[-1][0], run.links[-1][3], pair.get("similarity"))
    from_pairs = set(run.reported)
    for pattern in report.get("patterns", []):
        members = [(_rel(m["path"], dataset), m["start_line"], m["end_line"])
                   for m in pattern.get("members", [])]
        links = _group_links(members)
        run.links.extend(links)
        for link in links:
            key = (link[0], link[3]) if link[0] < link[3] else (link[3], link[0])
            if key not in from_pairs:  # a pattern's similarity only where no pair says
                run.note_similarity(link[0], link[3], pattern.get("similarity"))
    return run


def run_jscpd(binary: Path, dataset: Path, work: Path, min_tokens: int, min_lines: int,
              gap: int) -> ToolRun:
    out_dir = work / f"jscpd-{min_tokens}-{min_lines}-{gap}"
    args = ["--min-tokens", str(min_tokens), "--min-lines", str(min_lines), "--mode", "weak",
            "--ignore-identifiers", "--ignore-literals", "--max-gap-lines", str(gap),
            "--similarity", "0.7", "--format", JSCPD_FORMATS]
    run = ToolRun("jscpd", " ".join(args))
    cmd = [str(binary), str(dataset), *args, "--reporters", "json", "--output", str(out_dir),
           "--absolute", "--silent", "--no-gitignore", "--max-size", "10mb"]
    t = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    run.seconds = time.monotonic() - t
    report_path = out_dir / "jscpd-report.json"
    if not report_path.exists():
        run.error = f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"
        return run
    report = json.loads(report_path.read_text())
    for dup in report.get("duplicates", []):
        a, b = dup["firstFile"], dup["secondFile"]
        run.links.append((_rel(a["name"], dataset), a["startLoc"]["line"], a["endLoc"]["line"],
                          _rel(b["name"], dataset), b["startLoc"]["line"], b["endLoc"]["line"]))
    return run


def _cpd_one(pmd: Path, dataset: Path, work: Path, lang: str, args: list[str]):
    out = work / f"cpd-{lang}-{args[1]}.xml"
    extra = ["--ignore-annotations"] if lang == "java" else []
    cmd = [str(pmd), "cpd", "--language", CPD_LANGUAGE[lang], *args, *extra,
           "--format", "xml", "--no-fail-on-violation", "--no-fail-on-error",
           "-d", str(dataset / lang), "-r", str(out)]
    # Startup flags only (client compiler, serial GC): seven short JVM runs start faster.
    env = {**os.environ, "PMD_JAVA_OPTS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx1g"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    skipped = proc.stderr.count("Skipping file")
    if not out.exists():
        return [], skipped, f"{lang}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}"
    links: list[Link] = []
    for dup in ET.parse(out).getroot().iter():
        if not dup.tag.endswith("duplication"):
            continue
        members = [(_rel(f.get("path"), dataset), int(f.get("line")), int(f.get("endline")))
                   for f in dup if f.tag.endswith("file")]
        links.extend(_group_links(members))
    return links, skipped, None


def run_cpd(pmd: Path, dataset: Path, work: Path, langs: list[str], min_tokens: int) -> ToolRun:
    """One CPD run per language (CPD takes one --language), two at a time (two cores)."""
    args = ["--minimum-tokens", str(min_tokens), "--ignore-identifiers", "--ignore-literals"]
    run = ToolRun("cpd", " ".join(args) + " (+ --ignore-annotations for java)")
    t = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for links, skipped, err in pool.map(lambda l: _cpd_one(pmd, dataset, work, l, args), langs):
            run.links.extend(links)
            run.skipped_files += skipped
            if err:
                run.error = err
    run.seconds = time.monotonic() - t
    return run
