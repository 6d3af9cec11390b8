#!/usr/bin/env python3
"""Every transport at once on a threaded gateway (--http-threads 2, --threads 3): many
subscribers, publishers on HTTP and on /ws, and subscribers that drop
their connection and resume from their cursor while messages flow.

Publishes from three HTTP connections (served by both libmicrohttpd
workers) and two /ws connections (the lws service thread) reach the bus
concurrently, while the watcher thread ticks and the subscribers' waits
and wakes cross those threads. Every subscriber, however it listens,
must get exactly ids 1..N of each of its channels, in order, with the
payload that id was acknowledged with, and no gap; the gateway must then
exit 0. Meanwhile the config file changes and SIGHUP reloads it every
0.1 s. This is the gateway-level scenario of the ThreadSanitizer pass
(scripts/test --tsan), where a data race ends the gateway at once
(halt_on_error=1) and so fails the test."""

import asyncio
import os
import random
import signal
import tempfile

from gwlib import (Gateway, LongPollClient, MuxClient, PollClient, Publisher, SSEClient, WSClient,
                   check, diag, epochs_problem, expect_eq, ids_problem, info, log_dir, run)

CHANNELS = ["load-a", "load-b", "load-c"]
HTTP_PUBLISHERS = 3
MUX_PUBLISHERS = 2
PER_PUBLISHER = 200
WAIT = 40            # seconds for every subscriber to catch up (TSan is slow)


def http_publish(gw, k, acks):
    """PER_PUBLISHER publishes on one keep-alive connection (a thread)."""
    rnd = random.Random(k)
    pub = Publisher(gw, timeout=15)
    try:
        for i in range(PER_PUBLISHER):
            ch = rnd.choice(CHANNELS)
            data = {"p": f"http{k}", "i": i, "pad": "x" * rnd.randrange(0, 400)}
            st, body = pub.publish(ch, data)
            check(st == 201, f"http{k} publish {i} to {ch}: {st} {body!r}")
            acks.append((ch, body["id"], data))
    finally:
        pub.close()


async def mux_publish(m, k, acks):
    rnd = random.Random(100 + k)
    for i in range(PER_PUBLISHER):
        ch = rnd.choice(CHANNELS)
        data = {"p": f"mux{k}", "i": i}
        f = await m.publish(ch, data)
        acks.append((ch, f["id"], data))


async def churn(gw, kind, ch, stop, want, log, conns):
    """Connect at the cursor, read a little, drop the connection, again."""
    rnd = random.Random(f"{kind}{ch}")
    cursor = "0"
    while True:
        conns.append(ch)
        c = (SSEClient if kind == "sse" else WSClient)(gw, ch, since=cursor)
        await c.start(timeout=10)
        finishing = stop.is_set()
        if finishing:
            await c.wait_for(lambda: len(c.messages) + len(log) >= want[ch], WAIT,
                             "the rest of the messages")
        else:
            await asyncio.sleep(rnd.uniform(0.02, 0.2))
        c.abort()
        check(c.problems == [] and c.gaps == [],
              f"churning {kind} on {ch}: problems {c.problems[:3]}, gaps {c.gaps[:3]}")
        log.extend(c.messages)
        if c.cursor is not None:
            cursor = c.cursor
        if finishing:
            return


# Two versions of the config file, swapped and reloaded (SIGHUP) while the
# load runs: the live options change under the threads that read them
# (heartbeat, max_message, outq_limit through config_live; history_age and
# presence_window through bus_set_limits), and max_channels, which needs a
# restart, makes every reload leave a warning in the log.
CONFIGS = [
    "heartbeat = 1\nmax_message = 65536\noutq_limit = 1048576\n"
    "history_age = 600\npresence_window = 30\nmax_channels = 1000\n",
    "heartbeat = 2\nmax_message = 65535\noutq_limit = 1048575\n"
    "history_age = 599\npresence_window = 29\nmax_channels = 999\n",
]


async def reload_while(gw, path, done):
    n = 0
    while not done.is_set():
        n += 1
        with open(path + ".tmp", "w") as f:
            f.write(CONFIGS[n % 2])
        os.replace(path + ".tmp", path)
        gw.proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.1)
    return n


def check_stream(what, messages, channels, want, payloads, epochs):
    for ch in channels:
        got = [m for m in messages if m.get("channel") == ch]
        prob = ids_problem([m.get("id") for m in got], list(range(1, want[ch] + 1)))
        check(prob is None, f"{what}, {ch}: {prob}")
        for m in got:
            if m.get("data") != payloads[(ch, m["id"])]:
                raise AssertionError(f"{what}, {ch} id {m['id']}: {m.get('data')!r}, acked "
                                     f"{payloads[(ch, m['id'])]!r}")
    prob = epochs_problem(messages, epochs)
    check(prob is None, f"{what}: {prob}")


