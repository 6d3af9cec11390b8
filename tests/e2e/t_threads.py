#!/usr/bin/env python3
"""--threads N: WebSockets spread over N libwebsockets loops (each its own
thread, epoll loop and lws context), and everything that crosses loops
still works: a publish from /ws on one loop reaches subscribers on the
others, exclude_sender, presence, slow-consumer cuts, ping/hangup timers,
exact capacity accounting, and a shutdown with clients connected. Each
scenario runs with --threads 1 and --threads 3 (more loops than this
machine may have cores is fine for correctness)."""

import asyncio
import os
import subprocess

from gwlib import (Gateway, MuxClient, Publisher, WSClient, binary_path, check, expect_eq, get,
                   metrics, payload, run)

LOOPS = (1, 3)


def loop_loads(gw):
    """{loop index: connections} from anypush_ws_loop_connections."""
    out = {}
    for k, v in metrics(gw).items():
        if k.startswith("anypush_ws_loop_connections{"):
            out[int(k.split('"')[1])] = int(v)
    return out


def presence_events(c, ch):
    return [(m["event"], m["data"]) for m in c.messages
            if m.get("event") in ("join", "leave") and m.get("channel", ch) == ch]


async def spread_and_cross(n):
    with Gateway("--presence-window", 2, threads=n) as gw:
        expect_eq(sorted(loop_loads(gw)), list(range(n)), f"--threads {n}: one gauge per loop")
        ch = "th:a"
        singles = [WSClient(gw, ch) for _ in range(9)]
        muxes = [MuxClient(gw, client=f"m{i}") for i in range(3)]
        for c in singles + muxes:
            await c.start()
        for m in muxes:
            await m.subscribe(ch)
        loads = loop_loads(gw)
        expect_eq(sum(loads.values()), 12, f"connections over the loops {loads}")
        # least loaded, ties taken in turn: 12 sockets opened one by one
        check(max(loads.values()) - min(loads.values()) <= 1,
              f"--threads {n}: 12 WebSockets not spread evenly: {loads}")

        # every /ws client publishes, each from its own loop; m0 excludes itself
        sent = {}
        for i, m in enumerate(muxes):
            for k in range(10):
                ack = await m.publish(ch, {"from": i, "k": k}, exclude_sender=(i == 0))
                sent[ack["id"]] = i
        want = sorted(sent)
        expect_eq(want, list(range(1, 31)), "ids of the 30 publishes")
        for c in singles + muxes[1:]:
            await c.wait_count(30, 10)
            expect_eq(c.ids(), want, f"{c.describe()}: ids")
        await asyncio.sleep(0.2)
        mine = [mid for mid, i in sent.items() if i != 0]
        expect_eq(muxes[0].ids(), mine, "m0 (exclude_sender) got the others' messages only")
        for c in singles + muxes:
            expect_eq(c.problems, [], f"{c.describe()}: protocol problems")

        # presence: joins and leaves of /ws clients on every loop reach a
        # watcher wherever it is
        pch = "th:p"
        watcher = WSClient(gw, pch)
        await watcher.start()
        pres = [MuxClient(gw, client=f"p{i}") for i in range(n + 1)]
        for p in pres:
            await p.start()
            await p.subscribe(pch, presence=True)
        joins = [("join", {"client": f"p{i}", "transport": "ws"}) for i in range(n + 1)]
        await watcher.wait_for(lambda: len(presence_events(watcher, pch)) >= n + 1, 5, "joins")
        expect_eq(presence_events(watcher, pch), joins, "joins from every loop")
        for p in pres:
            await p.close()
        await watcher.wait_for(lambda: len(presence_events(watcher, pch)) >= 2 * (n + 1), 5,
                               "leaves")
        leaves = sorted(e[1]["client"] for e in presence_events(watcher, pch)[n + 1:])
        expect_eq(leaves, [f"p{i}" for i in range(n + 1)], "leaves from every loop")

        # capacity: every slot comes back, on every loop
        for c in singles + muxes + [watcher]:
            await c.close()
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            loads, mets = loop_loads(gw), metrics(gw)
            if sum(loads.values()) == 0 and mets.get("anypush_streams") == 0:
                break
            check(asyncio.get_running_loop().time() < deadline,
                  f"slots not given back 5 s after every client closed: loops {loads}, "
                  f"streams {mets.get('anypush_streams')}")
            await asyncio.sleep(0.05)


async def test_spread_1():
    "--threads 1: 12 ws on the loop; /ws publishes reach all, exclude_sender, presence, slots back"
    await spread_and_cross(1)


async def test_spread_3():
    "--threads 3: 12 ws spread 4/4/4; /ws publishes cross loops, exclude_sender, presence, slots back"
    await spread_and_cross(3)


async def capacity_exact(n):
    # --max-streams 6: six WebSockets over n loops fill it, the seventh is refused
    with Gateway("--max-connections", 20, "--max-streams", 6, threads=n) as gw:
        ws = [WSClient(gw, "th:cap") for _ in range(6)]
        for c in ws:
            await c.start()
        extra = WSClient(gw, "th:cap")
        try:
            await extra.connect()
            raise AssertionError("a seventh WebSocket was accepted over --max-streams 6")
        except AssertionError as e:
            check("status 503" in str(e), f"seventh WebSocket: {e}")
        extra.abort()
        # one leaves (whichever loop it was on): exactly one more fits
        await ws[0].close()
        again = WSClient(gw, "th:cap")
        for _ in range(100):
            try:
                await again.start()
                break
            except AssertionError:
                again.abort()
                again = WSClient(gw, "th:cap")
                await asyncio.sleep(0.05)
        check(again.status == 101, "no slot came back after a WebSocket closed")
        for c in ws[1:] + [again]:
            c.abort()


