#!/usr/bin/env python3
"""Bounded under abuse: connections and held streams have budgets.

--max-connections counts every connection, WebSockets included, and
--max-streams (held SSE streams, long polls, WebSockets) stops below it, so
publishing and short requests keep room.  Past a budget the answer is a
clear 503 over_capacity JSON error with Retry-After; the clients already in
lose nothing, and room comes back when some leave.  The gateway also takes
its whole open-file limit at start."""

import asyncio
import base64
import json
import os
import re
import resource

from gwlib import (Gateway, LongPollClient, Publisher, SSEClient, WSClient, check, expect_eq,
                   get, ids_problem, metric_sum, metrics, payload, publish, raw_exchange, run,
                   skip, wait_until)


def ws_handshake(ch):
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /channels/{ch}?transport=ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: anypush.v1\r\n\r\n").encode()


def sse_request(ch, transport="sse"):
    return (f"GET /channels/{ch}?transport={transport} HTTP/1.1\r\nHost: x\r\n"
            f"Accept: text/event-stream\r\n\r\n").encode()


def healthz_request():
    return b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def over_capacity(gw, req, what):
    """Send req on a fresh connection; it must get 503 over_capacity JSON with
    Retry-After (and not a 101 or a held 200)."""
    got, how = await raw_exchange(gw, req, read_timeout=3, stop_after_head=False)
    head, _, body = got.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    check(m is not None, f"{what}: no HTTP answer ({how}): {got[:200]!r}")
    status = int(m.group(1))
    check(status == 503, f"{what}: status {status}, want 503 over_capacity: {got[:300]!r}")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in
            (line.partition(b":") for line in head.split(b"\r\n")[1:])}
    check(hdrs.get(b"content-type", b"").startswith(b"application/json"),
          f"{what}: Content-Type {hdrs.get(b'content-type')!r}")
    check(hdrs.get(b"retry-after", b"").isdigit(), f"{what}: no Retry-After: {head!r}")
    if b"transfer-encoding" in hdrs:   # MHD's answer may be chunked
        m = re.match(rb"([0-9a-fA-F]+)\r\n", body)
        body = body[m.end():m.end() + int(m.group(1), 16)] if m else body
    err = json.loads(body)["error"]
    expect_eq(err["code"], "over_capacity", f"{what}: error code")
    check(isinstance(err.get("message"), str) and err["message"], f"{what}: no message")


async def healthz_ok(gw):
    got, how = await raw_exchange(gw, healthz_request(), read_timeout=2)
    return got.startswith(b"HTTP/1.1 200")


def proc_soft_nofile(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3]), int(line.split()[4])
    raise AssertionError("no Max open files line")


