#!/usr/bin/env python3
"""Two gateway nodes on one Redis behind a load balancer, configured with
the sample files of docs/scaling.md: docs/scaling/nginx-lb.conf (Debian's
nginx) and docs/scaling/haproxy.cfg (Debian's haproxy), with only their
ports replaced. A client of each transport through the balancer, with no
sticky sessions, gets every message exactly once and in order while one
node is killed (SIGKILL) mid-stream: the clients it held come back through
the balancer, land on the other node and resume with their cursors; the
publisher retries what the dead node left unanswered with the same
Idempotency-Key. redis-server, nginx and haproxy missing fail (scripts/setup
installs them), they are never skipped."""

import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from gwlib import (REPO, Endpoint, Gateway, LongPollClient, PollClient, SSEClient, WSClient, check,
                   diag, expect_eq, ids_problem, metrics, request, run)
from t_redis import RedisServer

NGINX_CONF = REPO / "docs" / "scaling" / "nginx-lb.conf"
HAPROXY_CONF = REPO / "docs" / "scaling" / "haproxy.cfg"
N = 60          # messages published through the balancer
KILL_AT = 25    # node killed after this many
PER_TRANSPORT = 3

# what the sample files say, and how many times: a change the test would
# no longer follow fails here, loudly
NGINX_NODES = ("server 127.0.0.1:8081 ", "server 127.0.0.1:8082 ", 2)
NGINX_LISTEN = ("listen 8080;", 1)
HAPROXY_NODES = ("server n1 127.0.0.1:8081", "server n2 127.0.0.1:8082", 2)
HAPROXY_BIND = ("bind :8080", 1)

NGINX_MAIN = """\
# written by tests/e2e/t_redis_lb.py: nginx's main context around
# docs/scaling/nginx-lb.conf, all in {d}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{
    worker_connections 1024;
}}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/lb.conf;
}}
"""


def _replace(text, what, new, path):
    old, count = what
    got = text.count(old)
    check(got == count, f"{path} has {old!r} {got} times, the test expects {count}: "
                        f"update tests/e2e/t_redis_lb.py with the file")
    return text.replace(old, new)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Balancer:
    """nginx or haproxy on 127.0.0.1:.port in front of two nodes, with the
    sample configuration; stopped by pid."""

    def __init__(self, kind, node_ports):
        self.kind = kind
        self.dir = Path(tempfile.mkdtemp(prefix=f"anypush-lb-{kind}-"))
        os.chmod(self.dir, 0o755)  # nginx's workers run as nobody under root
        self.proc = None
        self.port = None
        p1, p2 = node_ports
        for attempt in range(3):
            self.port = _free_port()
            if kind == "nginx":
                exe = shutil.which("nginx") or "/usr/sbin/nginx"
                check(os.access(exe, os.X_OK), "nginx is not installed (scripts/setup installs it)")
                text = NGINX_CONF.read_text()
                a, b, n = NGINX_NODES
                text = _replace(text, (a, n), f"server 127.0.0.1:{p1} ", NGINX_CONF)
                text = _replace(text, (b, n), f"server 127.0.0.1:{p2} ", NGINX_CONF)
                text = _replace(text, NGINX_LISTEN, f"listen 127.0.0.1:{self.port};", NGINX_CONF)
                (self.dir / "lb.conf").write_text(text)
                (self.dir / "nginx.conf").write_text(NGINX_MAIN.format(d=self.dir))
                cmd = [exe, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
                       "-e", str(self.dir / "error.log")]
            else:
                exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
                check(os.access(exe, os.X_OK), "haproxy is not installed (scripts/setup installs it)")
                text = HAPROXY_CONF.read_text()
                a, b, n = HAPROXY_NODES
                text = _replace(text, (a, n), f"server n1 127.0.0.1:{p1}", HAPROXY_CONF)
                text = _replace(text, (b, n), f"server n2 127.0.0.1:{p2}", HAPROXY_CONF)
                text = _replace(text, HAPROXY_BIND, f"bind 127.0.0.1:{self.port}", HAPROXY_CONF)
                (self.dir / "haproxy.cfg").write_text(text)
                cmd = [exe, "-db", "-f", str(self.dir / "haproxy.cfg")]
            with open(self.dir / "stderr.log", "ab") as err:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
            if self._wait_listening(10.0):
                return
            self.stop()  # most likely the port was taken meanwhile
        raise AssertionError(f"{kind} did not start: {self.log_tail()}")

    def _wait_listening(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def log_tail(self, n=20):
        out = []
        for name in ("stderr.log", "error.log"):
            try:
                out += (self.dir / name).read_text(errors="replace").splitlines()[-n:]
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        """SIGTERM (nginx's workers leave with their master), then SIGKILL"""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5.0)
        self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


async def _quiet_start(c):
    """A client that fails to start (its node died under it) is resumed by
    its Resuming; what it received is checked there."""
    try:
        await c.start(timeout=20)
    except AssertionError:
        pass


