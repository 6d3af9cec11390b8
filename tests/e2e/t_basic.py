#!/usr/bin/env python3
"""Basic HTTP surface: health, publish formats, ids, info, every error code,
static files."""

import base64
import json
import os
import shutil
import tempfile
import time

from gwlib import (EPOCH_RE, Gateway, SSEClient, WSClient, Skip, check, expect_eq,
                   expect_error, get, info, publish, request, run, raw_exchange, parse_status,
                   REPO)


def publish_epoch(gw, ch, data, **kw):
    """Publish; check the 201 reply {channel, id, epoch}; return (id, epoch)."""
    st, body = publish(gw, ch, data, **kw)
    expect_eq(st, 201, f"publish to {ch}")
    check(isinstance(body, dict) and isinstance(body.get("epoch"), str) and EPOCH_RE.fullmatch(body["epoch"]),
          f"publish reply without a well-formed epoch: {body!r}")
    expect_eq(body, {"channel": ch, "id": body.get("id"), "epoch": body["epoch"]}, "publish reply fields")
    return body["id"], body["epoch"]


def poll_all(gw, ch, since="0", extra=""):
    st, hdrs, body = get(gw, f"/channels/{ch}?transport=poll&since={since}{extra}")
    check(st == 200, f"poll {ch}: status {st}: {body[:300]!r}")
    return hdrs, json.loads(body)


async def test_healthz():
    "GET /healthz answers 200"
    with Gateway() as gw:
        st, _, body = get(gw, "/healthz")
        expect_eq(st, 200, "healthz status")


async def test_publish_json_ids():
    "publish JSON: 201 {channel,id}, ids 1,2,3 per channel, message fields"
    with Gateway() as gw:
        t0 = time.time() * 1000
        epoch = None
        for i in (1, 2, 3):
            st, body = publish(gw, "chat:lobby", {"i": i, "t": "é☃"})
            expect_eq(st, 201, f"publish {i} status")
            epoch = epoch or body.get("epoch")
            check(isinstance(epoch, str) and EPOCH_RE.fullmatch(epoch), f"publish {i}: epoch {epoch!r}")
            expect_eq(body, {"channel": "chat:lobby", "id": i, "epoch": epoch},
                      f"publish {i} reply (one epoch for the channel)")
        st, body = publish(gw, "other", [1, 2])
        expect_eq((st, body.get("channel"), body.get("id")), (201, "other", 1), "ids are per channel")
        check(isinstance(body.get("epoch"), str) and EPOCH_RE.fullmatch(body["epoch"]),
              f"other channel's epoch {body.get('epoch')!r}")
        t1 = time.time() * 1000
        _, j = poll_all(gw, "chat:lobby")
        msgs = j["messages"]
        expect_eq([m["id"] for m in msgs], [1, 2, 3], "ids")
        expect_eq([m["epoch"] for m in msgs], [epoch] * 3, "epochs: the one of the publish replies")
        expect_eq(j["next"], f"{epoch}:3", "next cursor")
        for i, m in enumerate(msgs, 1):
            expect_eq(list(m), ["type", "channel", "event", "data", "ts", "epoch", "id"], "envelope fields in order")
            expect_eq(m["type"], "message", "type")
            expect_eq(m["channel"], "chat:lobby", "channel")
            expect_eq(m["event"], "message", "default event")
            expect_eq(m["data"], {"i": i, "t": "é☃"}, "data")
            check(isinstance(m["ts"], int) and t0 - 2000 <= m["ts"] <= t1 + 2000,
                  f"ts {m['ts']!r} not within publish time {t0:.0f}..{t1:.0f}")
            check("from" not in m and "binary" not in m, f"unexpected fields: {m}")


async def test_publish_scalar_json():
    "publish JSON scalars and content-type parameters"
    with Gateway() as gw:
        for data in (42, "str", None, True, [1, {"a": None}]):
            st, body = publish(gw, "c", data)
            expect_eq(st, 201, f"publish {data!r}")
        st, body = publish(gw, "c", b'{"x": 1}', content_type="application/json; charset=utf-8")
        expect_eq(st, 201, "application/json; charset=utf-8")
        _, j = poll_all(gw, "c")
        expect_eq([m["data"] for m in j["messages"]], [42, "str", None, True, [1, {"a": None}], {"x": 1}],
                  "data values")


