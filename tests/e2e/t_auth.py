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
                   expect_error, get, log_dir, metric_sum, metrics, request, run, wait_until)

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


def loop_conns(gw):
    "connections the lws loops hold (long polls held there among them); needs --metrics-public"
    return metric_sum(metrics(gw), "anypush_ws_loop_connections") or 0


def streams(gw):
    return metric_sum(metrics(gw), "anypush_streams") or 0


def attached(gw, ch):
    "subscribers attached to ch, held polls included (the admin list)"
    st, _, body = get(gw, "/admin/channels", apikey())
    check(st == 200, f"/admin/channels: {st}")
    return sum(c["subscribers"] for c in json.loads(body)["channels"] if c["name"] == ch)


def raw_get(gw, path, headers=None):
    h = {"Host": f"127.0.0.1:{gw.port}"}
    h.update(headers or {})
    return (f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode()


async def hold(gw, path, headers=None):
    "a request on its own connection, left waiting for its answer"
    reader, writer = await open_stream(gw.port, 10.0)
    writer.write(raw_get(gw, path, headers))
    await writer.drain()
    return reader, writer


async def answer(reader, timeout=10.0):
    head = await read_head(reader, timeout)
    body = await asyncio.wait_for(BodyReader(reader, head).read_all(), timeout)
    return head, body


async def test_info_needs_a_grant():
    "GET /channels/X/info: a token that covers X, the API key or a public X; else 401/403 as a subscribe"
    with secured("--public-channels", "news") as gw:
        post(gw, "a", {"x": 1}, apikey())
        post(gw, "b", {"x": 2}, apikey())
        tok = mint(A)
        expect_error(get(gw, "/channels/b/info"), 401, "unauthorized", "info without a token")
        expect_error(get(gw, "/channels/b/info", {"Authorization": "Bearer " + tok}), 403, "forbidden",
                     "info of b with a token for a")
        expect_error(get(gw, q("/channels/b/info", tok)), 403, "forbidden", "info of b, token in the query")
        expect_error(get(gw, "/channels/a/info", {"Authorization": "Bearer " + mint(A, ttl=-5)}), 401,
                     "token_expired", "info with an expired token")
        expect_error(get(gw, "/channels/a/info", {"Authorization": "Bearer " + tok[:-3]}), 401, "bad_token",
                     "info with a bad signature")
        for what, path, hdr in (("bearer", "/channels/a/info", {"Authorization": "Bearer " + tok}),
                                ("query", q("/channels/a/info", tok), {}),
                                ("cookie", "/channels/a/info", {"Cookie": "anypush_token=" + tok}),
                                ("API key", "/channels/a/info", apikey())):
            st, _, body = get(gw, path, hdr)
            expect_eq((st, json.loads(body).get("last_id")), (200, 1), f"info of a with the {what}")
        st, _, body = get(gw, "/channels/news/info")
        expect_eq(st, 200, "info of a public channel without a token")
        # the other read paths: /healthz tells nothing of channels,
        # /metrics and /admin need the key
        expect_eq(get(gw, "/healthz")[0], 200, "/healthz")
        expect_error(get(gw, "/metrics", {"Authorization": "Bearer " + tok}), 401, "unauthorized", "/metrics")
        expect_error(get(gw, "/admin/channels", {"Authorization": "Bearer " + tok}), 401, "unauthorized",
                     "/admin/channels")
    with Gateway() as gw:
        expect_eq(get(gw, "/channels/b/info")[0], 200, "open mode: info is open")


async def test_ws_refresh_narrower():
    "/ws auth refresh: channels the new token does not cover end (error frame, nothing more), the rest stay"
    with secured() as gw:
        m = MuxClient(gw, extra_query=[("token", mint({"sub": "alice", "channels": ["a", "b", "c"]}))])
        await m.start()
        for ch in ("a", "b", "c"):
            await m.subscribe(ch)
        expect_eq(post(gw, "b", {"before": 1}, apikey())[0], 201, "b before the refresh")
        await m.wait_for(lambda: len(m.on("b")) == 1, 5, "b's message before the refresh")
        ack = await m.ok_op({"op": "auth", "token": mint({"sub": "alice", "channels": ["a", "c"]})})
        ends = [f for f in m.errors if f.get("channel") == "b"]
        expect_eq([(f.get("code"), f.get("ref")) for f in ends], [("forbidden", None)],
                  "one error frame for b, before the ack")
        check(m.ctl.index(ends[0]) < m.ctl.index(ack), f"the error came before the ack: {m.ctl}")
        check(not any(f.get("channel") in ("a", "c") for f in m.errors), f"a and c stay: {m.errors}")
        for i in range(5):
            post(gw, "b", {"after": i}, apikey())
            post(gw, "a", {"i": i}, apikey())
            post(gw, "c", {"i": i}, apikey())
        await m.wait_for(lambda: len(m.on("a")) == 5 and len(m.on("c")) == 5, 10, "a's and c's five")
        expect_eq([x["data"] for x in m.on("a")], [{"i": i} for i in range(5)], "a: none lost, none doubled")
        expect_eq([x["data"] for x in m.on("b")], [{"before": 1}], "b: nothing after the refresh")
        f = await m.op({"op": "unsubscribe", "channel": "b"})
        expect_eq(f.get("code"), "not_subscribed", "the subscription to b is gone")
        f = await m.op({"op": "subscribe", "channel": "b"})
        expect_eq(f.get("code"), "forbidden", "b again under the new token")
        # the client id cannot change mid-connection
        f = await m.op({"op": "auth", "token": mint({"sub": "mallory", "channels": ["*"]})})
        expect_eq(f.get("code"), "client_mismatch", "a token for another sub")
        await m.ok_op({"op": "auth", "token": mint({"channels": ["a", "c"]})})
        check(not m.done, m.describe())
        # a connection that opened without a token has a gateway-made id:
        # a token naming a sub is not its own
        o = MuxClient(gw)
        await o.start()
        f = await o.op({"op": "auth", "token": mint({"sub": "alice", "channels": ["a"]})})
        expect_eq(f.get("code"), "client_mismatch", "a sub for a connection with another id")
        n = MuxClient(gw, client="alice")
        await n.start()
        await n.ok_op({"op": "auth", "token": mint({"sub": "alice", "channels": ["a"]})})
        await n.subscribe("a")
        check(not m.problems and not o.problems and not n.problems, f"{m.problems} {o.problems} {n.problems}")


async def test_admin_ends_held_requests():
    "DELETE /admin/clients/ID ends its held long polls (410 closed_by_admin) and SSE streams, on both engines, and its presence as a poller"
    with secured("--metrics-public", "1") as gw:
        auth = {"Authorization": "Bearer " + mint({"sub": "dave", "channels": ["*"]})}
        other = {"Authorization": "Bearer " + mint({"sub": "erin", "channels": ["*"]})}
        lp = "/channels/room?transport=longpoll&timeout=60"
        # the router gives a plain keep-alive long poll to lws, one with
        # Connection: close to libmicrohttpd
        lws_r, lws_w = await hold(gw, lp, auth)
        await wait_until(lambda: loop_conns(gw) == 1, 10, 0.05, "the long poll held on the lws loops")
        mhd_r, mhd_w = await hold(gw, lp, dict(auth, Connection="close"))
        erin_r, erin_w = await hold(gw, lp, other)
        sse = SSEClient(gw, "room", headers=auth)
        await sse.start()
        # an event stream libmicrohttpd holds: the second request of a
        # keep-alive connection (the router sees first heads only)
        sr, sw = await open_stream(gw.port)
        sw.write(raw_get(gw, "/healthz"))
        await answer(sr)
        sw.write(raw_get(gw, "/channels/room?transport=sse", dict(auth, Accept="text/event-stream")))
        shead = await read_head(sr)
        expect_eq(shead.status, 200, "the keep-alive SSE")
        await wait_until(lambda: streams(gw) == 5 and attached(gw, "room") == 5, 10, 0.05,
                         "five held requests, attached")
        # dave also short-polls, naming himself: a poller the info counts
        expect_eq(get(gw, "/channels/room?transport=poll&client=dave", auth)[0], 200, "dave's short poll")
        polls = lambda: json.loads(get(gw, "/channels/room/info", apikey())[2])["subscribers"]["poll"]
        expect_eq(polls(), 1, "dave counted as a poller")
        st, _, body = request(gw, "DELETE", "/admin/clients/dave", headers=apikey())
        expect_eq((st, json.loads(body)), (200, {"disconnected": 4}), "dave's four")
        expect_eq(polls(), 0, "dave forgotten as a poller at once, not a presence window later")
        for what, r in (("lws", lws_r), ("libmicrohttpd", mhd_r)):
            head, b = await answer(r)
            expect_error((head.status, head.headers, b), 410, "closed_by_admin", f"the long poll on {what}")
        await sse.wait_done(5)
        check(any(ev == "error" and "closed_by_admin" in d for ev, _, d in sse.raw_events),
              f"the lws SSE stream's last event: {sse.raw_events[-2:]!r}")
        body = await asyncio.wait_for(BodyReader(sr, shead).read_all(), 10)
        check(body.endswith(b"\n\n") and b"event: error" in body and b"closed_by_admin" in body,
              f"the libmicrohttpd SSE stream's end: {body[-200:]!r}")
        # erin's poll is still held, and gets the message
        expect_eq(post(gw, "room", {"n": 1}, apikey())[0], 201, "publish")
        head, b = await answer(erin_r)
        expect_eq((head.status, [x["data"] for x in json.loads(b)["messages"]]), (200, [{"n": 1}]),
                  "another client's poll")
        for w in (lws_w, mhd_w, erin_w, sw):
            w.close()


async def test_longpoll_on_lws_with_tokens():
    "long polls with a token are held on the lws loops and checked there: the token matrix, Origin"
    with secured("--metrics-public", "1", "--allow-origin", "https://ok.example") as gw:
        post(gw, "b", {"secret": 1}, apikey())
        tok = mint(A)
        lp = "/channels/a?transport=longpoll&timeout=60"
        for what, path, hdr in (("query", q(lp, tok), {}),
                                ("bearer", lp, {"Authorization": "Bearer " + tok}),
                                ("cookie", lp, {"Cookie": "x=1; anypush_token=" + tok}),
                                ("allowed origin", lp, {"Authorization": "Bearer " + tok,
                                                        "Origin": "https://ok.example"})):
            r, w = await hold(gw, path, hdr)
            await wait_until(lambda: loop_conns(gw) == 1 and attached(gw, "a") == 1, 10, 0.05,
                             f"{what}: held on the lws loops")
            post(gw, "a", {"via": what}, apikey())
            head, body = await answer(r)
            expect_eq((head.status, [x["data"] for x in json.loads(body)["messages"]]), (200, [{"via": what}]),
                      f"{what}: the message")
            expect_eq(head.headers.get("x-client-id"), "alice", f"{what}: the client id is the sub")
            if "Origin" in hdr:
                expect_eq(head.headers.get("access-control-allow-origin"), "https://ok.example",
                          "the allowed origin echoed")
            w.close()
            await wait_until(lambda: loop_conns(gw) == 0, 10, 0.05, f"{what}: the connection gone")
        refused = (
            ("b", q("/channels/b?transport=longpoll&timeout=5&since=0", tok), {}, 403, "forbidden"),
            ("a and b", q("/channels/a,b?transport=longpoll&timeout=5", tok), {}, 403, "forbidden"),
            ("no token", lp, {}, 401, "unauthorized"),
            ("expired", q(lp, mint(A, ttl=-5)), {}, 401, "token_expired"),
            ("bad signature", lp, {"Authorization": "Bearer " + tok[:-3]}, 401, "bad_token"),
            ("alg none", q(lp, mint(A, alg="none", sign=False)), {}, 401, "bad_token"),
            ("other secret", q(lp, mint(A, secret=b"another-secret-xxxxxxxxxxxxxx")), {}, 401, "bad_token"),
            ("truncated", lp, {"Cookie": "anypush_token=" + tok[:len(tok) // 2]}, 401, "bad_token"),
            ("forged client", q(lp + "&client=mallory", tok), {}, 403, "client_mismatch"),
        )
        for what, path, hdr, status, code in refused:
            r, w = await hold(gw, path, hdr)
            head, body = await answer(r)
            expect_error((head.status, head.headers, body), status, code, f"long poll, {what}")
            check(b"secret" not in body, f"{what}: b's history leaked: {body!r}")
            w.close()
        r, w = await hold(gw, lp, {"Authorization": "Bearer " + tok, "Origin": "https://evil.example"})
        head, body = await answer(r)
        expect_error((head.status, head.headers, body), 403, "origin_not_allowed", "a cross-site long poll")
        check("access-control-allow-origin" not in head.headers, f"no CORS on the refusal: {head.headers}")
        w.close()


async def test_long_token_hides_nothing():
    "a 3 KB token (or a long cursor) before since= and transport=: every transport still reads them"
    with secured("--metrics-public", "1") as gw:
        for i in range(3):
            post(gw, "a", {"i": i}, apikey())
        big = mint(dict(A, channels=["a"] + [f"pad{i:04d}:*" for i in range(180)]))
        check(len(big) > 2500, f"the token is long: {len(big)}")
        want = [{"i": i} for i in range(3)]
        # long poll: before the fix lws read no transport= past the token
        # and served the poll as an event stream
        r, w = await hold(gw, f"/channels/a?token={big}&since=0&transport=longpoll&timeout=5")
        head, body = await answer(r)
        expect_eq((head.status, head.headers.get("content-type")), (200, "application/json"), "long poll reply")
        expect_eq([x["data"] for x in json.loads(body)["messages"]], want, "long poll: the history since 0")
        w.close()
        s = SSEClient(gw, "a", path=f"/channels/a?token={big}&since=0")
        await s.start()
        await s.wait_for(lambda: len(s.messages) == 3, 5, "SSE: the history since 0")
        expect_eq([x["data"] for x in s.messages], want, "SSE history")
        s.abort()
        ws = WSClient(gw, "a", path=f"/channels/a?token={big}&since=0")
        await ws.start()
        await ws.wait_for(lambda: len(ws.messages) == 3, 5, "WS: the history since 0")
        expect_eq([x["data"] for x in ws.messages], want, "WS history")
        ws.abort()
    # open mode: a cursor of 16 channels before transport= hid it too
    with Gateway() as gw:
        chs = ",".join(f"c{i}" for i in range(16))
        post(gw, "c3", {"i": 1})
        r, w = await hold(gw, f"/channels/{chs}?since={','.join(['0'] * 16)}&transport=longpoll&timeout=5")
        head, body = await answer(r)
        expect_eq((head.status, head.headers.get("content-type")), (200, "application/json"),
                  "open mode: a long poll, not an event stream")
        expect_eq([x["data"] for x in json.loads(body)["messages"]], [{"i": 1}], "open mode: c3's message")
        w.close()


async def test_every_transport_a_not_b():
    "a token for a: no transport reads b, replays b or publishes to b; three places on SSE and WS too"
    with secured() as gw:
        post(gw, "b", {"secret": 1}, apikey())
        tok = mint(A)
        for tr in ("poll", "longpoll"):
            expect_error(get(gw, q(f"/channels/b?transport={tr}&since=0&timeout=2", tok)), 403, "forbidden",
                         f"{tr}: b's history")
        for where in ({"Authorization": "Bearer " + tok}, {"Cookie": "anypush_token=" + tok}):
            s = SSEClient(gw, "b", since="0", headers=where)
            s._task = asyncio.ensure_future(s._guarded())
            await s.wait_done(5)
            expect_eq(s.status, 403, f"SSE b with the token in {list(where)}")
            check(not s.messages, "SSE: nothing of b")
            ok = SSEClient(gw, "a", headers=where)
            await ok.start()
            ok.abort()
            c = WSClient(gw, "b", since="0", headers=where)
            await c.start(wait_welcome=False)
            await c.wait_done(5)
            expect_eq(c.close_code, 4003, f"WS b with the token in {list(where)}")
            check(not c.messages, "WS: nothing of b")
            okw = WSClient(gw, "a", headers=where)
            await okw.start()
            okw.abort()
        # a single-channel WebSocket publishes by its own grant: readable
        # pubx is not publishable, so its frame is dropped
        w = WSClient(gw, "pubx", extra_query=[("token", tok)])
        await w.start()
        await w.send_json({"x": 1})
        m = MuxClient(gw, extra_query=[("token", tok)])
        await m.start()
        await m.subscribe("a")
        f = await m.op({"op": "publish", "channel": "b", "data": 1})
        expect_eq(f.get("code"), "forbidden", "/ws publish to b")
        f = await m.op({"op": "subscribe", "channel": "b", "since": "0"})
        expect_eq(f.get("code"), "forbidden", "/ws replay of b")
        # the gateway reads a socket's frames in order: once it has
        # answered the close, the frame before it was dealt with
        await w.close()
        st, _, body = get(gw, "/channels/pubx/info", apikey())
        expect_eq(json.loads(body)["last_id"], 0, "the frame to pubx was not stored")
        st, _, body = get(gw, "/channels/b/info", apikey())
        expect_eq(json.loads(body)["last_id"], 1, "b has only the API key's message")
        expect_error(post(gw, "b", 1, {"Authorization": "Bearer " + tok}), 403, "forbidden", "HTTP publish to b")
        expect_error(post(gw, "b", 1, {"Cookie": "anypush_token=" + tok}), 403, "forbidden",
                     "HTTP publish to b, cookie")
        expect_error(request(gw, "POST", q("/channels/b", tok), body=b"1",
                             headers={"Content-Type": "application/json"}), 403, "forbidden",
                     "HTTP publish to b, query")


if __name__ == "__main__":
    run([test_poll_token_places, test_bad_tokens, test_publish_grants, test_public_channels, test_sse,
         test_ws_channels, test_ws_mux, test_admin, test_metrics_key, test_open_mode, test_info_needs_a_grant,
         test_ws_refresh_narrower, test_admin_ends_held_requests, test_longpoll_on_lws_with_tokens,
         test_long_token_hides_nothing, test_every_transport_a_not_b], budget=180.0)
