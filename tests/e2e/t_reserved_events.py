#!/usr/bin/env python3
"""Reserved event names: nobody may publish an event the gateway sends
itself or that clients treat as protocol (welcome, gap, ping, cursor,
open, error, join, leave). HTTP publish answers 400 bad_event, a /ws
publish gets an error frame bad_event, and nothing reaches subscribers.
A single-channel WebSocket's text frames carry no event name at all, so
a frame that looks like a gap is published as event "message"."""

import asyncio
import json

from gwlib import (Gateway, MuxClient, SSEClient, WSClient, check, expect_eq, expect_error, info,
                   publish, request, run)

RESERVED = ("welcome", "gap", "ping", "cursor", "open", "error", "join", "leave")
# near misses stay allowed: names match exactly and case-sensitively, as
# EventSource dispatches them
ALLOWED = ("message", "ack", "Gap", "gaps", "pinged", "joined", "welcome2", "x.gap")


def forged_gap(ch):
    return {"channel": ch, "last_seen": 1, "cursor": 999}


async def test_http_publish_refused():
    "POST ?event=NAME: 400 bad_event for every reserved name; SSE subscribers see none of them"
    with Gateway() as gw:
        ch = "res:http"
        sub = SSEClient(gw, ch)
        await sub.start()
        for name in RESERVED:
            resp = request(gw, "POST", f"/channels/{ch}?event={name}", body=json.dumps(forged_gap(ch)),
                           headers={"Content-Type": "application/json"})
            expect_error(resp, 400, "bad_event", f"publish event={name}")
            msg = json.loads(resp[2])["error"]["message"]
            check(name in msg, f"the bad_event message does not name {name!r}: {msg!r}")
        expect_eq(info(gw, ch)["last_id"], 0, "messages stored after the refused publishes")
        for i, name in enumerate(ALLOWED, 1):
            st, body = publish(gw, ch, {"n": i}, event=name)
            expect_eq((st, body), (201, {"channel": ch, "id": i, "epoch": info(gw, ch)["epoch"]}),
                      f"publish event={name}")
        await sub.wait_count(len(ALLOWED), 5)
        expect_eq([m["event"] for m in sub.messages], list(ALLOWED), "events the subscriber got")
        names = [e[0] for e in sub.raw_events]
        expect_eq(names.count("welcome"), 1, "welcome events on the stream")
        for name in RESERVED:
            if name != "welcome":
                check(name not in names, f"the subscriber got an event {name!r}: {sub.raw_events!r}")
        expect_eq(sub.gaps, [], "gaps seen by the subscriber")
        expect_eq(sub.problems, [], "SSE problems")
        sub.abort()


async def test_ws_mux_publish_refused():
    "/ws publish op with a reserved event: error frame bad_event, connection stays open"
    with Gateway() as gw:
        ch = "res:mux"
        m = MuxClient(gw)
        await m.start()
        await m.subscribe(ch)
        for name in RESERVED:
            f = await m.op({"op": "publish", "channel": ch, "event": name, "data": forged_gap(ch)})
            expect_eq((f.get("type"), f.get("code")), ("error", "bad_event"), f"/ws publish event={name}")
            check(name in f.get("message", ""), f"the bad_event message does not name {name!r}: {f!r}")
        # a binary publish is refused before its binary frame is awaited
        f = await m.op({"op": "publish", "channel": ch, "event": "gap", "binary": True})
        expect_eq((f.get("type"), f.get("code")), ("error", "bad_event"), "/ws binary publish event=gap")
        expect_eq(info(gw, ch)["last_id"], 0, "messages stored after the refused publishes")
        f = await m.ok_op({"op": "publish", "channel": ch, "event": "chat", "data": 1})
        expect_eq(f.get("id"), 1, "the next publish on the same connection")
        await m.wait_count(1, 5)
        expect_eq([(x["event"], x["data"]) for x in m.messages], [("chat", 1)], "what the /ws subscriber got")
        expect_eq(m.gaps, [], "gaps seen by the /ws subscriber")
        expect_eq(m.problems, [], "/ws problems")
        await m.close()


async def test_ws_single_channel_frames_carry_no_event():
    "single-channel WebSocket: a text frame shaped like a gap is published as event message"
    with Gateway() as gw:
        ch = "res:ws"
        sse = SSEClient(gw, ch)
        await sse.start()
        ws = WSClient(gw, ch)
        await ws.start()
        frame = {"type": "gap", "event": "gap", **forged_gap(ch)}
        await ws.send_json(frame)
        await sse.wait_count(1, 5)
        await ws.wait_count(1, 5)
        for c in (sse, ws):
            got = c.messages[0]
            expect_eq((got["event"], got["data"]), ("message", frame), f"{c.kind} subscriber's message")
            expect_eq(c.gaps, [], f"gaps seen by the {c.kind} subscriber")
            expect_eq(c.problems, [], f"{c.kind} problems")
        expect_eq([e[0] for e in sse.raw_events], ["welcome", "message"], "SSE event names")
        sse.abort()
        await ws.close()


async def test_presence_still_announced():
    "the gateway's own join and leave still reach subscribers"
    with Gateway() as gw:
        ch = "res:presence"
        watcher = SSEClient(gw, ch)
        await watcher.start()
        member = SSEClient(gw, ch, client="bob", extra_query=[("presence", "1")])
        await member.start()
        member.abort()
        await watcher.wait_count(2, 5)
        expect_eq([(m["event"], m["data"]["client"]) for m in watcher.messages[:2]],
                  [("join", "bob"), ("leave", "bob")], "presence messages")
        watcher.abort()


if __name__ == "__main__":
    raise SystemExit(run([test_http_publish_refused, test_ws_mux_publish_refused,
                          test_ws_single_channel_frames_carry_no_event, test_presence_still_announced]))
