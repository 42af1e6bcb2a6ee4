#!/usr/bin/env bash
# SIGHUP must not cut connected clients. A reload that keeps the same
# directory pushes nothing (a client verifies a pushed directory and closes
# unless it is newer than its own: docs/PROTOCOL.md, lib/client.c); found by
# the soak, where every reload cut desks and uploads. A reload with a newer
# directory pushes it and the client takes it without closing. Checked with
# the real clients: `ruf desk follow` stays connected and receives reports
# sent with `ruf report` + `ruf send` across the reloads.
. "$RUF_SRC/tests/integration/lib.sh"
. "$RUF_SRC/tests/integration/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} ${FOLLOW:-} 2>/dev/null || true; rm -rf "$T"' EXIT
rufd_setup
enroll rc-sd-1
enroll itf-darfur-desk
rufd_start
HQ=127.0.0.1:$PORT
field() { ruf "$@" --home "$T/home/rc-sd-1" --passphrase-file "$PASS"; }

reloads=0
reload() { # waits for rufd's log line of the next reload
	reloads=$((reloads + 1))
	kill -HUP "$RUFD_PID"
	for _ in $(seq 100); do
		[ "$(grep -c 'reloaded: directory version' "$T/rufd.log")" -ge "$reloads" ] && return 0
		sleep 0.1
	done
	fail "no reload: $(tail -3 "$T/rufd.log")"
}
delivered=0
send_one() { # TITLE: composes and sends one report; the desk must archive it
	field report --risk high --title "$1" --summary s >/dev/null || fail "compose $1"
	field send --hq "$HQ" --quiet --deadline 30 >"$T/send" 2>&1 || fail "send $1: $(cat "$T/send")"
	delivered=$((delivered + 1))
	for _ in $(seq 150); do
		[ "$(grep -c "$1" "$T/follow" || true)" -ge 1 ] && return 0
		kill -0 "$FOLLOW" 2>/dev/null || fail "ruf desk follow ended: $(cat "$T/follow.err")"
		sleep 0.1
	done
	fail "the desk did not receive '$1': $(cat "$T/follow" "$T/follow.err")"
}

ruf desk follow itf.darfur --home "$T/home/itf-darfur-desk" --passphrase-file "$PASS" \
	--hq "$HQ" >"$T/follow" 2>"$T/follow.err" &
FOLLOW=$!
send_one "before any reload"
ok "ruf desk follow receives a report sent with ruf send"

reload
reload
send_one "after two reloads"
kill -0 "$FOLLOW" 2>/dev/null || fail "ruf desk follow ended: $(cat "$T/follow.err")"
! grep -q 'receiving\|rollback\|reconnect' "$T/follow.err" ||
	fail "the desk's connection was cut: $(cat "$T/follow.err")"
ok "two SIGHUPs with the same directory: the desk stays connected and receives the next report"

rufctl directory publish --dir "$C/hq" --passphrase-file "$PASS" \
	--policy "$RUF_SRC/certs-example/policy.txt" --expires 30d --hq-address "$HQ" \
	--out "$T/directory.new" >/dev/null || fail "publish"
cp "$T/directory.new" "$T/directory"
reload
grep -q 'reloaded: directory version 2' "$T/rufd.log" || fail "not version 2: $(tail -2 "$T/rufd.log")"
send_one "after a newer directory"
kill -0 "$FOLLOW" 2>/dev/null || fail "ruf desk follow ended: $(cat "$T/follow.err")"
! grep -q 'receiving\|rollback' "$T/follow.err" ||
	fail "the desk's connection was cut by a newer directory: $(cat "$T/follow.err")"
ok "a SIGHUP with a newer directory: pushed, the desk takes it and keeps receiving"

kill "$FOLLOW"
wait "$FOLLOW" 2>/dev/null || true
FOLLOW=
rufd_stop
echo "all $checks checks passed"
