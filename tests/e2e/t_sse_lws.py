#!/usr/bin/env python3
"""SSE streams held on the libwebsockets loops (lws_stream.c): an idle
stream costs under 5 KiB of RSS (it cost 15 KiB held by libmicrohttpd, whose
connection pool stays whole while a reply streams); a peer that leaves or
sends anything after its request is dropped at once, without the loop
spinning on the readable socket; and every doubtful request still gets
libmicrohttpd's JSON error with the CORS headers."""

import asyncio
import os
import time

from gwlib import (Gateway, check, diag, expect_eq, get, info, metrics, open_stream, publish, read_head,
                   rss_kb, run, wait_until)

IDLE = 1000          # streams measured (the test process has 20,000 fds)
WARM = 50            # opened first, so that lazily made things are counted out
PER_STREAM_MAX = 5 * 1024

PAGE = "http://page.example"  # a page on another origin, allowed


def sse_request(ch, query="transport=sse", extra=""):
    return (f"GET /channels/{ch}?{query} HTTP/1.1\r\nHost: x\r\n"
            f"Accept: text/event-stream\r\n{extra}\r\n").encode()


async def open_sse(gw, ch):
    """A raw SSE stream, read up to its welcome event."""
    reader, writer = await open_stream(gw.port, 10.0)
    writer.write(sse_request(ch))
    await writer.drain()
    head = await read_head(reader, 10.0)
    expect_eq(head.status, 200, "SSE status")
    await asyncio.wait_for(reader.readuntil(b"event: welcome\n"), 10.0)
    return reader, writer


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loop_streams(gw):
    m = metrics(gw)
    return sum(v for k, v in m.items() if k.startswith("anypush_ws_loop_connections"))


async def test_idle_memory():
    "1000 idle SSE streams: RSS grows by under 5 KiB per stream, all held on the lws loops"
    with Gateway() as gw:
        ch = "idle"
        streams = []
        try:
            for _ in range(WARM):
                streams.append(await open_sse(gw, ch))
            await asyncio.sleep(0.3)
            rss0 = rss_kb(gw.pid)
            batch = 100
            for start in range(0, IDLE, batch):
                streams += await asyncio.gather(*(open_sse(gw, ch) for _ in range(batch)))
            await wait_until(lambda: info(gw, ch)["subscribers"]["sse"] == WARM + IDLE, 10, 0.1,
                             "every stream counted")
            await asyncio.sleep(0.3)
            grew = (rss_kb(gw.pid) - rss0) * 1024
            per = grew / IDLE
            diag(f"RSS grew by {grew / 1024:.0f} KiB for {IDLE} SSE streams: {per:.0f} bytes each")
            if os.environ.get("ANYPUSH_SANITIZERS"):
                diag("sanitizer build: RSS growth not asserted")
            else:
                check(per < PER_STREAM_MAX, f"{per:.0f} bytes of RSS per idle SSE stream, want < {PER_STREAM_MAX}")
            expect_eq(loop_streams(gw), WARM + IDLE, "streams the lws loops hold (anypush_ws_loop_connections)")
            # they are alive: one publish reaches them all
            st, _ = publish(gw, ch, {"n": 1})
            expect_eq(st, 201, "publish")
            for reader, _ in streams[:20] + streams[-20:]:
                await asyncio.wait_for(reader.readuntil(b'"n":1'), 10.0)
        finally:
            for _, w in streams:
                w.transport.abort()
        await wait_until(lambda: info(gw, ch)["subscribers"]["sse"] == 0, 10, 0.1,
                         "every stream gone after the clients closed")
        expect_eq(loop_streams(gw), 0, "streams the lws loops hold after the clients closed")


