#!/usr/bin/env python3
"""The wire words the code writes are in the protocol docs.

1. Every WebSocket frame type the gateway writes (`{"type":"X"` in src/)
   is in docs/protocol.md as `{"type":"X"`.
2. Every error code the gateway answers with (HTTP JSON errors, router
   refusals, /ws error frames) is in docs/protocol.md or docs/messaging.md,
   in backquotes.

Reads the sources as text, so a new frame or code without its doc fails
here. Prints TAP."""
import re
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
CODE_CALLS = re.compile(
    r"(?:http_reply_error\s*\([^,;]+,\s*\d+\s*,"    # http_reply_error(conn, 400, "code"
    r"|reply_error\s*\([^,;]+,[^,;]+,"              # reply_error(s, op, "code"
    r"|fail\s*\(\s*err\s*,"                         # ws_mux.c fail(err, "code"
    r"|refuse\s*\([^,;]+,[^,;]+,\s*\"[^\"]*\"\s*,"  # router refuse(r, p, "400 ...", "code"
    r")\s*\"([a-z_]+)\"")


def main():
    src = "\n".join(p.read_text() for p in sorted((TOP / "src").glob("*.c")))
    protocol = (TOP / "docs" / "protocol.md").read_text()
    messaging = (TOP / "docs" / "messaging.md").read_text()
    n = failed = 0

    def ok(cond, name, missing):
        nonlocal n, failed
        n += 1
        print(f"{'ok' if cond else 'not ok'} {n} - {name}")
        if not cond:
            failed += 1
            for m in missing:
                print(f"# missing: {m}")

    types = sorted(set(re.findall(r'\\"type\\":\\"([a-z_]+)\\"', src)))
    ok(len(types) >= 5, f"the sources write frame types ({', '.join(types)})", ["too few found: the pattern is stale"])
    missing = [t for t in types if f'{{"type":"{t}"' not in protocol]
    ok(not missing, "docs/protocol.md shows every WebSocket frame type the gateway writes", missing)

    codes = sorted(set(CODE_CALLS.findall(src)))
    ok(len(codes) >= 20, f"the sources answer with error codes ({len(codes)} found)", ["too few found: the pattern is stale"])
    missing = [c for c in codes if f"`{c}`" not in protocol and f"`{c}`" not in messaging]
    ok(not missing, "docs/protocol.md or docs/messaging.md names every error code the gateway sends", missing)
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
