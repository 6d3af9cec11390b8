#!/usr/bin/env python3
"""scripts/run-demo tells the address to open with the port the gateway
really listens on (it printed http://localhost:8080/ whatever --port said).

run-demo is copied into a scratch tree whose scripts/setup and
scripts/build do nothing and whose src/anypush is the binary under test,
so no package is installed and the build tree is not touched. Prints TAP;
talks to 127.0.0.1 only; bounded by 10 s per run."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
BIN = os.environ.get("ANYPUSH_BIN") or str(TOP / "src" / "anypush")
WEB = os.environ.get("ANYPUSH_WEB") or str(TOP / "web")

_n = 0
_failed = 0


def ok(cond, name, diag=None):
    global _n, _failed
    _n += 1
    print(f"{'ok' if cond else 'not ok'} {_n} - {name}", flush=True)
    if not cond:
        _failed += 1
        for line in (diag or "").splitlines()[-20:]:
            print(f"# {line}")
    return cond


def scratch_tree(d):
    (d / "scripts").mkdir()
    (d / "src").mkdir()
    shutil.copy(TOP / "scripts" / "run-demo", d / "scripts" / "run-demo")
    for stub in ("setup", "build"):
        p = d / "scripts" / stub
        p.write_text("#!/bin/sh\nexit 0\n")
        p.chmod(0o755)
    os.symlink(BIN, d / "src" / "anypush")
    os.symlink(WEB, d / "web")


def run_demo(d, args):
    """run-demo ARGS until the gateway writes its port; (port, stderr)"""
    port_file = d / "port"
    if port_file.exists():
        port_file.unlink()
    log = d / "demo.log"
    with open(log, "wb") as f:
        p = subprocess.Popen(["sh", str(d / "scripts" / "run-demo"), "--bind", "127.0.0.1",
                              "--port-file", str(port_file), *args],
                             stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    port = None
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None:
            txt = port_file.read_text().strip() if port_file.exists() else ""
            if txt.isdigit() and f"port {txt}" in log.read_text():
                port = int(txt)
                break
            time.sleep(0.05)
    finally:
        if p.poll() is None:  # run-demo execs the gateway: this pid is it
            os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=5)
    return port, log.read_text()


def main():
    print("1..4")
    with tempfile.TemporaryDirectory(prefix="anypush-demo-") as tmp:
        d = Path(tmp)
        scratch_tree(d)
        for args in (["--port", "0"], ["--port=0"]):
            port, out = run_demo(d, args)
            ok(port is not None, f"run-demo {' '.join(args)}: the gateway starts", out)
            urls = re.findall(r"https?://[^\s/]+:\d+/", out)
            want = f"http://localhost:{port}/"
            ok(port is not None and urls == [want],
               f"run-demo {' '.join(args)}: the one address it tells is {want}",
               f"addresses told: {urls}\n{out}")
    return 1 if _failed else 0


if __name__ == "__main__":
    sys.exit(main())
