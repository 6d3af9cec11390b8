#!/bin/sh
# anypush.service against systemd's own checker: systemd-analyze verify
# must accept it without a word (unknown keys are only warnings there, so
# any output fails), it must keep the hardening it promises, and its
# offline exposure score must stay "OK" (2.0 or less of 10).
#   ANYPUSH_UNIT: the unit to check (default: anypush.service, built by
#   make check); ANYPUSH_BIN: the binary put in its ExecStart, since the
#   installed path need not exist yet (unset: the unit is checked as is).
#   ANYPUSH_UNIT_MAN=yes: also check the man page named in Documentation=.
set -u
unit=${ANYPUSH_UNIT:-anypush.service}
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"
	[ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/# /'
}
echo "1..6"
if ! command -v systemd-analyze >/dev/null 2>&1; then
	not_ok "systemd-analyze is missing: install the 'systemd' package (scripts/setup does)"
	exit 1
fi
if [ ! -f "$unit" ]; then
	not_ok "no unit at $unit (make anypush.service builds it)"
	exit 1
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# systemd-analyze wants the file name to be the unit name
if [ -n "${ANYPUSH_BIN:-}" ]; then
	sed "s|^ExecStart=[^ ]*|ExecStart=$ANYPUSH_BIN|" "$unit" >"$tmp/anypush.service"
else
	cp "$unit" "$tmp/anypush.service"
fi
u=$tmp/anypush.service

out=$(timeout 60 systemd-analyze verify --man="${ANYPUSH_UNIT_MAN:-no}" "$u" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
	ok "systemd-analyze verify: no error, no warning"
else
	not_ok "systemd-analyze verify: status $rc" "$out"
fi

left=$(grep -n '@[A-Za-z_]*@' "$unit")
if [ -z "$left" ] && grep -q '^ExecStart=/[^ ]*/sbin/anypush$' "$unit"; then
	ok "every @variable@ is filled in; ExecStart is an sbin path"
else
	not_ok "unfilled variables or ExecStart not in sbin" \
		"$left$(grep '^ExecStart=' "$unit")"
fi

missing=""
for want in DynamicUser=yes ProtectSystem=strict ProtectHome=yes \
	PrivateTmp=yes NoNewPrivileges=yes CapabilityBoundingSet= \
	"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
	SystemCallFilter=@system-service ProtectKernelTunables=yes \
	ProtectControlGroups=yes MemoryDenyWriteExecute=yes \
	LockPersonality=yes RestrictRealtime=yes RestrictNamespaces=yes \
	"ExecReload=/bin/kill -HUP \$MAINPID"; do
	grep -qxF "$want" "$unit" || missing="$missing
$want"
done
nofile=$(sed -n 's/^LimitNOFILE=//p' "$unit")
case $nofile in
'' | *[!0-9]*) missing="$missing
LimitNOFILE=65536 or more (have '$nofile')" ;;
*) [ "$nofile" -ge 65536 ] || missing="$missing
LimitNOFILE=65536 or more (have $nofile)" ;;
esac
if [ -z "$missing" ]; then
	ok "hardening directives, LimitNOFILE and ExecReload are there"
else
	not_ok "directives missing" "$missing"
fi

type=$(sed -n 's/^Type=//p' "$unit")
case $type in
notify | exec) ok "Type=$type" ;;
*) not_ok "Type is '$type', want notify (or exec --without-systemd)" ;;
esac

if grep -q '^AmbientCapabilities=' "$unit"; then
	not_ok "AmbientCapabilities is set: only for ports below 1024, left commented"
else
	ok "no ambient capability"
fi

# --threshold counts tenths: 20 is an exposure of 2.0, systemd's "OK"
out=$(timeout 60 systemd-analyze security --offline=true --threshold=20 \
	--no-pager "$u" 2>&1)
rc=$?
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: //p')
if [ "$rc" -eq 0 ]; then
	ok "systemd-analyze security --offline: $score"
else
	not_ok "systemd-analyze security --offline: $score, want 2.0 or less" \
		"$(printf '%s\n' "$out" | grep '✗' | head -30)"
fi
[ "$fails" -eq 0 ]
