"""The pinned releases the near-miss set is made from, and how each is unpacked into a source
tree (CACHE/src/KEY) that holds only the directories the set uses.

- REAL_EDITS: one project in two releases per language; the same function in both is a
  real edit.
- INDEPENDENT: packages written by different people that do the same jobs (utility
  libraries, libcs, micro-packages), grouped in families whose functions are paired by task.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import registry as R


@dataclass
class Tree:
    """An unpacked release: `root` holds the kept files; `label` names it in pairs and the
    manifest (`project-version`)."""
    key: str
    label: str
    project: str
    language: str
    root: Path
    # sub-directories of root that hold the code (paths relative to them are the file
    # identities used to match releases)
    dirs: list[str] = field(default_factory=lambda: ["."])
    # (old prefix, new prefix) applied to the older release's paths before matching, for a
    # package renamed between releases (commons-lang -> commons-lang3)
    rename: tuple[str, str] | None = None
    # files (paths relative to root) left out: packages that ship one module in several
    # formats (.js / .mjs / .cjs builds) keep one
    exclude: str | None = None


def _lang_ext(lang: str) -> tuple[str, ...]:
    return {"python": (".py",), "javascript": (".js", ".mjs", ".cjs"), "typescript": (".ts",),
            "java": (".java",), "rust": (".rs",), "go": (".go",), "c": (".c",)}[lang]


def _code_filter(lang: str, dirs: list[str]):
    exts = _lang_ext(lang)

    def keep(name: str) -> bool:
        if not name.endswith(exts) or name.endswith((".d.ts", ".min.js")):
            return False
        if "/testdata/" in name or "/__tests__/" in name:
            return False
        return any(d == "." or name.startswith(d.rstrip("/") + "/") for d in dirs)
    return keep


# ---------------------------------------------------------------- per-registry trees

def pypi_tree(name: str, version: str, project: str, dirs: list[str]) -> Tree:
    key = f"pypi/{name}-{version}"
    whl = R.pypi_wheel(name, version)
    root = R.unpacked(key, lambda out: R.extract_zip(whl, out, _code_filter("python", dirs)))
    return Tree(key, f"{name}-{version}", project, "python", root, dirs)


def npm_tree(name: str, version: str, project: str, lang: str, dirs: list[str],
             exclude: str | None = None) -> Tree:
    key = f"npm/{name.lstrip('@').replace('/', '-')}-{version}"
    tgz = R.npm_tarball(name, version)
    root = R.unpacked(key, lambda out: R.extract_tar(tgz, out, _code_filter(lang, dirs), strip=1))
    return Tree(key, f"{name}-{version}", project, lang, root, dirs, exclude=exclude)


def crate_tree(name: str, version: str, project: str, dirs: list[str]) -> Tree:
    key = f"crates/{name}-{version}"
    path = R.crate(name, version)
    root = R.unpacked(key, lambda out: R.extract_tar(path, out, _code_filter("rust", dirs), strip=1))
    return Tree(key, f"{name}-{version}", project, "rust", root, dirs)


def jdk_tree(major: int, version: str, suite: str, dirs: list[str]) -> Tree:
    deb, used = R.debian_binary(f"openjdk-{major}-source", version, suite)
    key = f"debian/openjdk-{major}-{used.replace('~', '_').replace('+', '_')}"

    def fill(out: Path) -> None:
        srczip = R.deb_member(deb, f"usr/lib/jvm/openjdk-{major}/lib/src.zip", out / "src.zip")
        R.extract_zip(srczip, out, _code_filter("java", dirs))
        srczip.unlink()
    root = R.unpacked(key, fill)
    return Tree(key, f"openjdk-{major}-source-{used}", "openjdk", "java", root, dirs)


def go_tree(minor: str, version: str, suite: str, dirs: list[str]) -> Tree:
    deb, used = R.debian_binary(f"golang-{minor}-src", version, suite)
    key = f"debian/golang-{minor}-{used.replace('~', '_').replace('+', '_')}"
    root = R.unpacked(key, lambda out: R.deb_tree(deb, out, f"usr/share/go-{minor}/src",
                                                  _code_filter("go", dirs)))
    return Tree(key, f"golang-{minor}-src-{used}", "go", "go", root, dirs)


def linux_tree(series: str, version: str, suite: str, dirs: list[str]) -> Tree:
    deb, used = R.debian_binary(f"linux-source-{series}", version, suite)
    key = f"debian/linux-{used.replace('~', '_').replace('+', '_')}"

    def fill(out: Path) -> None:
        # The kernel tarball inside the .deb is ~150 MB of xz: stream it through tar rather
        # than unpacking it to disk.
        inner = f"./usr/src/linux-source-{series}.tar.xz"
        pats = [f"linux-source-{series}/{d}/*" for d in dirs]
        p1 = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        p2 = subprocess.Popen(["tar", "-xO", inner], stdin=p1.stdout, stdout=subprocess.PIPE)
        p1.stdout.close()
        p3 = subprocess.run(["tar", "-xJ", "-C", str(out), "--strip-components=1", "--wildcards",
                             *pats], stdin=p2.stdout)
        p2.stdout.close()
        if p2.wait() or p1.wait() or p3.returncode:
            raise RuntimeError(f"unpacking {deb.name} failed")
        for f in list(out.rglob("*")):
            if f.is_file() and not f.name.endswith(".c"):
                f.unlink()
    root = R.unpacked(key, fill)
    return Tree(key, f"linux-source-{series}-{used}", "linux", "c", root, dirs)


def debian_source_tree(source: str, version: str, suite: str, project: str, lang: str,
                       dirs: list[str]) -> Tree:
    orig, used = R.debian_orig(source, version, suite)
    key = f"debian-src/{source}-{used.replace('~', '_').replace('+', '_')}"
    root = R.unpacked(key, lambda out: R.extract_tar(orig, out, _code_filter(lang, dirs), strip=1))
    return Tree(key, f"{source}-{used}", project, lang, root, dirs)


# ---------------------------------------------------------------- the pins

JAVA_DIRS = ["java.base/java/util", "java.base/java/nio", "java.base/java/time"]
JAVA_INDEPENDENT_DIRS = ["java.base/java/util", "java.base/java/lang", "java.base/java/io"]
GO_DIRS = ["net", "go", "encoding"]
LINUX_DIRS = ["fs/ext4", "net/ipv4", "drivers/net/ethernet/intel"]


def real_edit_pairs(quick: bool) -> list[tuple[Tree, Tree]]:
    """(older, newer) release of one project per language."""
    out = [
        (pypi_tree("django", "4.2.16", "django", ["django"]),
         pypi_tree("django", "5.1.4", "django", ["django"])),
        (npm_tree("eslint", "8.57.0", "eslint", "javascript", ["lib"]),
         npm_tree("eslint", "9.15.0", "eslint", "javascript", ["lib"])),
        (npm_tree("rxjs", "6.6.7", "rxjs", "typescript", ["src/internal"]),
         npm_tree("rxjs", "7.8.1", "rxjs", "typescript", ["src/internal"])),
        (crate_tree("tokio", "1.25.0", "tokio", ["src"]),
         crate_tree("tokio", "1.41.1", "tokio", ["src"])),
        (jdk_tree(17, "17.0.19+10-1~deb12u2", "bookworm", sorted(set(JAVA_DIRS + JAVA_INDEPENDENT_DIRS))),
         jdk_tree(21, "21.0.12.1+1-1~deb13u1", "trixie", JAVA_DIRS)),
        (go_tree("1.19", "1.19.8-2", "bookworm", GO_DIRS),
         go_tree("1.24", "1.24.4-1", "trixie", GO_DIRS)),
    ]
    lang2 = debian_source_tree("libcommons-lang-java", "2.6-10+deb13u1", "trixie",
                               "commons-lang", "java", ["src/main/java"])
    lang2.rename = ("src/main/java/org/apache/commons/lang/", "src/main/java/org/apache/commons/lang3/")
    out.append((lang2, debian_source_tree("libcommons-lang3-java", "3.17.0-1+deb13u1", "trixie",
                                          "commons-lang", "java", ["src/main/java"])))
    if not quick:
        out.append((linux_tree("6.1", "6.1.172-1", "bookworm", LINUX_DIRS),
                    linux_tree("6.12", "6.12.94-1", "trixie", LINUX_DIRS)))
    # The Java pair compares only the real-edit directories of the older tree.
    older, newer = out[4]
    out[4] = (Tree(older.key, older.label, older.project, older.language, older.root, JAVA_DIRS),
              newer)
    return out


def independent_families(quick: bool) -> dict[str, list[Tree]]:
    """Families of packages doing the same jobs, by language."""
    jdk = jdk_tree(17, "17.0.19+10-1~deb12u2", "bookworm", sorted(set(JAVA_DIRS + JAVA_INDEPENDENT_DIRS)))
    jdk = Tree(jdk.key, jdk.label, "openjdk", "java", jdk.root, JAVA_INDEPENDENT_DIRS)
    main = ["src/main/java"]
    fams = {
        "java": [
            debian_source_tree("libcommons-lang3-java", "3.17.0-1+deb13u1", "trixie",
                               "commons-lang3", "java", main),
            debian_source_tree("commons-text", "1.13.1-1", "trixie", "commons-text", "java", main),
            debian_source_tree("libcommons-collections4-java", "4.4-2", "trixie",
                               "commons-collections4", "java", main),
            debian_source_tree("commons-io", "2.19.0-1", "trixie", "commons-io", "java", main),
            debian_source_tree("guava-libraries", "32.0.1-1", "trixie", "guava", "java",
                               ["guava/src"]),
            debian_source_tree("libspring-java", "4.3.30-3", "trixie", "spring", "java",
                               ["spring-core/src/main/java/org/springframework/util"]),
            debian_source_tree("commons-math3", "3.6.1-4", "trixie", "commons-math3", "java",
                               ["src/main/java/org/apache/commons/math3/util"]),
            jdk,
        ],
        "c": [
            debian_source_tree("musl", "1.2.5-3.1~deb13u1", "trixie", "musl", "c", ["src"]),
            debian_source_tree("dietlibc", "0.34~cvs20160606-18", "trixie", "dietlibc", "c",
                               ["lib", "libstdio", "libugly", "libcruft", "libshell", "libregex",
                                "libcompat", "libdl"]),
            debian_source_tree("klibc", "2.0.14-1", "trixie", "klibc", "c", ["usr/klibc"]),
            debian_source_tree("newlib", "4.5.0.20241231-1", "trixie", "newlib", "c",
                               ["newlib/libc/stdlib", "newlib/libc/string",
                                "newlib/libc/search", "newlib/libc/stdio", "newlib/libc/misc",
                                "newlib/libc/ctype", "newlib/libc/time", "newlib/libc/posix",
                                "newlib/libc/argz", "newlib/libc/locale"]),
            debian_source_tree("glibc", "2.41-12+deb13u5", "trixie", "glibc", "c",
                               ["string", "stdlib", "search", "ctype", "time", "misc", "posix",
                                "argp"]),
            debian_source_tree("libbsd", "0.12.2-2", "trixie", "libbsd", "c", ["src"]),
            debian_source_tree("uclibc", "1.0.35-1", "trixie", "uclibc", "c",
                               ["libc/string", "libc/stdlib", "libc/misc", "libc/inet",
                                "libc/unistd", "libc/signal", "libc/pwd_grp"]),
            debian_source_tree("avr-libc", "1:2.2.1-1", "trixie", "avr-libc", "c",
                               ["libc/stdlib", "libc/string", "libc/misc", "libc/time"]),
        ],
        "python": [
            pypi_tree("more-itertools", "10.5.0", "more-itertools", ["more_itertools"]),
            pypi_tree("toolz", "1.0.0", "toolz", ["toolz", "tlz"]),
            pypi_tree("boltons", "24.1.0", "boltons", ["boltons"]),
            pypi_tree("funcy", "2.0", "funcy", ["funcy"]),
            pypi_tree("pydash", "8.0.4", "pydash", ["pydash"]),
            pypi_tree("ubelt", "1.4.3", "ubelt", ["ubelt"]),
            pypi_tree("inflection", "0.5.1", "inflection", ["inflection"]),
            pypi_tree("pyhumps", "3.8.0", "pyhumps", ["humps"]),
        ],
        "javascript": [
            npm_tree("lodash", "4.18.1", "lodash", "javascript", ["."]),
            npm_tree("underscore", "1.13.8", "underscore", "javascript", ["modules"]),
            npm_tree("es-toolkit", "1.53.2", "es-toolkit", "javascript", ["dist"],
                     r"\.(js|cjs)$|browser\.global"),
            npm_tree("ramda", "0.32.0", "ramda", "javascript", ["src"]),
            npm_tree("remeda", "2.62.2", "remeda", "javascript", ["dist"], r"\.cjs$"),
            npm_tree("radash", "12.1.1", "radash", "javascript", ["dist"], r"^dist/(cjs|index)"),
            npm_tree("rambda", "11.3.0", "rambda", "javascript", ["src"]),
            npm_tree("mout", "1.2.4", "mout", "javascript", ["src"]),
            npm_tree("voca", "1.4.1", "voca", "javascript", ["es"]),
            npm_tree("underscore.string", "3.3.6", "underscore.string", "javascript",
                     ["."], r"^dist/"),
            npm_tree("moderndash", "4.0.2", "moderndash", "javascript", ["dist"], r"\.cjs$"),
            npm_tree("collect.js", "4.36.1", "collect.js", "javascript", ["src/methods"]),
            npm_tree("locutus", "3.0.36", "locutus", "javascript", ["php"]),
        ] + [npm_tree(n, v, n, "javascript", ["."], r"(^|/)(dist|umd|test)/|\.min\.js$")
             for n, v in MICRO_PACKAGES],
    }
    return fams


# One job per package (or a handful): each paired with the libraries' function of that job.
MICRO_PACKAGES = [
    ("deep-equal", "2.2.3"), ("fast-deep-equal", "3.1.3"), ("dequal", "2.0.3"),
    ("debounce", "3.0.0"), ("throttle-debounce", "5.0.2"), ("just-debounce-it", "3.2.0"),
    ("just-throttle", "4.2.0"), ("camelcase", "10.0.0"), ("escape-html", "1.0.3"),
    ("html-escaper", "3.0.3"), ("escape-goat", "4.0.0"), ("semver-compare", "1.0.0"),
    ("compare-versions", "6.1.1"), ("flat", "6.0.1"), ("p-retry", "9.0.0"),
    ("async-retry", "1.3.3"), ("just-compare", "2.3.0"), ("just-flatten-it", "5.2.0"),
    ("just-camel-case", "6.2.0"), ("just-pick", "4.2.0"), ("just-omit", "2.2.0"),
    ("just-zip-it", "3.2.0"), ("just-unique", "4.2.0"), ("just-range", "4.2.0"),
    ("just-partition", "2.2.0"), ("just-group-by", "2.2.0"), ("just-memoize", "2.2.0"),
    ("just-once", "2.2.0"), ("just-clone", "6.2.0"), ("just-kebab-case", "4.2.0"),
    ("just-snake-case", "3.2.0"), ("just-map-values", "3.2.0"), ("just-intersect", "4.3.0"),
    ("just-union", "3.2.0"), ("just-remove", "3.2.0"), ("just-shuffle", "4.2.0"),
    ("just-last", "3.2.0"), ("just-index", "4.2.0"), ("just-extend", "6.2.0"),
    ("just-diff", "6.0.2"), ("leven", "4.1.0"),
]