async def test_peer_gone_and_extra_bytes():
    "a peer that closes, or sends bytes after its SSE request, is dropped at once; the loop does not spin"
    with Gateway() as gw:
        r1, w1 = await open_sse(gw, "gone")
        r2, w2 = await open_sse(gw, "chatty")
        w1.close()
        await wait_until(lambda: info(gw, "gone")["subscribers"]["sse"] == 0, 2, 0.02,
                         "the stream of a peer that closed ended")
        w2.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await w2.drain()
        await wait_until(lambda: info(gw, "chatty")["subscribers"]["sse"] == 0, 2, 0.02,
                         "the stream of a peer that sent more ended")
        got = await asyncio.wait_for(r2.read(), 3.0)
        check(b"healthz" not in got and b'"status"' not in got,
              f"the extra bytes were answered: {got[-200:]!r}")
        # nothing left to do: a loop spinning on a readable socket would
        # burn a core here
        c0 = cpu_seconds(gw.pid)
        await asyncio.sleep(1.0)
        used = cpu_seconds(gw.pid) - c0
        diag(f"gateway CPU in the quiet second after: {used:.2f} s")
        check(used < 0.3, f"the gateway used {used:.2f} s of CPU in a quiet second")
        w2.transport.abort()


async def test_doubtful_requests_stay_json():
    "SSE requests lws would not take whole get libmicrohttpd's JSON errors with CORS headers"
    with Gateway("--allow-origin", PAGE) as gw:
        for path, headers, code in [
            ("/channels/a?transport=sse&since=x", {}, "bad_cursor"),
            ("/channels/a?transport=sse", {"Last-Event-ID": "-1"}, "bad_cursor"),
            ("/channels/a?transport=sse&client=a%20b", {}, "bad_client"),
            ("/channels/a?transport=sse&sse_events=2", {}, "bad_sse_events"),
            ("/channels/a%20b?transport=sse", {}, "bad_channel"),
        ]:
            st, h, body = get(gw, path, headers={**headers, "Origin": PAGE})
            expect_eq(st, 400, f"{path} status")
            check(f'"code":"{code}"' in body.decode(), f"{path}: {body!r}")
            expect_eq(h.get("access-control-allow-origin"), PAGE, f"{path}: CORS header")


async def test_bus_refusal_is_json_with_cors():
    "an SSE stream the bus refuses on the lws side (--max-channels reached) gets the JSON 503 libmicrohttpd sent, with CORS"
    with Gateway("--max-channels", "1", "--allow-origin", PAGE) as gw:
        st, _ = publish(gw, "one", {"n": 1})
        expect_eq(st, 201, "publish to the one channel")
        st, h, body = get(gw, "/channels/two?transport=sse", headers={"Origin": PAGE})
        expect_eq(st, 503, "an SSE stream on a second channel")
        check(b'"code":"over_capacity"' in body and b"too many channels" in body, f"body {body!r}")
        expect_eq(h.get("access-control-allow-origin"), PAGE, "CORS header")
        expect_eq(h.get("content-type"), "application/json", "Content-Type")
        await wait_until(lambda: loop_streams(gw) == 0, 3, 0.05, "the refused stream's connection closed")
        expect_eq(metrics(gw).get("anypush_streams"), 0, "the stream slot given back")


async def test_past_max_streams_is_json_with_cors():
    "past --max-streams an SSE request gets libmicrohttpd's 503 over_capacity with CORS, and the held one keeps streaming"
    with Gateway("--max-streams", "1", "--allow-origin", PAGE) as gw:
        r1, w1 = await open_sse(gw, "s")
        st, h, body = get(gw, "/channels/s?transport=sse", headers={"Origin": PAGE})
        expect_eq(st, 503, "a second SSE")
        check(b"over_capacity" in body, f"body {body!r}")
        expect_eq(h.get("access-control-allow-origin"), PAGE, "CORS header")
        expect_eq(h.get("retry-after"), "1", "Retry-After")
        publish(gw, "s", {"n": 7})
        await asyncio.wait_for(r1.readuntil(b'"n":7'), 5.0)
        w1.transport.abort()
        await wait_until(lambda: info(gw, "s")["subscribers"]["sse"] == 0, 3, 0.05, "the held stream ended")
        r2, w2 = await open_sse(gw, "s")   # the slot came back
        w2.transport.abort()


if __name__ == "__main__":
    run([test_idle_memory, test_peer_gone_and_extra_bytes, test_doubtful_requests_stay_json,
         test_bus_refusal_is_json_with_cors, test_past_max_streams_is_json_with_cors],
        budget=120, timeout=60)
