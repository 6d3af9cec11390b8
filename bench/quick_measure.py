#!/usr/bin/env python3
"""A quick, honest measurement (the full suite is bench/'s own work):
server CPU per delivered message and RSS per idle connection, for N SSE and
N WebSocket subscribers on one channel, read from /proc/PID of the gateway.
Usage: bench/quick_measure.py [N] [MESSAGES]   (loopback only)"""
import asyncio, os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from gwlib import Gateway, SSEClient, WSClient, Publisher, payload  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def proc(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
    return cpu, rss * 1024


async def one(kind, n, msgs):
    cls = SSEClient if kind == "sse" else WSClient
    with Gateway("--history-size", str(msgs + 10)) as gw:
        await asyncio.sleep(0.3)
        _, rss0 = proc(gw.pid)
        clients = [cls(gw, "bench") for _ in range(n)]
        for i in range(0, n, 100):
            await asyncio.gather(*(c.start() for c in clients[i:i + 100]))
        await asyncio.sleep(1.0)
        cpu0, rss1 = proc(gw.pid)
        pub = Publisher(gw)
        t0 = time.monotonic()
        for i in range(1, msgs + 1):
            await pub.apublish("bench", payload(i, size=100))
            await asyncio.sleep(0.01)  # a steady 100/s, not a flood
        await asyncio.gather(*(c.wait_count(msgs, 60) for c in clients))
        wall = time.monotonic() - t0
        cpu1, _ = proc(gw.pid)
        pub.close()
        for c in clients:
            c.abort()
        deliveries = n * msgs
        print(f"{kind:4} {n} subscribers, {msgs} msgs: "
              f"{(cpu1 - cpu0) * 1e6 / deliveries:.2f} us server CPU per delivery "
              f"(incl. {msgs} publishes), RSS per idle connection "
              f"{(rss1 - rss0) / n / 1024:.1f} KiB, wall {wall:.1f} s")


async def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    msgs = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    for kind in ("sse", "ws"):
        await one(kind, n, msgs)

asyncio.run(main())