async def test_publish_text():
    "publish text/plain and no content type: data is a JSON string"
    with Gateway() as gw:
        st, _ = publish(gw, "t", "hello wörld ☃")
        expect_eq(st, 201, "text/plain publish")
        st, _ = publish(gw, "t", "no type here".encode(), content_type=None)
        expect_eq(st, 201, "publish without Content-Type")
        st, _ = publish(gw, "t", "line1\nline2\n", content_type="text/markdown")
        expect_eq(st, 201, "text/markdown publish")
        _, j = poll_all(gw, "t")
        expect_eq([m["data"] for m in j["messages"]], ["hello wörld ☃", "no type here", "line1\nline2\n"],
                  "text data")
        for m in j["messages"]:
            check("binary" not in m, f"text message marked binary: {m}")


async def test_publish_binary():
    "publish application/octet-stream: base64 data with binary:true"
    with Gateway() as gw:
        blob = bytes(range(256)) + b"\x00\xff\xfe"
        mid, epoch = publish_epoch(gw, "bin", blob)
        expect_eq(mid, 1, "binary publish id")
        _, j = poll_all(gw, "bin")
        m = j["messages"][0]
        expect_eq(m.get("binary"), True, "binary flag")
        expect_eq((m.get("epoch"), list(m)[-2:]), (epoch, ["epoch", "id"]), "epoch just before id")
        check(isinstance(m["data"], str), f"binary data not a string: {m['data']!r}")
        expect_eq(base64.b64decode(m["data"], validate=True), blob, "decoded binary")


async def test_event_name():
    "?event=NAME sets the event; a bad event name is a 400"
    with Gateway() as gw:
        st, _ = publish(gw, "e", {"a": 1}, event="chat.msg:v1")
        expect_eq(st, 201, "publish with event")
        _, j = poll_all(gw, "e")
        expect_eq(j["messages"][0]["event"], "chat.msg:v1", "event")
        for bad in ("a%20b", "x" * 65, "a/b", "%C3%A9"):
            r = request(gw, "POST", f"/channels/e?event={bad}", body=b"1",
                        headers={"Content-Type": "application/json"})
            expect_error(r, 400, what=f"event={bad[:20]!r}")
        expect_eq(info(gw, "e")["last_id"], 1, "nothing stored by bad publishes")


async def test_info():
    "GET /channels/{ch}/info fields"
    with Gateway() as gw:
        for i in range(3):
            _, epoch = publish_epoch(gw, "inf", i)
        sse = SSEClient(gw, "inf")
        ws = WSClient(gw, "inf")
        await sse.start()
        await ws.start()
        j = info(gw, "inf")
        for k in ("channel", "epoch", "last_id", "oldest_id", "retained", "subscribers"):
            check(k in j, f"info lacks {k!r}: {j}")
        expect_eq(j["channel"], "inf", "channel")
        expect_eq(j["epoch"], epoch, "info epoch: the one of the publish replies")
        expect_eq((sse.welcome["cursor"], ws.welcome["cursor"]), (f"{epoch}:3", f"{epoch}:3"),
                  "sse and ws welcome cursors")
        expect_eq(j["last_id"], 3, "last_id")
        expect_eq(j["oldest_id"], 1, "oldest_id")
        expect_eq(j["retained"], 3, "retained")
        subs = j["subscribers"]
        check(all(isinstance(subs.get(k), int) for k in ("poll", "longpoll", "sse", "ws")),
              f"subscribers object: {subs}")
        expect_eq((subs["sse"], subs["ws"], subs["longpoll"]), (1, 1, 0), "sse/ws/longpoll subscribers")


