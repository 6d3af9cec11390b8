#!/usr/bin/env python3
"""The gateway behind Debian's nginx terminating TLS, configured with
docs/nginx-anypush.conf (only ports and certificate paths replaced, by
tlsfront.py): every transport through it loses, duplicates and reorders
nothing; SSE is not buffered; WebSocket handshakes work after short
requests filled nginx's upstream keep-alive pool; short requests reuse
upstream connections; long polls are held to their timeout; publish sizes
up to --max-message pass and one more byte gets the gateway's JSON 413."""

import asyncio
import re
import time

from gwlib import (REPO, AsyncHTTP, Gateway, LongPollClient, MuxClient, PollClient, Publisher,
                   SSEClient, WSClient, check, epochs_problem, expect_eq, expect_error, get,
                   ids_problem, metric_sum, metrics, payload, publish, request, run)
from tlsfront import NginxFront

N = 60


async def test_every_transport():
    "poll, longpoll, sse, ws and /ws through nginx over TLS get ids 1..60 exactly, in order"
    with Gateway() as gw, NginxFront(gw.port) as front:
        ep = front.endpoint
        pub = Publisher(ep)
        try:
            # the first third is in history before anyone subscribes
            acks = pub.publish_many("tls", [payload(i) for i in range(1, 21)])
            subs = [PollClient(ep, "tls", since=0, interval=0.05),
                    LongPollClient(ep, "tls", since=0, timeout=10),
                    SSEClient(ep, "tls", since=0)]
            for s in subs:
                await s.start()
            # the WebSockets come after short requests left idle upstream
            # connections in nginx's keep-alive pool
            expect_eq(get(ep, "/healthz")[0], 200, "GET /healthz through nginx")
            ws = WSClient(ep, "tls", since=0)
            await ws.start()
            mux = MuxClient(ep)
            await mux.start()
            await mux.subscribe("tls", since=0)
            subs += [ws, mux]
            acks += await pub.apublish_many("tls", [payload(i) for i in range(21, N + 1)], interval=0.01)
            epoch = pub.epochs["tls"]
        finally:
            pub.close()
        expect_eq(acks, list(range(1, N + 1)), "acknowledged ids")
        for s in subs:
            await s.wait_count(N, 10)
        await asyncio.sleep(0.3)  # anything extra would show up now
        for s in subs:
            what = "/ws" if s is mux else s.kind
            prob = ids_problem(s.ids(), list(range(1, N + 1)))
            check(prob is None, f"{what}: {prob}")
            check(epochs_problem(s.messages, epoch) is None, f"{what}: {epochs_problem(s.messages, epoch)}")
            expect_eq([m["data"] for m in s.messages], [payload(i) for i in range(1, N + 1)],
                      f"{what} payloads")
            expect_eq(s.gaps, [], f"{what} gaps")
            expect_eq(s.problems, [], f"{what} protocol problems")


async def test_sse_unbuffered():
    "SSE through nginx: a message published arrives within 3 s, long before the next heartbeat (15 s)"
    with Gateway("--heartbeat", "15") as gw, NginxFront(gw.port) as front:
        sse = SSEClient(front.endpoint, "live")
        await sse.start()
        for i in range(1, 4):
            t0 = time.monotonic()
            st, _ = publish(gw, "live", {"n": i})
            expect_eq(st, 201, "publish")
            await sse.wait_count(i, 5)
            took = time.monotonic() - t0
            # a buffering nginx holds it until the 15 s heartbeat; 3 s is
            # room for a loaded machine
            check(took < 3.0, f"message {i} took {took:.2f} s through nginx: buffered?")
        expect_eq(sse.ids(), [1, 2, 3], "ids")
        expect_eq(sse.comments, [], "heartbeats before the messages")


