"""tlsfront: Debian's nginx in front of a gateway, terminating TLS, with the
configuration of docs/nginx-anypush.conf, so that the tests run what the
documentation tells people to run.

Only the ports and the certificate paths of that file are replaced; each
replacement must match exactly as often as expected, so a change to the
documented file that the tests would no longer follow fails loudly. nginx
runs unprivileged-style with its own prefix, pid file, logs and temporary
folders, on 127.0.0.1 with an ephemeral port, with a self-signed
certificate made at start with `openssl req -x509`; it is stopped by pid,
and gets SIGTERM if the process that started it dies.

From Python (tests/e2e):

    with Gateway() as gw, NginxFront(gw.port) as front:
        sub = SSEClient(front.endpoint, "ch")     # https:// through nginx

From another language (tests/browser/t_tls.js): `python3 tlsfront.py
GATEWAY_PORT` prints "port N" and "dir D" (its prefix, with access.log) once
nginx listens, and stops nginx when its standard input ends (or after 300 s
at most).
"""

import ctypes
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DOC_CONF = REPO / "docs" / "nginx-anypush.conf"

# what the documented file says, and how many times
GATEWAY_ADDR = ("server 127.0.0.1:8080;", 2)
LISTEN = ("listen 443 ssl http2;", 1)
CERT = ("/etc/ssl/anypush/fullchain.pem", 1)
KEY = ("/etc/ssl/anypush/privkey.pem", 1)

MAIN_CONF = """\
# written by tests/e2e/tlsfront.py: nginx's main context around
# docs/nginx-anypush.conf, all in {d}
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
    include {d}/anypush.conf;
}}
"""


def _die_with_parent():
    """In the child before exec: SIGTERM when the parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _replace(text, what, new):
    old, count = what
    got = text.count(old)
    if got != count:
        raise RuntimeError(f"{DOC_CONF} has {old!r} {got} times, the tests expect {count}: "
                           f"update tests/e2e/tlsfront.py with the file")
    return text.replace(old, new)


def site_conf(gateway_port, port, cert, key):
    """docs/nginx-anypush.conf with the test's ports and certificate."""
    text = DOC_CONF.read_text()
    text = _replace(text, GATEWAY_ADDR, f"server 127.0.0.1:{gateway_port};")
    text = _replace(text, LISTEN, f"listen 127.0.0.1:{port} ssl http2;")
    text = _replace(text, CERT, str(cert))
    return _replace(text, KEY, str(key))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid):
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class NginxFront:
    """nginx on 127.0.0.1:.port in front of the gateway on gateway_port.
    .endpoint is what gwlib's clients take (TLS, any certificate)."""

    def __init__(self, gateway_port, tmp=None):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(nginx, os.X_OK):
            raise RuntimeError("nginx is not installed (scripts/setup installs it)")
        self.nginx = nginx
        self.gateway_port = gateway_port
        self.dir = Path(tempfile.mkdtemp(prefix="nginx-", dir=tmp))
        # nginx's workers run as nobody when started as root: they must
        # reach the temporary folders
        os.chmod(self.dir, 0o755)
        self.cert, self.key = self.dir / "cert.pem", self.dir / "key.pem"
        self.proc = None
        self.port = None
        self.pids = []
        self._make_cert()
        self._start()

    def _make_cert(self):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(self.key), "-out", str(self.cert)],
                       check=True, capture_output=True, timeout=30)

    def _start(self):
        for attempt in range(3):
            self.port = _free_port()
            (self.dir / "anypush.conf").write_text(site_conf(self.gateway_port, self.port,
                                                             self.cert, self.key))
            (self.dir / "nginx.conf").write_text(MAIN_CONF.format(d=self.dir))
            with open(self.dir / "stderr.log", "ab") as err:
                self.proc = subprocess.Popen(
                    [self.nginx, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
                     "-e", str(self.dir / "error.log")],
                    stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                    preexec_fn=_die_with_parent)
            if self._wait_listening(10.0):
                self.pids = [self.proc.pid] + _children(self.proc.pid)
                return
            # most likely the port was taken between the probe and nginx
            self.stop()
        raise RuntimeError(f"nginx did not start: {self.log_tail()}")

    def _wait_listening(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    pass
                return True
            except OSError:
                time.sleep(0.05)
        return False

    @property
    def endpoint(self):
        sys.path.insert(0, str(HERE))
        from gwlib import Endpoint, insecure_tls
        return Endpoint(self.port, insecure_tls())

    @property
    def base(self):
        return f"https://127.0.0.1:{self.port}"

    def log_tail(self, n=30):
        out = []
        for name in ("stderr.log", "error.log"):
            try:
                lines = (self.dir / name).read_text(errors="replace").splitlines()
            except OSError:
                continue
            out += [f"{name}: {line}" for line in lines[-n:]]
        return "\n".join(out)

    def stop(self):
        """SIGTERM to the master (its workers leave with it), 5 s, then
        SIGKILL to every pid it had."""
        if self.proc is None:
            return
        pids = self.pids or [self.proc.pid]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                for p in pids:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.wait(5.0)
        for p in pids[1:]:
            end = time.monotonic() + 2.0
            while Path(f"/proc/{p}").exists() and time.monotonic() < end:
                time.sleep(0.05)
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.stderr.write("usage: tlsfront.py GATEWAY_PORT\n")
        return 2
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    front = NginxFront(int(sys.argv[1]))
    try:
        sys.stdout.write(f"port {front.port}\ndir {front.dir}\n")
        sys.stdout.flush()
        end = time.monotonic() + 300
        while time.monotonic() < end:
            r, _, _ = select.select([sys.stdin], [], [], max(0.0, end - time.monotonic()))
            if r and not os.read(sys.stdin.fileno(), 4096):
                break
    finally:
        front.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