async def test_exclude_sender():
    "X-Client-Id marks from; exclude_sender=1 skips that client (poll and ws)"
    with Gateway() as gw:
        st, hdrs, body = get(gw, "/channels/ex?transport=poll")
        expect_eq(st, 200, "first poll")
        me = hdrs.get("x-client-id")
        check(me, f"poll reply without X-Client-Id: {hdrs}")
        ws = WSClient(gw, "ex")
        await ws.start()
        wsid = ws.client_id
        check(wsid and wsid != me, f"ws client id {wsid!r} (poll id {me!r})")
        _, epoch = publish_epoch(gw, "ex", {"n": 1}, client=me, exclude_sender=True)
        expect_eq(publish_epoch(gw, "ex", {"n": 2}, client=wsid, exclude_sender=True), (2, epoch), "publish 2")
        expect_eq(publish_epoch(gw, "ex", {"n": 3}, client=me), (3, epoch), "publish 3")
        _, j = poll_all(gw, "ex", extra=f"&client={me}")
        expect_eq([m["id"] for m in j["messages"]], [2, 3], "poll with client=me skips its excluded message")
        expect_eq(j["next"], f"{epoch}:3", "next still advances past the skipped message")
        # the same with the excluded message last: next moves past it
        _, j = poll_all(gw, "ex", since=f"{epoch}:1", extra=f"&client={wsid}")
        expect_eq(([m["id"] for m in j["messages"]], j["next"]), ([3], f"{epoch}:3"),
                  "poll with client=ws id from 1")
        _, j = poll_all(gw, "ex")
        expect_eq([m["id"] for m in j["messages"]], [1, 2, 3], "anonymous poll gets all")
        expect_eq([m.get("from") for m in j["messages"]], [me, wsid, me], "from fields")
        await ws.wait_id(3, 5)
        expect_eq(ws.ids(), [1, 3], "ws skips the message it was excluded from")


async def test_multi_channel_poll():
    "GET /channels/a,b poll: messages of both, comma cursor"
    with Gateway() as gw:
        _, ea = publish_epoch(gw, "ma", 1)
        expect_eq(publish_epoch(gw, "ma", 2), (2, ea), "second publish to ma")
        _, eb = publish_epoch(gw, "mb", 3)
        _, j = poll_all(gw, "ma,mb", since="0,0")
        got = sorted((m["channel"], m["id"], m["epoch"]) for m in j["messages"])
        expect_eq(got, [("ma", 1, ea), ("ma", 2, ea), ("mb", 1, eb)], "messages")
        expect_eq(j["next"], f"{ea}:2,{eb}:1", "cursor")
        _, j = poll_all(gw, "ma,mb", since="2,0")
        expect_eq([(m["channel"], m["id"]) for m in j["messages"]], [("mb", 1)], "since=2,0")
        expect_eq(j["next"], f"{ea}:2,{eb}:1", "cursor after since=2,0")
        _, j = poll_all(gw, "ma,mb", since=f"{ea}:1,0")
        expect_eq([(m["channel"], m["id"]) for m in j["messages"]], [("ma", 2), ("mb", 1)], f"since={ea}:1,0")
        expect_eq(j["next"], f"{ea}:2,{eb}:1", "cursor after a mixed since")


async def test_transport_selection():
    "no transport: Upgrade -> ws, Accept: text/event-stream -> sse, else poll"
    with Gateway() as gw:
        st, hdrs, body = get(gw, "/channels/sel")
        expect_eq(st, 200, "plain GET status")
        j = json.loads(body)
        check("messages" in j and "next" in j, f"plain GET is not a poll reply: {j}")
        sse = SSEClient(gw, "sel", path="/channels/sel")
        await sse.start()
        ws = WSClient(gw, "sel", path="/channels/sel")
        await ws.start()
        publish(gw, "sel", {"x": 1})
        await sse.wait_id(1, 5)
        await ws.wait_id(1, 5)


