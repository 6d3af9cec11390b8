#!/usr/bin/env python3
"""Long polls held on the libwebsockets loops (lws_longpoll.c): an
idle long poll costs under 5 KiB of RSS (6.2 KiB held by libmicrohttpd);
after its reply the socket goes back to the router, so a publish and
another long poll on the same keep-alive connection both work; bytes that
follow a head at once are answered in order (libmicrohttpd serves them);
a client that sends more while its poll is held is closed; and doubtful
requests still get libmicrohttpd's JSON errors."""

import asyncio
import json
import os

from gwlib import (Gateway, check, diag, expect_eq, get, info, metrics, open_stream, publish, read_head,
                   rss_kb, run, wait_until)

IDLE = 1000          # polls measured (the test process has 20,000 fds)
WARM = 50            # opened first, so that lazily made things are counted out
PER_POLL_MAX = 5 * 1024


def lp_request(ch, query="", extra=""):
    return (f"GET /channels/{ch}?transport=longpoll{query} HTTP/1.1\r\nHost: x\r\n"
            f"{extra}\r\n").encode()


async def read_reply(reader, timeout=10.0):
    head = await read_head(reader, timeout)
    n = int(head.headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(n), timeout)
    return head, body


async def open_poll(gw, ch, query="&timeout=120"):
    reader, writer = await open_stream(gw.port, 10.0)
    writer.write(lp_request(ch, query))
    await writer.drain()
    return reader, writer


def held(gw):
    """Held streams and long polls, whichever library holds them."""
    return metrics(gw).get("anypush_streams")


def loop_conns(gw):
    m = metrics(gw)
    return sum(v for k, v in m.items() if k.startswith("anypush_ws_loop_connections"))


async def test_idle_memory():
    "1000 idle long polls: RSS grows by under 5 KiB per poll, all held on the lws loops, all answered"
    with Gateway() as gw:
        ch = "idle"
        polls = []
        try:
            for _ in range(WARM):
                polls.append(await open_poll(gw, ch))
            await wait_until(lambda: held(gw) == WARM, 10, 0.05, "warm polls held")
            await asyncio.sleep(0.3)
            rss0 = rss_kb(gw.pid)
            batch = 100
            for start in range(0, IDLE, batch):
                polls += await asyncio.gather(*(open_poll(gw, ch) for _ in range(batch)))
            await wait_until(lambda: held(gw) == WARM + IDLE, 10, 0.1, "every poll held")
            await asyncio.sleep(0.3)
            grew = (rss_kb(gw.pid) - rss0) * 1024
            per = grew / IDLE
            diag(f"RSS grew by {grew / 1024:.0f} KiB for {IDLE} long polls: {per:.0f} bytes each")
            if os.environ.get("ANYPUSH_SANITIZERS"):
                diag("sanitizer build: RSS growth not asserted")
            else:
                check(per < PER_POLL_MAX, f"{per:.0f} bytes of RSS per idle long poll, want < {PER_POLL_MAX}")
            expect_eq(loop_conns(gw), WARM + IDLE, "polls the lws loops hold (anypush_ws_loop_connections)")
            st, _ = publish(gw, ch, {"n": 1})
            expect_eq(st, 201, "publish")
            for reader, _ in polls[:20] + polls[-20:]:
                head, body = await read_reply(reader)
                expect_eq(head.status, 200, "long-poll status")
                check(b'"n":1' in body, f"reply {body[:200]!r}")
        finally:
            for _, w in polls:
                w.transport.abort()
        await wait_until(lambda: loop_conns(gw) == 0, 10, 0.1, "every poll's connection gone")


