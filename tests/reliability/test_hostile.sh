#!/usr/bin/env bash
# Hostile peers against a real rufd on loopback (tests/reliability/hostile.c:
# one named case per misbehaviour), while a well-behaved device submits and
# pings beside them. At the end every report the good device got a receipt
# for is delivered exactly once, and rufd is still up and answers SIGTERM.
. "$RUF_SRC/tests/integration/lib.sh"
. "$RUF_SRC/tests/integration/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} ${GOOD:-} 2>/dev/null || true; rm -rf "$T"' EXIT
RUFD_EXTRA_CONF="max_connections = 32
max_envelope = 1m
submissions_per_minute = 100000" rufd_setup
enroll rc-sd-1
R=$RUF_SRC/certs-example/reports

# The good device's reports, sealed beforehand.
K=${HOSTILE_GOOD_REPORTS:-10}
for i in $(seq "$K"); do
	ruf seal --home "$T/home/rc-sd-1" --passphrase-file "$PASS" --json \
		--in "$R/sitrep-darfur.json" --out "$T/g$i.env" | grep -o '"message_id": "[0-9a-f]*"' |
		grep -o '[0-9a-f]\{32\}' >"$T/g$i.id"
done
head -c 32M /dev/zero >"$T/bomb.bin"
rufd_start

# revoke_desk: what an operator does to cut off a stolen desk laptop.
cat >"$T/revoke.sh" <<SH
#!/usr/bin/env bash
set -e
export PATH="$RUF_BIN:\$PATH"
serial=\$(rufctl cert list --dir "$C/hq" --json |
	grep -o '"serial": [0-9]*, "role": "desk", "subject": "triage-desk"' | grep -o '[0-9]\+' | head -1)
rufctl cert revoke "\$serial" --dir "$C/hq" --reason "hostile test" >/dev/null
rufctl directory publish --dir "$C/hq" --passphrase-file "$PASS" \
	--policy "$RUF_SRC/certs-example/policy.txt" --expires 30d \
	--hq-address "127.0.0.1:$PORT" --out "$T/directory.new" >/dev/null
cp "$T/directory.new" "$T/directory"
kill -HUP $RUFD_PID
for _ in \$(seq 50); do grep -q 'reloaded: directory version 2' "$T/rufd.log" && exit 0; sleep 0.1; done
exit 1
SH
chmod +x "$T/revoke.sh"

# The well-behaved device: submits its reports (retrying as a real client
# does when refused, e.g. during the connection flood) and pings, until the
# hostile run is over.
(
	i=1 pings=0 pingfail=0
	while [ ! -e "$T/hostile.done" ] || [ "$i" -le "$K" ]; do
		if [ "$i" -le "$K" ]; then
			if tc rc-sd-1 submit "$T/g$i.env" >"$T/gr$i" 2>&1; then
				i=$((i + 1))
			else
				echo "retry $i: $(tail -1 "$T/gr$i")" >>"$T/good.log"
			fi
		fi
		if tc rc-sd-1 ping >/dev/null 2>&1; then pings=$((pings + 1)); else pingfail=$((pingfail + 1)); fi
		sleep 1
		[ -e "$T/hostile.done" ] && [ "$i" -gt "$K" ] && break
	done
	echo "pings=$pings pingfail=$pingfail" >>"$T/good.log"
) &
GOOD=$!

rc=0
ruf_hostile -s "127.0.0.1:$PORT" -C "$C" -D "$T/directory" -p "$PASS" \
	-r "$R/sitrep-darfur.json" -H 2 -M 32 -E 1048576 -b "$T/bomb.bin" -P "$RUFD_PID" \
	-X "$T/revoke.sh" "$@" | tee "$T/hostile.out" || rc=$?
touch "$T/hostile.done"
wait "$GOOD"
cat "$T/good.log" 2>/dev/null || true
[ "$rc" = 0 ] || { tail -30 "$T/rufd.log" >&2; fail "hostile cases failed"; }
n=$(grep -c '^ok ' "$T/hostile.out")
[ "$n" -ge 50 ] || [ $# -gt 0 ] || fail "only $n hostile cases ran"
ok "$n hostile peers each answered, closed, and rufd kept serving"

kill -0 "$RUFD_PID" || fail "rufd died"
for i in $(seq "$K"); do
	grep -q '^receipt' "$T/gr$i" || fail "good report $i never receipted: $(cat "$T/gr$i")"
done
rc=0
tc itf-darfur-desk -n 100000 -t 3 subscribe itf.darfur >"$T/d" 2>&1 || rc=$?
[ "$rc" = 6 ] || [ "$rc" = 0 ] || fail "desk: $(tail -3 "$T/d")"
for i in $(seq "$K"); do
	c=$(grep -c "id=$(cat "$T/g$i.id") " "$T/d" || true)
	[ "$c" = 1 ] || fail "good report $i delivered $c times"
done
ok "the concurrent good device: $K reports receipted, each delivered exactly once to itf.darfur"
grep -q 'ERROR: AddressSanitizer\|runtime error' "$T/rufd.log" && fail "sanitizer report in rufd.log"
rufd_stop
ok "rufd stops cleanly after the hostile run"
echo "all $checks checks passed"
