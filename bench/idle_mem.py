#!/usr/bin/env python3
"""bench/idle_mem.py: memory per idle held connection, one transport at a time.

    bench/idle_mem.py                          # 10,000 each of ws, sse, longpoll
    bench/idle_mem.py --conns 2000 --transports sse --repeat 3
    bench/idle_mem.py --conns 200 -- --http-memory 8192   # after --: gateway options

For every transport and repeat: start a fresh gateway (src/anypush, bound to
127.0.0.1 on a free port), read its VmRSS and /proc/PID/smaps_rollup, open
N idle subscribers of that transport with bench/loadgen --idle (one client
process, epoll; it waits until /metrics counts them all as held), read the
same figures again while they are still open, and report the growth divided
by N. Private_Dirty is the memory written by this process only (heap, stacks,
the connection buffers), so it is the figure a libraries' page cache or
shared-library relocation cannot blur; VmRSS is what the targets in
docs/benchmarks.md use. The per-mapping growth (heap, anonymous mappings) is
in the JSON line too, to tell allocations on the main heap from those in a
thread's malloc arena.

Results: one JSON line per run appended to bench/out/idle-mem.jsonl (or
--out), and a table on stdout. The gateway is stopped by its pid. Loopback
only; every wait is bounded.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
LOADGEN = BENCH / "loadgen"
TRANSPORTS = ("ws", "sse", "longpoll")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def ensure_loadgen():
    src = [BENCH / "loadgen.c", BENCH / "lg_util.h"]
    if LOADGEN.exists() and all(LOADGEN.stat().st_mtime >= s.stat().st_mtime for s in src):
        return
    cmd = ["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(LOADGEN),
           str(BENCH / "loadgen.c")]
    log("+", " ".join(cmd))
    subprocess.run(cmd, check=True, timeout=120)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, limit=10.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("gateway did not start listening")


def memory(pid):
    """VmRSS and smaps_rollup fields (KiB), and the summed Rss/Private_Dirty
    of the [heap] mapping and of the other anonymous mappings (KiB)."""
    m = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "RssAnon:")):
                k, v = line.split(":")
                m[k] = int(v.split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Private_Dirty", "Anonymous"):
                m[k] = int(v.split()[0])
    heap = anon = 0
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
            elif line.startswith("Private_Dirty:"):
                kb = int(line.split()[1])
                if name == "[heap]":
                    heap += kb
                elif name == "":
                    anon += kb
    m["heap_dirty"], m["anon_dirty"] = heap, anon
    return m


def one_run(args, transport, extra):
    port = free_port()
    cmd = [str(args.anypush), "--bind", "127.0.0.1", "--port", str(port), "--log-level", "warn",
           *extra]
    logf = open(args.log, "ab")
    gw = subprocess.Popen(cmd, stdout=logf, stderr=logf)
    try:
        wait_port(port, gw)
        time.sleep(0.5)  # let the threads reach their loops
        before = memory(gw.pid)
        lg_cmd = [str(LOADGEN), "--server", "anypush", "--port", str(port), "--pid", str(gw.pid),
                  "--transport", transport, "--subs", str(args.conns), "--idle",
                  "--hold", str(args.hold), "--lp-timeout", "120",
                  "--max-time", str(60 + args.conns / 100 + args.hold),
                  "--label", f"idle_mem {transport} {args.conns}"]
        lg = subprocess.Popen(lg_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = lg.stdout.readline()  # printed when they are all open and held
            after = memory(gw.pid) if line else None
            out, err = lg.communicate(timeout=args.hold + 30)
        except subprocess.TimeoutExpired:
            os.kill(lg.pid, signal.SIGKILL)
            lg.wait(timeout=5)
            raise
        if not line:
            raise RuntimeError(f"loadgen printed nothing: {err.strip()}")
        r = json.loads(line)
    finally:
        if gw.poll() is None:
            os.kill(gw.pid, signal.SIGTERM)
            try:
                gw.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(gw.pid, signal.SIGKILL)
                gw.wait(timeout=5)
        logf.close()
    n = args.conns
    per = {k: (after[k] - before[k]) * 1024 / n for k in before}
    return {"transport": transport, "conns": n, "ready": r["ready"], "held_seen": r["held_seen"],
            "rss_bytes_per_conn": round(per["VmRSS"]),
            "private_dirty_bytes_per_conn": round(per["Private_Dirty"]),
            "heap_dirty_bytes_per_conn": round(per["heap_dirty"]),
            "anon_dirty_bytes_per_conn": round(per["anon_dirty"]),
            "before_kb": before, "after_kb": after, "open_s": r["open_s"],
            "open_wait_max_ms": r["open_wait_max_ms"], "errors": r["errors"],
            "gateway_cmd": " ".join(cmd[:1] + ["..."] + extra), "loadgen_cmd": " ".join(lg_cmd),
            "git": git_rev(), "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def git_rev():
    r = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                       capture_output=True, text=True)
    return r.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conns", type=int, default=10000, help="idle connections per run [10000]")
    ap.add_argument("--transports", default=",".join(TRANSPORTS),
                    help="comma-separated, of ws, sse, longpoll [all three]")
    ap.add_argument("--repeat", type=int, default=1, help="runs per transport [1]")
    ap.add_argument("--hold", type=float, default=1.0,
                    help="seconds the connections stay open after loadgen's own reading [1]")
    ap.add_argument("--anypush", default=str(REPO / "src" / "anypush"), help="gateway binary")
    ap.add_argument("--out", default=str(BENCH / "out" / "idle-mem.jsonl"),
                    help="JSON lines appended here [bench/out/idle-mem.jsonl]")
    ap.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    ap.add_argument("extra", nargs="*", help="after --: options for the gateway")
    args = ap.parse_args()
    trs = [t for t in args.transports.split(",") if t]
    bad = [t for t in trs if t not in TRANSPORTS]
    if bad or args.conns < 1 or args.conns > 15000 or args.repeat < 1:
        ap.error(f"transports are {', '.join(TRANSPORTS)}; 1 <= conns <= 15000; repeat >= 1")
    out = Path(args.out)
    args.log = out.with_suffix(".gateway.log")
    if args.dry_run:
        for t in trs:
            for i in range(args.repeat):
                print(f"run {t} {args.conns} {i + 1}/{args.repeat}")
        print(f"results {out}")
        return 0
    if not Path(args.anypush).exists():
        ap.error(f"{args.anypush} missing: run scripts/build first")
    ensure_loadgen()
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"{'transport':9} {'conns':>6} {'held':>6} {'VmRSS B/conn':>13} "
          f"{'Priv_Dirty B/conn':>18} {'heap':>6} {'anon':>6}", flush=True)
    failed = 0
    for t in trs:
        for _ in range(args.repeat):
            try:
                r = one_run(args, t, args.extra)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                log(f"{t}: {e}")
                failed += 1
                continue
            with open(out, "a") as f:
                f.write(json.dumps(r) + "\n")
            print(f"{t:9} {r['conns']:6} {r['held_seen']:6} {r['rss_bytes_per_conn']:13} "
                  f"{r['private_dirty_bytes_per_conn']:18} {r['heap_dirty_bytes_per_conn']:6} "
                  f"{r['anon_dirty_bytes_per_conn']:6}", flush=True)
            if r["held_seen"] < r["conns"] or r["ready"] < r["conns"]:
                log(f"{t}: only {r['ready']} ready, {r['held_seen']} held of {r['conns']}")
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
