#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_request (tests/fuzz/corpus/request/).

Each seed is a program in the target's encoding (see fuzz_request.c):
a header (history size, age, bytes, channel limit), a byte for the
names, then operations. The seeds reach what random bytes reach slowly:
every transport with 1, 2, 7, 31 and 32 channels and cursors at 0, 1 and
the maximum, plain and with an epoch; the id table's growth at 2,048 and
4,096 subscribers with kills around it; many gapped channels pulled one
item at a time; a channel reclaimed and subscribed to with its old epoch.
"""
import os
import sys

ATTACH, PUBLISH, PULL, DETACH, KILL, TICK, MASS, UNMASS, MUX, ALL = 0, 2, 4, 6, 7, 8, 9, 10, 11, 12
POLL, LONGPOLL, SSE, WS, WSMUX = range(5)


def cur(epoch, idc, bump=1):
    """One cursor byte: epoch 0 none, 1 current, 3 max (2, stale, takes 8
    bytes more); id 0 -> 0, 1 -> 1, 2 -> max, 3 -> last id + bump - 1."""
    b = bytes([epoch | idc << 2 | bump << 4])
    return b + (b"\x12\x34\x56\x78\x9a\xbc\xde\xf1" if epoch == 2 else b"")


def attach(kind, count, first=0, step=0, since=None, flags=0, pull=(0x83, 0xff)):
    out = bytes([ATTACH, kind, flags | (1 if since is not None else 0), first, step])
    if kind != WSMUX:
        out += bytes([count - 1])
        if since is not None:
            out += b"".join(since[i % len(since)] for i in range(count))
    if kind in (POLL, LONGPOLL):
        out += bytes(pull)
    return out


def publish(name, data=b'{"a":1}', flags=0):
    return bytes([PUBLISH, name, flags, len(data)]) + data


def kill_probe(k):
    """A kill of probe k of the target's table (0, 1, 1023, 1024, 2047,
    2048, 2049, 4095, 4096, 4097, 6144, 8192, max)."""
    return bytes([KILL, next(c for c in range(160, 256) if c % 13 == k)])


def pull_all(a=0x83, b=0xff):
    return bytes([ALL, 0, a, b])


def seeds():
    s = {}
    head = bytes([4, 7, 255, 40, 0])
    # every transport, lists of 1, 2, 7, 31, 32 names, cursors 0/1/max
    p = head
    for n in range(8):
        p += publish(n * 5 % 48)
    for kind in (POLL, LONGPOLL, SSE, WS):
        for count in (1, 2, 7, 31, 32):
            for since in ([cur(0, 0)], [cur(0, 1)], [cur(0, 2)], [cur(1, 0)],
                          [cur(1, 1)], [cur(3, 2)], [cur(2, 1)], [cur(1, 3)],
                          None):
                p += attach(kind, count, first=count, step=count % 8, since=since,
                            flags=0x08 * (count % 8))
    p += publish(0, b"text\xc3\xa9", 1) + publish(1, b"\x00\x01\xff", 2)
    p += pull_all() + pull_all(1, 0)
    s["paths"] = p
    # /ws: subscribe with cursors, publish excluded, unsubscribe
    p = head + attach(WSMUX, 0, flags=0x08)
    for c, since in enumerate((cur(0, 0), cur(1, 1), cur(0, 2), cur(2, 0), cur(3, 3))):
        p += bytes([MUX, 1, c, 1, 0, 0]) + since
    p += bytes([MUX, 1, 9, 2, 0, 0])
    p += publish(0, b"1", 0x08 | 0x10 | 0x20) + publish(1) + publish(9)
    p += bytes([PULL, 0, 0, 0x83, 0xff, MUX, 0, 0, 0, 2]) + pull_all()
    s["mux"] = p
    # the id table grows at 2,048 and 4,096: attach 4,224, kill around
    # the growth points, detach everyone, kill again
    p = head + bytes([MASS, 131])
    for probe in (0, 4, 5, 7, 8, 9, 10, 11, 12):
        p += kill_probe(probe)
    p += bytes([UNMASS, 0, MASS, 70, UNMASS, 1])
    for probe in range(13):
        p += kill_probe(probe)
    s["growth"] = p
    # 32 channels gapped at once, pulled one item at a time
    p = bytes([1, 0, 255, 40, 0]) + attach(SSE, 32, since=[cur(0, 2)])
    p += attach(WS, 32, first=1, since=[cur(2, 1)])
    p += attach(LONGPOLL, 32, since=[cur(3, 0)], pull=(0, 0xff))
    for n in range(32):
        p += publish(n, b"[1,2]") + publish(n, b"[3]")
    for _ in range(6):
        p += bytes([PULL, 0, 0, 0, 0xff, PULL, 0, 1, 1, 0xff, PULL, 0, 2, 1, 0xff])
    p += pull_all() + pull_all(0xbf)
    s["gaps"] = p
    # a channel's history ages out, it is reclaimed (a new epoch), and a
    # subscriber comes back with the old epoch
    p = bytes([8, 0, 255, 40, 0]) + publish(3) + publish(3)
    p += attach(SSE, 1, first=3, since=[cur(1, 3)])
    p += bytes([DETACH, 0, 0, TICK, 30, TICK, 30]) + publish(3)
    p += attach(POLL, 1, first=3, since=[cur(2, 1)])
    p += attach(LONGPOLL, 1, first=3, since=[cur(0, 3, 3)], pull=(0, 0xff))
    p += bytes([TICK, 50, PULL, 0, 0, 0x83, 0xff])
    s["reclaim"] = p
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "request")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
