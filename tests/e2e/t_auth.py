#!/usr/bin/env python3
"""Client tokens, the API key and open mode (docs/security.md): every path
allowed and refused on every transport. Tokens are minted here with hmac,
as a backend would, so the test needs nothing new."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.parse

from gwlib import (BodyReader, Gateway, open_stream, read_head, MuxClient, SSEClient, WSClient, binary_path, check, expect_eq,
                   expect_error, get, log_dir, request, run)

SECRET = b"test-secret-0123456789abcdef"
API_KEY = "k-" + "7" * 30


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mint(claims=None, secret=SECRET, alg="HS256", ttl=60, sign=True):
    """A JWT as a backend mints it: header.claims.HMAC-SHA256."""
    body = {"exp": int(time.time()) + ttl}
    body.update(claims or {})
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    pay = b64(json.dumps(body).encode())
    if not sign:
        return f"{head}.{pay}."
    digest = hashlib.sha512 if alg == "HS512" else hashlib.sha256
    sig = hmac.new(secret, f"{head}.{pay}".encode(), digest).digest()
    return f"{head}.{pay}.{b64(sig)}"


def files():
    d = tempfile.mkdtemp(prefix="auth-")
    s, k = os.path.join(d, "secret"), os.path.join(d, "key")
    with open(s, "wb") as f:
        f.write(SECRET + b"\n")
    with open(k, "w") as f:
        f.write(API_KEY + "\n")
    return s, k


def secured(*extra):
    s, k = files()
    return Gateway("--token-secret-file", s, "--api-key-file", k, "--heartbeat", "1", *extra)


A = {"sub": "alice", "channels": ["a", "pub*"], "publish": ["a"]}


def q(path, tok):
    sep = "&" if "?" in path else "?"
    return f"{path}{sep}token={urllib.parse.quote(tok)}"


def post(gw, ch, data, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return request(gw, "POST", f"/channels/{ch}", body=json.dumps(data).encode(), headers=h)


def apikey():
    return {"Authorization": "apikey " + API_KEY}


async def test_poll_token_places():
    "poll: a token in ?token=, Bearer or the cookie reads a; none, or for b, is refused"
    with secured() as gw:
        expect_eq(post(gw, "a", {"x": 1}, apikey())[0], 201, "API key publish")
        tok = mint(A)
        for what, path, hdr in (("query", q("/channels/a?transport=poll&since=0", tok), {}),
                                ("bearer", "/channels/a?transport=poll&since=0",
                                 {"Authorization": "Bearer " + tok}),
                                ("cookie", "/channels/a?transport=poll&since=0",
                                 {"Cookie": "x=1; anypush_token=" + tok})):
            st, hdrs, body = get(gw, path, hdr)
            expect_eq(st, 200, f"poll with the token in the {what}")
            expect_eq([m["data"] for m in json.loads(body)["messages"]], [{"x": 1}], f"{what}: history")
            expect_eq(hdrs.get("x-client-id"), "alice", f"{what}: the client id is the token's sub")
        expect_error(get(gw, "/channels/a?transport=poll&since=0"), 401, "unauthorized", "no token")
        expect_error(get(gw, q("/channels/b?transport=poll&since=0", tok)), 403, "forbidden",
                     "a token for a reading b's history")
        expect_error(get(gw, q("/channels/a,b?transport=poll", tok)), 403, "forbidden",
                     "a token for a reading a and b")
        expect_error(get(gw, q("/channels/a?transport=longpoll&timeout=1", tok) + "&client=mallory"),
                     403, "client_mismatch", "a forged client id")
        st, _, _ = get(gw, q("/channels/a?transport=longpoll&timeout=1", tok) + "&client=alice")
        expect_eq(st, 200, "the token's own client id")
        st, _, _ = get(gw, q("/channels/pubx?transport=longpoll&timeout=1", tok))
        expect_eq(st, 200, "a *-pattern")


async def test_bad_tokens():
    "expired, badly signed, alg none, other secret, truncated and 10 KB tokens get 401"
    with secured() as gw:
        good = mint(A)
        bad = {
            "expired": (mint(A, ttl=-5), "token_expired"),
            "bad signature": (good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"), "bad_token"),
            "alg none": (mint(A, alg="none", sign=False), "bad_token"),
            "other secret": (mint(A, secret=b"another-secret-xxxxxxxxxxxxxx"), "bad_token"),
            "truncated": (good[:len(good) // 2], "bad_token"),
            # well signed, but not the algorithm the secret is for
            "HS512": (mint(A, alg="HS512"), "bad_token"),
            "no exp": (mint({"channels": ["a"], "exp": None}), "bad_token"),
        }
        for what, (tok, code) in bad.items():
            expect_error(get(gw, "/channels/a?transport=poll",
                             {"Authorization": "Bearer " + tok}), 401, code, what)
            expect_error(post(gw, "a", {"x": 1}, {"Authorization": "Bearer " + tok}), 401, code,
                         f"publish with {what}")
        # a 10 KB token: the head limit refuses it in a header or the query
        big = mint(dict(A, pad="x" * 10240))
        expect_error(get(gw, q("/channels/a?transport=poll", big)), 431, "head_too_large", "10 KB query")
        expect_error(get(gw, "/channels/a?transport=poll", {"Authorization": "Bearer " + big}), 431,
                     "head_too_large", "10 KB Bearer")
        # and over 8 KB in a /ws auth frame, auth.c's own limit
        m = MuxClient(gw)
        await m.start()
        f = await m.op({"op": "auth", "token": mint(dict(A, pad="x" * 8300))})
        expect_eq((f.get("code"), f.get("message")), ("bad_token", "the token is over 8 KB"), "8 KB+ frame")
        for what, (tok, code) in bad.items():
            f = await m.op({"op": "auth", "token": tok})
            expect_eq(f.get("code"), code, f"/ws auth op with {what}")
        expect_error(get(gw, "/channels/a?transport=poll", {"Authorization": "apikey nope"}),
                     401, "bad_api_key", "a wrong API key")


async def test_publish_grants():
    "publish: the token's publish list, the API key anywhere, a forged X-Client-Id refused"
    with secured() as gw:
        tok = {"Authorization": "Bearer " + mint(A)}
        expect_eq(post(gw, "a", 1, tok)[0], 201, "publish to a with a token for a")
        expect_error(post(gw, "b", 1, tok), 403, "forbidden", "publish to b with a token for a")
        expect_error(post(gw, "pubx", 1, tok), 403, "forbidden", "readable is not publishable")
        expect_error(post(gw, "a", 1), 401, "unauthorized", "publish without credentials")
        expect_error(post(gw, "a", 1, dict(tok, **{"X-Client-Id": "mallory"})), 403, "client_mismatch",
                     "forged X-Client-Id")
        expect_eq(post(gw, "a", 1, dict(tok, **{"X-Client-Id": "alice"}))[0], 201, "own X-Client-Id")
        expect_eq(post(gw, "anything", 1, apikey())[0], 201, "the API key publishes anywhere")


async def test_public_channels():
    "--public-channels: read without a token, publish still needs one"
    with secured("--public-channels", "news,open:*") as gw:
        expect_eq(get(gw, "/channels/open:x?transport=poll")[0], 200, "public pattern read")
        expect_eq(get(gw, "/channels/news?transport=poll")[0], 200, "public name read")
        expect_error(get(gw, "/channels/newsx?transport=poll"), 401, "unauthorized", "not public")
        expect_error(post(gw, "news", 1), 401, "unauthorized", "publish to a public channel")


async def test_sse():
    "SSE: token read allowed, b refused, forged client refused, expiry ends the stream"
    with secured() as gw:
        post(gw, "a", {"n": 1}, apikey())
        post(gw, "b", {"n": 2}, apikey())
        s = SSEClient(gw, "a", since="0", headers={"Authorization": "Bearer " + mint(A)})
        await s.start()
        await s.wait_for(lambda: len(s.messages) == 1, 5, "a's history")
        expect_eq(s.head.headers.get("x-client-id"), "alice", "sse client id is the sub")
        s.abort()
        for path, st, what in ((q("/channels/b?since=0", mint(A)), 403, "b"),
                               ("/channels/a", 401, "no token"),
                               (q("/channels/a?client=mallory", mint(A)), 403, "forged client"),
                               (q("/channels/a", mint(A, ttl=-1)), 401, "expired")):
            c = SSEClient(gw, "x", path=path)
            c._task = asyncio.ensure_future(c._guarded())
            await c.wait_done(5)
            expect_eq(c.status, st, f"sse {what}")
        e = SSEClient(gw, "a", path=q("/channels/a", mint(A, ttl=2)))
        await e.start()
        await e.wait_done(8)
        check(any(ev == "error" and "token_expired" in d for ev, _, d in e.raw_events),
              f"the expired stream's last event: {e.raw_events[-3:]!r}")
        check(e.clean_end, f"the stream ended cleanly: {e.end_reason}")
        # the second request of a keep-alive connection is libmicrohttpd's
        # stream (the router sees first heads only): it ends at exp too
        reader, writer = await open_stream(gw.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await read_head(reader)
        await BodyReader(reader, head).read_all()
        writer.write(("GET " + q("/channels/a?transport=sse", mint(A, ttl=2)) +
                      " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n").encode())
        head = await read_head(reader)
        expect_eq(head.status, 200, "a keep-alive SSE")
        body = await asyncio.wait_for(BodyReader(reader, head).read_all(), 8)
        check(b"event: error" in body and b"token_expired" in body, f"its end: {body[-200:]!r}")
        writer.close()


async def test_ws_channels():
    "WS /channels: token allowed; b, no token, forged client: close 4003/4001"
    with secured() as gw:
        post(gw, "a", {"n": 1}, apikey())
        w = WSClient(gw, "a", since="0", extra_query=[("token", mint(A))])
        await w.start()
        await w.wait_for(lambda: len(w.messages) == 1, 5, "a's history over ws")
        w.abort()
        for ch, extra, code, what in (("b", [("token", mint(A))], 4003, "b"),
                                      ("a", [], 4001, "no token"),
                                      ("a", [("token", mint(A, ttl=-1))], 4001, "expired"),
                                      ("a", [("token", mint(A)), ("client", "mallory")], 4003,
                                       "forged client")):
            c = WSClient(gw, ch, extra_query=extra)
            await c.start(wait_welcome=False)
            await c.wait_done(5)
            expect_eq(c.close_code, code, f"ws {what}: close code ({c.describe()})")
        e = WSClient(gw, "a", extra_query=[("token", mint(A, ttl=2))])
        await e.start()
        await e.wait_done(8)
        expect_eq((e.close_code, e.close_reason), (4001, "token_expired"), "ws expiry")


async def test_ws_mux():
    "/ws: subscribe and publish by the grant, auth op refresh keeps the socket"
    with secured() as gw:
        post(gw, "b", {"n": 2}, apikey())
        m = MuxClient(gw, extra_query=[("token", mint(A, ttl=3))])
        await m.start()
        await m.subscribe("a")
        f = await m.op({"op": "subscribe", "channel": "b", "since": "0"})
        expect_eq((f.get("type"), f.get("code")), ("error", "forbidden"), "/ws subscribe b")
        f = await m.op({"op": "publish", "channel": "b", "data": 1})
        expect_eq((f.get("type"), f.get("code")), ("error", "forbidden"), "/ws publish b")
        await m.publish("a", {"ok": 1})
        f = await m.op({"op": "auth", "token": mint(A, secret=b"wrong-wrong-wrong-wrong")})
        expect_eq(f.get("code"), "bad_token", "auth op with a bad token")
        f = await m.op({"op": "auth", "token": mint(dict(A, sub="mallory"))})
        expect_eq(f.get("code"), "client_mismatch", "auth op for another sub")
        await m.ok_op({"op": "auth", "token": mint(A, ttl=60)})
        await asyncio.sleep(4.5)
        check(not m.done, f"the socket outlived the first token: {m.describe()}")
        await m.publish("a", {"ok": 2})
        n = MuxClient(gw, extra_query=[("token", mint(A, ttl=2))])
        await n.start()
        await n.wait_done(8)
        expect_eq(n.close_code, 4001, "/ws without a refresh closes at exp")
        o = MuxClient(gw)
        await o.start()
        f = await o.op({"op": "subscribe", "channel": "a"})
        expect_eq(f.get("code"), "unauthorized", "/ws without a token")
        await o.ok_op({"op": "auth", "token": mint({"channels": ["a"]})})
        await o.subscribe("a")


async def test_admin():
    "admin API: key only; list with counts, delete a channel (streams end, history goes), disconnect a client"
    with secured() as gw:
        for i in range(3):
            post(gw, "room", {"i": i}, apikey())
        tok = mint({"sub": "bob", "channels": ["*"]})
        sse = SSEClient(gw, "room", extra_query=[("token", tok)])
        await sse.start()
        ws = WSClient(gw, "room", extra_query=[("token", tok)])
        await ws.start()
        other = MuxClient(gw, extra_query=[("token", mint({"sub": "carol", "channels": ["*"]}))])
        await other.start()
        await other.subscribe("lobby")
        expect_error(get(gw, "/admin/channels"), 401, "unauthorized", "admin without a key")
        expect_error(get(gw, "/admin/channels", {"Authorization": "Bearer " + mint({"channels": ["*"]})}),
                     401, "unauthorized", "admin with a client token")
        expect_error(request(gw, "DELETE", "/admin/channels/room", headers={"Authorization": "apikey x"}),
                     401, "bad_api_key", "admin delete with a wrong key")
        st, _, body = get(gw, "/admin/channels", apikey())
        expect_eq(st, 200, "list")
        rows = {c["name"]: c for c in json.loads(body)["channels"]}
        expect_eq((rows["room"]["retained"], rows["room"]["subscribers"], rows["room"]["last_id"]), (3, 2, 3),
                  "room's counts")
        expect_eq(rows["lobby"]["subscribers"], 1, "lobby's subscribers")
        st, _, body = request(gw, "DELETE", "/admin/channels/room", headers=apikey())
        expect_eq((st, json.loads(body)), (200, {"deleted": "room"}), "delete room")
        await sse.wait_done(5)
        check(any(ev == "error" and "closed_by_admin" in d for ev, _, d in sse.raw_events),
              f"the SSE stream's last event: {sse.raw_events[-2:]!r}")
        await ws.wait_done(5)
        expect_eq((ws.close_code, ws.close_reason), (4002, "closed_by_admin"), "ws on a deleted channel")
        st, _, body = get(gw, "/channels/room?transport=poll&since=0", apikey())
        expect_eq((st, json.loads(body)["messages"]), (200, []), "the history went with it")
        expect_error(request(gw, "DELETE", "/admin/channels/nope", headers=apikey()), 404, "no_channel",
                     "delete a channel that does not exist")
        st, _, body = request(gw, "DELETE", "/admin/clients/carol", headers=apikey())
        expect_eq((st, json.loads(body)), (200, {"disconnected": 1}), "disconnect carol")
        await other.wait_done(5)
        expect_eq(other.close_code, 4002, "carol's /ws")
        expect_error(request(gw, "PUT", "/admin/channels", headers=apikey()), 405, None, "PUT")


async def test_metrics_key():
    "/metrics needs the API key unless --metrics-public"
    with secured() as gw:
        expect_error(get(gw, "/metrics"), 401, "unauthorized", "/metrics without a key")
        expect_eq(get(gw, "/metrics", apikey())[0], 200, "/metrics with the key")
        expect_error(get(gw, "/metrics", {"Authorization": "Bearer " + mint(A)}), 401, None,
                     "/metrics with a client token")
    with secured("--metrics-public", "1") as gw:
        expect_eq(get(gw, "/metrics")[0], 200, "--metrics-public")


async def test_open_mode():
    "no secret and no key: open as before, one warning line, loopback without --bind"
    with Gateway() as gw:
        expect_eq(post(gw, "b", 1)[0], 201, "open publish")
        expect_eq(get(gw, "/channels/b?transport=poll&since=0")[0], 200, "open read")
        expect_eq(get(gw, "/metrics")[0], 200, "open metrics")
    # no --bind at all (Gateway always passes one): its own process
    d = tempfile.mkdtemp(prefix="auth-open-", dir=log_dir())
    pf, log = os.path.join(d, "port"), os.path.join(d, "log")
    with open(log, "wb") as lf:
        p = subprocess.Popen([binary_path(), "--port", "0", "--port-file", pf, "--config", ""],
                             stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
    try:
        deadline = time.monotonic() + 10
        while not (os.path.exists(pf) and open(pf).read().strip()):
            check(p.poll() is None and time.monotonic() < deadline, "the open gateway did not start")
            await asyncio.sleep(0.02)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    text = open(log).read()
    check("listening on 127.0.0.1 port" in text, f"open mode without --bind: loopback only:\n{text}")
    warns = [ln for ln in text.splitlines() if " warn " in ln]
    expect_eq(len(warns), 1, f"warning lines in open mode: {warns}")
    check("open mode" in warns[0], f"the warning says open mode: {warns[0]}")
    with secured("--log-level", "info") as gw:
        gw.stop()
        check("open mode" not in open(gw.log_path).read(), "no open-mode warning with a secret")


if __name__ == "__main__":
    run([test_poll_token_places, test_bad_tokens, test_publish_grants, test_public_channels, test_sse,
         test_ws_channels, test_ws_mux, test_admin, test_metrics_key, test_open_mode], budget=90.0)
