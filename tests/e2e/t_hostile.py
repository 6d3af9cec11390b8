#!/usr/bin/env python3
"""Hostile clients: malformed and oversized requests, slowloris, random bytes,
WebSocket protocol violations, clients that never read, disabled transports.
None of them may hurt the other clients or the stored messages."""

import asyncio
import base64
import json
import os
import random
import struct
import time

from gwlib import (Gateway, Publisher, SSEClient, WSClient, check, epochs_problem, expect_eq,
                   expect_error, get, ids_problem, info, metric_sum, metrics, open_stream, parse_status, payload,
                   publish, raw_exchange, run, scenario, todo, wait_until, ws_frame)

# Who answers a refused request (docs/protocol.md, "Errors"):
ROUTER = "router"   # JSON error, Connection: close, and the connection closes
HTTP = "http"       # the HTTP side's JSON error
MHD = "mhd"         # libmicrohttpd's own error page ("which is not JSON")


def refusal_problem(got, how, status, code, who):
    """None if the answer (got, how) from raw_exchange is exactly the
    documented refusal: that status, and the JSON error `code` with
    Content-Type application/json (for ROUTER also Connection: close and
    the connection closed; for MHD its own page, or the JSON code should
    the request one day be refused before libmicrohttpd sees it).  Else
    what differs."""
    st = parse_status(got)
    if st is None:
        return f"no answer ({how} after {len(got)} bytes {got[:120]!r}), want {status} {code or ''}"
    head, _, body = got.partition(b"\r\n\r\n")
    hdrs = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.decode("latin-1").partition(":")
        hdrs[k.strip().lower()] = v.strip()
    clen = hdrs.get("content-length")
    if clen is not None and clen.isdigit():
        body = body[:int(clen)]
    if st != status:
        return f"answered {st}, want {status}: {got[:160]!r}"
    try:
        err = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        err = None
    if who == MHD and err is None:
        return None
    if err != code:
        return f"error code {err!r}, want {code!r}: {body[:160]!r}"
    ctype = hdrs.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        return f"Content-Type {ctype!r}, want application/json"
    if who == ROUTER:
        if hdrs.get("connection", "").lower() != "close":
            return f"a router refusal without Connection: close: {head[:200]!r}"
        if how not in ("eof", "reset"):
            return f"the connection stayed open after the router's refusal ({how})"
    return None


async def bystanders(gw, ch):
    sse = SSEClient(gw, ch)
    ws = WSClient(gw, ch)
    await sse.start()
    await ws.start()
    return sse, ws


async def bystanders_fine(gw, ch, sse, ws, n_before):
    st, body = publish(gw, ch, {"after": True})
    expect_eq(st, 201, "publish after the attack")
    want = list(range(1, n_before + 2))
    for c in (sse, ws):
        await c.wait_count(len(want), 5)
        prob = ids_problem(c.ids(), want) or epochs_problem(c.messages, body["epoch"])
        check(prob is None, f"bystander {c.kind}: {prob}")
        check(not c.done, f"bystander {c.kind} was disconnected: {c.end_reason}")
    st, _, _ = get(gw, "/healthz")
    expect_eq(st, 200, "healthz after the attack")


