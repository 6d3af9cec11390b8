#!/usr/bin/env python3
"""Shutdown under load, and a crash.

SIGTERM while an SSE reader and a WebSocket reader have stopped reading
(their sockets full), a long poll is held and a publisher loops on a
keep-alive connection: the drain waits for the stalled streams for its
3 s (docs/internals/threading.md), the publishes meanwhile get
`503 shutting_down`, never a 201 after the first 503, the long poll gets
its documented body at once, and the process exits 0 soon after the
drain. Then SIGKILL and a restart on the same port: a cursor of before
is answered with a gap in a new epoch."""

import asyncio
import json
import os
import signal
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


async def test_sigterm_drain():
    "SIGTERM with stalled SSE and WS readers, a held long poll and a looping publisher: 503 shutting_down in the drain, exit 0"
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
        diag(f"long poll answered {lp_after:.2f} s and exit {exit_after:.2f} s after SIGTERM; "
             f"publisher: {sum(1 for _, s, _ in loop_out if s == 201)} x 201, "
             f"{sum(1 for _, s, _ in loop_out if s == 503)} x 503, then {loop_out[-1][2]!s:.60}")
        expect_eq(rc, 0, "exit status after SIGTERM")
        check(exit_after <= DRAIN + SLACK, f"exit {exit_after:.2f} s after SIGTERM, drain is {DRAIN} s")
        check(exit_after >= DRAIN - 0.5, f"exit after {exit_after:.2f} s: the stalled readers did not hold "
                                         f"the drain, so this test did not stall them")
        # the long poll: at once, 200, an empty list and its own cursor
        expect_eq((r.status, r.json()), (200, {"messages": [], "next": cursor}), "the long poll at shutdown")
        check(lp_after < 1.0, f"the long poll was answered {lp_after:.2f} s after SIGTERM")
        # the publisher: 201s, then only 503 shutting_down, then the close
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
    finally:
        stop.set()
        if loop is not None:
            loop.join(10)
        gw.stop(check=False, timeout=1)


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
    raise SystemExit(run([test_sigterm_drain, test_sigkill_restart], budget=55, timeout=30))