async def test_capacity_1():
    "--threads 1: --max-streams 6 holds six ws, refuses the seventh, a closed one frees one slot"
    await capacity_exact(1)


async def test_capacity_3():
    "--threads 3: the same budget over three loops"
    await capacity_exact(3)


N_SLOW = 1200
SIZE = 4096


async def slow_cut(n):
    # 1 MiB of queue: 256 messages of slack for a reader on a loaded
    # machine (at 256 KiB a reader that lagged 64 messages was cut), still
    # a fifth of what a never-reader is sent
    with Gateway("--outq-limit", 1048576, "--history-size", 2000, threads=n) as gw:
        ch = "th:slow"
        normal = [WSClient(gw, ch) for _ in range(n)]
        slow = [WSClient(gw, ch, rcvbuf=4096) for _ in range(n)]
        for c in normal + slow:
            await c.start()
        for c in slow:
            c.pause()
        pub = Publisher(gw)
        try:
            await pub.apublish_many(ch, [payload(i, size=SIZE) for i in range(1, N_SLOW + 1)],
                                    interval=0.002)
        finally:
            pub.close()
        for c in normal:
            await c.wait_count(N_SLOW, 15)
            expect_eq(c.ids(), list(range(1, N_SLOW + 1)), f"{c.describe()}: ids")
        for c in slow:
            c.resume()
        for c in slow:
            await c.wait_done(10)
            check(c.close_code in (None, 1008), f"slow client closed with {c.close_code}")
            check(len(c.ids()) < N_SLOW, f"the never-reading client got all {N_SLOW} messages")
        check(metrics(gw).get("anypush_slow_consumers_total", 0) >= n,
              "anypush_slow_consumers_total below the number of slow clients")


async def test_slow_1():
    "--threads 1: never-reading ws clients are cut (--outq-limit), readers get all 1200"
    await slow_cut(1)


async def test_slow_3():
    "--threads 3: the same with readers and never-readers on every loop"
    await slow_cut(3)


async def timers(n):
    # lws's validity timers on every loop: a peer that answers pings stays,
    # one that does not is dropped after --ws-hangup
    with Gateway("--ws-ping", 1, "--ws-hangup", 3, threads=n) as gw:
        live = [WSClient(gw, "th:t") for _ in range(n)]
        mute = [WSClient(gw, "th:t", auto_pong=False) for _ in range(n)]
        for c in live + mute:
            await c.start()
        t0 = asyncio.get_running_loop().time()
        for c in mute:
            await c.wait_done(8)
        took = asyncio.get_running_loop().time() - t0
        check(took >= 2.0, f"a peer that does not pong was dropped after {took:.1f} s, before --ws-hangup")
        for c in mute:
            check(c.pings, f"{c.describe()}: dropped without a ping first")
        for c in live:
            check(len(c.pings) >= 2, f"{c.describe()}: {len(c.pings)} pings in {took:.1f} s (--ws-ping 1)")
            check(not c.done, f"{c.describe()}: a peer that pongs was dropped")
        for c in live:
            c.abort()


async def test_timers_1():
    "--threads 1: --ws-ping 1 --ws-hangup 3 pings every peer, drops the one that does not pong"
    await timers(1)


async def test_timers_3():
    "--threads 3: the same on every loop"
    await timers(3)


async def shutdown(n):
    gw = Gateway(threads=n)
    try:
        clients = [WSClient(gw, "th:s") for _ in range(2 * n)]
        muxes = [MuxClient(gw) for _ in range(n)]
        for c in clients + muxes:
            await c.start()
        for m in muxes:
            await m.subscribe("th:s")
        expect_eq(sum(loop_loads(gw).values()), 3 * n, "connections before the stop")
        st, _, _ = get(gw, "/healthz")
        expect_eq(st, 200, "healthz")
        gw.signal()
        for c in clients + muxes:
            await c.wait_done(5)
            expect_eq(c.close_code, 1001, f"{c.describe()}: close code at shutdown")
    finally:
        gw.stop()  # asserts exit status 0 within 10 s
    check(gw.stop_seconds is not None and gw.stop_seconds < 5,
          f"stopping with clients on {n} loops took {gw.stop_seconds} s")


async def test_shutdown_1():
    "--threads 1: SIGTERM with ws and /ws clients connected: each gets 1001, exit 0"
    await shutdown(1)


async def test_shutdown_3():
    "--threads 3: the same with clients on every loop"
    await shutdown(3)


async def test_default_threads():
    "without --threads: as many loops as online CPUs, and bad values are refused"
    with Gateway("--threads", 0) as gw:
        expect_eq(len(loop_loads(gw)), min(os.sysconf("SC_NPROCESSORS_ONLN"), 64), "loops by default")
    for bad in ("65", "-1", "x"):
        p = subprocess.run([binary_path(), "--threads", bad, "--config", ""], capture_output=True,
                           timeout=10, stdin=subprocess.DEVNULL)
        expect_eq(p.returncode, 2, f"exit status for --threads {bad}")
        check(b"--threads wants a number from 0 to 64" in p.stderr, f"--threads {bad}: {p.stderr!r}")


if __name__ == "__main__":
    run([test_spread_1, test_spread_3, test_capacity_1, test_capacity_3, test_slow_1, test_slow_3,
         test_timers_1, test_timers_3, test_shutdown_1, test_shutdown_3, test_default_threads],
        budget=170, timeout=40)
