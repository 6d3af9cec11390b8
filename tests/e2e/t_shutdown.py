#!/usr/bin/env python3
"""Shutdown under load, and a crash.

SIGTERM while an SSE reader and a WebSocket reader have stopped reading
(their sockets full), a long poll is held and a publisher loops on a
keep-alive connection: the drain waits for the stalled streams for its
3 s (docs/internals/threading.md), the publishes meanwhile get
`503 shutting_down`, never a 201 after the first 503, the long poll gets
its documented body at once, and the process exits 0 soon after the
drain. Stalled means stalled for TCP too: the gateway's zero-window
probes refused three times in a row (a set-up whose streams still ended
properly is tried again on a fresh gateway). Then SIGKILL and a restart
on the same port: a cursor of before is answered with a gap in a new
epoch."""

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

from gwlib import (AsyncHTTP, Gateway, Publisher, SSEClient, WSClient, check, diag, expect_eq, get, info,
                   metric_sum, metrics, publish, publish_until, run, wait_until)

DRAIN = 3.0     # server.c DRAIN_MS
SLACK = 4.0 if os.environ.get("ANYPUSH_SANITIZERS") else 2.0


def publish_loop(gw, stop, out):
    """Publish to 'loop' over one keep-alive connection until the gateway
    closes it or stop is set; out gets (monotonic time, status, body)."""
    pub = Publisher(gw, timeout=5)
    deadline = time.monotonic() + 20
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                st, body = pub.publish("loop", {"n": len(out)})
            except (OSError, ConnectionError) as e:   # http.client's errors are OSErrors or these
                out.append((time.monotonic(), None, repr(e)))
                return
            except Exception as e:  # noqa: BLE001 - http.client.RemoteDisconnected and kin
                out.append((time.monotonic(), None, repr(e)))
                return
            out.append((time.monotonic(), st, body))
            time.sleep(0.005)
    finally:
        pub.close()


async def settled(gw, kinds=("sse", "ws")):
    """Wait until the delivered counts of these transports stay the same
    for half a second: every such reader is stalled, not just behind."""
    def counts():
        m = metrics(gw)
        return [m.get(f'anypush_delivered_total{{transport="{k}"}}', 0) for k in kinds]
    last, same_since = counts(), time.monotonic()
    deadline = time.monotonic() + 10
    while time.monotonic() - same_since < 0.5:
        check(time.monotonic() < deadline, f"the stalled readers kept receiving for 10 s: {last}")
        await asyncio.sleep(0.1)
        now = counts()
        if now != last:
            last, same_since = now, time.monotonic()


def probes_refused(gw, client):
    """How many zero-window probes in a row the gateway's socket to this
    reader has sent with no byte taken (ss -ti: backoff, left out while
    0): 0 while the reader's kernel still takes something. None without
    ss (iproute2)."""
    if shutil.which("ss") is None:
        return None
    port = client._writer.get_extra_info("sockname")[1]
    out = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{gw.port} and dport = :{port} )"],
                         capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"\bbackoff:(\d+)", out)
    return int(m.group(1)) if m else 0


