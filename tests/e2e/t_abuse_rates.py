#!/usr/bin/env python3
"""--publish-rate-per-client and --new-channels-per-ip.

Publishes per client id (X-Client-Id, a token's sub, a WebSocket's
client): hit on HTTP, /ws and a single-channel WebSocket, shared between
them, other ids and id-less publishes untouched, nothing refused stored,
recovered after Retry-After. New channels per IP: a publish or a
subscribe that would create a channel takes a token; one past the
bucket gets 429 channel_rate_limited with Retry-After (an error frame on
/ws, a close 1013 on a single-channel WebSocket) on every transport, a
channel that exists costs nothing, and Retry-After later a new one is
taken. Refusals are counted exactly in /metrics. Behind a trusted proxy
each X-Forwarded-For client has its own bucket; from an untrusted peer
the header is ignored."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import tempfile
import time

from gwlib import (BodyReader, Gateway, MuxClient, WSClient, check, expect_eq, info, metric_sum, metrics,
                   open_stream, read_head, request, run, wait_until, ws_frame, _http_request_bytes)

RATE = 3


def pub(gw, ch, client=None, xff=None, headers=None):
    h = {"Content-Type": "text/plain"}
    if client:
        h["X-Client-Id"] = client
    if xff:
        h["X-Forwarded-For"] = xff
    h.update(headers or {})
    return request(gw, "POST", f"/channels/{ch}", body=b"x", headers=h)


def expect_429(resp, code, option, what):
    st, h, body = resp
    expect_eq(st, 429, f"{what}: status ({body[:200]!r})")
    err = json.loads(body)["error"]
    expect_eq(err["code"], code, f"{what}: code")
    check(option in err["message"], f"{what}: the message names {option}: {err['message']!r}")
    check(h.get("retry-after", "").isdigit() and int(h["retry-after"]) >= 1, f"{what}: Retry-After {h}")
    return int(h["retry-after"])


def until_refused(attempt, limit):
    """Call attempt(i) until it returns a refusal (not None); (taken, refusal)."""
    for i in range(limit):
        r = attempt(i)
        if r is not None:
            return i, r
    raise AssertionError(f"{limit} attempts were all taken")


# ---- publishes per client id

_last = {}


def r_last(gw):
    return _last.pop("r")


def pub_keep(gw, ch, **kw):
    r = pub(gw, ch, **kw)
    if r[0] != 201:
        _last["r"] = r
    return r



async def test_client_rate_http():
    with Gateway("--publish-rate-per-client", RATE) as gw:
        taken, r = until_refused(lambda i: None if pub_keep(gw, "c1", client="alice")[0] == 201 else r_last(gw),
                                 4 * RATE)
        # at least the burst; more only if the machine was slow enough for
        # a refill between two requests
        check(taken >= RATE, f"{taken} taken before the 429, want at least {RATE}")
        retry = expect_429(r, "rate_limited", "--publish-rate-per-client", "alice past the rate")
        # other ids, and publishes naming none, are not alice's
        expect_eq(pub(gw, "c1", "bob")[0], 201, "bob")
        for _ in range(2 * RATE):
            expect_eq(pub(gw, "c1")[0], 201, "a publish without a client id")
        stored = info(gw, "c1")["last_id"]
        expect_eq(stored, taken + 1 + 2 * RATE, "the refused publish was not stored")
        expect_eq(metric_sum(metrics(gw), "anypush_rate_limited_total"), 1, "anypush_rate_limited_total")
        await asyncio.sleep(retry)
        expect_eq(pub(gw, "c1", "alice")[0], 201, f"alice {retry} s later")


async def test_client_rate_shared_by_ws_and_http():
    with Gateway("--publish-rate-per-client", RATE) as gw:
        m = MuxClient(gw, client="carol")
        await m.start()
        acks = []
        while not acks or acks[-1].get("type") != "error":
            acks.append(await m.op({"op": "publish", "channel": "c2", "data": {"n": len(acks)}}))
            check(len(acks) <= 10 * RATE, f"no /ws publish refused: {acks[-3:]}")
        bad = [acks[-1]]
        ok = len(acks) - 1
        check(ok >= RATE, f"only {ok} /ws publishes taken")
        expect_eq(bad[0].get("code"), "rate_limited", f"the error frame {bad[0]}")
        check("--publish-rate-per-client" in bad[0].get("message", ""), f"names the option: {bad[0]}")
        # carol's HTTP publishes share the bucket; dave's /ws has its own
        r = pub(gw, "c2", "carol")
        if r[0] != 201:
            expect_429(r, "rate_limited", "--publish-rate-per-client", "carol over HTTP")
        d = MuxClient(gw, client="dave")
        await d.start()
        expect_eq((await d.op({"op": "publish", "channel": "c2", "data": 1})).get("type"), "ack", "dave")
        check(m.close_code is None and not m.done, f"the socket stays open: {m.describe()}")
        await asyncio.sleep(1.1)
        expect_eq((await m.op({"op": "publish", "channel": "c2", "data": "later"})).get("type"), "ack",
                  "carol a second later")
        # a single-channel WebSocket publishes what it sends: past the rate
        # it is dropped (that mode has no error frame)
        limited0 = metric_sum(metrics(gw), "anypush_rate_limited_total")
        w = WSClient(gw, "c3", client="erin")
        await w.start()
        sent = 10 * RATE
        await w.send_raw(b"".join(ws_frame(0x1, json.dumps({"n": i}).encode())
                                  for i in range(sent)))

        def handled():
            return info(gw, "c3")["last_id"] + metric_sum(metrics(gw), "anypush_rate_limited_total") - limited0
        # every publish stored or refused, once
        await wait_until(lambda: handled() == sent, 10, 0.05, f"{sent} single-channel publishes handled")
        stored = info(gw, "c3")["last_id"]
        check(RATE <= stored < sent, f"{stored} stored of {sent} sent in one write")
        for c in (m, d, w):
            await c.close()


SECRET = b"rates-secret-0123456789abcdef"


def mint(claims):
    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    pay = b64(json.dumps(dict({"exp": int(time.time()) + 120}, **claims)).encode())
    sig = hmac.new(SECRET, f"{head}.{pay}".encode(), hashlib.sha256).digest()
    return f"{head}.{pay}.{b64(sig)}"


async def test_client_rate_token_sub():
    d = tempfile.mkdtemp(prefix="rates-")
    secret = os.path.join(d, "secret")
    with open(secret, "wb") as f:
        f.write(SECRET + b"\n")
    with Gateway("--token-secret-file", secret, "--publish-rate-per-client", RATE) as gw:
        tok = {"Authorization": "Bearer " + mint({"sub": "frank", "channels": ["t*"], "publish": ["t*"]})}
        other = {"Authorization": "Bearer " + mint({"sub": "grace", "channels": ["t*"], "publish": ["t*"]})}
        taken, r = until_refused(lambda i: None if pub_keep(gw, "t1", headers=tok)[0] == 201 else r_last(gw),
                                 4 * RATE)
        check(taken >= RATE, f"{taken} taken with the token")
        expect_429(r, "rate_limited", "--publish-rate-per-client", "frank (the token's sub) past the rate")
        expect_eq(pub(gw, "t1", headers=other)[0], 201, "grace's token")


# ---- new channels per IP

NEW = 2


async def http_status(gw, method, path, xff, headers=None, body=None):
    """(status, headers, body) of one request on a fresh connection; a long
    poll is answered within its timeout."""
    reader, writer = await open_stream(gw.port)
    h = {"X-Forwarded-For": xff, **(headers or {})}
    writer.write(_http_request_bytes(method, path, gw.port, h, body))
    await writer.drain()
    head = await read_head(reader, 10)
    data = b""
    if head.status != 200 or "event-stream" not in head.headers.get("content-type", ""):
        data = await asyncio.wait_for(BodyReader(reader, head).read_all(), 10)
    writer.close()
    return head.status, head.headers, data


def sub_path(kind, ch):
    return {"poll": f"/channels/{ch}?transport=poll",
            "longpoll_lws": f"/channels/{ch}?transport=longpoll&timeout=1",
            "longpoll_mhd": f"/channels/{ch}?transport=longpoll&timeout=1",
            "sse_lws": f"/channels/{ch}?transport=sse",
            "sse_mhd": f"/channels/{ch}?transport=sse"}[kind]


def sub_headers(kind):
    return {"longpoll_mhd": {"Connection": "close"}, "sse_mhd": {"Content-Length": "0"}}.get(kind, {})


async def http_kind(gw, kind, ch, xff):
    """None when served, else the (status, headers, body) refusal."""
    if kind == "publish":
        r = await http_status(gw, "POST", f"/channels/{ch}", xff, {"Content-Type": "text/plain"}, b"x")
        return None if r[0] == 201 else r
    r = await http_status(gw, "GET", sub_path(kind, ch), xff, sub_headers(kind))
    return None if r[0] == 200 else r


async def test_new_channels_http_transports():
    with Gateway("--new-channels-per-ip", NEW, "--trusted-proxies", "127.0.0.1") as gw:
        refusals = 0
        for n, kind in enumerate(["publish", "poll", "longpoll_lws", "longpoll_mhd", "sse_lws", "sse_mhd"]):
            ip = f"198.51.100.{n + 1}"
            # a channel that exists (made by another client) costs nothing
            expect_eq(pub(gw, f"e-{kind}", xff=f"203.0.113.{n + 1}")[0], 201, "an existing channel made")
            # at once, so that no refill comes between them (a long poll
            # is answered only at its timeout)
            tries = 5 * NEW
            got = await asyncio.gather(*(http_kind(gw, kind, f"n-{kind}-{i}", ip) for i in range(tries)))
            refused = [r for r in got if r is not None]
            check(tries - len(refused) >= NEW, f"{kind}: only {tries - len(refused)} new channels taken")
            check(refused, f"{kind}: {tries} new channels at once all taken")
            refusals += len(refused)
            for r in refused:
                retry = expect_429(r, "channel_rate_limited", "--new-channels-per-ip", f"{kind}: a new channel")
            # right after the refusal: the existing channel is served
            expect_eq(await http_kind(gw, kind, f"e-{kind}", ip), None, f"{kind}: the existing channel")
            # another client behind the proxy has its own bucket
            expect_eq(await http_kind(gw, kind, f"o-{kind}", f"192.0.2.{n + 1}"), None, f"{kind}: another client")
            await asyncio.sleep(retry)
            expect_eq(await http_kind(gw, kind, f"later-{kind}", ip), None, f"{kind}: a new channel {retry} s later")
        expect_eq(metric_sum(metrics(gw), "anypush_channel_rate_limited_total"), refusals,
                  "anypush_channel_rate_limited_total")


async def test_new_channels_websockets():
    with Gateway("--new-channels-per-ip", NEW, "--trusted-proxies", "127.0.0.1") as gw:
        ip = "198.51.100.50"
        m = MuxClient(gw, headers={"X-Forwarded-For": ip})
        await m.start()
        taken, frame = 0, None
        while frame is None:
            f = await m.op({"op": "subscribe", "channel": f"m{taken}"})
            if f.get("type") == "error":
                frame = f
            else:
                taken += 1
                check(taken <= 4 * NEW, "every /ws subscribe to a new channel taken")
        check(taken >= NEW, f"only {taken} /ws subscribes before the refusal")
        expect_eq(frame.get("code"), "channel_rate_limited", f"the error frame {frame}")
        check(m.close_code is None and not m.done, f"the socket stays open: {m.describe()}")
        # a publish to a new channel is refused the same way; to one it
        # holds, served
        f = await m.op({"op": "publish", "channel": "mp-new", "data": 1})
        expect_eq(f.get("code"), "channel_rate_limited", f"a /ws publish to a new channel: {f}")
        f = await m.op({"op": "publish", "channel": "m0", "data": 1})
        expect_eq(f.get("type"), "ack", f"a /ws publish to a channel it made: {f}")
        await asyncio.sleep(1.1)
        await m.subscribe("m-later")
        # a single-channel WebSocket to new channels: closed 1013 with the
        # code as the reason once the bucket is empty
        ip2 = "198.51.100.51"
        tries = 5 * NEW
        ws = [WSClient(gw, f"w{i}", headers={"X-Forwarded-For": ip2}) for i in range(tries)]
        await asyncio.gather(*(w.connect() for w in ws))
        for w in ws:
            await w.start(wait_welcome=False)
        # every refusal the gateway counted is seen as a close
        await wait_until(lambda: sum(w.done for w in ws) + 2 ==
                         metric_sum(metrics(gw), "anypush_channel_rate_limited_total"), 10, 0.05,
                         "the refused single-channel WebSockets closed")
        closed = [w for w in ws if w.done]
        check(closed, f"{tries} single-channel WebSockets to new channels at once all taken")
        check(tries - len(closed) >= NEW, f"only {tries - len(closed)} single-channel WebSockets taken")
        for w in closed:
            expect_eq((w.close_code, w.close_reason), (1013, "channel_rate_limited"), "the close")
        for w in ws:
            if not w.done:
                await w.close()
        await m.close()


async def test_new_channels_untrusted_forwarded_for():
    with Gateway("--new-channels-per-ip", NEW) as gw:
        taken = 0
        while await http_kind(gw, "publish", f"u{taken}", f"198.51.100.{taken + 1}") is None:
            taken += 1
            check(taken <= 4 * NEW, "an untrusted peer escaped the bucket by changing X-Forwarded-For")
        check(taken >= NEW, f"only {taken} taken")


if __name__ == "__main__":
    raise SystemExit(run([test_client_rate_http, test_client_rate_shared_by_ws_and_http, test_client_rate_token_sub,
                          test_new_channels_http_transports, test_new_channels_websockets,
                          test_new_channels_untrusted_forwarded_for], budget=170, timeout=90))
