#!/usr/bin/env python3
"""One point group per limit option the other scripts leave open.

--max-pending closes the oldest connection still sending its head;
--http-timeout closes idle keep-alive connections, stalled requests and
SSE streams whose reader stopped, but not idle subscribers;
--history-age and --history-memory evict what the doc says, seen in
/info and /metrics (not by sleeping and hoping), and a resume past them
is a gap; --ws-ping / --ws-hangup keep a ponging WebSocket, and one that
sends frames without ever ponging, and drop a silent one; a long-poll timeout above 120 is taken (clamped), not
refused; a poll or long-poll reply is cut at about 1 MiB or 256
messages, and a single message above 1 MiB comes alone.
(--max-connections, --max-streams: t_capacity.py and t_errors.py;
--max-channels: t_errors.py and t_epoch.py.)"""

import asyncio
import json
import time

from gwlib import (AsyncHTTP, Gateway, Publisher, SSEClient, WSClient, check, diag, expect_eq, get, info,
                   metric_sum, metrics, open_stream, publish, publish_until, run, wait_until)


async def eof_within(reader, timeout):
    """Seconds until the server closed the connection (EOF or reset), or
    None if it is still open after timeout."""
    t0 = time.monotonic()
    try:
        while True:
            left = timeout - (time.monotonic() - t0)
            if left <= 0:
                return None
            if not await asyncio.wait_for(reader.read(65536), left):
                return time.monotonic() - t0
    except asyncio.TimeoutError:
        return None
    except ConnectionError:
        return time.monotonic() - t0


async def test_max_pending():
    "--max-pending 3: a 4th connection still sending its head closes the oldest, only it, and counts it"
    with Gateway("--max-pending", "3", "--head-timeout", "20") as gw:
        conns = []
        for i in range(4):
            r, w = await open_stream(gw.port)
            w.write(b"GET /healthz HTTP/1.1\r\n")
            await w.drain()
            conns.append((r, w))
            await asyncio.sleep(0.1)    # accepted in this order
        dt = await eof_within(conns[0][0], 5)
        check(dt is not None, "the oldest pending connection is still open")
        for i, (r, _) in enumerate(conns[1:], 2):
            expect_eq(await eof_within(r, 0.3), None, f"pending connection #{i} closed")
        # the others still get their answer once their head is complete
        r, w = conns[1]
        w.write(b"Host: x\r\n\r\n")
        line = await asyncio.wait_for(r.readline(), 5)
        expect_eq(line, b"HTTP/1.1 200 OK\r\n", "connection #2 once its head is complete")
        expect_eq(metric_sum(metrics(gw), "anypush_pending_evicted_total"), 1.0, "anypush_pending_evicted_total")
        for _, w in conns:
            w.transport.abort()


async def test_http_timeout_idle():
    "--http-timeout 1: an idle keep-alive connection and a request stalled in its body are closed after about 1 s"
    with Gateway("--http-timeout", "1") as gw:
        r, w = await open_stream(gw.port)
        w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(r.readuntil(b'"ok"}'), 5)
        dt = await eof_within(r, 6)
        check(dt is not None and dt >= 0.8, f"idle keep-alive closed after {dt} s, want about 1 s")
        w.transport.abort()
        r, w = await open_stream(gw.port)
        w.write(b"POST /channels/t HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        dt = await eof_within(r, 6)
        check(dt is not None and dt >= 0.8, f"a request stalled in its body closed after {dt} s, want about 1 s")
        w.transport.abort()
        expect_eq(info(gw, "t")["last_id"], 0, "the stalled publish stored nothing")


async def test_http_timeout_streams():
    "--http-timeout 2: an SSE reader that stopped reading is closed; idle SSE and long polls are not"
    with Gateway("--http-timeout", "2", "--outq-limit", str(64 << 20), "--max-message", "16384") as gw:
        idle = SSEClient(gw, "quiet")
        await idle.start()
        http = AsyncHTTP(gw)
        lp = asyncio.create_task(http.request("GET", "/channels/quiet2?transport=longpoll&timeout=20", timeout=25))
        stuck = SSEClient(gw, "busy", rcvbuf=4096)
        await stuck.start()
        stuck.pause()

        def behind():
            m, last = metrics(gw), info(gw, "busy")["last_id"]
            return m.get('anypush_delivered_total{transport="sse"}', 0) < last - 8
        await publish_until(gw, "busy", behind)
        t0 = time.monotonic()
        await wait_until(lambda: info(gw, "busy")["subscribers"]["sse"] == 0, 8, 0.1,
                         "the stalled SSE stream closed")
        diag(f"the stalled SSE stream was closed {time.monotonic() - t0:.1f} s after it stalled")
        await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - t0)))
        check(not idle.done, f"an idle SSE stream was closed by --http-timeout: {idle.describe()}")
        check(not lp.done(), "a held long poll (timeout=20) was answered or closed early")
        st, _ = publish(gw, "quiet", 1)
        await idle.wait_id(1, 5)
        st, _ = publish(gw, "quiet2", 1)
        r = await lp
        expect_eq((r.status, [m["id"] for m in r.json()["messages"]]), (200, [1]), "the held long poll")
        http.close()