async def test_malformed_requests():
    "malformed request lines and heads are refused; other clients unaffected"
    with Gateway("--head-timeout", "2") as gw:
        sse, ws = await bystanders(gw, "victim")
        publish(gw, "victim", 1)
        # each with the answer docs/protocol.md gives it
        bad = [
            (b"GARBAGE\r\n\r\n", 400, "bad_request", ROUTER),
            (b"GET\r\n\r\n", 400, "bad_request", ROUTER),
            (b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, "bad_request", MHD),
            (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400, "bad_request", ROUTER),
            (b"GET /healthz FOO/1.1\r\nHost: x\r\n\r\n", 400, "bad_request", ROUTER),
            (b"\x00\x01\x02\x03 / HTTP/1.1\r\n\r\n", 400, "bad_request", ROUTER),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 400, "bad_request", MHD),
            (b"POST /channels/victim HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello",
             400, "bad_request", MHD),
            (b"POST /channels/victim HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\nhello",
             400, "bad_request", MHD),
            (b"POST /channels/victim HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
             400, "bad_request", HTTP),
            (b"POST /channels/victim HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
             400, "bad_request", MHD),
            (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431, "head_too_large", ROUTER),
            (b"GET /channels/victim?transport=ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",   # no key
             400, "upgrade_required", HTTP),
            (b"GET /channels/victim?transport=ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 99\r\n\r\n", 400, "upgrade_required", HTTP),
        ]
        # until the connection closes, or 2 s (the HTTP side keeps it open)
        gets = [b for b in bad if not b[0].startswith(b"POST")]
        results = await asyncio.gather(*(raw_exchange(gw, b[0], read_timeout=2, stop_after_head=False)
                                         for b in gets))
        fails = []
        for (b, *want), (got, how) in zip(gets, results):
            why = refusal_problem(got, how, *want)
            if why:
                fails.append(f"{b[:60]!r}: {why}")
        for b, *want in bad:   # the POSTs one by one, to name any that stores a message
            if not b.startswith(b"POST"):
                continue
            got, how = await raw_exchange(gw, b, read_timeout=2, stop_after_head=False)
            why = refusal_problem(got, how, *want)
            if why:
                fails.append(f"{b[:90]!r}: {why}")
            last = info(gw, "victim")["last_id"]
            if last != 1:
                fails.append(f"{b[:90]!r} stored a message (last_id {last})")
                break
        await bystanders_fine(gw, "victim", sse, ws, info(gw, "victim")["last_id"])
        check(not fails, "not refused:\n" + "\n".join(fails))


async def test_oversized_headers():
    "request heads over 16 KiB are refused (plain and upgrade), others unaffected"
    with Gateway() as gw:
        sse, ws = await bystanders(gw, "victim")
        big = "x" * 20000
        many = "".join(f"X-Pad-{i}: {'y' * 1000}\r\n" for i in range(40))
        reqs = [
            f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n".encode(),
            f"GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode(),
            f"GET /channels/victim?transport=sse HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
            f"X-Big: {big}\r\n\r\n".encode(),
            f"GET /channels/victim?transport=ws HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode(),
            f"GET /channels/victim?transport=ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\n{many}\r\n".encode(),
        ]
        results = await asyncio.gather(*(raw_exchange(gw, r, read_timeout=4, stop_after_head=False)
                                         for r in reqs))
        fails = [f"request #{i + 1}: {why}" for i, res in enumerate(results)
                 for why in [refusal_problem(*res, 431, "head_too_large", ROUTER)] if why]
        await bystanders_fine(gw, "victim", sse, ws, 0)
        check(not fails, "\n".join(fails))


async def test_slowloris():
    "slowloris (partial heads, then silence) is closed after --head-timeout 1; others keep receiving"
    with Gateway("--head-timeout", "1") as gw:
        sse, ws = await bystanders(gw, "victim")
        partial = [
            b"GET /channels/victim?transport=sse HTTP/1.1\r\nHost: x\r\n",
            b"GET /channels/victim?transport=ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n",
            b"POST /channels/victim HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n",
            b"G",
            b"",
        ] * 6
        t0 = time.monotonic()
        loris = [asyncio.create_task(raw_exchange(gw, p, read_timeout=4, stop_after_head=False)) for p in partial]
        pub = Publisher(gw)
        try:
            acks = await pub.apublish_many("victim", [payload(i) for i in range(1, 31)], interval=0.1)
        finally:
            pub.close()
        results = await asyncio.gather(*loris)
        elapsed = time.monotonic() - t0
        expect_eq(acks, list(range(1, 31)), "acks while under slowloris")
        still_open = [p[:40] for p, (got, how) in zip(partial, results) if how == "timeout"]
        check(not still_open, f"{len(still_open)} of {len(partial)} partial connections still open after "
                              f"4 s (head timeout 1 s), e.g. {still_open[:3]}")
        wrong = [f"{p[:40]!r}: {why}" for p, res in zip(partial, results)
                 for why in [refusal_problem(*res, 408, "head_timeout", ROUTER)] if why]
        check(not wrong, f"{len(wrong)} partial heads not answered 408 head_timeout:\n" + "\n".join(wrong[:5]))
        await bystanders_fine(gw, "victim", sse, ws, 30)
        check(elapsed < 12, f"slowloris phase took {elapsed:.1f} s")


