#!/usr/bin/env python3
"""Proof at scale: 10,000 subscribers, 2,500 on each transport (short poll,
long poll, SSE, WebSocket), on 400 channels (25 each), against one gateway
started with its defaults. A publisher sends 2,000 messages at 200 a second
on one keep-alive connection, so all publishes are in one order; every
subscriber must get each of its channel's 5 messages exactly once and in
that order (50,000 deliveries). Then, with all 10,000 still connected and
idle, SIGTERM: the gateway exits 0 within its drain bound, logs no error,
and every connection ends the documented way (a long poll's empty 200, an
SSE body's end, a WebSocket close 1001, an idle keep-alive poll
connection closed).

The clients are bench/loadgen (one epoll thread, about 10,000 fds, under
the 20,000 this machine allows a process): it counts each message per
subscriber (lost, dup, ooo, gaps) and, with --hold, how each connection
ended. ANYPUSH_LOADGEN names it (the build's bench/loadgen by default)."""

import asyncio
import json
import os
import re
import resource
import signal
import time

from gwlib import REPO, Gateway, check, diag, expect_eq, log_dir, metrics, run, scenario

SUBS = 10000
CHANNELS = 400
COUNT = 2000
RATE = 200
PER_TRANSPORT = SUBS // 4
EXPECTED = SUBS * (COUNT // CHANNELS)
SANITIZERS = bool(os.environ.get("ANYPUSH_SANITIZERS"))
# server.c's DRAIN_MS, and what the exit may take beyond it: closing
# 10,000 sockets and freeing their state (more under ASan)
DRAIN = 3.0
SLACK = 12.0 if SANITIZERS else 3.0
# loadgen's phases: opening, publishing (10 s), the drain of the last polls
STREAM_WAIT = 120.0 if SANITIZERS else 45.0
R = {}


def loadgen_path():
    return os.environ.get("ANYPUSH_LOADGEN") or str(REPO / "bench" / "loadgen")


async def read_json_line(proc, what, timeout):
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    if not line:
        raise AssertionError(f"loadgen ended before its {what} line (exit {await proc.wait()})")
    return json.loads(line)


@scenario
async def scale():
    """The whole run; the points below read what it found."""
    lg = loadgen_path()
    check(os.access(lg, os.X_OK), f"no load generator at {lg} (make bench/loadgen)")
    # gwlib raised it as far as 20,000; the gateway and loadgen inherit it
    fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    check(fds == resource.RLIM_INFINITY or fds >= SUBS + 200,
          f"the fd limit is {fds}: {SUBS} connections need {SUBS + 200} (ulimit -n)")
    with Gateway() as gw:
        errf = open(log_dir() / f"t_scale.{os.getpid()}.loadgen.err", "wb")
        R["loadgen_err"] = errf.name
        hold = 60.0 if SANITIZERS else 30.0
        proc = await asyncio.create_subprocess_exec(
            lg, "--port", str(gw.port), "--pid", str(gw.pid), "--transport", "mix",
            "--subs", str(SUBS), "--channels", str(CHANNELS), "--count", str(COUNT),
            "--rate", str(RATE), "--pub-conns", "1", "--interval", "1000",
            "--lp-timeout", "60", "--prefix", f"scale{os.getpid()}", "--hold", str(hold),
            "--max-time", str(STREAM_WAIT + hold), stdout=asyncio.subprocess.PIPE, stderr=errf)
        try:
            t0 = time.monotonic()
            R["stream"] = await read_json_line(proc, "stream", STREAM_WAIT)
            R["stream_s"] = time.monotonic() - t0
            R["holding"] = await read_json_line(proc, "holding", 15)
            # what the gateway holds when it is told to stop: the
            # subscribers and the one connection asking
            R["connections_at_term"] = metrics(gw).get("anypush_connections")
            t_term = time.monotonic()
            gw.signal(signal.SIGTERM)
            R["exit_status"] = await asyncio.get_running_loop().run_in_executor(
                None, gw.wait_exit, DRAIN + SLACK)
            R["exit_after"] = time.monotonic() - t_term
            R["hold"] = await read_json_line(proc, "hold", 15)
            R["loadgen_status"] = await asyncio.wait_for(proc.wait(), 10)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            errf.close()
        with open(gw.log_path, "rb") as f:
            R["log"] = f.read().decode("utf-8", "replace")
    return R


def stream():
    s = R["stream"]
    if R.setdefault("told", False):
        return s
    R["told"] = True
    diag(f"stream: {s['delivered']}/{s['expected']} delivered, lost {s['lost']} dup {s['dup']} "
         f"ooo {s['ooo']} gaps {s['gaps']}; opened in {s['open_s']} s, published and "
         f"delivered in {s['wall_s']} s, loadgen's line after {R['stream_s']:.1f} s; latency p50 {s['lat_p50_ms']} ms p99 {s['lat_p99_ms']} ms; "
         f"gateway CPU {s['srv_sched_cpu_s']} s, RSS {s['srv_rss_kb']} KiB")
    return s


async def test_all_connected():
    "10,000 subscribers, 2,500 per transport on 400 channels, all connected and held"
    await scale()
    s = stream()
    # errors counts the publishing phase; open_slow the first answers that
    # took over 1 s; every poll, long poll, SSE and WebSocket subscriber is
    # ready and the gateway's /metrics counts the 7,500 it holds
    expect_eq((s["subs"], s["channels"], s["held_seen"], s["errors"], s["reconnects"]),
              (SUBS, CHANNELS, 3 * PER_TRANSPORT, 0, 0),
              "subs, channels, held by the gateway, errors, reconnects")


async def test_every_message_once_in_order():
    "every subscriber gets each of its channel's messages exactly once and in publish order"
    await scale()
    s = stream()
    expect_eq((s["published"], s["pub_errors"]), (COUNT, 0), "published, publish errors")
    expect_eq({k: s[k] for k in ("expected", "delivered", "lost", "subs_with_loss", "dup",
                                 "ooo", "bogus", "gaps", "server_closes")},
              {"expected": EXPECTED, "delivered": EXPECTED, "lost": 0, "subs_with_loss": 0,
               "dup": 0, "ooo": 0, "bogus": 0, "gaps": 0, "server_closes": 0},
              "deliveries")


async def test_sigterm_all_connected():
    "SIGTERM with all 10,000 connected: exit 0 within the drain bound, no error logged"
    await scale()
    h = R["holding"]
    expect_eq((h["open"], h["settled"]), (SUBS, SUBS), "connected and idle at SIGTERM (loadgen)")
    conns = R["connections_at_term"]
    check(conns is not None and conns >= SUBS,
          f"anypush_connections {conns} just before SIGTERM, want at least {SUBS}")
    diag(f"SIGTERM with {conns:.0f} connections: exit {R['exit_status']} after "
         f"{R['exit_after']:.2f} s")
    check(R["exit_status"] is not None,
          f"the gateway had not exited {DRAIN + SLACK:.0f} s after SIGTERM")
    expect_eq(R["exit_status"], 0, "exit status after SIGTERM")
    check(R["exit_after"] <= DRAIN + SLACK,
          f"exit {R['exit_after']:.2f} s after SIGTERM, drain is {DRAIN} s")
    errors = re.findall(r"^\S+ (?:error|fatal)\b.*$", R["log"], re.M)
    check(not errors, f"{len(errors)} error lines in the gateway log, e.g. {errors[:3]}")
    warns = [w for w in re.findall(r"^\S+ warn\b.*$", R["log"], re.M) if "open mode" not in w]
    if warns:
        diag(f"{len(warns)} warnings, e.g. {warns[:3]}")


async def test_orderly_ends():
    "every connection ends orderly: long polls answered, SSE bodies ended, WebSockets closed 1001, idle polls closed"
    await scale()
    h = R["hold"]
    diag("ends: " + json.dumps({k: h[k] for k in ("lp_end", "sse_end", "ws_close", "ws_close_1001",
                                                  "idle_close", "bad_end", "open", "last_end_s")}))
    want = {"poll": "idle_close", "longpoll": "lp_end", "sse": "sse_end", "ws": "ws_close"}
    bad = {t: {k: v for k, v in ends.items() if v and k != want[t]}
           for t, ends in h["by_transport"].items()}
    bad = {t: v for t, v in bad.items() if v}
    check(not bad, f"connections that did not end the way their transport does: {bad}")
    expect_eq({t: h["by_transport"][t][k] for t, k in want.items()},
              {t: PER_TRANSPORT for t in want}, "orderly ends per transport")
    expect_eq(h["ws_close_1001"], PER_TRANSPORT, "WebSocket close frames with code 1001")
    expect_eq(R["loadgen_status"], 0, "loadgen exit status")


if __name__ == "__main__":
    raise SystemExit(run([test_all_connected, test_every_message_once_in_order,
                          test_sigterm_all_connected, test_orderly_ends],
                         budget=170 if SANITIZERS else 55, timeout=160 if SANITIZERS else 50))