async def test_keep_alive():
    "after a long poll's reply, more long polls (held on lws), a publish and a poll on the same connection work"
    with Gateway() as gw:
        ch = "ka"
        reader, writer = await open_stream(gw.port, 10.0)
        try:
            writer.write(lp_request(ch, "&timeout=1&client=c1"))
            await writer.drain()
            await wait_until(lambda: loop_conns(gw) == 1, 5, 0.02, "the first poll held on the lws loops")
            head, body = await read_reply(reader, 10.0)
            expect_eq(head.status, 200, "first long poll (timed out)")
            expect_eq(head.headers.get("x-client-id"), "c1", "X-Client-Id")
            # no Origin came: no Access-Control-Allow-Origin (--allow-origin
            # echoes an allowed one, on libmicrohttpd), but Vary: Origin
            expect_eq(head.headers.get("access-control-allow-origin"), None, "no CORS origin")
            expect_eq(head.headers.get("vary"), "Origin", "Vary")
            first = json.loads(body)
            expect_eq(first["messages"], [], "nothing published yet")
            # the socket went back to the router: the next poll is held on
            # lws again, and woken by a publish elsewhere
            writer.write(lp_request(ch, f"&timeout=20&client=c1&since={first['next']}"))
            await writer.drain()
            await wait_until(lambda: loop_conns(gw) == 1, 5, 0.02, "the second poll held on the lws loops")
            expect_eq(info(gw, ch)["subscribers"]["longpoll"], 1, "the poller counted by its client id")
            st, _ = publish(gw, ch, {"k": 1})
            expect_eq(st, 201, "publish elsewhere")
            head, body = await read_reply(reader, 10.0)
            second = json.loads(body)
            expect_eq([m["data"] for m in second["messages"]], [{"k": 1}], "second poll's reply")
            data = b'{"k":2}'
            writer.write(b"POST /channels/ka HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
            head, body = await read_reply(reader, 10.0)
            expect_eq(head.status, 201, "publish on the same connection")
            writer.write(lp_request(ch, f"&timeout=5&since={second['next']}"))
            head, body = await read_reply(reader, 10.0)
            expect_eq(head.status, 200, "a long poll after the publish")
            expect_eq([m["data"] for m in json.loads(body)["messages"]], [{"k": 2}], "the message published")
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            head, body = await read_reply(reader, 10.0)
            expect_eq(head.status, 200, "healthz on the same connection")
        finally:
            writer.transport.abort()


async def test_pipelined_and_chatty():
    "a request sent with the poll's head is answered after it; bytes sent while a poll is held close it"
    with Gateway() as gw:
        reader, writer = await open_stream(gw.port, 10.0)
        writer.write(lp_request("pipe", "&timeout=1") + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = await read_reply(reader, 10.0)
        expect_eq(head.status, 200, "the pipelined poll")
        check(b'"messages"' in body, f"poll reply {body!r}")
        head, body = await read_reply(reader, 10.0)
        expect_eq(head.status, 200, "the request after it")
        check(b'"status"' in body, f"healthz reply {body!r}")
        writer.transport.abort()
        reader, writer = await open_poll(gw, "chatty")
        await wait_until(lambda: loop_conns(gw) == 1, 5, 0.02, "poll held on the lws loops")
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        got = await asyncio.wait_for(reader.read(), 3.0)
        check(b'"status"' not in got, f"the extra bytes were answered: {got[-200:]!r}")
        await wait_until(lambda: loop_conns(gw) == 0, 3, 0.02, "the poll of a client that sent more ended")
        expect_eq(metrics(gw).get("anypush_streams"), 0, "the stream slot given back")


async def test_doubtful_requests_stay_json():
    "long polls lws would not take whole get libmicrohttpd's answers, JSON errors with CORS"
    with Gateway() as gw:
        for path, code in [
            ("/channels/a?transport=longpoll&timeout=0", "bad_timeout"),
            ("/channels/a?transport=longpoll&timeout=x", "bad_timeout"),
            ("/channels/a?transport=longpoll&since=x", "bad_cursor"),
            ("/channels/a?transport=longpoll&client=a%20b", "bad_client"),
        ]:
            st, h, body = get(gw, path)
            expect_eq(st, 400, f"{path} status")
            check(f'"code":"{code}"' in body.decode(), f"{path}: {body!r}")
            expect_eq(h.get("vary"), "Origin", f"{path}: Vary, as libmicrohttpd's errors have")
        # HTTP/1.0 stays with libmicrohttpd, and is answered
        reader, writer = await open_stream(gw.port, 10.0)
        writer.write(b"GET /channels/a?transport=longpoll&timeout=1 HTTP/1.0\r\nHost: x\r\n\r\n")
        head, body = await read_reply(reader, 10.0)
        expect_eq(head.status, 200, "an HTTP/1.0 long poll")
        writer.transport.abort()


if __name__ == "__main__":
    run([test_idle_memory, test_keep_alive, test_pipelined_and_chatty, test_doubtful_requests_stay_json],
        budget=120, timeout=60)
