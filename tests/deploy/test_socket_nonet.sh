#!/usr/bin/env bash
# The socket-activated variant's promise: rufd needs no network of its own.
# systemd-socket-activate binds the port in the host's network namespace and
# starts rufd in a new, empty one (unshare -n, as PrivateNetwork=yes does);
# a device on the host still submits and gets its receipt, a desk receives
# the report, and rufd itself cannot reach anything. Skips (exit 77) unless
# root with unshare and systemd-socket-activate.
set -euo pipefail
. "$RUF_SRC/tests/integration/lib.sh"
. "$RUF_SRC/tests/integration/rufd_lib.sh"
for t in unshare systemd-socket-activate; do
	command -v "$t" >/dev/null 2>&1 || { echo "SKIP: $t not installed"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: a network namespace needs root"; exit 77; }
unshare -n true 2>/dev/null || { echo "SKIP: unshare -n not permitted here"; exit 77; }

RUFD_EXTRA_CONF="" rufd_setup
# As in rufd-socket.service: no listen, no metrics (nothing to bind them in).
sed -i -e '/^listen/d' -e '/^metrics_listen/d' "$T/rufd.conf"
for n in rc-sd-1 hrt-desk; do enroll "$n"; done

# unshare execs rufd in place, so LISTEN_PID (set for the child) names rufd.
systemd-socket-activate -l "127.0.0.1:$PORT" -- \
	unshare -n "$RUF_BIN/rufd" -d -c "$T/rufd.conf" 2>>"$T/rufd.log" &
APID=$!
trap 'kill -TERM $APID 2>/dev/null || true; rm -rf "$T"' EXIT
for _ in $(seq 50); do
	# systemd-socket-activate starts rufd at the first connection.
	tc rc-sd-1 ping >"$T/out" 2>&1 && break
	sleep 0.2
done
grep -q pong "$T/out" || { cat "$T/out" "$T/rufd.log" >&2; fail "no pong through the passed socket"; }
grep -q 'listening on socket 3 from systemd' "$T/rufd.log" || fail "rufd did not take the socket"
ok "rufd in an empty network namespace serves on the socket passed to it"

seal rc-sd-1 "$RUF_SRC/certs-example/reports/sitrep-darfur.json" "$T/e.env"
tc rc-sd-1 submit "$T/e.env" >"$T/r" || fail "submit: $(cat "$T/r")"
grep -q 'receipt store_seq=1 ' "$T/r" || fail "no receipt: $(cat "$T/r")"
mkdir -p "$T/got"
tc hrt-desk -n 1 -o "$T/got" subscribe hrt >"$T/d" || fail "subscribe: $(cat "$T/d")"
cmp -s "$T/got/hrt-1.env" "$T/e.env" || fail "the desk got other bytes"
ok "submit with receipt and delivery to a desk work without a network"

RPID=$(ps -o pid= --ppid "$APID" | tr -d " " || true)
[ -z "$RPID" ] && RPID=$APID
[ "$(readlink "/proc/$RPID/ns/net")" != "$(readlink /proc/self/ns/net)" ] ||
	fail "rufd runs in the host's network namespace"
links=$(nsenter -t "$RPID" -n ip -o link 2>/dev/null | awk -F': ' '{print $2}' | tr '\n' ' ' || true)
case "$links" in "" | "lo ") ;; *) fail "rufd's namespace has interfaces: $links" ;; esac
ok "rufd's namespace is empty (${links:-no ip tool})"

kill -TERM "$RPID"
for _ in $(seq 100); do grep -q 'rufd stopped' "$T/rufd.log" && break; sleep 0.1; done
grep -q 'rufd stopped' "$T/rufd.log" || fail "rufd did not stop: $(tail -3 "$T/rufd.log")"
ok "SIGTERM stops it cleanly"
echo "$checks checks passed"