async def test_sse_headers_welcome():
    "SSE headers, retry line, welcome event with client/heartbeat/cursor"
    with Gateway() as gw:
        publish(gw, "s", 1)
        _, epoch = publish_epoch(gw, "s", 2)
        sse = SSEClient(gw, "s")
        await sse.start()
        h = sse.head.headers
        expect_eq(h.get("content-type", "").split(";")[0], "text/event-stream", "Content-Type")
        check("no-cache" in h.get("cache-control", ""), f"Cache-Control {h.get('cache-control')!r}")
        expect_eq(h.get("x-accel-buffering"), "no", "X-Accel-Buffering")
        expect_eq(sse.first_line, "retry: 2000", "first line")
        expect_eq(sse.retry, 2000, "retry")
        w = sse.welcome
        check(isinstance(w, dict) and isinstance(w.get("client"), str) and len(w["client"]) >= 16,
              f"welcome client: {w}")
        expect_eq(w.get("heartbeat"), 15, "welcome heartbeat")
        expect_eq(w.get("cursor"), f"{epoch}:2", "welcome cursor at the tail")
        expect_eq(sse.raw_events[0][1], f"{epoch}:2", "welcome id line")
        publish(gw, "s", {"k": "v"}, event="upd")
        await sse.wait_id(3, 5)
        name, eid, data = sse.raw_events[-1]
        env = json.loads(data)
        expect_eq((name, eid, env.get("data")), ("upd", f"{epoch}:3", {"k": "v"}), "message event (name, id, data)")
        expect_eq({k: env.get(k) for k in ("type", "channel", "event", "epoch", "id")},
                  {"type": "message", "channel": "s", "event": "upd", "epoch": epoch, "id": 3},
                  "SSE data is the full message envelope")
        check(isinstance(env.get("ts"), int), "envelope carries ts")
        expect_eq(sse.problems, [], "problems")


async def test_ws_handshake_welcome():
    "WS subprotocol anypush.v1 (or none) and welcome frame"
    with Gateway() as gw:
        _, epoch = publish_epoch(gw, "w", 1)
        ws = WSClient(gw, "w")
        await ws.start()
        expect_eq(ws.subprotocol, "anypush.v1", "subprotocol")
        w = ws.welcome
        check(isinstance(w.get("client"), str) and len(w["client"]) >= 16, f"welcome: {w}")
        expect_eq(w.get("heartbeat"), 15, "heartbeat")
        expect_eq(w.get("cursor"), f"{epoch}:1", "cursor")
        ws2 = WSClient(gw, "w", protocols=())
        await ws2.start()
        check(ws2.client_id != ws.client_id, "client ids differ")
        publish(gw, "w", {"n": 2})
        await ws.wait_id(2, 5)
        await ws2.wait_id(2, 5)
        m = ws.messages[0]
        expect_eq({k: m[k] for k in ("type", "channel", "epoch", "id", "event", "data")},
                  {"type": "message", "channel": "w", "epoch": epoch, "id": 2, "event": "message",
                   "data": {"n": 2}}, "ws message frame")
        expect_eq(ws.cursor, f"{epoch}:2", "ws cursor after the message")
        expect_eq(ws.problems + ws2.problems, [], "problems")


async def test_bad_channel():
    "bad channel names: 400 bad_channel (space, 201 chars, NUL, '/', bad chars)"
    with Gateway() as gw:
        ok200 = "a" * 200
        st, body = publish(gw, ok200, 1)
        expect_eq(st, 201, "200-character name is valid")
        for name in ("a%20b", "a" * 201, "a$b", "%C3%A9", "a%00b", "ok,bad%20one", "a%2Fb", "a/b/c"):
            expect_error(request(gw, "POST", f"/channels/{name}", body=b"1",
                                 headers={"Content-Type": "application/json"}),
                         400, "bad_channel", what=f"POST /channels/{name[:30]}")
            expect_error(get(gw, f"/channels/{name}?transport=poll"), 400, "bad_channel",
                         what=f"GET /channels/{name[:30]}")


async def test_dot_channels():
    "channel names '.' and '..' are refused (400 bad_channel): URLs cannot carry them"
    # docs/protocol.md's pattern [A-Za-z0-9_.:~-]{1,200} admits them, but every URL
    # parser (browsers' fetch/EventSource/WebSocket, proxies) removes the dot
    # segments of /channels/.. before sending, so such a channel is unreachable.
    with Gateway() as gw:
        for name in ("..", "."):
            expect_error(request(gw, "POST", f"/channels/{name}", body=b"1",
                                 headers={"Content-Type": "application/json"}),
                         400, "bad_channel", what=f"POST /channels/{name}")
            expect_error(get(gw, f"/channels/{name}?transport=poll"), 400, "bad_channel",
                         what=f"GET /channels/{name}")
        st, _ = publish(gw, "a..b", 1)
        expect_eq(st, 201, "dots inside a name are fine")