async def sigterm_once():
    """One gateway: stall an SSE and a WS reader, hold a long poll, loop a
    publisher, SIGTERM. Then the readers read again until their streams
    end. Returns what happened."""
    gw = Gateway("--outq-limit", str(64 << 20), "--max-message", "16384")
    stop = threading.Event()
    loop_out = []
    loop = None
    try:
        sse = SSEClient(gw, "stall", rcvbuf=4096)
        ws = WSClient(gw, "stall", rcvbuf=4096)
        await sse.start()
        await ws.start()
        sse.pause()
        ws.pause()

        def stalled():
            m, last = metrics(gw), info(gw, "stall")["last_id"]
            return all(m.get(f'anypush_delivered_total{{transport="{k}"}}', 0) < last - 8 for k in ("sse", "ws"))
        await publish_until(gw, "stall", stalled)
        # behind is not yet stalled: while the kernel still grows a
        # socket's send buffer the stream catches up, and a stream that
        # catches up ends cleanly at SIGTERM without holding the drain
        await settled(gw)
        # and the readers' kernels full: TCP's zero-window probes refused
        # three times in a row (a kernel still packing its queue takes a
        # segment now and then, and that is room enough for a stream's
        # end; see test_sigterm_drain)
        if probes_refused(gw, sse) is not None:
            await wait_until(lambda: probes_refused(gw, sse) >= 3 and probes_refused(gw, ws) >= 3, 15, 0.1,
                             "three zero-window probes refused on each stalled reader")
        st, body = publish(gw, "lp", 1)
        cursor = f"{body['epoch']}:1"
        http = AsyncHTTP(gw)
        lp = asyncio.create_task(http.request("GET", f"/channels/lp?transport=longpoll&timeout=60&since={cursor}",
                                              timeout=15))
        await wait_until(lambda: metric_sum(metrics(gw), 'anypush_subscribers{transport="longpoll"}') == 1,
                         5, 0.05, "the long poll held")
        loop = threading.Thread(target=publish_loop, args=(gw, stop, loop_out))
        loop.start()
        await wait_until(lambda: len(loop_out) >= 5, 5, 0.01, "the publisher looping")
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        r = await lp
        lp_after = time.monotonic() - t0
        rc = await asyncio.to_thread(gw.wait_exit, DRAIN + SLACK + 5)
        exit_after = time.monotonic() - t0
        stop.set()
        await asyncio.to_thread(loop.join, 10)
        # the readers take what the kernel kept, then the end: a stream
        # the gateway ended itself has its last chunk (SSE) or close frame
        # (WS, 1001); one cut when the drain gave up has neither
        sse.resume()
        ws.resume()
        await sse.wait_done(10)
        await ws.wait_done(10)
        diag(f"long poll answered {lp_after:.2f} s and exit {exit_after:.2f} s after SIGTERM; "
             f"publisher: {sum(1 for _, s, _ in loop_out if s == 201)} x 201, "
             f"{sum(1 for _, s, _ in loop_out if s == 503)} x 503, then {loop_out[-1][2]!s:.60}; "
             f"SSE {'ended' if sse.clean_end else sse.end_reason}, WS close {ws.close_code}")
        return dict(rc=rc, exit_after=exit_after, lp=r, lp_after=lp_after, cursor=cursor, t0=t0,
                    loop_out=loop_out, sse_ended=sse.clean_end, ws_close=(ws.close_code, ws.close_reason))
    finally:
        stop.set()
        if loop is not None:
            loop.join(10)
        gw.stop(check=False, timeout=1)


