#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz_encode, fuzz_framing,
fuzz_request_path and fuzz_static_path into tests/fuzz/corpus/TARGET/
(named files, kept beside the grown ones, which have hashes for names).

Each seed is in its target's encoding (see the target's source): the
seeds reach what random bytes reach slowly, such as a /ws frame that
parses at the end of a framing input, or a URL with every argument.
Usage: tests/fuzz/seeds.py [CORPUS_DIR]"""
import os
import struct
import sys

CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:~-"
MAX64 = 2**64 - 1


def u64(v):
    return struct.pack(">Q", v & MAX64)


def name(s, limit):
    """A name in in_name's mapped form (the flag for raw names unset)."""
    return bytes([len(s) % (limit + 2)]) + bytes(CHARS.index(c) for c in s.encode())


def raw(s, limit):
    b = s.encode()
    return bytes([len(b) % (limit + 2)]) + b


def encode_seed(flags, body, channel="chat:lobby", event="score", frm="alice",
                ts=1700000000000, epoch=0x1d2c3b4a5, mid=17):
    named = raw if flags & 4 else name
    return (bytes([flags]) + u64(ts) + u64(epoch) + u64(mid) + named(channel, 200)
            + named(event, 64) + named(frm, 64) + body)


def cursor(epoch=None, mid=None):
    """make_cursor: kind bit 0 no epoch, bit 1 the largest; bit 2 the
    largest id, bit 3 id 0; else 8 bytes each."""
    kind, out = 0, b""
    if epoch is None:
        kind |= 1
    elif epoch == MAX64:
        kind |= 2
    else:
        out += u64(epoch)
    if mid == MAX64:
        kind |= 4
    elif mid == 0:
        kind |= 8
    else:
        out += u64(mid)
    return bytes([kind]) + out


def item(kind, tap, epoch=None, cur=None, msg=None):
    """kind & 3: 0 gap, 1 skip, 2 or 3 message; bit 2 named SSE event."""
    out = bytes([kind | (8 if epoch is not None else 0) | (16 if cur is not None else 0), tap])
    if epoch is not None:
        out += u64(epoch)
    if cur is not None:
        out += u64(cur)
    if msg is not None:
        event, binary, body = msg
        out += name(event, 64) + bytes([1 if binary else 0, len(body)]) + body + u64(1700000000000)
    return out


def framing_seed(flags, channels, client, items, frame, heartbeat=15, mid=18):
    out = bytes([flags, len(channels) - 1])
    for ch, (e, i) in channels:
        out += name(ch, 200) + cursor(e, i)
    out += name(client, 64)
    out += u64(heartbeat) if flags & 2 else bytes([heartbeat])
    out += bytes([len(items)]) + b"".join(items)
    return out + u64(mid) + frame


def request_seed(flags, url, upgrade=b"", accept=b"", lei=b""):
    return bytes([flags]) + url + b"\n" + upgrade + b"\n" + accept + b"\n" + lei


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    seeds = {
        "encode": {
            "json": encode_seed(0x18, b'{"home":2,"away":[1,2.5e3,"x\\u00e9"],"n":null}'),
            "text": encode_seed(0x39, "h\u00e9llo \"quoted\"\n\ttab\x01".encode()),
            "binary": encode_seed(0x1a, bytes(range(256))),
            "any": encode_seed(0x03, b"not json {"),
            "edges": encode_seed(0x08, b"-0", channel="a" * 200, event="e" * 64,
                                 frm="F_-" * 21 + "x", ts=-(2**63), epoch=MAX64, mid=MAX64),
            "raw_names": encode_seed(0x1c, b"true", channel="x.y~z", event="ev.t:1", frm="c"),
        },
        "framing": {
            "one": framing_seed(0, [("news", (0x1d2c3b4a5, 3))], "alice",
                                [item(6, 0, msg=("score", False, b'{"n":1}'))],
                                b'{"op":"subscribe","channel":"news","since":"k3x9a2bq:17","ref":1}'),
            "gaps": framing_seed(4, [("a", (None, 0)), ("b.c", (0x1d2c3b4a5, MAX64))], "bob",
                                 [item(0, 0), item(1, 1), item(0, 1, epoch=0x7777777, cur=40),
                                  item(3, 0, msg=("m", True, bytes(range(40))))],
                                 b'{"op":"publish","channel":"a","event":"e","data":{"x":[1,2]},"ref":3}'),
            "max": framing_seed(2, [("c%d" % k, (MAX64, MAX64)) for k in range(32)],
                                "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-",
                                [item(0, k, cur=MAX64) for k in range(8)],
                                b'{"op":"subscribe","channel":"c","since":"x:y","ref":9007199254740991}',
                                heartbeat=MAX64),
            "bad_event": framing_seed(0, [("z", (None, 5))], "c", [],
                                      b'{"op":"publish","channel":"z","event":"welcome","data":1,"ref":4}'),
            "hello": framing_seed(0, [("z", (1, 1))], "c", [item(2, 0, msg=("message", False, b'"x"'))],
                                  b'{"op":"hello","binary":"frames","ref":5}'),
            "unsub": framing_seed(0, [("z", (1, 1))], "c", [], b'{"op":"unsubscribe","channel":"z"}'),
            "bad_ref": framing_seed(0, [("z", (1, 1))], "c", [], b'{"op":"subscribe","channel":"z","ref":-1}'),
            "missing": framing_seed(0, [("z", (1, 1))], "c", [], b'{"op":"publish","channel":"z","ref":0}'),
        },
        "request_path": {
            "sse": request_seed(0x02, b"news?since=k3x9a2bq:17&client=alice&presence=1", accept=b"text/event-stream"),
            "list": request_seed(0x04, b"a,b.c,d:e,f~g?transport=longpoll", lei=b"1:2,3,zz:4,5"),
            "ws": request_seed(0x01, b"chat%3Alobby?client=x-_y", upgrade=b"WebSocket"),
            "escaped": request_seed(0x00, b"a%2Cb%00?transport=po%6cl&since=1%2C2&presence=true"),
            "disabled": request_seed(0xe0, b"x?transport=sse"),
            "plus": request_seed(0x00, b"x?client=a+b&since=&transport=ws"),
            "dots": request_seed(0x00, b".,..,...?since=0,0,0"),
        },
        "static_path": {
            "index": b"/",
            "file": b"/examples/chat.html",
            "dotdot": b"/../etc/passwd",
            "encoded": b"/%2e%2e/%2E%2e%2fetc%5cpasswd",
            "nul": b"/index.html%00.png",
            "hidden": b"/.git/config",
            "slashes": b"//a/./b/",
            "double": b"/%252e%252e/x",
        },
    }
    for target, files in seeds.items():
        d = os.path.join(top, target)
        os.makedirs(d, exist_ok=True)
        for fname, data in files.items():
            with open(os.path.join(d, fname), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
