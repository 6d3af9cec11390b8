#!/usr/bin/env python3
"""Origins: which web pages may use the gateway (--allow-origin).

A browser names the page behind every cross-origin request, and behind
every WebSocket handshake, in its Origin header.  Without --allow-origin
only the gateway's own origin is served (Origin absent, or its host and
port equal to Host, whatever the scheme, since behind a TLS proxy the page
is https); any other origin gets 403 origin_not_allowed JSON without CORS
headers, on every path: a WebSocket handshake (cross-site WebSocket
hijacking), an event stream, a poll, a publish, a preflight.  Allowed
origins are echoed in Access-Control-Allow-Origin with Vary: Origin."""

import base64
import json
import os
import re
import subprocess

from gwlib import Gateway, binary_path, check, expect_eq, metric_sum, metrics, raw_exchange, request, run

EVIL = "http://evil.example"
APP = "https://app.example:8443"


def head_of(port, host=None, origin=None):
    lines = [f"Host: {host or f'127.0.0.1:{port}'}"]
    if origin:
        lines.append(f"Origin: {origin}")
    return "\r\n".join(lines)


def ws_request(port, ch, **kw):
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /channels/{ch}?transport=ws HTTP/1.1\r\n{head_of(port, **kw)}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: anypush.v1\r\n\r\n").encode()


def sse_request(port, ch, **kw):
    return (f"GET /channels/{ch}?transport=sse HTTP/1.1\r\n{head_of(port, **kw)}\r\n"
            f"Accept: text/event-stream\r\n\r\n").encode()


async def answer(gw, req, held=False):
    """(status, headers lowercased, body bytes) of the answer: all of it
    when the gateway closes after it (a refusal), the head alone when it
    is held open (held: a 101, an event stream)."""
    got, how = await raw_exchange(gw, req, read_timeout=3, stop_after_head=held)
    head, _, body = bytes(got).partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    check(m is not None, f"no HTTP answer ({how}): {bytes(got)[:200]!r}")
    hdrs = {k.strip().lower().decode(): v.strip().decode() for k, _, v in
            (line.partition(b":") for line in head.split(b"\r\n")[1:])}
    return int(m.group(1)), hdrs, body


def expect_refused(status, hdrs, body, what):
    expect_eq(status, 403, f"{what}: status")
    check("access-control-allow-origin" not in hdrs,
          f"{what}: a refused origin got CORS headers: {hdrs}")
    if hdrs.get("transfer-encoding") == "chunked":
        m = re.match(rb"([0-9a-fA-F]+)\r\n", body)
        body = body[m.end():m.end() + int(m.group(1), 16)] if m else body
    expect_eq(json.loads(body)["error"]["code"], "origin_not_allowed", f"{what}: code")


