#!/usr/bin/env bash
# rufd limits: per-device submissions per minute, clock skew at the
# handshake, idle timeout, max connections, unauthenticated message 1 size;
# and the audit log check (rufd -a) after deliveries and acks.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} 2>/dev/null || true; rm -rf "$T"' EXIT
RUFD_EXTRA_CONF=$'submissions_per_minute = 3\nclock_skew = 60\nidle_timeout = 5s\nmax_connections = 4'
rufd_setup
enroll rc-sd-1
R=$RUF_SRC/certs-example/reports
rufd_start

# Rate: the window is a calendar minute; stay clear of its end.
while [ $(($(date +%s) % 60)) -gt 45 ]; do sleep 1; done
for i in 1 2 3 4; do seal rc-sd-1 "$R/sitrep-darfur.json" "$T/e$i.env"; done
for i in 1 2 3; do tc rc-sd-1 submit "$T/e$i.env" >"$T/r$i" || fail "submit $i: $(cat "$T/r$i")"; done
rc=0
tc rc-sd-1 submit "$T/e4.env" >"$T/r4" || rc=$?
[ "$rc" = 4 ] && grep -q 'nack reason=1 retry_after=[1-9]' "$T/r4" ||
	fail "4th offer in a minute not limited (exit $rc): $(cat "$T/r4")"
tc rc-cd-1 ping >/dev/null || fail "another device limited too"
ok "submissions_per_minute: the 4th offer in a minute gets retry-later with a delay"

rc=0
tc rc-cd-1 -T 120 ping >"$T/out" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "clock 120 s ahead accepted (exit $rc)"
rc=0
tc rc-cd-1 -T -120 ping >"$T/out" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "clock 120 s behind accepted (exit $rc)"
tc rc-cd-1 -T 30 ping >/dev/null || fail "clock 30 s ahead refused"
grep -q 'handshake refused (clock_skew)' "$T/rufd.log" || fail "no clock_skew log line"
ok "clock_skew: a hello timestamp 120 s off is refused, 30 s is accepted"

rc=0
tc rc-cd-1 -W 15 idle >"$T/out" 2>&1 || rc=$?
[ "$rc" = 5 ] && grep -q 'error code=1' "$T/out" || fail "idle connection not closed (exit $rc): $(cat "$T/out")"
ok "idle_timeout: a silent authenticated client gets an error frame and is closed"

for i in 1 2 3 4; do exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"; eval "fd$i=$fd"; done
sleep 0.5
rc=0
tc rc-cd-1 ping >"$T/out" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "connection beyond max_connections accepted (exit $rc)"
grep -q 'refused: too many connections' "$T/rufd.log" || fail "no log line for the refused connection"
for i in 1 2 3 4; do eval "exec {fd$i}>&-"; done
sleep 0.5
tc rc-cd-1 ping >/dev/null || fail "connections not freed"
ok "max_connections: the 5th connection is refused; slots come back when others close"

# Message 1 longer than 16 KiB before authentication: closed unread.
python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x50\x00" + b"\x00" * 100)
s.settimeout(5)
assert s.recv(10) == b"", "not closed"
PY
grep -q 'handshake refused (limit)' "$T/rufd.log" || fail "no log line for the oversized message 1"
ok "a message 1 announced over 16 KiB closes the connection"

tc hrt-desk -n 3 subscribe hrt >"$T/d" || fail "desk: $(cat "$T/d")"
curl -s "127.0.0.1:$MPORT/metrics" >"$T/m"
grep -q '^rufd_deliveries_total 3$' "$T/m" || fail "deliveries: $(grep deliveries "$T/m")"
grep -q '^rufd_handshakes_total{result="failed",reason="clock_skew"} 2$' "$T/m" ||
	fail "handshake metrics: $(grep handshakes "$T/m")"
rufd_stop
rufd -a -c "$T/rufd.conf" >"$T/a" || fail "audit check: $(cat "$T/a")"
grep -q 'hash chain OK; 3 envelopes' "$T/a" || fail "audit: $(cat "$T/a")"
n=$(grep -o '[0-9]* entries' "$T/a" | grep -o '[0-9]*')
# 3 x (received + 3 routed) + 3 delivered + 1 acknowledged (cursor moves once or more)
[ "$n" -ge 16 ] || fail "audit log has only $n entries"
ok "rufd -a: the audit log verifies and records received, routed, delivered, acknowledged ($n entries)"
echo "all $checks checks passed"
