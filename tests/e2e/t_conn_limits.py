#!/usr/bin/env python3
"""--max-conns-per-ip: open connections per client IP.

The router counts a connection when it hands it to a library and the
library gives the count back when it closes it, whatever the transport
(libmicrohttpd: plain requests, polls, long polls and SSE it holds;
libwebsockets: WebSockets, /ws, SSE streams, open-mode long polls, whose
socket goes back to the router after each reply). Each kind is held up
to the limit, one more is refused (429 too_many_connections, Retry-After,
Connection: close, counted in /metrics), and closing one makes room.
A churn of every kind, answered and abandoned, must bring the gauge
anypush_ip_connections back to exactly the /metrics request's own, and
the limit must still let exactly N in: a count lost or given back twice
shows there. Behind a trusted proxy the client is the X-Forwarded-For
address; from an untrusted peer the header is ignored."""

import asyncio
import base64
import json
import os
import socket
import struct

from gwlib import (Gateway, MuxClient, WSClient, check, expect_eq, metric_sum, metrics, open_stream, publish,
                   read_head, run, wait_until, BodyReader, _http_request_bytes)

LIMIT = 3
CLIENT = "198.51.100.7"
OTHER = "198.51.100.8"


def gauge(gw, name="anypush_ip_connections"):
    return metric_sum(metrics(gw), name)


def head_bytes(gw, kind, ch, xff):
    """The request that opens a connection of that kind."""
    h = {"X-Forwarded-For": xff} if xff else {}
    if kind == "http":  # an info request on a keep-alive connection (libmicrohttpd)
        return _http_request_bytes("GET", f"/channels/{ch}/info", gw.port, h)
    if kind == "poll":
        return _http_request_bytes("GET", f"/channels/{ch}?transport=poll", gw.port, h)
    if kind == "longpoll_lws":  # a valid keep-alive long poll: libwebsockets
        return _http_request_bytes("GET", f"/channels/{ch}?transport=longpoll&timeout=60", gw.port, h)
    if kind == "longpoll_mhd":  # Connection: close keeps it on libmicrohttpd
        return _http_request_bytes("GET", f"/channels/{ch}?transport=longpoll&timeout=60", gw.port,
                                   dict(h, Connection="close"))
    if kind == "sse_lws":
        return _http_request_bytes("GET", f"/channels/{ch}?transport=sse", gw.port, h)
    if kind == "sse_mhd":  # a (empty) body keeps it on libmicrohttpd
        return _http_request_bytes("GET", f"/channels/{ch}?transport=sse", gw.port, dict(h, **{"Content-Length": "0"}))
    key = base64.b64encode(os.urandom(16)).decode()
    ws = dict(h, Upgrade="websocket", Connection="Upgrade", **{"Sec-WebSocket-Key": key,
                                                               "Sec-WebSocket-Version": "13",
                                                               "Sec-WebSocket-Protocol": "anypush.v1"})
    if kind == "ws":
        return _http_request_bytes("GET", f"/channels/{ch}", gw.port, ws)
    if kind == "mux":
        return _http_request_bytes("GET", "/ws", gw.port, ws)
    raise ValueError(kind)


# what the gateway answers at once for each kind; None: nothing until a message
FIRST_STATUS = {"http": 200, "poll": 200, "longpoll_lws": None, "longpoll_mhd": None, "sse_lws": 200,
                "sse_mhd": 200, "ws": 101, "mux": 101}
KINDS = list(FIRST_STATUS)


async def open_kind(gw, kind, ch, xff):
    """A connection of that kind, served: (reader, writer)."""
    reader, writer = await open_stream(gw.port)
    writer.write(head_bytes(gw, kind, ch, xff))
    await writer.drain()
    want = FIRST_STATUS[kind]
    if want is not None:
        head = await read_head(reader, 10)
        expect_eq(head.status, want, f"{kind}: the first answer ({head.headers})")
        if kind in ("http", "poll"):
            await asyncio.wait_for(BodyReader(reader, head).read_all(), 10)
    return reader, writer


