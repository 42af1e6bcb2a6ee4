#!/usr/bin/env bash
# The systemd units (systemd/): `systemd-analyze verify` must say nothing,
# `systemd-analyze security --offline=true` must rate rufd.service at most
# 1.1 and the socket-activated rufd-socket.service at most 0.5, the
# directives the deployment relies on must be present, sysusers.d/tmpfiles.d
# must parse, and -- once rufd sends them (daemon/notify.c wired in) -- the
# sd_notify messages and the LoadCredential path must work with the real rufd.
# Skips (exit 77) only when systemd-analyze is missing.
set -euo pipefail
RUF_BIN=${RUF_BIN:?set RUF_BIN to the build directory}
RUF_SRC=${RUF_SRC:?set RUF_SRC to the source tree}
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze not installed (scripts/deps --test installs systemd)"
	exit 77
fi
T=$(mktemp -d /tmp/ruf-deploy.XXXXXX)
trap 'rm -rf "$T"' EXIT
checks=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
S=$RUF_SRC/systemd
RUFD=$RUF_BIN/rufd
[ -x "$RUFD" ] || fail "no rufd in $RUF_BIN"

# Units as installed, but naming the rufd just built (verify checks ExecStart
# exists), and our man pages where `man` finds them (verify looks up every
# Documentation=man:... page).
mkdir -p "$T/units" "$T/man/man5" "$T/man/man8"
for u in rufd.service rufd-socket.service rufd.socket; do
	sed "s#/usr/sbin/rufd#$RUFD#g" "$S/$u" >"$T/units/$u"
done
cp "$RUF_SRC/docs/man/"*.8 "$T/man/man8/"
cp "$RUF_SRC/docs/man/"*.5 "$T/man/man5/"
export MANPATH=$T/man

out=$(cd "$T/units" && systemd-analyze verify rufd.service rufd-socket.service rufd.socket 2>&1) ||
	fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify complained: $out"
ok "systemd-analyze verify says nothing about the three units"

exposure() { # unit -> the overall exposure number
	local out
	out=$(cd "$T/units" && systemd-analyze security --offline=true "$1" 2>&1) ||
		fail "systemd-analyze security $1: $out"
	sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out"
}
check_exposure() { # unit max
	local e
	e=$(exposure "$1")
	[ -n "$e" ] || fail "no exposure figure for $1"
	awk -v e="$e" -v m="$2" 'BEGIN { exit !(e <= m) }' ||
		fail "$1: exposure $e above $2 (run systemd-analyze security --offline=true on it)"
	ok "$1 exposure $e <= $2"
}
check_exposure rufd.service 1.1
check_exposure rufd-socket.service 0.5

# What the deployment relies on, whatever the score says.
want() { # unit directive=value (exact line)
	grep -qxF -- "$2" "$S/$1" || fail "$1 lacks '$2'"
}
for u in rufd.service rufd-socket.service; do
	for l in Type=notify NotifyAccess=main "ExecReload=/bin/kill -HUP \$MAINPID" \
		User=rufd StateDirectory=rufd ConfigurationDirectory=ruf \
		"LoadCredential=server.key:/etc/ruf/server.key" CapabilityBoundingSet= \
		AmbientCapabilities= NoNewPrivileges=yes SystemCallFilter=@system-service \
		ProtectSystem=strict ReadWritePaths=/var/lib/rufd PrivateDevices=yes \
		PrivateTmp=yes ProtectHome=yes RestrictNamespaces=yes MemoryDenyWriteExecute=yes \
		LockPersonality=yes SystemCallArchitectures=native UMask=0077; do
		want "$u" "$l"
	done
	grep -q '^WatchdogSec=[1-9]' "$S/$u" || fail "$u: no WatchdogSec"
	n=$(grep -c '^ReadWritePaths=' "$S/$u")
	[ "$n" = 1 ] || fail "$u: $n ReadWritePaths lines, want only the state directory"
done
want rufd-socket.service PrivateNetwork=yes
want rufd-socket.service RestrictAddressFamilies=AF_UNIX
want rufd-socket.service Requires=rufd.socket
want rufd.socket Service=rufd-socket.service
grep -q '^ListenStream=' "$S/rufd.socket" || fail "rufd.socket listens nowhere"
ok "units carry notify, watchdog, credential, state dir and the sandbox settings"

# sysusers.d and tmpfiles.d, applied to an empty root.
R=$T/root
mkdir -p "$R/etc" "$R/var/lib"
out=$(systemd-sysusers --root="$R" "$S/sysusers.conf" 2>&1) || fail "systemd-sysusers: $out"
grep -q '^rufd:' "$R/etc/passwd" || fail "sysusers.d made no rufd user: $(cat "$R/etc/passwd")"
if [ "$(id -u)" = 0 ]; then
	out=$(systemd-tmpfiles --root="$R" --create "$S/tmpfiles.conf" 2>&1) ||
		fail "systemd-tmpfiles: $out"
	[ -z "$out" ] || fail "systemd-tmpfiles complained: $out"
	[ "$(stat -c %a "$R/var/lib/rufd")" = 700 ] || fail "state dir not 0700"
	[ "$(stat -c %u "$R/var/lib/rufd")" = "$(awk -F: '$1 == "rufd" {print $3}' "$R/etc/passwd")" ] ||
		fail "state dir not owned by rufd"
	[ -d "$R/etc/ruf" ] || fail "no /etc/ruf"
	ok "sysusers.d creates rufd, tmpfiles.d its 0700 state directory (in a scratch root)"