async def test_history_age():
    "--history-age 1: messages age out (info retained 0, oldest past last, evicted counted); since=0 then gets a gap"
    with Gateway("--history-age", "1") as gw:
        sse = SSEClient(gw, "aged")     # keeps the channel from being reclaimed
        await sse.start()
        for i in range(3):
            expect_eq(publish(gw, "aged", i)[0], 201, "publish")
        t0 = time.monotonic()
        inf = info(gw, "aged")
        expect_eq((inf["retained"], inf["oldest_id"]), (3, 1), "history right after publishing")
        await wait_until(lambda: info(gw, "aged")["retained"] == 0, 5, 0.05, "the messages aged out")
        dt = time.monotonic() - t0
        check(dt >= 0.5, f"aged out after {dt:.2f} s, before --history-age 1")
        inf = info(gw, "aged")
        expect_eq((inf["last_id"], inf["oldest_id"]), (3, 4), "last and oldest id once aged out")
        expect_eq(metric_sum(metrics(gw), "anypush_evicted_total"), 3.0, "anypush_evicted_total")
        j = json.loads(get(gw, "/channels/aged?since=0")[2])
        expect_eq((j["messages"], j.get("gap"), [(g["last_seen"], g["cursor"]) for g in j["gaps"]]),
                  ([], True, [(0, 3)]), "poll since=0 after the age")
        expect_eq(sse.ids(), [1, 2, 3], "the attached subscriber got them before")


async def test_history_memory():
    "--history-memory 65536: 20 messages of 8 KB keep what fits, retained bytes within the budget, resume gets a gap"
    with Gateway("--history-memory", "65536", "--max-message", "16384") as gw:
        pub = Publisher(gw)
        try:
            await pub.apublish_many("mem", ["x" * 8000] * 20)
        finally:
            pub.close()
        inf = info(gw, "mem")
        m = metrics(gw)
        kept = inf["retained"]
        diag(f"kept {kept} of 20; anypush_retained_bytes {m.get('anypush_retained_bytes')}")
        check(1 <= kept <= 8, f"{kept} messages of 8 KB kept within 64 KiB")
        expect_eq((inf["last_id"], inf["oldest_id"]), (20, 21 - kept), "last and oldest id")
        check(m.get("anypush_retained_bytes", 1e9) <= 65536, f"retained bytes {m.get('anypush_retained_bytes')}")
        expect_eq(metric_sum(m, "anypush_evicted_total"), float(20 - kept), "anypush_evicted_total")
        j = json.loads(get(gw, "/channels/mem?since=0")[2])
        expect_eq([x["id"] for x in j["messages"]], list(range(21 - kept, 21)), "poll since=0: what is kept")
        expect_eq((j.get("gap"), [(g["last_seen"], g["cursor"]) for g in j["gaps"]]), (True, [(0, 20 - kept)]),
                  "poll since=0: the gap")


async def test_ws_ping_hangup():
    "--ws-ping 1 --ws-hangup 2: a client that answers pings stays, a silent one is dropped without a close frame"
    with Gateway("--ws-ping", "1", "--ws-hangup", "2") as gw:
        alive = WSClient(gw, "p")
        silent = WSClient(gw, "p", auto_pong=False)
        await alive.start()
        await silent.start()
        t0 = time.monotonic()
        await silent.wait_closed(8)
        dt = time.monotonic() - t0
        expect_eq((silent.close_code, silent.eof), (None, True), "the silent client: dropped, no close frame")
        check(silent.pings, "the silent client was pinged before the hangup")
        check(dt >= 1.0, f"the silent client was dropped after {dt:.2f} s, before --ws-hangup 2")
        await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - t0)))
        check(alive.pings and not alive.done, f"the ponging client: {len(alive.pings)} pings, {alive.describe()}")
        expect_eq(info(gw, "p")["subscribers"]["ws"], 1, "ws subscribers")
        publish(gw, "p", 1)
        await alive.wait_id(1, 5)