async def expect_refused(gw, kind, ch, xff):
    reader, writer = await open_stream(gw.port)
    writer.write(head_bytes(gw, kind, ch, xff))
    await writer.drain()
    head = await read_head(reader, 10)
    body = await asyncio.wait_for(reader.read(), 10)  # up to the close
    writer.close()
    expect_eq(head.status, 429, f"{kind} past the limit: status ({body[:200]!r})")
    expect_eq(json.loads(body)["error"]["code"], "too_many_connections", f"{kind}: code")
    check("--max-conns-per-ip" in json.loads(body)["error"]["message"], f"{kind}: the message names the option")
    expect_eq(head.headers.get("retry-after"), "1", f"{kind}: Retry-After")
    expect_eq(head.headers.get("connection", "").lower(), "close", f"{kind}: Connection")


async def open_when_room(gw, kind, ch, xff, timeout=20):
    """open_kind once the gateway has seen a connection close (a 429 until
    then); the gauge cannot say so when the /metrics request itself would
    be refused."""
    last = None
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            return await open_kind(gw, kind, ch, xff)
        except AssertionError as e:
            check("got 429" in str(e), f"{kind}: {e}")
            last = e
        await asyncio.sleep(0.05)
    raise AssertionError(f"{kind}: no room after {timeout} s: {last}")


def close_all(conns):
    for _, w in conns:
        w.close()


async def settle(gw, held, what):
    """Wait until the gauge says held connections plus the /metrics one."""
    await wait_until(lambda: gauge(gw) == held + 1, 20, 0.05, f"anypush_ip_connections == {held + 1} ({what})")


async def test_each_kind_hit_and_recovered():
    with Gateway("--max-conns-per-ip", LIMIT, "--trusted-proxies", "127.0.0.1") as gw:
        refused = 0
        for kind in KINDS:
            ch = f"k-{kind}"
            conns = [await open_kind(gw, kind, ch, CLIENT) for _ in range(LIMIT)]
            await settle(gw, LIMIT, f"{LIMIT} {kind}")
            await expect_refused(gw, kind, ch, CLIENT)
            refused += 1
            # another client behind the same proxy has its own count
            other = await open_kind(gw, kind, ch, OTHER)
            await settle(gw, LIMIT + 1, f"{kind} of another client")
            expect_eq(gauge(gw, "anypush_ip_connections_ips"), 3, f"{kind}: IPs holding connections")
            # one closed makes room for one
            conns[0][1].close()
            await settle(gw, LIMIT, f"one {kind} closed")
            conns[0] = await open_kind(gw, kind, ch, CLIENT)
            await settle(gw, LIMIT + 1, f"{kind} again")
            close_all(conns + [other])
            await settle(gw, 0, f"every {kind} closed")
        expect_eq(gauge(gw, "anypush_conns_refused_per_ip_total"), refused, "anypush_conns_refused_per_ip_total")

        def alone():
            m = metrics(gw)  # one scrape: both gauges of the same moment
            return metric_sum(m, "anypush_connections") == 1 and metric_sum(m, "anypush_ip_connections") == 1
        await wait_until(alone, 20, 0.05, "anypush_connections and anypush_ip_connections: the /metrics request's")


async def answered_longpoll_then_publish(gw, ch, xff):
    """A long poll on libwebsockets that gets its message, then, on the same
    connection, a publish (its socket went back to the router, which hands
    the second request to libmicrohttpd)."""
    # since=0: the message is its whether it comes before or after the
    # poll is held
    reader, writer = await open_stream(gw.port)
    writer.write(_http_request_bytes("GET", f"/channels/{ch}?transport=longpoll&timeout=60&since=0", gw.port,
                                     {"X-Forwarded-For": xff}))
    await writer.drain()
    publish(gw, ch, {"n": 1})
    head = await read_head(reader, 10)
    expect_eq(head.status, 200, "the long poll's reply")
    await asyncio.wait_for(BodyReader(reader, head).read_all(), 10)
    body = b'{"n":2}'
    writer.write(_http_request_bytes("POST", f"/channels/{ch}", gw.port,
                                     {"X-Forwarded-For": xff, "Content-Type": "application/json"}, body))
    await writer.drain()
    head = await read_head(reader, 10)
    expect_eq(head.status, 201, "a publish on the long poll's connection")
    await asyncio.wait_for(BodyReader(reader, head).read_all(), 10)
    return reader, writer