async def test_bad_cursor():
    "bad cursors: 400 bad_cursor on every transport"
    with Gateway() as gw:
        publish(gw, "cur", 1)
        for since in ("-1", "abc", "1,2", "1" * 21, "18446744073709551616", "1.5", "0x10", "%201"):
            expect_error(get(gw, f"/channels/cur?transport=poll&since={since}"), 400, "bad_cursor",
                         what=f"poll since={since}")
        expect_error(get(gw, "/channels/cur?transport=longpoll&timeout=1&since=abc"), 400, "bad_cursor",
                     what="longpoll since=abc")
        expect_error(get(gw, "/channels/cur?transport=sse&since=abc"), 400, "bad_cursor",
                     what="sse since=abc")
        expect_error(get(gw, "/channels/cur?transport=sse", headers={"Last-Event-ID": "x"}), 400,
                     "bad_cursor", what="sse Last-Event-ID: x")
        expect_error(get(gw, "/channels/cur,cur2?transport=poll&since=1"), 400, "bad_cursor",
                     what="one number for two channels")
        ws = WSClient(gw, "cur", since="abc")
        try:
            await ws.connect()
            raise AssertionError("ws with since=abc got 101")
        except AssertionError as e:
            check(ws.status == 400, f"ws since=abc: {e}")
        check(b"bad_cursor" in ws.error_body, f"ws since=abc body {ws.error_body!r}")
        # the largest u64 is a valid cursor (beyond the last id: a gap, then everything retained)
        _, j = poll_all(gw, "cur", since="18446744073709551615")
        expect_eq(j.get("gap"), True, "gap for a cursor beyond the last id")
        expect_eq([m["id"] for m in j["messages"]], [1], "retained messages after that gap")


async def test_bad_transport():
    "unknown transport: 400 bad_transport"
    with Gateway() as gw:
        for t in ("carrier-pigeon", "SSE", "", "ws2"):
            expect_error(get(gw, f"/channels/x?transport={t}"), 400, "bad_transport", what=f"transport={t!r}")


async def test_bad_json():
    "application/json that does not parse: 400 bad_json, nothing stored"
    with Gateway() as gw:
        for body in (b'{"a":', b"", b"nope", b'{"a":1} trailing', b'\xff{}'):
            expect_error(request(gw, "POST", "/channels/j", body=body,
                                 headers={"Content-Type": "application/json"}),
                         400, "bad_json", what=f"body {body!r}")
        expect_eq(info(gw, "j")["last_id"], 0, "nothing stored")


async def test_bad_utf8_text():
    "text that is not UTF-8: 400, nothing stored"
    with Gateway() as gw:
        for body, ctype in ((b"ok \xff\xfe", "text/plain"), (b"\xc3\x28", None), (b"\xed\xa0\x80", "text/plain"),
                            (b"\xc0\xaf", "text/plain; charset=utf-8")):
            hdrs = {"Content-Type": ctype} if ctype else {}
            expect_error(request(gw, "POST", "/channels/u", body=body, headers=hdrs), 400,
                         what=f"text body {body!r} ({ctype})")
        expect_eq(info(gw, "u")["last_id"], 0, "nothing stored")


