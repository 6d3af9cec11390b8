#!/usr/bin/env python3
"""anypush.8 and anypush.conf.example are written from the option table:
every option --help lists is in both, with the same default; the man page
has its sections and passes `mandoc -T lint` and `man -l` without a
warning.

Environment: ANYPUSH_BIN (the binary), ANYPUSH_MAN (the anypush.8 make
built). Prints TAP. Runs the binary only with --help, --help-man and
--help-config: no network."""
import os
import re
import shutil
import subprocess
import tempfile
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
BIN = os.environ.get("ANYPUSH_BIN") or str(TOP / "src" / "anypush")
MAN = Path(os.environ.get("ANYPUSH_MAN") or TOP / "anypush.8")
SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "FILES", "SIGNALS", "EXIT STATUS",
            "SEE ALSO"]

_n = 0
_failed = 0


def ok(cond, name, diag=None):
    global _n, _failed
    _n += 1
    print(f"{'ok' if cond else 'not ok'} {_n} - {name}")
    if not cond:
        _failed += 1
        for line in (diag or "").splitlines()[:30]:
            print(f"# {line}")
    return cond


def run(*cmd, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)


def help_options():
    """(name, default) of each option in --help, but --help and --version"""
    out = run(BIN, "--help").stdout
    opts = []
    for line in out.splitlines():
        m = re.match(r"\s+--([a-z0-9-]+)\s+.*?(?:\[(.*)\])?$", line)
        if m and m.group(1) not in ("help", "version"):
            opts.append((m.group(1), m.group(2) if m.group(2) is not None else ""))
    return opts


def main():
    print("1..11")
    opts = help_options()
    ok(len(opts) >= 20, f"--help lists the options ({len(opts)})")
    man = MAN.read_text() if MAN.exists() else ""
    ok(man.startswith(".\\\"") and ".TH ANYPUSH 8" in man, f"{MAN} is a section 8 page")

    sections = re.findall(r"^\.SH (.*)$", man, re.M)
    ok(sections == SECTIONS, "the sections, in order", f"have {sections}\nwant {SECTIONS}")

    # each option a .TP entry with its default; numbers with their range
    missing = []
    for name, default in opts:
        roff = "\\-\\-" + name.replace("-", "\\-")
        m = re.search(r"^\.BI " + re.escape(roff) + r' " [A-Z]+"\n(.*?)(?=^\.TP|^\.SH)', man,
                      re.M | re.S)
        want = "Default: " + (default.replace("-", "\\-") if default else "none")
        if not m or want not in m.group(1):
            missing.append(f"--{name} (want '{want}')")
    ok(not missing, "every option of --help is in the man page with its default",
       "\n".join(missing))
    ok(re.search(r"^\.B SIGTERM, SIGINT$", man, re.M) and re.search(r"^\.B 2$", man, re.M),
       "SIGNALS and EXIT STATUS are filled in")

    if shutil.which("mandoc"):
        r = run("mandoc", "-T", "lint", "-W", "warning", str(MAN))
        ok(r.returncode == 0 and not (r.stdout + r.stderr).strip(), "mandoc -T lint: no warnings",
           r.stdout + r.stderr)
    else:
        ok(False, "mandoc -T lint", "mandoc is not installed: scripts/setup installs it")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C")
    if shutil.which("man"):
        r = run("man", "--warnings", "-l", str(MAN), env=env)
        ok(r.returncode == 0 and not r.stderr.strip() and "--history-size" in r.stdout,
           "man -l renders it, no warnings", r.stderr)
    else:
        ok(False, "man -l", "man is not installed (package man-db): scripts/setup installs it")

    # the example config: each option commented out, at the --help default
    conf = run(BIN, "--help-config").stdout
    lines = [l for l in conf.splitlines() if l.strip()]
    bad = []
    for name, default in opts:
        if name == "config":
            continue  # a config file cannot name another one
        want = f"#{name} = {default}".rstrip()
        if want not in lines:
            bad.append(want)
    ok(not bad, "the example config has every option at its default", "\n".join(bad))
    live = [l for l in lines if not l.startswith("#")]
    ok(not live, "the example config sets nothing (all commented out)", "\n".join(live))
    # and the gateway reads it as it is, every line uncommented too
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "anypush.conf")
        with open(path, "w") as f:
            f.write(conf)
        r = run(BIN, "--config", path, "--version")
        ok(r.returncode == 0, "the example config, as generated, is a valid config file", r.stderr)
        with open(path, "w") as f:
            f.write("\n".join(l[1:] if l.startswith("#") and " = " in l else l for l in conf.splitlines()) + "\n")
        r = run(BIN, "--config", path, "--version")
        ok(r.returncode == 0, "the example config, every option uncommented, is a valid config file", r.stderr)
    return 1 if _failed else 0


if __name__ == "__main__":
    sys.exit(main())
