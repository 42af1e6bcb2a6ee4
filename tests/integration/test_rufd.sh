#!/usr/bin/env bash
# rufd end to end: the real daemon on loopback with the example PKI, driven
# by the test client: config check, submit -> signed receipt -> exactly the
# routed desks receive and open it, dedup, resume after a cut, refusals
# (revoked device, device subscribing, garbage), SIGHUP revocation, SIGTERM.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} 2>/dev/null || true; rm -rf "$T"' EXIT
rufd_setup
for who in rc-sd-1 rc-cd-1 hrt-desk sag-desk itf-darfur-desk surge-desk; do
	enroll "$who"
done

expect_exit 0 "OK" rufd -n -c "$T/rufd.conf"
printf 'listen = 127.0.0.1:1\nbogus = 2\n' >"$T/bad.conf"
expect_exit 1 "bad.conf:2: unknown option 'bogus'" rufd -n -c "$T/bad.conf"
printf 'max_connections = 0\n' >"$T/bad.conf"
expect_exit 1 "bad.conf:1: max_connections" rufd -n -c "$T/bad.conf"
printf 'metrics_listen = 0.0.0.0:9100\n' >"$T/bad.conf"
expect_exit 1 "not a loopback" rufd -n -c "$T/bad.conf"
ok "rufd -n accepts the test config and names the bad line of bad ones"

rufd_start
tc rc-sd-1 ping >"$T/out" || fail "ping failed: $(cat "$T/out")"
grep -q pong "$T/out" || fail "no pong"
ok "a device completes the handshake and gets a pong"

R=$RUF_SRC/certs-example/reports
seal rc-sd-1 "$R/sitrep-darfur.json" "$T/darfur.env"
tc rc-sd-1 -c 1000 submit "$T/darfur.env" >"$T/r1" || fail "submit: $(cat "$T/r1")"
grep -q 'receipt store_seq=1 queues=hrt,itf.darfur,sag ' "$T/r1" ||
	fail "receipt: $(cat "$T/r1")"
ok "submit: the receipt verifies under the server cert and names hrt, itf.darfur, sag"

mkdir -p "$T/got"
for q in hrt sag itf.darfur; do
	desk=${q/./-}-desk
	tc "$desk" -n 1 -o "$T/got" subscribe "$q" >"$T/d" || fail "$desk: $(cat "$T/d")"
	grep -q "deliver queue=$q seq=1" "$T/d" || fail "$desk: $(cat "$T/d")"
	cmp -s "$T/got/$q-1.env" "$T/darfur.env" || fail "$desk got other bytes"
	ruf open --home "$T/home/$desk" --passphrase-file "$PASS" "$T/got/$q-1.env" >"$T/o" ||
		fail "$desk cannot open"
	grep -q verified "$T/o" || fail "$desk: not verified"
done
ok "each routed desk receives the envelope and opens it"

rc=0
tc surge-desk -n 1 -t 2 subscribe surge >"$T/d" || rc=$?
[ "$rc" = 6 ] || fail "surge desk got something (exit $rc): $(cat "$T/d")"
ok "a desk of another queue receives nothing"

tc hrt-desk -n 1 -t 2 subscribe hrt >"$T/d" && fail "acked delivery came again: $(cat "$T/d")"
ok "an acknowledged delivery is not sent again (durable cursor)"

tc rc-sd-1 submit "$T/darfur.env" >"$T/r2" || fail "resubmit: $(cat "$T/r2")"
diff <(grep receipt "$T/r1") <(grep receipt "$T/r2") >/dev/null || fail "dedup gave another receipt"
curl -s "127.0.0.1:$MPORT/metrics" >"$T/m"
grep -q '^rufd_dedup_hits_total 1$' "$T/m" || fail "dedup not counted: $(grep dedup "$T/m")"
grep -q '^rufd_store_envelopes 1$' "$T/m" || fail "stored twice: $(grep envelopes "$T/m")"
ok "a second submit gets the same receipt; stored once"

seal rc-sd-1 "$R/surge-darfur.json" "$T/surge.env"
tc rc-sd-1 -c 500 -n 1000 submit "$T/surge.env" >"$T/c" || fail "cut: $(cat "$T/c")"
grep -q 'cut at 1000' "$T/c" || fail "no cut: $(cat "$T/c")"
tc rc-sd-1 -c 500 submit "$T/surge.env" >"$T/c2" || fail "resume: $(cat "$T/c2")"
grep -q '^have=1000$' "$T/c2" || fail "resume point: $(cat "$T/c2")"
grep -q 'receipt store_seq=2 ' "$T/c2" || fail "resume receipt: $(cat "$T/c2")"
tc surge-desk -n 1 -o "$T/got" subscribe surge >"$T/d" || fail "surge: $(cat "$T/d")"
cmp -s "$T/got/surge-1.env" "$T/surge.env" || fail "resumed upload corrupted"
ok "an upload cut after 1000 bytes resumes from have=1000 and arrives intact"

rc=0
tc rc-sd-2 ping >"$T/out" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "revoked device not refused (exit $rc): $(cat "$T/out")"
grep -q 'handshake refused (revoked)' "$T/rufd.log" || fail "no log line for the revoked device"
ok "a revoked device is refused at the handshake"

rc=0
tc rc-sd-1 subscribe hrt >"$T/out" 2>&1 || rc=$?
[ "$rc" = 5 ] && grep -q 'error code=2' "$T/out" || fail "device subscribed (exit $rc): $(cat "$T/out")"
rc=0
tc sag-desk subscribe hrt >"$T/out" 2>&1 || rc=$?
[ "$rc" = 5 ] && grep -q 'error code=2' "$T/out" || fail "desk read another queue (exit $rc)"
ok "a device subscribing, and a desk subscribing to a queue not in its cert, get not-permitted"

exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET / HTTP/1.0\r\n\r\n' >&3
tc rc-cd-1 ping >/dev/null || fail "another client affected by garbage"
timeout 5 cat <&3 >/dev/null || fail "garbage connection not closed"
exec 3<&-
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf '\x00\x00' >&3
timeout 5 cat <&3 >/dev/null || fail "zero-length message not closed"
exec 3<&-
ok "garbage before the handshake closes that connection; others keep working"

exec 3<>"/dev/tcp/127.0.0.1/$PORT"
sleep 3
timeout 3 cat <&3 >/dev/null || fail "silent connection not closed after handshake_timeout"
exec 3<&-
grep -q 'handshake timeout' "$T/rufd.log" || fail "no handshake timeout logged"
ok "a silent connection is closed at handshake_timeout"

# The client library ruf uses (lib/client.h) against the same rufd.
lc() {
	local who=$1; shift
	ruf_libclient -i "$C/identities/$who" -p "$PASS" -D "$T/directory" \
		-s "127.0.0.1:$PORT" "$@"
}
lc hrt-desk -n 1 -o "$T/got" subscribe hrt >"$T/l4" 2>&1 && fail "lib desk got an acked delivery"
grep -q 'NET_TIMEOUT' "$T/l4" || fail "lib desk: $(cat "$T/l4")"
seal rc-cd-1 "$R/sitrep-kivu-early-warning.json" "$T/kivu.env"
lc rc-cd-1 submit "$T/kivu.env" >"$T/l1" || fail "lib submit: $(cat "$T/l1")"
grep -q '^receipt store_seq=3 queues=hrt,itf.kivu,rqr.great-lakes ' "$T/l1" ||
	fail "lib receipt: $(cat "$T/l1")"
lc rc-cd-1 submit "$T/kivu.env" >"$T/l2" || fail "lib resubmit: $(cat "$T/l2")"
grep -q '^receipt store_seq=3 ' "$T/l2" || fail "lib dedup: $(cat "$T/l2")"
lc rc-sd-1 submit "$T/darfur.env" >"$T/l3" || fail "lib submit of a stored one: $(cat "$T/l3")"
seal rc-sd-1 "$R/sitrep-darfur.json" "$T/darfur3.env"
lc rc-sd-1 submit "$T/darfur3.env" >"$T/l5" || fail "lib submit: $(cat "$T/l5")"
depth() { curl -s "127.0.0.1:$MPORT/metrics" | sed -n "s/^rufd_queue_depth{queue=\"$1\"} //p"; }
n=$(($(depth sag) - 1))
lc sag-desk -n $n -o "$T/got" subscribe sag >"$T/l6" || fail "lib desk: $(cat "$T/l6")"
grep -q "deliver queue=sag seq=$((n + 1)) " "$T/l6" || fail "lib desk deliveries: $(cat "$T/l6")"
cmp -s "$T/got/lib-sag-$((n + 1)).env" "$T/darfur3.env" || fail "lib desk got other bytes"
hrt_depth=$(depth hrt)
lc hrt-desk -n $((hrt_depth - 1)) subscribe hrt >"$T/l7" || fail "lib hrt desk: $(cat "$T/l7")"
grep -q "deliver queue=hrt seq=$hrt_depth " "$T/l7" || fail "lib hrt desk: $(cat "$T/l7")"
ok "lib/client.h: submit with verified receipt, dedup, desk backlog from the cursor, ack"

# SIGHUP: revoke rc-cd-1, publish, reload; a connected desk gets the new directory.
serial=$(rufctl cert list --dir "$C/hq" --json |
	grep -o '"serial": [0-9]*, "role": "device", "subject": "rc-cd-1"' | grep -o '[0-9]\+' | head -1)
rufctl cert revoke "$serial" --dir "$C/hq" --reason test >/dev/null
rufctl directory publish --dir "$C/hq" --passphrase-file "$PASS" \
	--policy "$RUF_SRC/certs-example/policy.txt" --expires 30d --hq-address "127.0.0.1:$PORT" \
	--out "$T/directory.new" >/dev/null
tc hrt-desk -n 1 -t 10 subscribe hrt >"$T/sub" 2>&1 &
sub=$!
sleep 1
cp "$T/directory.new" "$T/directory"
kill -HUP "$RUFD_PID"
for _ in $(seq 50); do grep -q 'reloaded: directory version 2' "$T/rufd.log" && break; sleep 0.1; done
grep -q 'reloaded: directory version 2' "$T/rufd.log" || fail "no reload: $(tail -3 "$T/rufd.log")"
rc=0
tc rc-cd-1 ping >"$T/out" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "rc-cd-1 still accepted after SIGHUP (exit $rc)"
seal rc-sd-1 "$R/sitrep-darfur.json" "$T/darfur2.env"
tc rc-sd-1 submit "$T/darfur2.env" >"$T/r3" || fail "submit after reload: $(cat "$T/r3")"
wait "$sub" || fail "subscriber during reload: $(cat "$T/sub")"
grep -q directory_update "$T/sub" || fail "no DirectoryUpdate pushed: $(cat "$T/sub")"
grep -q "deliver queue=hrt seq=$((hrt_depth + 1))" "$T/sub" || fail "live push missing: $(cat "$T/sub")"
ok "SIGHUP: revoked device refused, connected desk kept, gets the directory and a live push"

rufd_stop
grep -q 'rufd stopped' "$T/rufd.log" || fail "no clean stop"
! grep -q 'ERROR: AddressSanitizer\|LeakSanitizer' "$T/rufd.log" || fail "sanitizer report"
ok "SIGTERM: clean exit"
echo "all $checks checks passed"