# The drip below would last DRIP_BYTES * 0.25 s; a gateway that restarts the
# head timeout on every byte would answer only after it, so the bound sits
# well between the two, with room for an ASan build on a loaded machine.
DRIP_BYTES = 60
DRIP_BOUND = 5.0


async def test_slowloris_drip():
    "a head dripped one byte every 0.25 s is cut at --head-timeout 1 (408 head_timeout), not when the drip ends"
    with Gateway("--head-timeout", "1") as gw:
        head = (b"GET /channels/victim?transport=sse HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 200)[:DRIP_BYTES]
        reader, writer = await open_stream(gw.port)
        t0 = time.monotonic()

        async def drip():
            for i in range(len(head)):
                writer.write(head[i:i + 1])
                await writer.drain()
                await asyncio.sleep(0.25)

        dripper = asyncio.create_task(drip())
        got = bytearray()
        how = "timeout"
        try:
            while time.monotonic() - t0 < DRIP_BYTES * 0.25 + 2:
                try:
                    d = await asyncio.wait_for(reader.read(65536), 0.5)
                except asyncio.TimeoutError:
                    continue
                except ConnectionError:
                    how = "reset"
                    break
                if not d:
                    how = "eof"
                    break
                got += d
            dt = time.monotonic() - t0
        finally:
            dripper.cancel()
            writer.transport.abort()
        await asyncio.gather(dripper, return_exceptions=True)
        why = refusal_problem(bytes(got), how, 408, "head_timeout", ROUTER)
        check(why is None, f"the dripping connection after {dt:.1f} s: {why}")
        check(0.9 <= dt <= DRIP_BOUND, f"cut after {dt:.2f} s, want about 1 s (--head-timeout 1; at most "
                                       f"{DRIP_BOUND} s, the drip lasts {DRIP_BYTES * 0.25:.0f} s)")
        st, _, _ = get(gw, "/healthz")
        expect_eq(st, 200, "healthz")


async def test_random_bytes():
    "random bytes on the port (and after a WS handshake) are refused; others unaffected"
    rnd = random.Random(6455)
    with Gateway("--head-timeout", "1") as gw:
        sse, ws = await bystanders(gw, "victim")
        blobs = [bytes(rnd.getrandbits(8) for _ in range(rnd.choice((1, 16, 300, 5000, 40000))))
                 for _ in range(20)]
        results = await asyncio.gather(*(raw_exchange(gw, b, read_timeout=4, stop_after_head=False)
                                         for b in blobs))
        open_ = [i for i, (got, how) in enumerate(results) if how == "timeout"]
        ok_ = [i for i, (got, how) in enumerate(results) if parse_status(got) in range(200, 400)]
        # the router answers: bytes that may still become a method wait for
        # the rest (408 at the head timeout); anything else is not HTTP/1.x
        wrong = []
        for i, (b, res) in enumerate(zip(blobs, results)):
            want = (408, "head_timeout") if all(65 <= c <= 90 for c in b) else (400, "bad_request")
            why = refusal_problem(*res, *want, ROUTER)
            if why:
                wrong.append(f"blob {i} ({len(b)} bytes {b[:8]!r}): {why}")
        # random frames after a valid handshake
        bad_ws = []
        for k in range(5):
            c = WSClient(gw, "victim")
            await c.start()
            await c.send_raw(b"\xff" + bytes(rnd.getrandbits(8) for _ in range(2000)))
            try:
                await c.wait_closed(4)
            except AssertionError as e:
                bad_ws.append(str(e))
        await bystanders_fine(gw, "victim", sse, ws, 0)
        check(not open_, f"connections with random bytes still open after 4 s: {open_}")
        check(not ok_, f"random bytes got a 2xx/3xx answer: {ok_}")
        check(not wrong, "\n".join(wrong))
        check(not bad_ws, "\n".join(bad_ws))


async def ws_violation(frames, code, what, gw_args=()):
    """Send frames on a WebSocket; the gateway must close it with exactly
    this close code (None: it drops the connection without a close frame),
    publish nothing and leave a bystander alone."""
    with Gateway("--max-message", "1024", *gw_args) as gw:
        by = WSClient(gw, "wsv")
        await by.start()
        c = WSClient(gw, "wsv")
        await c.start()
        for f in frames:
            try:
                await c.send_raw(f)
            except (ConnectionError, asyncio.TimeoutError):
                break
        try:
            await c.wait_closed(4)
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}")
        check(c.close_code == code,
              f"{what}: close code {c.close_code} ({c.close_reason!r}, {c.end_reason}), want "
              f"{code or 'none (a drop without a close frame)'}")
        check(code is not None or c.eof, f"{what}: TCP connection not closed ({c.end_reason})")
        expect_eq(info(gw, "wsv")["last_id"], 0, f"{what}: nothing published")
        st, _ = publish(gw, "wsv", {"after": 1})
        expect_eq(st, 201, "publish after")
        await by.wait_id(1, 5)
        check(not by.done, f"bystander ws disconnected: {by.end_reason}")


