#!/bin/sh
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for
# FUZZ_SECONDS from its corpus (tests/fuzz/corpus/TARGET) with its
# dictionary (tests/fuzz/TARGET.dict). Prints TAP, one line per target.
#
# The targets: parsers of outside input (router_head, payload, cursor,
# ws_mux, config); what reaches clients, checked well formed (encode: the
# message envelope; framing: the poll reply, SSE blocks and WebSocket
# frames, /ws acks and errors); the request's text (request_path: URL,
# channels, cursors, Last-Event-ID, transport; static_path: the static
# file path check against an independent oracle); token, the credential
# of a request (auth.c: libjwt, the algorithm check, the claims, the
# patterns) against an HMAC and fnmatch oracle; and request, whole
# request paths on a real bus through the transports' formatting.
#
# How long: FUZZ_SECONDS per target, 2 by default (make check, the plain
# CI pass); scripts/test --sanitizers runs 18 s each, so CI spends its
# fuzzing time once, not the same seconds twice. By hand, longer:
#   FUZZ_SECONDS=600 sh tests/fuzz/t_fuzz.sh
#   FUZZ_TARGETS="encode framing" FUZZ_SECONDS=300 sh tests/fuzz/t_fuzz.sh
# New inputs go to a temporary folder; to keep them (minimised), grow
# and merge:
#   FUZZ_OUT=/tmp/f FUZZ_TARGETS=encode FUZZ_SECONDS=120 sh tests/fuzz/t_fuzz.sh
#   /tmp/f/fuzz_encode -merge=1 -use_counters=0 tests/fuzz/corpus/encode /tmp/f/corpus_encode
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=${FUZZ_SECONDS:-2}
# FUZZ_OUT=DIR keeps the binaries and the grown corpora there
out=${FUZZ_OUT:-${TMPDIR:-/tmp}/anypush-fuzz.$$}
all="router_head payload cursor ws_mux request config encode framing request_path static_path token"
targets=${FUZZ_TARGETS:-$all}
echo "1..$(echo $targets | wc -w)"
if ! command -v clang >/dev/null 2>&1; then
	n=1
	for t in $targets; do echo "not ok $n - fuzz $t: clang not installed (scripts/setup installs it)"; n=$((n + 1)); done
	exit 1
fi
mkdir -p "$out"
[ -n "${FUZZ_OUT:-}" ] || trap 'rm -rf "$out"' EXIT INT TERM
cflags="-g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -std=c11 -D_GNU_SOURCE -I$top/src $(pkg-config --cflags libcjson libwebsockets) -DPACKAGE_VERSION=\"fuzz\""
# libjwt for the token target, and libcrypto for its HMAC oracle
libs="$(pkg-config --libs libcjson libjwt) -lcrypto -lpthread"
# every source file once, as an object the targets link
base="log fmt validate cursor payload xalloc"
objs_of() {
	for f in $base "$@"; do printf ' %s' "$out/$f.o"; done
}
built=" "
compile() {
	for f in "$@"; do
		case $built in *" $f "*) continue ;; esac
		clang $cflags -fsanitize=fuzzer-no-link -c -o "$out/$f.o" "$top/src/$f.c" || return 1
		built="$built$f "
	done
}
n=1
for t in $targets; do
	case $t in
	router_head) own="router_head" ;;
	ws_mux) own="ws_mux idem siphash" ;;
	request) own="bus dheap message pollers siphash idem capacity metrics abuse ipconns transport sse_format frame_format poll_format" ;;
	config) own="config config_doc transport redis_url origin abuse ipconns siphash" ;;
	encode) own="message" ;;
	framing) own="message sse_format frame_format poll_format ws_mux idem siphash" ;;
	request_path) own="http_route clientid transport" ;;
	static_path) own="static_path http_route clientid transport" ;;
	token) own="auth" ;;
	*) own="" ;;
	esac
	dict="" seeds=""
	[ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
	[ -d "$here/corpus/$t" ] && seeds="$here/corpus/$t"
	if ! compile $base $own >"$out/$t.build" 2>&1 ||
		! clang $cflags -fsanitize=fuzzer -o "$out/fuzz_$t" "$here/fuzz_$t.c" $(objs_of $own) $libs >>"$out/$t.build" 2>&1; then
		echo "not ok $n - fuzz $t: build failed"; sed 's/^/# /' "$out/$t.build" | tail -20
	else
		mkdir -p "$out/corpus_$t"
		if "$out/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout=10 \
			-rss_limit_mb=1024 -artifact_prefix="$out/" $dict \
			"$out/corpus_$t" $seeds >"$out/$t.log" 2>&1; then
			echo "ok $n - fuzz $t for ${secs}s: $(grep -o 'Done [0-9]* runs' "$out/$t.log" | head -1)"
		else
			echo "not ok $n - fuzz $t found a crash"; grep -A30 'ERROR\|SUMMARY\|^fuzz_' "$out/$t.log" | head -40 | sed 's/^/# /'
			# the input, to reproduce: base64 -d >crash; $out/fuzz_$t crash
			for f in "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-*; do
				[ -f "$f" ] && echo "# input $(basename "$f"): $(head -c 4096 "$f" | base64 -w0)"
				rm -f "$f"
			done
		fi
	fi
	n=$((n + 1))
done
