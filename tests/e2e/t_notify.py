#!/usr/bin/env python3
"""systemd's Type=notify without systemd: a unix datagram socket named by
NOTIFY_SOCKET, as the service manager sets it. The gateway must say
READY=1 only once its port accepts connections, STOPPING=1 when SIGTERM
starts the orderly stop, and run on when the socket is not there."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from gwlib import Gateway, binary_path, check, expect_eq, log_dir, publish, run


def notify_socket():
    """A datagram socket for the gateway to notify; (socket, path, dir)."""
    d = tempfile.mkdtemp(prefix="ntf-", dir="/tmp")  # sun_path: 108 bytes at most
    path = os.path.join(d, "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    return s, path, d


def close_socket(s, path, d):
    s.close()
    shutil.rmtree(d, ignore_errors=True)


def receive(s, timeout):
    """The fields of the next notification, {name: value}, or None."""
    s.settimeout(timeout)
    try:
        data = s.recv(4096)
    except socket.timeout:
        return None
    return dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)


async def test_ready_after_listening():
    "READY=1 comes once the port accepts connections, and only then"
    s, path, d = notify_socket()
    work = tempfile.mkdtemp(prefix="ntf-", dir=log_dir())
    port_file = os.path.join(work, "port")
    env = dict(os.environ, NOTIFY_SOCKET=path)
    proc = subprocess.Popen([binary_path(), "--bind", "127.0.0.1", "--port", "0",
                             "--port-file", port_file, "--log-level", "warn"],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        fields = receive(s, 10)
        check(fields is not None, "no notification within 10 s of starting the gateway")
        expect_eq(fields.get("READY"), "1", f"first notification {fields}")
        # at READY the port is written and accepting: no waiting allowed here
        with open(port_file) as f:
            port = int(f.read())
        c = socket.create_connection(("127.0.0.1", port), timeout=2)
        c.sendall(b"GET /channels/n/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = c.recv(64)
        c.close()
        check(head.startswith(b"HTTP/1.1 200"), f"/info right after READY answered {head!r}")
        proc.send_signal(signal.SIGTERM)
        fields = receive(s, 10)
        check(fields is not None, "no notification within 10 s of SIGTERM")
        expect_eq(fields.get("STOPPING"), "1", f"notification after SIGTERM {fields}")
        expect_eq(proc.wait(10), 0, "exit status after SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        close_socket(s, path, d)
        shutil.rmtree(work, ignore_errors=True)


async def test_stopping_on_sigterm():
    "STOPPING=1 at SIGTERM after serving, then exit 0; nothing in between"
    s, path, d = notify_socket()
    os.environ["NOTIFY_SOCKET"] = path
    try:
        gw = Gateway()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        fields = receive(s, 10)
        expect_eq(fields and fields.get("READY"), "1", f"first notification {fields}")
        st, _ = publish(gw, "n", {"x": 1})
        expect_eq(st, 201, "publish status")
        extra = receive(s, 0.3)
        check(extra is None, f"unexpected notification while running: {extra}")
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        fields = receive(s, 10)
        check(fields is not None, "no STOPPING=1 within 10 s of SIGTERM")
        expect_eq(fields.get("STOPPING"), "1", f"notification after SIGTERM {fields}")
        check(time.monotonic() - t0 < 5, "STOPPING=1 took more than 5 s")
        expect_eq(gw.stop(), 0, "exit status")
    finally:
        close_socket(s, path, d)


async def test_no_listener():
    "NOTIFY_SOCKET naming no socket: the gateway serves and stops as usual"
    d = tempfile.mkdtemp(prefix="ntf-", dir="/tmp")
    os.environ["NOTIFY_SOCKET"] = os.path.join(d, "absent")
    try:
        gw = Gateway()
    finally:
        del os.environ["NOTIFY_SOCKET"]
        os.rmdir(d)
    with gw:
        st, _ = publish(gw, "n", {"x": 1})
        expect_eq(st, 201, "publish status")


if __name__ == "__main__":
    raise SystemExit(run([test_ready_after_listening, test_stopping_on_sigterm, test_no_listener],
                         budget=50, timeout=20))