@todo("libwebsockets 4.1.6 accepts unmasked client frames (its server parser records the mask bit but never rejects it); lws exposes no hook to refuse them")
async def test_ws_unmasked():
    "ws: an unmasked client frame closes the connection (1002)"
    await ws_violation([ws_frame(0x1, b'{"a":1}', mask=False)], 1002, "unmasked frame")


async def test_ws_reserved_opcode():
    "ws: reserved data opcode 0x3 closes the connection (1002)"
    await ws_violation([ws_frame(0x3, b'{"a":1}')], 1002, "opcode 0x3")


async def test_ws_reserved_control_and_rsv():
    "ws: reserved control opcode 0xB, RSV1 without extension: closed (1002)"
    await ws_violation([ws_frame(0xB, b"x")], 1002, "opcode 0xB")
    await ws_violation([ws_frame(0x1, b'{"a":1}', rsv=4)], 1002, "RSV1 set")


async def test_ws_bad_control():
    "ws: a fragmented ping is a protocol error (1002); a 200-byte ping is dropped"
    await ws_violation([ws_frame(0x9, b"p", fin=False)], 1002, "fragmented ping")
    # libwebsockets 4.1.6 drops a peer that sends a control frame over 125
    # bytes without a close frame
    await ws_violation([ws_frame(0x9, b"p" * 200)], None, "200-byte ping")


async def test_ws_oversized():
    "ws: a frame or fragmented message over --max-message closes the connection (1009 too big)"
    await ws_violation([ws_frame(0x1, b'"' + b"a" * 4094 + b'"')], 1009, "4 KiB text frame")
    await ws_violation([ws_frame(0x2, b"\x00" * 1025)], 1009, "1025-byte binary frame")
    await ws_violation([ws_frame(0x1, b'"' + b"a" * 599, fin=False), ws_frame(0x0, b"b" * 600, fin=False),
                        ws_frame(0x0, b"c" * 599 + b'"')], 1009, "3 fragments of 600 bytes")
    # a header announcing 2^40 bytes must not be waited for
    await ws_violation([b"\x81\xff" + struct.pack("!Q", 1 << 40) + b"\x00\x00\x00\x00" + b"x" * 100],
                       1009, "2^40-byte length header")


async def test_ws_bad_utf8():
    "ws: invalid UTF-8 in a text frame closes the connection (1007)"
    await ws_violation([ws_frame(0x1, b'"\xff\xfe"')], 1007, "invalid UTF-8")
    await ws_violation([ws_frame(0x1, b'"\xc3', fin=False), ws_frame(0x0, b'(x"')], 1007,
                       "invalid UTF-8 across fragments")