async def test_sigterm_drain():
    "SIGTERM with stalled SSE and WS readers, a held long poll and a looping publisher: 503 shutting_down in the drain, exit 0"
    # settled() sees a reader that pulls nothing for half a second, and
    # still the stream may end at SIGTERM: unpulled messages are dropped
    # then, so it only has to write what it has staged and its end, and
    # its socket is barely full. Measured (ss -tim) on a held one: send
    # buffer grown to tcp_wmem's 4 MiB, 2,797,539 bytes queued, 1.3 KB
    # over the 2/3 under which the socket is writable again. The reader's
    # kernel, packing its queue, still takes a 2 KB segment at a
    # zero-window probe now and then (bytes_acked moving, the window
    # otherwise closed), and that is room enough: "the stalled readers did
    # not hold the drain", seen once under load. Without the probes check
    # in sigterm_once, and with the retry below, attempts ended 0.2-0.9 s
    # after SIGTERM with both streams properly ended in 1 of 6 alone, about
    # 2 in 5 beside two busy loops, and under ASan beside them 3 in a row
    # twice in 5 runs; with it, none in 20 runs (plain and ASan, alone and
    # beside two busy loops).
    # The retry stays for what ss cannot see: an exit well within the
    # drain is accepted only if every stream did end, the SSE one with its
    # last chunk and the WS one with close 1001 (the gateway was right,
    # the set-up failed to stall them), and is tried again on a fresh
    # gateway, up to three times. A stream cut without its end fails at
    # once, and the run that counts must have held the drain, with every
    # check below.
    for attempt in range(1, 4):
        got = await sigterm_once()
        exit_after = got["exit_after"]
        expect_eq(got["rc"], 0, "exit status after SIGTERM")
        check(exit_after <= DRAIN + SLACK, f"exit {exit_after:.2f} s after SIGTERM, drain is {DRAIN} s")
        # the long poll: at once, 200, an empty list and its own cursor
        r = got["lp"]
        expect_eq((r.status, r.json()), (200, {"messages": [], "next": got["cursor"]}), "the long poll at shutdown")
        check(got["lp_after"] < 1.0, f"the long poll was answered {got['lp_after']:.2f} s after SIGTERM")
        if exit_after >= DRAIN - 0.5:
            break
        check(got["sse_ended"] and got["ws_close"] == (1001, "restarting"),
              f"exit {exit_after:.2f} s after SIGTERM with a stream not ended (SSE last chunk: "
              f"{got['sse_ended']}, WS close: {got['ws_close']}): the drain did not wait for it")
        diag(f"attempt {attempt}: both streams ended {exit_after:.2f} s after SIGTERM: the kernel took "
             f"what they had left, so the readers were not stalled; trying again")
    check(exit_after >= DRAIN - 0.5, f"exit after {exit_after:.2f} s: the stalled readers did not hold "
                                     f"the drain in {attempt} attempts, so this test did not stall them")
    # the publisher: 201s, then only 503 shutting_down, then the close
    loop_out, t0 = got["loop_out"], got["t0"]
    statuses = [s for _, s, _ in loop_out if s is not None]
    first_503 = statuses.index(503) if 503 in statuses else None
    check(first_503 is not None, f"no 503 during the drain: {statuses[-10:]}")
    check(all(s == 201 for s in statuses[:first_503]) and all(s == 503 for s in statuses[first_503:]),
          f"statuses around SIGTERM: {statuses[max(0, first_503 - 3):first_503 + 5]}")
    bad = [b for _, s, b in loop_out if s == 503 and not (isinstance(b, dict) and
                                                          b.get("error", {}).get("code") == "shutting_down")]
    check(not bad, f"503 answers that are not shutting_down: {bad[:2]}")
    late = [t - t0 for t, s, _ in loop_out if s == 503]
    check(max(late) >= DRAIN - 1.0, f"503s only until {max(late):.2f} s after SIGTERM: "
                                     f"publishing was not answered through the drain")


async def test_sigkill_restart():
    "SIGKILL, then a restart on the same port: healthz, the old subscriber ended, an old cursor gets a gap in a new epoch"
    with Gateway() as gw:
        port = gw.port
        for i in range(3):
            st, body = publish(gw, "k", i)
        old = body["epoch"]
        sse = SSEClient(gw, "k")
        await sse.start()
        gw.signal(signal.SIGKILL)
        expect_eq(gw.wait_exit(5), -signal.SIGKILL, "killed")
        err = None
        for attempt in range(10):   # bounded: the port may take a moment
            try:
                gw.start(port=port)
                err = None
                break
            except RuntimeError as e:
                err = e
                await asyncio.sleep(0.2)
        check(err is None, f"no restart on port {port} in 10 attempts: {err}")
        expect_eq(gw.port, port, "the same port")
        expect_eq(get(gw, "/healthz")[0], 200, "healthz after the restart")
        await sse.wait_done(5)
        expect_eq(info(gw, "k")["epoch"], None, "the channel after the restart (history is in memory)")
        j = json.loads(get(gw, f"/channels/k?since={old}:3")[2])
        check(j.get("gap") is True and j["gaps"][0]["epoch"] != old,
              f"an old cursor after the restart: {j}")
        st, body = publish(gw, "k", "new")
        expect_eq((st, body["id"]), (201, 1), "the first publish after the restart")
        check(body["epoch"] != old, f"the epoch {body['epoch']} did not change")


if __name__ == "__main__":
    # up to three gateways for the drain (test_sigterm_drain), about 10 s
    # each under ASan on a loaded machine
    raise SystemExit(run([test_sigterm_drain, test_sigkill_restart], budget=100, timeout=60))