async def test_fd_limit_raised():
    "the gateway raises its open-file soft limit to the hard limit and logs it"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 256
    if hard != resource.RLIM_INFINITY and hard <= low:
        skip(f"hard limit {hard} too low to test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        gw = Gateway("--log-level", "info")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with gw:
        got_soft, got_hard = proc_soft_nofile(gw.pid)
        expect_eq(got_soft, got_hard, "the gateway's soft open-file limit (want the hard limit)")
        check(re.search(rf"open files: raised the limit from {low} to {got_hard}", gw.log_tail(50)),
              f"no info line about the raised limit:\n{gw.log_tail(10)}")


async def test_ws_count_as_connections():
    "--max-connections counts WebSockets: full means a clear 503, subscribers lose nothing, room comes back"
    with Gateway("--max-connections", "20", "--max-streams", "19") as gw:
        ch = "full"
        sse = SSEClient(gw, ch)
        await sse.start()                              # 1 connection
        pub = Publisher(gw)
        try:
            st, _ = await pub.apublish(ch, payload(1))    # 2: a keep-alive publisher
            expect_eq(st, 201, "first publish")
            wss = []
            for _ in range(17):                        # 19: WebSockets (18 streams)
                w = WSClient(gw, ch, since=0)
                await w.start()
                wss.append(w)
            poll = Publisher(gw)                       # 20: an idle keep-alive poller

            def do_poll():
                poll.conn.request("GET", f"/channels/{ch}?transport=poll")
                r = poll.conn.getresponse()
                r.read()
                return r.status
            expect_eq(await asyncio.to_thread(do_poll), 200, "a poll")
            mets = metrics_via(pub)
            expect_eq((mets.get("anypush_connections"), mets.get("anypush_streams")), (20.0, 18.0),
                      "connections and streams counted")
            # every slot is taken: streams are not (18 of 19), connections are
            await over_capacity(gw, healthz_request(), "a 21st connection (/healthz)")
            await over_capacity(gw, ws_handshake(ch), "a 21st connection (WebSocket)")
            await over_capacity(gw, sse_request(ch), "a 21st connection (SSE)")
            # the ones in keep working: every message reaches every subscriber
            acks = []
            for i in range(2, 12):
                st, body = await pub.apublish(ch, payload(i))
                expect_eq(st, 201, f"publish #{i} while full")
                acks.append(body["id"])
            expect_eq(acks, list(range(2, 12)), "acked ids while full")
            want = list(range(1, 12))
            for c in [sse] + wss:
                await c.wait_count(len(want), 5)
                prob = ids_problem(c.ids(), want)
                check(prob is None, f"{c.kind} subscriber while full: {prob}")
            # three leave: their slots come back
            for w in wss[:3]:
                w.abort()
            await wait_until(lambda: healthz_ok(gw), 5, 0.1, "a fresh /healthz accepted again")
            w = WSClient(gw, ch, since=11)
            await w.start()
            s2 = SSEClient(gw, ch, since=11)
            await s2.start()
            st, _ = await pub.apublish(ch, payload(12))
            expect_eq(st, 201, "publish after some left")
            await w.wait_count(1, 5)
            await s2.wait_count(1, 5)
            expect_eq((w.ids(), s2.ids()), ([12], [12]), "newcomers get the next message")
            over = metric_sum(metrics_via(pub), "anypush_over_capacity_total")
            check(over is not None and over >= 3, f"anypush_over_capacity_total {over}, want >= 3")
            poll.close()
        finally:
            pub.close()


def metrics_via(pub):
    """/metrics over the publisher's own keep-alive connection (a fresh one may
    be over the limit)."""
    pub.conn.request("GET", "/metrics")
    r = pub.conn.getresponse()
    text = r.read().decode()
    check(r.status == 200, f"/metrics: {r.status}")
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


async def test_streams_budget():
    "--max-streams: extra SSE, long polls and WebSockets get 503; publishing and polls still answered, held streams lose nothing"
    with Gateway("--max-connections", "60", "--max-streams", "10") as gw:
        ch = "busy"
        held = [SSEClient(gw, ch) for _ in range(4)] + [WSClient(gw, ch) for _ in range(3)]
        for c in held:
            await c.start()
        lps = [LongPollClient(gw, ch, timeout=20) for _ in range(3)]
        for c in lps:
            await c.start()
        held += lps
        await wait_until(lambda: metric_sum(metrics(gw), "anypush_streams") == 10, 5, 0.05,
                         "10 streams held")
        # a flood of more streams: every one refused, clearly
        flood = ([over_capacity(gw, sse_request(ch), f"extra SSE #{i}") for i in range(8)] +
                 [over_capacity(gw, sse_request(ch, "longpoll"), f"extra long poll #{i}")
                  for i in range(4)] +
                 [over_capacity(gw, ws_handshake(ch), f"extra WebSocket #{i}") for i in range(8)])
        await asyncio.gather(*flood)
        # short requests always have room: publishes, polls, info, healthz
        n_msg = 10
        for i in range(1, n_msg + 1):
            st, body = await asyncio.to_thread(publish, gw, ch, payload(i))
            expect_eq((st, body.get("id") if isinstance(body, dict) else body), (201, i),
                      f"publish #{i} with every stream slot taken")
            st, _, _ = await asyncio.to_thread(get, gw, f"/channels/{ch}?transport=poll&since=0")
            expect_eq(st, 200, "a poll with every stream slot taken")
        st, _, _ = await asyncio.to_thread(get, gw, f"/channels/{ch}/info")
        expect_eq(st, 200, "info with every stream slot taken")
        want = list(range(1, n_msg + 1))
        for c in held:
            await c.wait_count(n_msg, 5)
        bad = [f"{c.kind}: {ids_problem(c.ids(), want)}" for c in held if ids_problem(c.ids(), want)]
        check(not bad, "held streams lost, duplicated or reordered messages:\n" + "\n".join(bad))
        check(all(not c.done for c in held), "a held stream ended: " +
              "; ".join(c.describe() for c in held if c.done))
        # one leaves, one more fits
        held[0].abort()
        await wait_until(lambda: metric_sum(metrics(gw), "anypush_streams") == 9, 5, 0.05,
                         "the stream slot given back")
        s = SSEClient(gw, ch, since=n_msg)
        await s.start()
        await over_capacity(gw, sse_request(ch), "an SSE once full again")
        mets = metrics(gw)
        check(metric_sum(mets, "anypush_over_capacity_total") >= 21,
              f"anypush_over_capacity_total {metric_sum(mets, 'anypush_over_capacity_total')}")


if __name__ == "__main__":
    raise SystemExit(run([test_fd_limit_raised, test_ws_count_as_connections, test_streams_budget],
                         budget=55, timeout=25))
