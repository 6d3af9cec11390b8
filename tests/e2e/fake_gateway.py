#!/usr/bin/env python3
"""A stand-in for the gateway binary, for t_harness.py: it takes the
options the test runners pass (--port, --port-file; the rest is ignored),
listens on 127.0.0.1 and writes its port file like anypush, and ends on
SIGTERM the way FAKE_GW_MODE says, so that the runners' checks at stop can
be shown to fail:
  clean   exit status 0, nothing on stderr
  asan    an AddressSanitizer report on stderr, then exit status 0
  exit1   exit status 1
FAKE_GW_COUNT=FILE, FAKE_GW_FAIL_ON=N: the Nth start (counted in FILE)
fails at once as a bind would on a port still held."""

import os
import signal
import socket
import sys


def opt(name, default=None):
    args = sys.argv[1:]
    return args[args.index(name) + 1] if name in args else default


def main():
    # taken by sigtimedwait below, never by the default action
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    count_file = os.environ.get("FAKE_GW_COUNT")
    if count_file:
        try:
            with open(count_file) as f:
                n = int(f.read() or 0) + 1
        except FileNotFoundError:
            n = 1
        with open(count_file, "w") as f:
            f.write(str(n))
        if n == int(os.environ.get("FAKE_GW_FAIL_ON", "0")):
            sys.stderr.write("ERROR: bind 127.0.0.1: Address already in use\n")
            return 1
    mode = os.environ.get("FAKE_GW_MODE", "clean")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(opt("--port", "0"))))
    s.listen(16)
    port_file = opt("--port-file")
    if port_file:
        with open(port_file + ".tmp", "w") as f:
            f.write(f"{s.getsockname()[1]}\n")
        os.rename(port_file + ".tmp", port_file)
    signal.sigtimedwait({signal.SIGTERM, signal.SIGINT}, 60)
    s.close()
    if mode == "asan":
        pid = os.getpid()
        sys.stderr.write(f"=={pid}==ERROR: AddressSanitizer: heap-use-after-free on address "
                         f"0x602000000010 at pc 0x55d0 bp 0x7ffd sp 0x7ffd\n"
                         f"READ of size 8 at 0x602000000010 thread T0\n"
                         f"SUMMARY: AddressSanitizer: heap-use-after-free\n")
        sys.stderr.flush()
        return 0
    if mode == "exit1":
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