async def test_default_refuses_other_origins_on_every_path():
    with Gateway() as gw:
        p = gw.port
        st, h, b = await answer(gw, ws_request(p, "o1", origin=EVIL))
        expect_refused(st, h, b, "a cross-origin WebSocket handshake")
        st, h, b = await answer(gw, sse_request(p, "o1", origin=EVIL))
        expect_refused(st, h, b, "a cross-origin event stream")
        st, h, b = request(gw, "GET", "/channels/o1?transport=poll", headers={"Origin": EVIL})
        expect_refused(st, h, b, "a cross-origin poll")
        # a form-like POST needs no preflight: the gateway itself refuses it
        st, h, b = request(gw, "POST", "/channels/o1", body=b"forged",
                           headers={"Origin": EVIL, "Content-Type": "text/plain"})
        expect_refused(st, h, b, "a cross-origin publish")
        st, h, b = request(gw, "GET", "/channels/o1/info")
        expect_eq(json.loads(b)["last_id"], 0, "the refused publish was not stored")
        st, h, b = request(gw, "OPTIONS", "/channels/o1",
                           headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
        expect_refused(st, h, b, "a cross-origin preflight")
        # the same host on another port is another origin
        st, h, b = await answer(gw, ws_request(p, "o1", origin=f"http://127.0.0.1:{p + 1}"))
        expect_refused(st, h, b, "a WebSocket from another port")
        st, h, b = await answer(gw, ws_request(p, "o1", origin="null"))
        expect_refused(st, h, b, "a WebSocket from an opaque origin (null)")
        expect_eq(metric_sum(metrics(gw), "anypush_origin_refused_total"), 7,
                  "anypush_origin_refused_total")


async def test_default_serves_the_same_origin():
    with Gateway() as gw:
        p = gw.port
        own = f"http://127.0.0.1:{p}"
        st, h, _ = await answer(gw, ws_request(p, "o2", origin=own), held=True)
        expect_eq(st, 101, "a same-origin WebSocket handshake")
        # behind a TLS proxy the page is https and Host has no port
        st, h, _ = await answer(gw, ws_request(p, "o2", host="push.example",
                                               origin="https://push.example"), held=True)
        expect_eq(st, 101, "a WebSocket from https://push.example with Host push.example")
        st, h, _ = await answer(gw, ws_request(p, "o2", host="push.example:443",
                                               origin="https://PUSH.example"), held=True)
        expect_eq(st, 101, "a WebSocket with the default port in Host, and another case")
        st, h, _ = await answer(gw, ws_request(p, "o2"), held=True)
        expect_eq(st, 101, "a WebSocket without Origin (not a browser)")
        st, h, _ = await answer(gw, sse_request(p, "o2", origin=own), held=True)
        expect_eq(st, 200, "a same-origin event stream")
        expect_eq(h.get("access-control-allow-origin"), own, "the event stream's CORS echo")
        st, h, _ = request(gw, "POST", "/channels/o2", body=b"1", headers={"Origin": own})
        expect_eq(st, 201, "a same-origin publish")
        expect_eq(h.get("access-control-allow-origin"), own, "the publish's CORS echo")
        check("Origin" in h.get("vary", ""), f"no Vary: Origin: {h}")
        st, h, _ = request(gw, "GET", "/channels/o2?transport=poll&since=0")
        expect_eq(st, 200, "a poll without Origin")
        check("access-control-allow-origin" not in h, f"CORS without an Origin: {h}")
        expect_eq(metric_sum(metrics(gw), "anypush_origin_refused_total"), 0,
                  "anypush_origin_refused_total")


async def test_allow_origin_list():
    with Gateway("--allow-origin", f"http://other.example, {APP}") as gw:
        p = gw.port
        st, h, _ = await answer(gw, ws_request(p, "o3", origin=APP), held=True)
        expect_eq(st, 101, "a WebSocket from a listed origin")
        st, h, b = await answer(gw, ws_request(p, "o3", origin=EVIL))
        expect_refused(st, h, b, "a WebSocket from an unlisted origin")
        st, h, b = await answer(gw, ws_request(p, "o3", origin=APP + "/"))
        expect_refused(st, h, b, "a WebSocket from a listed origin plus a slash")
        st, h, _ = await answer(gw, sse_request(p, "o3", origin="http://other.example"), held=True)
        expect_eq(st, 200, "an event stream from a listed origin")
        expect_eq(h.get("access-control-allow-origin"), "http://other.example", "SSE CORS echo")
        st, h, _ = request(gw, "OPTIONS", "/channels/o3",
                           headers={"Origin": APP, "Access-Control-Request-Method": "POST",
                                    "Access-Control-Request-Headers": "content-type"})
        expect_eq(st, 204, "a preflight from a listed origin")
        expect_eq(h.get("access-control-allow-origin"), APP, "the preflight's CORS echo")
        check("POST" in h.get("access-control-allow-methods", ""), f"preflight methods: {h}")
        st, h, _ = request(gw, "POST", "/channels/o3", body=b"1", headers={"Origin": APP})
        expect_eq(st, 201, "a publish from a listed origin")
        expect_eq(h.get("access-control-allow-origin"), APP, "the publish's CORS echo")


async def test_allow_origin_star():
    with Gateway("--allow-origin", "*") as gw:
        st, h, _ = await answer(gw, ws_request(gw.port, "o4", origin=EVIL), held=True)
        expect_eq(st, 101, "any origin's WebSocket with *")
        st, h, _ = request(gw, "GET", "/channels/o4?transport=poll", headers={"Origin": EVIL})
        expect_eq(st, 200, "any origin's poll with *")
        expect_eq(h.get("access-control-allow-origin"), EVIL, "the echo with *")


async def test_bad_list_refused_at_start():
    for bad in ("evil.example", "http://a.example/", "ftp://a.example", "http://a.example/path",
                "http://a.example,,"):
        r = subprocess.run([binary_path(), "--config", "", "--bind", "127.0.0.1", "--port", "0",
                            "--allow-origin", bad], capture_output=True, text=True, timeout=10)
        check(r.returncode != 0, f"--allow-origin {bad!r} was taken")
        check("--allow-origin" in r.stderr, f"no reason given for {bad!r}: {r.stderr[-300:]}")


if __name__ == "__main__":
    raise SystemExit(run([test_default_refuses_other_origins_on_every_path,
                          test_default_serves_the_same_origin, test_allow_origin_list,
                          test_allow_origin_star, test_bad_list_refused_at_start],
                         budget=50, timeout=20))