async def test_ws_after_keepalive():
    "WebSocket handshakes after many short requests through nginx all get 101, single-channel and /ws"
    with Gateway() as gw, NginxFront(gw.port) as front:
        ep = front.endpoint
        for round_ in range(3):
            # a few short requests at once leave several idle upstream
            # connections to the gateway's HTTP side in nginx's pool
            http = [AsyncHTTP(ep) for _ in range(4)]
            replies = await asyncio.gather(*(h.request("GET", "/channels/k/info") for h in http))
            expect_eq([r.status for r in replies], [200] * 4, "info through nginx")
            for h in http:
                h.close()
            ws = WSClient(ep, "k")
            await ws.start()
            mux = MuxClient(ep)
            await mux.start()
            await mux.subscribe("k")
            st, body = publish(ep, "k", {"round": round_})
            expect_eq(st, 201, f"publish: {body!r}")
            await ws.wait_count(1, 5)
            await mux.wait_count(1, 5)
            expect_eq((ws.messages[0]["data"], mux.messages[0]["data"]), ({"round": round_},) * 2,
                      "data on ws and /ws")
            ws.abort()
            mux.abort()


async def test_keepalive_upstream():
    "40 publishes over one TLS connection open at most 2 connections from nginx to the gateway"
    with Gateway() as gw, NginxFront(gw.port) as front:
        pub = Publisher(front.endpoint)
        try:
            pub.publish_many("ka", [{"i": 0}])
            before = metric_sum(metrics(gw), "anypush_connections_accepted_total")
            pub.publish_many("ka", [{"i": i} for i in range(1, 41)])
        finally:
            pub.close()
        after = metric_sum(metrics(gw), "anypush_connections_accepted_total")
        # the second /metrics request is one connection of its own
        opened = after - before - 1
        check(opened <= 2, f"nginx opened {opened:.0f} connections to the gateway for 40 publishes: "
                           f"no upstream keep-alive?")


def conf_seconds(directive):
    text = (REPO / "docs" / "nginx-anypush.conf").read_text()
    m = re.search(r"^\s*" + directive + r"\s+(\d+)s;", text, re.M)
    check(m is not None, f"docs/nginx-anypush.conf has no '{directive} Ns;'")
    return int(m.group(1))


async def test_longpoll_held():
    "a long poll through nginx is held to its timeout, and answered when a message comes"
    # nginx must wait longer than the longest hold a client may ask (120 s)
    # and than the gateway's default heartbeat and WebSocket ping
    read = conf_seconds("proxy_read_timeout")
    check(read > 120, f"proxy_read_timeout {read} s is not above the longest long poll (120 s)")
    with Gateway() as gw, NginxFront(gw.port) as front:
        http = AsyncHTTP(front.endpoint)
        r = await http.request("GET", "/channels/lp?transport=poll")
        expect_eq(r.status, 200, "poll")
        nxt = r.json()["next"]
        t0 = time.monotonic()
        r = await http.request("GET", f"/channels/lp?transport=longpoll&since={nxt}&timeout=3", timeout=10)
        took = time.monotonic() - t0
        expect_eq((r.status, r.json()["messages"]), (200, []), "an empty long poll")
        check(2.8 < took < 5.0, f"the empty long poll was answered after {took:.2f} s, want 3 s")
        held = asyncio.ensure_future(
            http.request("GET", f"/channels/lp?transport=longpoll&since={nxt}&timeout=20", timeout=25))
        await asyncio.sleep(1.0)
        check(not held.done(), f"the long poll was answered before any publish: {held}")
        t0 = time.monotonic()
        expect_eq(publish(gw, "lp", {"x": 1})[0], 201, "publish")
        r = await asyncio.wait_for(held, 5)
        took = time.monotonic() - t0
        expect_eq([(m["id"], m["data"]) for m in r.json()["messages"]], [(1, {"x": 1})], "the held long poll")
        check(took < 3.0, f"the held long poll was answered {took:.2f} s after the publish (its timeout: 20 s)")
        http.close()


async def test_body_size():
    "a publish of --max-message bytes passes nginx; one byte more gets the gateway's JSON 413 too_large"
    with Gateway("--max-message", "65536") as gw, NginxFront(gw.port) as front:
        ep = front.endpoint
        st, body = publish(ep, "big", b"\x01" * 65536)
        expect_eq(st, 201, f"publish of 65536 bytes: {body!r}")
        hdrs = {"Content-Type": "application/octet-stream"}
        expect_error(request(ep, "POST", "/channels/big", body=b"\x01" * 65537, headers=hdrs),
                     413, "too_large", "publish of 65537 bytes through nginx")


if __name__ == "__main__":
    run([test_every_transport, test_sse_unbuffered, test_ws_after_keepalive,
         test_keepalive_upstream, test_longpoll_held, test_body_size], budget=55.0, timeout=20.0)
