#!/usr/bin/env python3
"""Every file the user-facing docs name exists in the repository.

Reads README.md, docs/*.md, docs/internals/*.md and bench/analysis.md (which
docs/benchmarks.md includes). Checks:

1. every repository path they name (`src/...`, `docs/...`, `tests/...`,
   `bench/...`, `web/...`, `scripts/...`; globs such as `src/transport*.c`
   must match something) exists, or is a program Makefile.am builds;
2. every relative Markdown link points at a file that exists;
3. every `NAME.md` they name in backquotes is a file of the repository:
   a doc must not send readers to a page they do not have.

Prints TAP. Reads files only."""
import re
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
ROOTS = ("src", "docs", "tests", "bench", "web", "scripts")
PATH_RE = re.compile(r"(?<![\w/.:-])((?:%s)/[\w.*/-]*[\w*/])" % "|".join(ROOTS))
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
MD_RE = re.compile(r"`([\w./-]*\.md)`")
# files a doc names on purpose although they do not exist
EXAMPLES = {"src/transport_stream.c"}  # internals/transports.md: how to add a fifth transport
EXAMPLES.add("bench/out")  # bench/run makes it for its results and report


def programs():
    """what `make` builds, so a doc may name src/anypush before a build"""
    text = (TOP / "Makefile.am").read_text()
    out = set()
    for m in re.finditer(r"^\w*PROGRAMS\s*[+]?=\s*((?:.*\\\n)*.*)$", text, re.M):
        out.update(w for w in m.group(1).replace("\\\n", " ").split() if "/" in w)
    return out


def paths(text):
    """repository paths named in the text, without link targets (checked as
    links) and without patterns such as tests/unit/test_<module>.c"""
    for m in PATH_RE.finditer(text):
        if text[max(0, m.start() - 2):m.start()] == "](" or text[m.end():m.end() + 1] in ("<", "{"):
            continue
        yield m.group(1)


def exists(rel, built):
    rel = rel.rstrip("/")
    if rel in built or rel in EXAMPLES:
        return True
    if any(c in rel for c in "*?["):
        return any(TOP.glob(rel))
    return (TOP / rel).exists()


def main():
    docs = [TOP / "README.md", TOP / "bench" / "analysis.md"]
    docs += sorted((TOP / "docs").glob("*.md")) + sorted((TOP / "docs" / "internals").glob("*.md"))
    built = programs()
    n = failed = 0
    for doc in docs:
        text = doc.read_text()
        name = doc.relative_to(TOP).as_posix()
        missing = sorted({p for p in paths(text) if not exists(p, built)})
        links = []
        for target in LINK_RE.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#")[0]
            if path and not (doc.parent / path).exists():
                links.append(target)
        pages = sorted({p for p in MD_RE.findall(text)
                        if not (TOP / p).exists() and not (doc.parent / p).exists()})
        for what, bad in (("repository paths", missing), ("relative links", links),
                          ("pages named in backquotes", pages)):
            n += 1
            if bad:
                failed += 1
                print(f"not ok {n} - {name}: every one of its {what} exists")
                for b in bad:
                    print(f"# missing: {b}")
            else:
                print(f"ok {n} - {name}: every one of its {what} exists")
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