async def test_ws_frames_are_life():
    "--ws-ping 1 --ws-hangup 2: a client that never pongs but keeps sending frames is alive, and is not pinged"
    with Gateway("--ws-ping", "1", "--ws-hangup", "2") as gw:
        talker = WSClient(gw, "f", auto_pong=False)
        silent = WSClient(gw, "f2", auto_pong=False)
        await talker.start()
        await silent.start()
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 3.5:  # past --ws-hangup, and then some
            await talker.send_text(f"frame {n}")
            n += 1
            await asyncio.sleep(0.3)
        await silent.wait_closed(5)
        check(silent.done, f"the silent client is still there: {silent.describe()}")
        check(not talker.done, f"the client that sent a frame every 0.3 s was dropped: {talker.describe()}")
        expect_eq(len(talker.pings), 0, "pings to a client whose frames confirm the link")
        await talker.wait_id(n, 5)
        expect_eq(info(gw, "f")["subscribers"]["ws"], 1, "ws subscribers of the talker's channel")


async def test_longpoll_clamp():
    "long poll ?timeout= above 120 (999999, 121) is held, not refused, and a publish releases it"
    with Gateway() as gw:
        http = [AsyncHTTP(gw), AsyncHTTP(gw)]
        tasks = [asyncio.create_task(h.request("GET", f"/channels/lc?transport=longpoll&timeout={t}", timeout=10))
                 for h, t in zip(http, ("999999", "121"))]
        await wait_until(lambda: metric_sum(metrics(gw), 'anypush_subscribers{transport="longpoll"}') == 2,
                         5, 0.05, "both long polls held")
        await asyncio.sleep(1.0)
        check(not any(t.done() for t in tasks), "a long poll with a large timeout was answered at once")
        publish(gw, "lc", 1)
        for t in tasks:
            r = await t
            expect_eq((r.status, [m["id"] for m in r.json()["messages"]]), (200, [1]), "released by the publish")
        for h in http:
            h.close()


async def test_reply_cut():
    "poll and long-poll replies are cut at about 1 MiB (more:true), a message above 1 MiB comes alone, 256 at most"
    sizes = [400000, 400000, 400000, 1500000, 10]
    with Gateway("--max-message", str(2 << 20), "--history-memory", str(64 << 20)) as gw:
        pub = Publisher(gw, timeout=10)
        try:
            for s in sizes:
                st, _ = await pub.apublish("cut", "x" * s)
                expect_eq(st, 201, f"publish of {s} bytes")
            await pub.apublish_many("many", [i for i in range(300)])
        finally:
            pub.close()
        want = [([1, 2], True), ([3], True), ([4], True), ([5], None)]
        since = "0"
        for i, (ids, more) in enumerate(want):
            transport = "longpoll" if i == 0 else "poll"
            st, _, body = get(gw, f"/channels/cut?transport={transport}&since={since}", timeout=10)
            j = json.loads(body)
            got = [m["id"] for m in j["messages"]]
            expect_eq((got, j.get("more")), (ids, more), f"{transport} reply #{i + 1} (since={since})")
            if len(got) > 1:
                total = sum(len(json.dumps(m, separators=(",", ":"))) for m in j["messages"])
                check(total <= 1 << 20, f"reply #{i + 1}: {total} bytes of envelopes, over 1 MiB")
            since = j["next"]
        j = json.loads(get(gw, "/channels/many?since=0")[2])
        expect_eq((len(j["messages"]), j["messages"][-1]["id"], j.get("more")), (256, 256, True), "300 small")


if __name__ == "__main__":
    raise SystemExit(run([
        test_max_pending, test_http_timeout_idle, test_http_timeout_streams, test_history_age,
        test_history_memory, test_ws_ping_hangup, test_ws_frames_are_life, test_longpoll_clamp, test_reply_cut,
    ], budget=55, timeout=20))
