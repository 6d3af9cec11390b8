#!/usr/bin/env python3
"""bench/idle_mem.py, the idle-memory measure that docs/benchmarks.md quotes,
does what its docstring says, at a size that suits a test: 200 idle
connections of each held transport, each on a fresh gateway on 127.0.0.1,
every one of them open and counted as held by the gateway when the memory
is read; one JSON line per run in the --out file (none in bench/out), with
the gateway's VmRSS and Private_Dirty before and after. The numbers
themselves are not checked: the machine is shared and noisy, and they
belong in docs/benchmarks.md. --dry-run plans without running.

Prints TAP. Loopback only; the script bounds its own waits."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
SCRIPT = TOP / "bench" / "idle_mem.py"
CONNS = 200

_n = 0
_failed = 0


def ok(cond, name, diag=None):
    global _n, _failed
    _n += 1
    print(f"{'ok' if cond else 'not ok'} {_n} - {name}", flush=True)
    if not cond:
        _failed += 1
        for line in (diag or "").splitlines()[-20:]:
            print(f"# {line}")
    return cond


def main():
    print("1..7")
    binary = os.environ.get("ANYPUSH_BIN", str(TOP / "src" / "anypush"))
    r = subprocess.run([sys.executable, str(SCRIPT), "--conns", "300", "--repeat", "2", "--dry-run"],
                       capture_output=True, text=True, timeout=60)
    runs = [l for l in r.stdout.splitlines() if l.startswith("run ")]
    ok(r.returncode == 0 and runs == [f"run {t} 300 {i}/2" for t in ("ws", "sse", "longpoll")
                                      for i in (1, 2)],
       "--dry-run plans two runs of each transport", r.stdout + r.stderr)
    ok(f"results {TOP / 'bench' / 'out' / 'idle-mem.jsonl'}" in r.stdout,
       "by default results go to bench/out/idle-mem.jsonl", r.stdout)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "idle.jsonl"
        r = subprocess.run([sys.executable, str(SCRIPT), "--conns", str(CONNS), "--hold", "0.2",
                            "--anypush", binary, "--out", str(out)],
                           capture_output=True, text=True, timeout=240)
        diag = r.stdout + r.stderr
        ok(r.returncode == 0, f"{CONNS} connections of each transport: exit 0", diag)
        lines = out.read_text().splitlines() if out.exists() else []
        rows = [json.loads(l) for l in lines]
        ok([x["transport"] for x in rows] == ["ws", "sse", "longpoll"],
           "one JSON line per transport, in order", diag + "\n" + "\n".join(lines))
        ok(rows and all(x["conns"] == x["ready"] == x["held_seen"] == CONNS for x in rows),
           "every connection was open and held by the gateway when memory was read",
           "\n".join(lines))
        want = ("VmRSS", "Private_Dirty", "Rss")
        ok(rows and all(all(x[k][f] > 0 for k in ("before_kb", "after_kb") for f in want) and
                        isinstance(x["rss_bytes_per_conn"], int) and
                        isinstance(x["private_dirty_bytes_per_conn"], int) for x in rows),
           "VmRSS, Rss and Private_Dirty read before and after, per-connection figures given",
           "\n".join(lines))
        table = [l.split()[0] for l in r.stdout.splitlines()[1:]]
        ok(table == ["ws", "sse", "longpoll"], "a table row per run on stdout", r.stdout)
    return 1 if _failed else 0


if __name__ == "__main__":
    sys.exit(main())