async def test_every_transport_under_load():
    "--http-threads 2 --threads 3: 37 subscribers on every transport, 5 publishers, 6 resuming clients, SIGHUPs: all ids, in order, once"
    fd, conf = tempfile.mkstemp(prefix="threads-load-", suffix=".conf", dir=log_dir())
    os.write(fd, CONFIGS[0].encode())
    os.close(fd)
    try:
        with Gateway("--http-threads", 2, "--threads", 3, "--history-size", 10000, "--config", conf) as gw:
            subs = []
            for ch in CHANNELS:
                subs += [SSEClient(gw, ch, since="0") for _ in range(3)]
                subs += [LongPollClient(gw, ch, timeout=10) for _ in range(3)]
                subs += [PollClient(gw, ch, since="0", interval=0.05) for _ in range(2)]
                subs += [WSClient(gw, ch, since="0") for _ in range(3)]
            every = ",".join(CHANNELS)
            subs += [SSEClient(gw, every, since="0,0,0") for _ in range(2)]
            # a long poll is subscribed at its first answer: it learns the
            # tail (0) with one short poll, as nothing is published yet
            await asyncio.gather(*(s.start(timeout=10) for s in subs))
            readers = [MuxClient(gw, client=f"reader{k}") for k in range(2)]
            writers = [MuxClient(gw, client=f"writer{k}") for k in range(MUX_PUBLISHERS)]
            for m in readers + writers:
                await m.start(timeout=10)
            for m in readers:
                for ch in CHANNELS:
                    await m.subscribe(ch, since="0")

            stop = asyncio.Event()
            want = {}    # messages per channel, once all are acknowledged
            logs = {(kind, ch): [] for kind in ("sse", "ws") for ch in CHANNELS}
            conns = []
            churners = [asyncio.create_task(churn(gw, kind, ch, stop, want, log, conns))
                        for (kind, ch), log in logs.items()]
            acks = []
            published = asyncio.Event()
            reloader = asyncio.create_task(reload_while(gw, conf, published))
            await asyncio.gather(
                *(asyncio.to_thread(http_publish, gw, k, acks) for k in range(HTTP_PUBLISHERS)),
                *(mux_publish(m, k, acks) for k, m in enumerate(writers)))
            published.set()
            reloads = await reloader

            want.update({ch: sum(1 for c, _, _ in acks if c == ch) for ch in CHANNELS})
            payloads = {(ch, mid): data for ch, mid, data in acks}
            for ch in CHANNELS:
                prob = ids_problem(sorted(mid for c, mid, _ in acks if c == ch),
                                   list(range(1, want[ch] + 1)))
                check(prob is None, f"acked ids on {ch}: {prob}")
            epochs = {ch: info(gw, ch)["epoch"] for ch in CHANNELS}
            stop.set()

            for s in subs:
                chans = s.ch.split(",")
                await s.wait_for(lambda: len(s.messages) >= sum(want[c] for c in chans), WAIT,
                                 "every message")
            for m in readers:
                await m.wait_for(lambda: len(m.messages) >= sum(want.values()), WAIT, "every message")
            await asyncio.gather(*churners)
            await asyncio.sleep(0.2)  # anything extra would show up by now

            for s in subs:
                what = f"{s.kind} on {s.ch}"
                check_stream(what, s.messages, s.ch.split(","), want, payloads, epochs)
                expect_eq((s.gaps, s.problems), ([], []), f"{what}: gaps and problems")
            for m in readers:
                check_stream(f"/ws {m.client_id}", m.messages, CHANNELS, want, payloads, epochs)
                expect_eq((m.gaps, m.problems, m.errors), ([], [], []), f"/ws {m.client_id}: gaps, problems, errors")
            for (kind, ch), log in logs.items():
                check_stream(f"resuming {kind} on {ch}", log, [ch], want, payloads, epochs)
            diag(f"{sum(want.values())} messages ({want}) to {len(subs) + len(readers)} subscribers "
                 f"and {len(logs)} resuming ones ({len(conns)} connections), {reloads} reloads")
            with open(gw.log_path) as f:
                warned = f.read().count("max-channels changed in the file; needs a restart")
            check(warned >= 1, f"{reloads} SIGHUPs and no reload in the gateway log")
            for m in readers + writers:
                await m.close()
    finally:
        os.unlink(conf)


if __name__ == "__main__":
    raise SystemExit(run([test_every_transport_under_load], budget=110, timeout=100))
