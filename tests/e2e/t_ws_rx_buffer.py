#!/usr/bin/env python3
"""A WebSocket's receive buffer is small (lws_ws.c: 1 KiB, so that an
idle socket holds little; docs/internals/transports.md), and libwebsockets
hands a longer frame over in pieces of that size. A message that big or
far bigger, in one frame or in fragments, on a single-channel socket or on
/ws, is still taken whole up to --max-message, and refused past it."""

import json

from gwlib import Gateway, MuxClient, SSEClient, WSClient, expect_eq, payload, run

BIG = 60_000  # many pieces of the receive buffer, under the 65,536 default


async def test_big_frames_single_channel():
    "ws /channels/X: a 60 KB message in one frame, then in three fragments, both arrive whole"
    with Gateway() as gw:
        ch = "ws:rx"
        sse = SSEClient(gw, ch)
        await sse.start()
        w = WSClient(gw, ch, client="rx")
        await w.start()
        one, frag = payload(1, size=BIG), payload(2, size=BIG)
        await w.send_json(one)
        text = json.dumps(frag).encode()
        third = len(text) // 3
        await w.send_frame(0x1, text[:third], fin=False)
        await w.send_frame(0x0, text[third:2 * third], fin=False)
        await w.send_frame(0x0, text[2 * third:], fin=True)
        await w.wait_count(2, 10)
        await sse.wait_count(2, 10)
        expect_eq([m["data"] for m in w.messages], [one, frag], "the sender's own stream")
        expect_eq([m["data"] for m in sse.messages], [one, frag], "an SSE subscriber")
        expect_eq(w.close_code, None, f"the socket stays open ({w.describe()})")
        w.abort()
        sse.abort()


async def test_big_publish_on_mux():
    "/ws: a 60 KB publish op is acknowledged and delivered whole; a frame past --max-message still closes 1009"
    with Gateway() as gw:
        m = MuxClient(gw, client="rx-mux")
        await m.start()
        await m.subscribe("ws:rxm")
        big = payload(3, size=BIG)
        ack = await m.publish("ws:rxm", big)
        expect_eq((ack.get("type"), ack.get("id")), ("ack", 1), "publish ack")
        await m.wait_count(1, 10)
        expect_eq(m.messages[0]["data"], big, "delivered data")
        await m.send_text(json.dumps({"op": "publish", "channel": "ws:rxm",
                                      "data": "x" * 70_000}))
        await m.wait_closed(10)
        expect_eq(m.close_code, 1009, f"close code past --max-message ({m.describe()})")


if __name__ == "__main__":
    run([test_big_frames_single_channel, test_big_publish_on_mux])