async def test_churn_gives_back_exactly_once():
    n = 5
    with Gateway("--max-conns-per-ip", n, "--trusted-proxies", "127.0.0.1") as gw:
        ips = [f"203.0.113.{i}" for i in range(1, 5)]
        for rnd in range(3):
            conns = []
            for i, ip in enumerate(ips):
                # n - 1 of varied kinds per IP, then one answered long poll
                for j in range(n - 1):
                    kind = KINDS[(rnd + i + j) % len(KINDS)]
                    conns.append(await open_kind(gw, kind, f"c{rnd}-{i}-{j}", ip))
                conns.append(await answered_longpoll_then_publish(gw, f"lp{rnd}-{i}", ip))
            await settle(gw, n * len(ips), f"round {rnd}: every connection held")
            for ip in ips:
                await expect_refused(gw, "http", "x", ip)
            # half closed politely, half reset
            for k, (_, w) in enumerate(conns):
                if k % 2:
                    sock = w.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                w.close()
            await settle(gw, 0, f"round {rnd}: every connection closed")
            # a connection that sends half a head and leaves is never counted
            r, w = await open_stream(gw.port)
            w.write(b"GET /channels/x HTTP/1.1\r\nX-Forwarded-For: " + ips[0].encode())
            await w.drain()
            w.close()
        m = metrics(gw)
        expect_eq(metric_sum(m, "anypush_ip_connections_ips"), 1, "IPs: only the /metrics request's")
        expect_eq(metric_sum(m, "anypush_conns_refused_per_ip_total"), 3 * len(ips), "refusals counted exactly")
        # the limit is whole again: n in, the next refused
        conns = [await open_kind(gw, KINDS[k % len(KINDS)], "again", ips[0]) for k in range(n)]
        await settle(gw, n, "n again")
        await expect_refused(gw, "mux", "again", ips[0])
        close_all(conns)
        await settle(gw, 0, "all closed at the end")


async def test_untrusted_forwarded_for_is_ignored():
    with Gateway("--max-conns-per-ip", 2) as gw:
        # without --trusted-proxies every connection here is 127.0.0.1's
        a = await open_kind(gw, "mux", "u", "198.51.100.1")
        b = await open_kind(gw, "sse_lws", "u", "198.51.100.2")
        await expect_refused(gw, "http", "u", "198.51.100.3")
        await expect_refused(gw, "ws", "u", None)
        b[1].close()
        c = await open_when_room(gw, "http", "u", "198.51.100.3")
        close_all([a, c])

        def room():
            try:
                return gauge(gw) == 1  # this /metrics request alone
            except AssertionError:  # refused: the others are still counted
                return False
        await wait_until(room, 20, 0.1, "every connection given back")
        # and both places are free again
        # (the last /metrics connection may not be seen closed yet)
        a = await open_when_room(gw, "longpoll_lws", "u", None)
        b = await open_when_room(gw, "poll", "u", None)
        await expect_refused(gw, "sse_mhd", "u", None)
        close_all([a, b])


async def test_mux_and_ws_clients_see_the_429():
    with Gateway("--max-conns-per-ip", 1, "--trusted-proxies", "127.0.0.1") as gw:
        m = MuxClient(gw, headers={"X-Forwarded-For": CLIENT})
        await m.start()
        w = WSClient(gw, "w", headers={"X-Forwarded-For": CLIENT})
        try:
            await w.connect()
            raise AssertionError("a second WebSocket of the client was upgraded")
        except AssertionError as e:
            check("status 429" in str(e) and b"too_many_connections" in w.error_body, f"refused: {e}")
        await m.close()
        await wait_until(lambda: gauge(gw) == 1, 20, 0.05, "the /ws connection given back")
        w = WSClient(gw, "w", headers={"X-Forwarded-For": CLIENT})
        await w.start(wait_welcome=False)
        await w.close()


async def test_zero_is_off():
    with Gateway() as gw:
        conns = [await open_kind(gw, KINDS[k % len(KINDS)], "z", None) for k in range(12)]
        m = metrics(gw)
        expect_eq(metric_sum(m, "anypush_ip_connections"), 0, "nothing counted without the option")
        expect_eq(metric_sum(m, "anypush_conns_refused_per_ip_total"), 0, "no refusals")
        close_all(conns)


if __name__ == "__main__":
    raise SystemExit(run([test_each_kind_hit_and_recovered, test_churn_gives_back_exactly_once,
                          test_untrusted_forwarded_for_is_ignored, test_mux_and_ws_clients_see_the_429,
                          test_zero_is_off], budget=150, timeout=90))