async def test_ws_text_publishes():
    "ws: valid text/binary/fragmented frames are published (the control case)"
    with Gateway("--max-message", "1024") as gw:
        c = WSClient(gw, "wsp")
        await c.start()
        await c.send_text('{"hello": "wörld"}')
        await c.send_text("plain text")
        await c.send_binary(b"\x00\x01\xff")
        await c.send_frame(0x1, b'{"frag', fin=False)
        await c.send_frame(0x9, b"interleaved ping")
        await c.send_frame(0x0, b'": 1}')
        await c.send_text('"' + "a" * 1022 + '"')   # exactly 1024 bytes
        deadline = time.monotonic() + 5
        while info(gw, "wsp")["last_id"] < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        st, _, body = get(gw, "/channels/wsp?transport=poll&since=0")
        msgs = json.loads(body)["messages"]
        expect_eq([m["data"] for m in msgs[:2]], [{"hello": "wörld"}, "plain text"], "text frames")
        expect_eq((msgs[2].get("binary"), base64.b64decode(msgs[2]["data"])), (True, b"\x00\x01\xff"),
                  "binary frame")
        expect_eq(msgs[3]["data"], {"frag": 1}, "fragmented frame")
        expect_eq(msgs[4]["data"], "a" * 1022, "1024-byte frame")
        expect_eq(len(msgs), 5, "message count")
        await c.wait_for(lambda: c.pongs, 3, "the pong for the interleaved ping")
        expect_eq(c.pongs, [b"interleaved ping"], "pong payload")
        check(not c.done, f"sender disconnected: {c.end_reason} {c.close_code}")


R = {}
N_SLOW = 1500
SIZE = 4096


@scenario
async def slow_scenario():
    """--outq-limit 262144: never-reading sse and ws clients while 6 MB is
    published; fills R for the points below (each can run alone)."""
    with Gateway("--outq-limit", "262144", "--history-size", "2000") as gw:
        ch = "slow"
        normal = [SSEClient(gw, ch), WSClient(gw, ch)]
        slow = [SSEClient(gw, ch, rcvbuf=4096), WSClient(gw, ch, rcvbuf=4096)]
        for c in normal + slow:
            await c.start()
        for c in slow:
            c.pause()
        payloads = [payload(i, size=SIZE) for i in range(1, N_SLOW + 1)]
        R["payloads"] = payloads
        pub = Publisher(gw)
        try:
            # paced (about 2 MB/s): a normal reader keeps within the 64 KiB
            # lag limit even on a loaded machine; the never-reading ones
            # still fall behind by megabytes
            R["acks"] = await pub.apublish_many(ch, payloads, interval=0.002)
        finally:
            pub.close()
        R["epoch"] = pub.epochs[ch]
        for c in normal:
            try:
                await c.wait_count(N_SLOW, 15)
            except AssertionError as e:
                R.setdefault("normal_err", []).append(str(e))
        R["normal"] = normal
        # a publish that finds a subscriber too far behind cuts it and
        # counts it at once: both are counted by now, or soon
        await wait_until(lambda: (metric_sum(metrics(gw), "anypush_slow_consumers_total") or 0) >= 2, 5,
                         what="anypush_slow_consumers_total >= 2")
        R["metrics"] = metrics(gw)
        for c in slow:
            c.resume()
        for c in slow:
            try:
                await c.wait_done(10)
            except AssertionError as e:
                # its cursor is not final: resuming with it now would count
                # what it still reads twice
                R.setdefault("resume_err", []).append(f"not ended 10 s after it read again: {e}")
        R["slow"] = slow
        # they come back with their cursor and lose nothing still in history
        resumed = []
        for c in slow:
            if c.kind == "sse":
                r = SSEClient(gw, ch, last_event_id=c.cursor)
            else:
                r = WSClient(gw, ch, since=c.cursor)
            try:
                await r.start()
                await r.wait_for(lambda: len(c.messages) + len(r.messages) >= N_SLOW, 10, "the rest")
            except AssertionError as e:
                R.setdefault("resume_err", []).append(str(e))
            resumed.append(r)
        R["resumed"] = resumed
        for c in normal + slow + resumed:
            c.abort()
    return R