class Resuming:
    """One logical subscriber through the balancer: when its connection
    ends (its node was killed, the balancer answered 502), it comes back
    with the cursor of the last message it processed, as a client library
    does. Its ids are those of every connection, in order."""

    def __init__(self, cls, ep, ch):
        self.cls, self.ep, self.ch = cls, ep, ch
        self.parts = []
        self.resumes = 0
        self.cursor = "0"

    def _open(self):
        c = self.cls(self.ep, self.ch, since=self.cursor)
        self.parts.append(c)
        asyncio.ensure_future(_quiet_start(c))

    def ids(self):
        return [i for c in self.parts for i in c.ids()]

    def gaps(self):
        return [g for c in self.parts for g in c.gaps]

    async def run_until(self, n, timeout):
        """keep it connected until it has n messages"""
        if not self.parts:
            self._open()
        deadline = time.monotonic() + timeout
        while len(self.ids()) < n and time.monotonic() < deadline:
            cur = self.parts[-1]
            if cur.done:
                self.cursor = cur.cursor if cur.cursor is not None else self.cursor
                self.resumes += 1
                await asyncio.sleep(0.1)  # as a client backs off
                self._open()
            await asyncio.sleep(0.02)
        return len(self.ids()) >= n

    def close(self):
        for c in self.parts:
            c.abort()

    def describe(self):
        return f"{len(self.parts)} connections: " + "; ".join(c.describe() for c in self.parts)


def publish_keyed(ep, ch, i, deadline):
    """Publish {"n": i} with Idempotency-Key lb-i until a node answers 201:
    a publish whose node died unanswered (502, a reset) may have been
    stored, and the key makes the retry safe. Returns (id, tries)."""
    body = f'{{"n":{i}}}'.encode()
    hdrs = {"Content-Type": "application/json", "Idempotency-Key": f"lb-{i}"}
    tries = 0
    while True:
        tries += 1
        try:
            st, _, resp = request(ep, "POST", f"/channels/{ch}", body=body, headers=hdrs, timeout=5.0)
            if st == 201:
                return json.loads(resp)["id"], tries
            check(st in (502, 503, 504), f"publish {i}: {st} {resp[:200]!r}")
        except (OSError, http.client.HTTPException):
            pass
        check(time.monotonic() < deadline, f"publish {i}: no 201 after {tries} tries")
        time.sleep(0.1)


def held_by(gw):
    """{transport: subscribers} a node holds, from its /metrics"""
    out = {}
    for k, v in metrics(gw).items():
        if k.startswith("anypush_subscribers{"):
            for tr in ("longpoll", "sse", "ws"):
                if f'transport="{tr}"' in k:
                    out[tr] = out.get(tr, 0) + int(v)
    return out


CLIENTS = {"poll": PollClient, "longpoll": LongPollClient, "sse": SSEClient, "ws": WSClient}


async def node_killed_behind(kind):
    with RedisServer() as r, \
            Gateway("--redis", r.url(), check_exit=False, name="node-a") as a, \
            Gateway("--redis", r.url(), check_exit=False, name="node-b") as b, \
            Balancer(kind, (a.port, b.port)) as lb:
        ep = Endpoint(lb.port)
        ch = f"lb-{kind}"
        deadline = time.monotonic() + 60
        # the first messages are in history before anyone subscribes, so a
        # client of every transport is subscribed once it has them
        got = [publish_keyed(ep, ch, i, deadline) for i in range(1, 6)]
        subs = {f"{k}{j}": Resuming(cls, ep, ch) for k, cls in CLIENTS.items() for j in range(PER_TRANSPORT)}
        for name, s in subs.items():
            check(await s.run_until(5, 20), f"{name} through {kind}: not subscribed: {s.describe()}")
        # kill the node that holds a client of each held transport (with
        # least_conn both do, unless the balancer put them all on one)
        held = {gw: held_by(gw) for gw in (a, b)}
        victim = next((gw for gw in (a, b) if all(held[gw].get(t, 0) for t in ("longpoll", "sse", "ws"))),
                      None)
        check(victim is not None, f"no node holds a client of every transport: A {held[a]}, B {held[b]}")
        tasks = [asyncio.ensure_future(s.run_until(N, 60)) for s in subs.values()]
        tries = 0
        for i in range(6, N + 1):
            if i == KILL_AT + 1:
                victim.signal(signal.SIGKILL)
                expect_eq(victim.wait_exit(5), -signal.SIGKILL, "the node killed")
            mid, t = await asyncio.to_thread(publish_keyed, ep, ch, i, deadline)
            got.append((mid, t))
            tries += t - 1
            await asyncio.sleep(0.01)
        expect_eq([g[0] for g in got], list(range(1, N + 1)), "ids of the publishes through the balancer")
        await asyncio.gather(*tasks)
        await asyncio.sleep(0.3)  # anything extra would show up now
        resumed = 0
        for name, s in subs.items():
            problem = ids_problem(s.ids(), list(range(1, N + 1)))
            check(problem is None, f"{name} through {kind}: {problem} ({s.describe()})")
            check(not s.gaps(), f"{name} through {kind}: gaps {s.gaps()}")
            resumed += s.resumes > 0 and not name.startswith("poll")
            s.close()
        check(resumed > 0, f"no held client through {kind} had to resume: was the killed node in use?")
        diag(f"{kind}: {resumed} held clients resumed on the other node, {tries} publishes retried")


async def test_nginx_node_killed():
    "docs/scaling/nginx-lb.conf: poll, longpoll, sse, ws clients get 1..60 exactly once while a node is killed"
    await node_killed_behind("nginx")


async def test_haproxy_node_killed():
    "docs/scaling/haproxy.cfg: poll, longpoll, sse, ws clients get 1..60 exactly once while a node is killed"
    await node_killed_behind("haproxy")


if __name__ == "__main__":
    run([test_nginx_node_killed, test_haproxy_node_killed], budget=170, timeout=80)
