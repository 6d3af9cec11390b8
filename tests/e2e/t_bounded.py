#!/usr/bin/env python3
"""Bounded under abuse, with the bus's own numbers: a flood of pollers with
fresh client ids stays within --max-pollers (and the process's memory with
it), and --history-memory counts all the bytes history holds, binary copies
and cached poll replies included. Stream subscribers lose nothing."""

import asyncio
import base64
import http.client
import json
import os
import threading
import time

from gwlib import (Gateway, Publisher, SSEClient, WSClient, check, diag, expect_eq, ids_problem, summarize_ids,
                   info, metric_sum, metrics, rss_kb, run)

FLOOD_CHANNELS = [f"f{i}" for i in range(32)]   # the most one poll may list


def flood_polls(port, first, count, deadline):
    """count polls of all FLOOD_CHANNELS, each with a new client id, over one
    keep-alive connection. Returns how many got 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    path = "/channels/" + ",".join(FLOOD_CHANNELS) + "?transport=poll&client="
    good = 0
    try:
        for i in range(first, first + count):
            if time.monotonic() > deadline:
                break
            conn.request("GET", f"{path}flood{i}")
            r = conn.getresponse()
            r.read()
            good += r.status == 200
    finally:
        conn.close()
    return good


async def test_poller_flood():
    "4000 polls with fresh client ids on 32 channels: pollers stay within --max-pollers, RSS flat, streams lossless"
    cap, workers, per_worker, n_msgs = 200, 4, 1000, 100
    with Gateway("--max-pollers", cap) as gw:
        sse, ws = SSEClient(gw, "victim"), WSClient(gw, "victim")
        await sse.start()
        await ws.start()
        rss0 = rss_kb(gw.pid)
        deadline = time.monotonic() + 20
        results = [0] * workers

        def worker(k):
            results[k] = flood_polls(gw.port, k * per_worker, per_worker, deadline)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(workers)]
        for t in threads:
            t.start()
        pub = Publisher(gw)
        try:
            # the publishes run while the flood does, at about 50 a second
            await pub.apublish_many("victim", [{"n": i} for i in range(n_msgs)], interval=0.02)
        finally:
            pub.close()
        for t in threads:
            await asyncio.to_thread(t.join, 25)
        expect_eq(sum(results), workers * per_worker, "flood polls answered 200")
        counted = sum(info(gw, ch)["subscribers"]["poll"] for ch in FLOOD_CHANNELS)
        grew = rss_kb(gw.pid) - rss0
        diag(f"pollers counted on the flood channels: {counted}; RSS grew by {grew} KiB")
        check(counted <= cap, f"info counts {counted} pollers on the flood channels, cap {cap}")
        check(counted >= cap // 2, f"info counts only {counted} pollers: the newest should be kept")
        # 128000 (channel, client) entries were remembered before the cap,
        # about 20 MB; 200 entries are a few KB
        if os.environ.get("ANYPUSH_SANITIZERS"):
            # ASan's quarantine keeps freed memory: RSS says nothing here
            diag("sanitizer build: RSS growth not asserted")
        else:
            check(grew < 6 * 1024, f"RSS grew by {grew} KiB during the flood")
        pollers = metric_sum(metrics(gw), "anypush_pollers")
        check(pollers is not None, "anypush_pollers is missing from /metrics")
        check(pollers <= cap, f"anypush_pollers {pollers} > --max-pollers {cap}")
        want = list(range(1, n_msgs + 1))
        for c in (sse, ws):
            await c.wait_count(n_msgs, 10)
            prob = ids_problem(c.ids(), want)
            check(prob is None, f"{c.kind} bystander: {prob}")
            check(not c.done, f"{c.kind} bystander was disconnected: {c.end_reason}")


def publish_and_poll_binary(port, ch, count, size):
    """Publish count binary messages of size bytes, polling each one right
    after, alone, so the gateway builds its cached one-message reply. Returns
    {id: bytes the gateway must hold for it while it is in history}."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    held = {}
    try:
        for i in range(count):
            raw = bytes((i + k) % 251 for k in range(size))
            conn.request("POST", f"/channels/{ch}", body=raw,
                         headers={"Content-Type": "application/octet-stream"})
            r = conn.getresponse()
            body = r.read()
            check(r.status == 201, f"publish #{i + 1}: {r.status} {body[:200]!r}")
            mid = json.loads(body)["id"]
            conn.request("GET", f"/channels/{ch}?transport=poll&since={mid - 1}")
            r = conn.getresponse()
            reply = r.read()
            check(r.status == 200, f"poll of #{mid}: {r.status} {reply[:200]!r}")
            head = b'{"messages":['
            check(reply.startswith(head), f"poll of #{mid}: {reply[:100]!r}")
            env = reply[len(head):reply.rindex(b'],"next":')]
            check(json.loads(env)["id"] == mid, f"poll of #{mid}: one message, that one: {reply[:200]!r}")
            data = b'"' + base64.b64encode(raw) + b'"'
            check(data in env and b'"binary":true' in env, f"binary envelope of #{mid}: {env[:200]!r}")
            # the /ws binary-frame form: data null, "binary":"frame"
            meta = env.replace(b'"data":' + data, b'"data":null').replace(b'"binary":true',
                                                                         b'"binary":"frame"')
            held[mid] = len(env) + len(meta) + len(raw) + len(reply)
    finally:
        conn.close()
    return held


