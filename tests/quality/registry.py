"""Fetches pinned source releases from package registries, through their ordinary clients
where there is one, into a download cache (tests/quality/.cache, not committed), and unpacks
them once into the cache's src/ directory:

- PyPI: `pip download --no-deps --only-binary :all:` (pure-Python wheels are zip files of the
  sources; no build step runs);
- npm: `npm pack NAME@VERSION`;
- crates.io: the .crate tarball from static.crates.io;
- Debian: binary (.deb) and source (.orig.tar.*) packages from the deb.debian.org pool, found
  in the suite's Packages.xz / Sources.xz index and checked against its SHA-256.

Debian's archive drops superseded versions from the pool (security updates of linux-source
and openjdk), so a pin that is no longer listed falls back to the version the index offers,
with a warning; every fetch records what was actually used in `Fetched`, which the caller
writes to the dataset manifest."""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("QUALITY_CACHE", HERE / ".cache"))
DEBIAN = "http://deb.debian.org/debian"
CRATES = "https://static.crates.io/crates"
# A Debian index older than this is fetched again when a pin is missing from it.
INDEX_MAX_AGE = 6 * 3600


@dataclass
class Fetched:
    registry: str
    name: str
    version: str
    pinned: str
    source: str  # URL or client command
    sha256: str = ""
    note: str = ""


@dataclass
class Log:
    fetched: list[Fetched] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        unique = {(f.registry, f.name, f.version): asdict(f) for f in self.fetched}
        return {"fetched": sorted(unique.values(), key=lambda f: (f["registry"], f["name"], f["version"])),
                "warnings": sorted(set(self.warnings))}


LOG = Log()


def say(msg: str) -> None:
    print(f"[nearmiss] {msg}", file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, dest: Path, sha256: str | None = None) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    say(f"downloading {url}")
    for attempt in range(3):
        try:
            with urllib.request.urlopen(url, timeout=120) as r, tmp.open("wb") as f:
                shutil.copyfileobj(r, f, 1 << 20)
            break
        except OSError as e:
            if attempt == 2:
                raise RuntimeError(f"download failed: {url}: {e}") from e
            time.sleep(2 + 3 * attempt)
    if sha256 and _sha256(tmp) != sha256:
        tmp.unlink()
        raise RuntimeError(f"checksum mismatch for {url}")
    tmp.rename(dest)


# ---------------------------------------------------------------- PyPI and npm clients

def pypi_wheel(name: str, version: str) -> Path:
    """The pure-Python wheel of NAME==VERSION (downloaded once)."""
    dest = CACHE / "pypi"
    dest.mkdir(parents=True, exist_ok=True)
    stem = name.replace("-", "_").lower()

    def find():
        for p in sorted(dest.glob("*.whl")):
            n, v = p.name.split("-")[:2]
            if n.lower() == stem and v == version:
                return p
        return None

    whl = find()
    if whl is None:
        say(f"pip download {name}=={version}")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--disable-pip-version-check", "--only-binary", ":all:",
                        f"{name}=={version}", "-d", str(dest)], check=True)
        whl = find()
        if whl is None:
            raise RuntimeError(f"pip download {name}=={version}: no wheel")
    LOG.fetched.append(Fetched("pypi", name, version, version,
                               f"pip download --no-deps --only-binary :all: {name}=={version}",
                               _sha256(whl)))
    return whl


def npm_tarball(name: str, version: str) -> Path:
    dest = CACHE / "npm"
    dest.mkdir(parents=True, exist_ok=True)
    tgz = dest / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
    if not tgz.exists():
        say(f"npm pack {name}@{version}")
        env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false",
               "npm_config_audit": "false"}
        subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=dest, check=True,
                       stdout=subprocess.DEVNULL, env=env)
        if not tgz.exists():
            raise RuntimeError(f"npm pack {name}@{version}: {tgz.name} not written")
    LOG.fetched.append(Fetched("npm", name, version, version, f"npm pack {name}@{version}",
                               _sha256(tgz)))
    return tgz