else
	ok "sysusers.d creates rufd in a scratch root (tmpfiles.d needs root to chown: not applied)"
fi

# With the real rufd: the example PKI, a config naming the key as a
# credential, a stand-in for systemd's notify socket.
export PATH="$RUF_BIN:$PATH"
RUFCTL=rufctl "$RUF_SRC/certs-example/gen.sh" "$T/certs" >/dev/null
C=$T/certs
mkdir -p "$T/creds"
cp "$C/hq/server.key" "$T/creds/server.key"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$T/rufd.conf" <<CONF
listen = 127.0.0.1:$port
state_dir = $T/state
server_key = credential:server.key
server_cert = $C/hq/server.cert
root_cert = $C/hq/root.cert
directory = $C/directory
CONF
# The example config must parse (its files are not here: only the syntax).
out=$("$RUFD" -n -c "$S/rufd.conf" 2>&1 || true)
grep -q 'rufd.conf:[0-9]' <<<"$out" && fail "example rufd.conf does not parse: $out"
ok "the packaged example rufd.conf parses"

if ! CREDENTIALS_DIRECTORY=$T/creds "$RUFD" -n -c "$T/rufd.conf" >"$T/out" 2>&1; then
	if grep -q 'credential:server.key' "$T/out" && ! grep -q 'CREDENTIALS_DIRECTORY' "$T/out"; then
		echo "NOTE: rufd does not resolve credential: paths yet (daemon/notify.c not wired);" \
			"skipping the live checks"
		echo "$checks checks passed"
		exit 0
	fi
	fail "rufd -n with the key as a credential: $(cat "$T/out")"
fi
ok "rufd -n finds server_key = credential:server.key in \$CREDENTIALS_DIRECTORY"
env -u CREDENTIALS_DIRECTORY "$RUFD" -n -c "$T/rufd.conf" >"$T/out" 2>&1 &&
	fail "rufd -n accepted a credential without \$CREDENTIALS_DIRECTORY"
grep -q 'LoadCredential' "$T/out" || fail "no hint at LoadCredential: $(cat "$T/out")"
ok "without \$CREDENTIALS_DIRECTORY rufd says how to pass the key"

# Notify messages, in order, as systemd would receive them.
cat >"$T/notify.py" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    print("listening", file=f)
    while True:
        m = s.recv(4096).decode()
        print(m.replace("\n", " "), file=f)
PY
python3 "$T/notify.py" "$T/notify.sock" "$T/notify.log" &
npid=$!
trap 'kill $npid 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 50); do grep -q listening "$T/notify.log" 2>/dev/null && break; sleep 0.1; done
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000 CREDENTIALS_DIRECTORY=$T/creds \
	"$RUFD" -d -c "$T/rufd.conf" 2>"$T/rufd.log" &
rpid=$!
waitfor() { # pattern what
	for _ in $(seq 100); do grep -q "$1" "$T/notify.log" && return 0; sleep 0.1; done
	cat "$T/rufd.log" >&2
	fail "no $2 (got: $(tr '\n' '|' <"$T/notify.log"))"
}
waitfor '^READY=1' "READY=1 at start"
grep -q 'rufd started' "$T/rufd.log" || fail "READY=1 before the start-up finished"
ok "READY=1 once the store is open and the listener is up"
waitfor '^WATCHDOG=1' "WATCHDOG=1 with WATCHDOG_USEC set"
ok "watchdog keep-alives from the event loop"
kill -HUP "$rpid"
waitfor '^RELOADING=1 MONOTONIC_USEC=' "RELOADING=1 on SIGHUP"
for _ in $(seq 100); do
	grep -q '^READY=1' <<<"$(sed -n '/^RELOADING/,$p' "$T/notify.log")" && break
	sleep 0.1
done
grep -q '^READY=1' <<<"$(sed -n '/^RELOADING/,$p' "$T/notify.log")" || fail "no READY=1 after the reload"
ok "SIGHUP: RELOADING=1, then READY=1"
kill -TERM "$rpid"
rc=0
wait "$rpid" || rc=$?
[ "$rc" = 0 ] || fail "rufd exited $rc after SIGTERM"
grep -q '^STOPPING=1' "$T/notify.log" || fail "no STOPPING=1 on SIGTERM"
ok "SIGTERM: STOPPING=1, exit 0"
echo "$checks checks passed"