async def test_history_memory_counts_all():
    "binary messages polled one by one: what history holds stays within --history-memory, and /metrics says so"
    budget, count, size = 65536, 60, 2000
    with Gateway("--history-memory", budget, "--max-message", 8192) as gw:
        sse, ws = SSEClient(gw, "bin"), WSClient(gw, "bin")
        await sse.start()
        await ws.start()
        held = await asyncio.to_thread(publish_and_poll_binary, gw.port, "bin", count, size)
        inf = info(gw, "bin")
        kept = range(inf["oldest_id"], inf["last_id"] + 1)
        expect_eq(len(kept), inf["retained"], "retained count")
        retained_bytes = metric_sum(metrics(gw), "anypush_retained_bytes")
        total = sum(held[i] for i in kept)
        diag(f"{len(kept)} of {count} messages kept; they hold at least {total} bytes; "
             f"anypush_retained_bytes {retained_bytes:.0f}; budget {budget}")
        check(1 < len(kept) < count, f"{len(kept)} messages kept: the budget should evict some, not all")
        check(total <= budget, f"history holds at least {total} bytes, over --history-memory {budget}")
        check(retained_bytes <= budget, f"anypush_retained_bytes {retained_bytes} > {budget}")
        check(retained_bytes >= total,
              f"anypush_retained_bytes {retained_bytes} < {total}, the bytes the kept messages hold")
        # a subscriber that falls more than the ~7 kept messages behind
        # (a loaded machine) is told of a gap: that is the promise, so
        # count every id as delivered once or reported lost, in order
        for c in (sse, ws):
            await c.wait_for(lambda: count in c.ids(), 10, f"message {count}")
            lost = [i for g in c.gaps for i in range(int(g["last_seen"]) + 1, int(g["cursor"]) + 1)]
            prob = ids_problem(sorted(c.ids() + lost), list(range(1, count + 1)))
            check(prob is None, f"{c.kind} subscriber: delivered plus reported lost: {prob}")
            check(c.ids() == sorted(c.ids()), f"{c.kind} subscriber: out of order {summarize_ids(c.ids())}")
            if c.gaps:
                diag(f"{c.kind} fell behind the small history: gaps {c.gaps}")


if __name__ == "__main__":
    raise SystemExit(run([
        test_poller_flood, test_history_memory_counts_all,
    ], timeout=40, budget=90))