def crate(name: str, version: str) -> Path:
    dest = CACHE / "crates" / f"{name}-{version}.crate"
    url = f"{CRATES}/{name}/{name}-{version}.crate"
    if not dest.exists():
        _download(url, dest)
    LOG.fetched.append(Fetched("crates.io", name, version, version, url, _sha256(dest)))
    return dest


# ---------------------------------------------------------------- Debian pool

def _index(suite: str, kind: str, refresh: bool = False) -> Path:
    """Packages.xz (binary-all) or Sources.xz of SUITE/main, cached."""
    name = f"Packages-all-{suite}.xz" if kind == "binary" else f"Sources-{suite}.xz"
    path = CACHE / "debian" / name
    url = (f"{DEBIAN}/dists/{suite}/main/binary-all/Packages.xz" if kind == "binary"
           else f"{DEBIAN}/dists/{suite}/main/source/Sources.xz")
    stale = path.exists() and time.time() - path.stat().st_mtime > INDEX_MAX_AGE
    if not path.exists() or (refresh and stale):
        _download(url, path)
    return path


def _stanzas(path: Path, wanted: str):
    """Yields the index stanzas (dicts; multi-line fields as lists of lines) of package
    WANTED."""
    key = f"Package: {wanted}\n".encode()
    with lzma.open(path, "rb") as f:
        data = f.read()
    pos = 0
    while True:
        i = data.find(key, pos)
        if i < 0:
            return
        if i > 0 and data[i - 1:i] != b"\n":
            pos = i + 1
            continue
        end = data.find(b"\n\n", i)
        block = data[i:end if end >= 0 else len(data)].decode("utf-8", "replace")
        pos = i + 1
        fields: dict = {}
        last = None
        for line in block.split("\n"):
            if line.startswith(" ") and last:
                if not isinstance(fields[last], list):
                    fields[last] = [fields[last]] if fields[last] else []
                fields[last].append(line.strip())
            elif ":" in line:
                k, v = line.split(":", 1)
                fields[k] = v.strip()
                last = k
        yield fields


def _deb_version_key(v: str):
    import re
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", v)]


def _pick(entries: list[dict], pinned: str, what: str) -> tuple[dict | None, str]:
    for e in entries:
        if e.get("Version") == pinned:
            return e, ""
    if not entries:
        return None, ""
    best = max(entries, key=lambda e: _deb_version_key(e["Version"]))
    note = f"{what}={pinned} is no longer in the index; using {best['Version']}"
    return best, note


def _entry(suite: str, kind: str, package: str, pinned: str) -> tuple[dict, str]:
    """The index entry of PACKAGE at the pinned version (the index is fetched again once
    when the pin is missing), else the newest one with a warning note."""
    entries = list(_stanzas(_index(suite, kind), package))
    if not any(e.get("Version") == pinned for e in entries):
        entries = list(_stanzas(_index(suite, kind, refresh=True), package))
    entry, note = _pick(entries, pinned, package)
    if entry is None:
        raise RuntimeError(f"{package} not in the {suite}/main {kind} index")
    if note:
        say(f"WARNING: {note}")
        LOG.warnings.append(note)
    return entry, note


def _corpus_cache_copy(filename: str, dest: Path) -> bool:
    """The benchmark corpus script keeps the same .deb files; reuse one when present."""
    corpus = Path(os.environ.get("CORPUS", HERE.parent.parent.parent / "corpus"))
    other = corpus / ".cache" / filename
    if other.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(other, dest)
        except OSError:
            shutil.copyfile(other, dest)
        return True
    return False


def debian_binary(package: str, pinned: str, suite: str) -> tuple[Path, str]:
    """A binary package (architecture all) from SUITE: (path, version used)."""
    safe = pinned.split(":")[-1]
    dest = CACHE / "debian" / f"{package}_{safe}_all.deb"
    if dest.exists() or _corpus_cache_copy(dest.name, dest):
        LOG.fetched.append(Fetched("debian", package, pinned, pinned, f"{suite}: {dest.name}",
                                   _sha256(dest)))
        return dest, pinned
    entry, note = _entry(suite, "binary", package, pinned)
    version = entry["Version"]
    dest = CACHE / "debian" / Path(entry["Filename"]).name
    if not dest.exists() and not _corpus_cache_copy(dest.name, dest):
        _download(f"{DEBIAN}/{entry['Filename']}", dest, entry.get("SHA256"))
    LOG.fetched.append(Fetched("debian", package, version, pinned,
                               f"{DEBIAN}/{entry['Filename']}", _sha256(dest), note))
    return dest, version