async def test_too_large():
    "--max-message 1024: 1024 bytes accepted, 1025 -> 413 too_large (also chunked)"
    with Gateway("--max-message", "1024") as gw:
        st, _ = publish(gw, "big", "a" * 1024)
        expect_eq(st, 201, "exactly 1024 bytes")
        expect_error(request(gw, "POST", "/channels/big", body=b"a" * 1025,
                             headers={"Content-Type": "text/plain"}), 413, "too_large", what="1025 bytes")
        expect_error(request(gw, "POST", "/channels/big", body=b"\x01" * 100000,
                             headers={"Content-Type": "application/octet-stream"}), 413, "too_large",
                     what="100000 binary bytes")
        # chunked upload without Content-Length, over the limit
        chunks = b"".join(b"%x\r\n%s\r\n" % (500, b"b" * 500) for _ in range(5)) + b"0\r\n\r\n"
        req = (f"POST /channels/big HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\n"
               "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
        got, how = await raw_exchange(gw, req + chunks, read_timeout=5, stop_after_head=False)
        expect_eq(parse_status(got), 413, f"chunked 2500 bytes ({how}): {got[:200]!r}")
        expect_eq(info(gw, "big")["last_id"], 1, "only the first was stored")


async def test_methods():
    "PUT/DELETE/PATCH on a channel: 405; unknown paths: 404; all with JSON errors"
    with Gateway() as gw:
        for m in ("PUT", "DELETE", "PATCH"):
            expect_error(request(gw, m, "/channels/x", body=b"1"), 405, what=f"{m} /channels/x")
        expect_error(request(gw, "POST", "/channels/x/info", body=b"1"), 405, what="POST info")
        for p in ("/nope", "/channels", "/channelsx/y"):
            expect_error(get(gw, p), 404, what=f"GET {p}")
        # not an endpoint; either "unknown path" or "not a channel name" fits
        r = get(gw, "/channels/x/nope")
        expect_error(r, r[0] if r[0] in (400, 404) else 404, what="GET /channels/x/nope")


async def test_static_own_root():
    "static files from --web-root; traversal refused"
    root = tempfile.mkdtemp(prefix="webroot-")
    try:
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write("<!doctype html><title>anypush e2e</title>")
        with open(os.path.join(root, "app.js"), "w") as f:
            f.write("console.log('e2e');\n")
        secret = os.path.join(os.path.dirname(root), os.path.basename(root) + "-secret.txt")
        with open(secret, "w") as f:
            f.write("TOPSECRET")
        with Gateway("--web-root", root) as gw:
            st, h, body = get(gw, "/")
            expect_eq((st, body), (200, b"<!doctype html><title>anypush e2e</title>"), "GET /")
            check(h.get("content-type", "").startswith("text/html"), f"/ Content-Type {h.get('content-type')}")
            st, h, body = get(gw, "/app.js")
            expect_eq((st, body), (200, b"console.log('e2e');\n"), "GET /app.js")
            check("javascript" in h.get("content-type", ""), f"app.js Content-Type {h.get('content-type')}")
            expect_error(get(gw, "/missing.css"), 404, what="missing file")
            sname = os.path.basename(secret)
            for p in ("/../etc/passwd", "/../../../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                      "/..%2f..%2f..%2fetc%2fpasswd", "/app.js/../../etc/passwd", f"/../{sname}",
                      f"/%2e%2e/{sname}", "//etc/passwd", "/.%2e/.%2e/etc/passwd", "/%252e%252e/etc/passwd"):
                st, _, body = get(gw, p)
                check(st in (400, 403, 404), f"GET {p}: status {st}")
                check(b"root:" not in body and b"TOPSECRET" not in body, f"GET {p} leaked a file: {body[:100]!r}")
            # raw request line, so no client library normalises anything
            got, how = await raw_exchange(gw, f"GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
                                          stop_after_head=False, read_timeout=2)
            check(b"root:" not in got, "raw traversal leaked /etc/passwd")
            st = parse_status(got)
            check(st is None or st in (400, 403, 404), f"raw traversal status {st}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
        try:
            os.unlink(secret)
        except (OSError, UnboundLocalError):
            pass


async def test_static_repo_web():
    "the repository's web/index.html is served at /"
    web = os.environ.get("ANYPUSH_WEB") or str(REPO / "web")
    index = os.path.join(web, "index.html")
    if not os.path.isfile(index):
        raise Skip(f"no {index}")
    with open(index, "rb") as f:
        want = f.read()
    with Gateway("--web-root", web) as gw:
        st, h, body = get(gw, "/")
        expect_eq(st, 200, "GET / status")
        check(body == want, f"GET / is not web/index.html ({len(body)} vs {len(want)} bytes)")


if __name__ == "__main__":
    raise SystemExit(run([
        test_healthz, test_publish_json_ids, test_publish_scalar_json, test_publish_text,
        test_publish_binary, test_event_name, test_info, test_exclude_sender, test_multi_channel_poll,
        test_transport_selection, test_sse_headers_welcome, test_ws_handshake_welcome,
        test_bad_channel, test_dot_channels, test_bad_cursor, test_bad_transport, test_bad_json, test_bad_utf8_text,
        test_too_large, test_methods, test_static_own_root, test_static_repo_web,
    ]))