async def test_slow_consumers():
    "--outq-limit 262144: never-reading sse and ws clients while 6 MB is published"
    await slow_scenario()
    expect_eq(R["acks"], list(range(1, N_SLOW + 1)), "acks")


async def test_normal_lossless():
    "a normal client on the same channel loses nothing"
    await slow_scenario()
    for c in R["normal"]:
        prob = ids_problem(c.ids(), list(range(1, N_SLOW + 1))) or epochs_problem(c.messages, R["epoch"])
        check(prob is None, f"normal {c.kind}: {prob} ({c.end_reason}) {R.get('normal_err')}")
        check([m["data"] for m in c.messages] == R["payloads"], f"normal {c.kind}: payloads differ")


async def slow_cut(kind):
    await slow_scenario()
    c = [s for s in R["slow"] if s.kind == kind][0]
    check(c.done, f"slow {kind} client was not cut off: {c.describe()}")
    check(len(c.messages) < N_SLOW, f"slow {kind} client got all {N_SLOW} messages: never cut off")
    prob = ids_problem(c.ids(), list(range(1, len(c.messages) + 1)))
    check(prob is None, f"slow {kind}: what it got before the cut is not a prefix: {prob}")
    return c


async def test_slow_sse_cut():
    "the never-reading sse client is cut off"
    await slow_cut("sse")


async def test_slow_ws_cut():
    "the never-reading ws client is cut off (close 1008 if a close frame gets through)"
    c = await slow_cut("ws")
    check(c.close_code in (None, 1008), f"close code {c.close_code}, want 1008")


async def test_slow_metric():
    "/metrics counts anypush_slow_consumers_total > 0"
    await slow_scenario()
    v = metric_sum(R["metrics"], "anypush_slow_consumers_total")
    check(v is not None, "no anypush_slow_consumers_total in /metrics")
    check(v >= 2, f"anypush_slow_consumers_total = {v}, want >= 2 (one sse, one ws)")


async def test_slow_resume():
    "the cut-off clients resume with their cursor and lose nothing"
    await slow_scenario()
    check(not R.get("resume_err"), "\n".join(R.get("resume_err", [])))
    for c, r in zip(R["slow"], R["resumed"]):
        ids = c.ids() + r.ids()
        prob = ids_problem(ids, list(range(1, N_SLOW + 1))) or epochs_problem(c.messages + r.messages, R["epoch"])
        check(prob is None, f"{c.kind} after resume: {prob}")


async def test_transports_disabled():
    "--transports poll,sse: ws and longpoll answer 404 transport_disabled"
    with Gateway("--transports", "poll,sse") as gw:
        up = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
              "Sec-WebSocket-Protocol": "anypush.v1"}
        expect_error(get(gw, "/channels/d?transport=ws", headers=up), 404, "transport_disabled",
                     what="transport=ws")
        expect_error(get(gw, "/channels/d", headers=up), 404, "transport_disabled",
                     what="Upgrade: websocket without transport")
        expect_error(get(gw, "/channels/d?transport=longpoll&timeout=1"), 404, "transport_disabled",
                     what="transport=longpoll")
        st, _, _ = get(gw, "/channels/d?transport=poll")
        expect_eq(st, 200, "poll still works")
        sse = SSEClient(gw, "d")
        await sse.start()
        publish(gw, "d", 1)
        await sse.wait_id(1, 5)


if __name__ == "__main__":
    raise SystemExit(run([
        test_malformed_requests, test_oversized_headers, test_slowloris, test_slowloris_drip,
        test_random_bytes, test_ws_unmasked, test_ws_reserved_opcode, test_ws_reserved_control_and_rsv,
        test_ws_bad_control, test_ws_oversized, test_ws_bad_utf8, test_ws_text_publishes,
        test_slow_consumers, test_normal_lossless, test_slow_sse_cut, test_slow_ws_cut, test_slow_metric,
        test_slow_resume, test_transports_disabled,
    ], timeout=30))
