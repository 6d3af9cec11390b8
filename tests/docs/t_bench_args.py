#!/usr/bin/env python3
"""bench/run and bench/report.py write to bench/out/ unless --docs asks
for the tracked docs/benchmarks.md (a quick run on a fresh box used to
overwrite it).

bench/run --dry-run prints its plan (runs, results file, report command)
and runs nothing; report.py runs in a scratch copy of bench/, on the
committed quick results, so the source tree is not written. Prints TAP; no
network, no benchmark run."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
RUN = TOP / "bench" / "run"

_n = 0
_failed = 0


def ok(cond, name, diag=None):
    global _n, _failed
    _n += 1
    print(f"{'ok' if cond else 'not ok'} {_n} - {name}")
    if not cond:
        _failed += 1
        for line in (diag or "").splitlines()[-20:]:
            print(f"# {line}")
    return cond


def plan(*args):
    r = subprocess.run([sys.executable, str(RUN), *args, "--dry-run"], capture_output=True, text=True,
                       timeout=60)
    lines = r.stdout.splitlines()
    get = lambda k: next((l[len(k) + 1:] for l in lines if l.startswith(k + " ")), None)  # noqa: E731
    return r, [l for l in lines if l.startswith("run ")], get("results"), get("report")


def main():
    print("1..10")
    out = TOP / "bench" / "out"
    r, runs, results, report = plan("--quick")
    diag = r.stdout + r.stderr
    ok(r.returncode == 0 and len(runs) > 20, f"--quick --dry-run plans the runs ({len(runs)})", diag)
    ok(results == str(out / "results-quick.jsonl"), "by default results go to bench/out/", diag)
    ok(report is not None and report.split()[1:] == [results],
       "by default the report is not --docs", diag)

    r, runs, results, report = plan("--full", "--docs", "--only", "idle")
    diag = r.stdout + r.stderr
    ok(r.returncode == 0 and runs and all(l.startswith("run idle") for l in runs),
       "--full --only idle plans only idle runs", diag)
    ok(results == str(TOP / "docs" / "bench" / "results-full.jsonl") and report is not None and
       report.split()[1:] == [results, "--docs"], "--docs: results and report go to docs/", diag)
    r, _, _, report = plan("--no-report")
    ok(report == "none", "--no-report: no report", r.stdout + r.stderr)
    r, runs, results, report = plan("redis")
    diag = r.stdout + r.stderr
    ok(r.returncode == 0 and runs and all(" x1 " in l or " x2 " in l or " x3 " in l for l in runs)
       and results == str(out / "results-redis.jsonl"),
       "redis --dry-run plans 1, 2 and 3 nodes; results go to bench/out/", diag)
    r, runs, results, report = plan("redis", "--docs")
    diag = r.stdout + r.stderr
    ok(results == str(TOP / "docs" / "bench" / "results-redis.jsonl") and report is not None and
       report.split()[1:] == [str(TOP / "docs" / "bench" / "results-full.jsonl"), "--docs", "--keep-plots"],
       "redis --docs: results in docs/bench/, the page rewritten from the full results beside them", diag)

    with tempfile.TemporaryDirectory(prefix="anypush-bench-") as tmp:
        t = Path(tmp)
        (t / "bench").mkdir()
        for f in ("report.py", "analysis.md"):
            shutil.copy(TOP / "bench" / f, t / "bench" / f)
        res = TOP / "docs" / "bench" / "results-quick.jsonl"
        env = dict(os.environ, PATH="/nonexistent")  # no gnuplot: the page alone
        r = subprocess.run([sys.executable, str(t / "bench" / "report.py"), str(res)], capture_output=True,
                           text=True, timeout=120, env=env)
        ok(r.returncode == 0 and (t / "bench" / "out" / "benchmarks.md").exists() and
           not (t / "docs").exists(), "report.py writes bench/out/benchmarks.md, not docs/",
           r.stdout + r.stderr)
        r = subprocess.run([sys.executable, str(t / "bench" / "report.py"), str(res), "--docs"],
                           capture_output=True, text=True, timeout=120, env=env)
        ok(r.returncode == 0 and (t / "docs" / "benchmarks.md").exists(),
           "report.py --docs writes docs/benchmarks.md", r.stdout + r.stderr)
    return 1 if _failed else 0


if __name__ == "__main__":
    sys.exit(main())