def debian_orig(source: str, pinned: str, suite: str) -> tuple[Path, str]:
    """The upstream tarball (.orig.tar.*) of a Debian source package: (path, version)."""
    upstream = pinned.split(":")[-1].rsplit("-", 1)[0]
    cached = sorted((CACHE / "debian").glob(f"{source}_{upstream}.orig.tar.*"))
    if cached:
        LOG.fetched.append(Fetched("debian-source", source, pinned, pinned,
                                   f"{suite}: {cached[0].name}", _sha256(cached[0])))
        return cached[0], pinned
    entry, note = _entry(suite, "source", source, pinned)
    files = entry.get("Checksums-Sha256") or []
    for line in files:
        sha, _size, name = line.split()
        if ".orig.tar." in name and not name.endswith(".asc"):
            dest = CACHE / "debian" / name
            url = f"{DEBIAN}/{entry['Directory']}/{name}"
            if not dest.exists():
                _download(url, dest, sha)
            LOG.fetched.append(Fetched("debian-source", source, entry["Version"], pinned, url,
                                       sha, note))
            return dest, entry["Version"]
    raise RuntimeError(f"{source} {entry['Version']}: no .orig.tar in the index entry")


# ---------------------------------------------------------------- unpacking

def unpacked(key: str, fill) -> Path:
    """CACHE/src/KEY, filled once by `fill(directory)` (a stamp marks completion)."""
    out = CACHE / "src" / key
    stamp = out / ".unpacked"
    if stamp.exists():
        return out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    say(f"unpacking {key}")
    fill(out)
    stamp.touch()
    return out


def _copy_out(entries, out: Path, members, strip: int) -> None:
    """Writes (name, open) archive entries under OUT: names with `strip` leading components
    dropped, only those `members(name)` accepts (all without it)."""
    for name, open_entry in entries:
        parts = name.lstrip("./").split("/")[strip:]
        if not parts or (members and not members("/".join(parts))):
            continue
        target = out.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open_entry() as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst)


def extract_tar(archive: Path, out: Path, members=None, strip: int = 0) -> None:
    """Extracts regular files (all, or those whose name `members(name)` accepts), dropping
    `strip` leading path components."""
    with tarfile.open(archive) as tf:
        _copy_out(((m.name, lambda m=m: tf.extractfile(m)) for m in tf if m.isfile()),
                  out, members, strip)


def extract_zip(archive: Path, out: Path, members=None, strip: int = 0) -> None:
    with zipfile.ZipFile(archive) as zf:
        _copy_out(((i.filename, lambda i=i: zf.open(i)) for i in zf.infolist() if not i.is_dir()),
                  out, members, strip)


def deb_member(deb: Path, member: str, dest: Path) -> Path:
    """Copies one file out of a .deb's data archive (dpkg-deb --fsys-tarfile)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                          stdout=subprocess.PIPE) as proc:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
            for m in tf:
                if m.name.lstrip("./") == member.lstrip("./"):
                    with tf.extractfile(m) as src, dest.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
                    break
            else:
                raise RuntimeError(f"{member} not in {deb.name}")
        proc.stdout.read()
    return dest


def deb_tree(deb: Path, out: Path, prefix: str, members=None) -> None:
    """Extracts the files under PREFIX of a .deb's data archive (prefix stripped)."""
    prefix = prefix.strip("/") + "/"
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                          stdout=subprocess.PIPE) as proc:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
            for m in tf:
                name = m.name.lstrip("./")
                if not m.isfile() or not name.startswith(prefix):
                    continue
                rel = name[len(prefix):]
                if members and not members(rel):
                    continue
                target = out / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with tf.extractfile(m) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        proc.stdout.read()
