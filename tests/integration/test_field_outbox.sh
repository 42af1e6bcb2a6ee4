#!/usr/bin/env bash
# The field client end to end, with a real rufd on loopback: compose offline
# (flags, --in, --edit), the outbox survives SIGKILL of `ruf report`, damaged
# entries are quarantined without blocking the others, `ruf send` delivers
# once rufd is up, a verified receipt destroys the content key wrap, an
# upload cut mid-way resumes from the bytes rufd holds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} ${SEND_PID:-} 2>/dev/null || true; rm -rf "$T"' EXIT
rufd_setup
enroll rc-sd-1
HOME_SD=$T/home/rc-sd-1
OB=$HOME_SD/outbox
H=(--home "$HOME_SD" --passphrase-file "$PASS")
R=$RUF_SRC/certs-example/reports

# --- compose with rufd down -------------------------------------------------
ruf report "${H[@]}" --risk elevated --title "Checkpoint closures" --summary "Two roads closed." \
	--casualty killing:3:4:Karkor >"$T/c1" || fail "report: $(cat "$T/c1")"
grep -q 'sitrep .* (elevated, sequence 1, .*sealed to .*: in the outbox, pending' "$T/c1" ||
	fail "compose output: $(cat "$T/c1")"
ID1=$(awk '{print $2}' "$T/c1")
ruf surge "${H[@]}" --expertise protection --staff 2 --days 30 --justification "One officer." \
	>"$T/c2" || fail "surge: $(cat "$T/c2")"
ID2=$(awk '{print $2}' "$T/c2")
ruf report "${H[@]}" --json --in "$R/sitrep-darfur.json" >"$T/c3" || fail "--in: $(cat "$T/c3")"
ID3=$(sed 's/.*"message_id": "\([0-9a-f]*\)".*/\1/' "$T/c3")
for id in "$ID1" "$ID2" "$ID3"; do
	[ -s "$OB/$id.env" ] && [ -s "$OB/$id.meta" ] && [ -s "$OB/$id.key" ] ||
		fail "entry $id incomplete: $(ls "$OB")"
	! grep -q "Checkpoint closures" "$OB/$id".* || fail "plaintext in the outbox"
done
ok "compose offline: report, surge and --in sealed into the outbox (env, key wrap, meta)"

expect_exit 1 "title: required" ruf report "${H[@]}" --risk low --summary s
expect_exit 1 "risk" ruf report "${H[@]}" --risk bogus --title t --summary s
expect_exit 1 "staff_count" ruf surge "${H[@]}" --expertise protection --days 3 --justification j
[ "$(ls "$OB"/*.meta | wc -l)" = 3 ] || fail "a refused report left an entry"
ok "validation errors name the field and leave nothing in the outbox"

cat >"$T/editor.sh" <<'ED'
#!/bin/sh
# a scripted $EDITOR: fills the template's title and summary
python3 - "$1" <<'PY'
import json, sys
p = sys.argv[1]
r = json.load(open(p))
assert r["situation"] == "darfur" and r["country"] == "sd", r
r["title"] = "Edited in the template"
r["summary"] = "Written in the editor."
r["risk"] = "low"
json.dump(r, open(p, "w"))
PY
ED
chmod +x "$T/editor.sh"
EDITOR=$T/editor.sh ruf report "${H[@]}" --edit --keep-draft >"$T/c4" || fail "--edit: $(cat "$T/c4")"
ID4=$(awk '{print $2}' "$T/c4")
[ -s "$OB/$ID4.draft" ] || fail "--keep-draft kept nothing"
! grep -q "Written in the editor" "$OB/$ID4.draft" || fail "the draft is in the clear"
ok "--edit opens a template pre-filled from the certificate; --keep-draft keeps it sealed"

ruf outbox --home "$HOME_SD" >"$T/l" || fail "outbox"
[ "$(grep -c '^pending' "$T/l")" = 4 ] || fail "outbox list: $(cat "$T/l")"
head -1 "$T/l" | grep -q " high " || fail "not highest risk first: $(cat "$T/l")"
ok "ruf outbox lists four pending entries, highest risk first"

expect_exit 1 "not delivered" ruf send "${H[@]}" --hq "127.0.0.1:$PORT" --deadline 2
ok "ruf send with HQ down retries with back-off until the deadline, then fails"

# --- SIGKILL during compose: what returned is there ------------------------
head -c $((16 << 20)) /dev/urandom >"$T/big.bin"
for i in 1 2 3 4 5 6; do
	ruf report "${H[@]}" --risk low --title "kill $i" --summary s --attach "$T/big.bin" \
		>"$T/k$i" 2>&1 &
	pid=$!
	sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done
ruf outbox --home "$HOME_SD" >"$T/l" 2>"$T/e" || fail "outbox after kills"
! grep -q damaged "$T/e" || fail "a killed compose left a damaged entry: $(cat "$T/e")"
returned=0
for i in 1 2 3 4 5 6; do
	if grep -q pending "$T/k$i"; then
		returned=$((returned + 1))
		id=$(awk '{print $2}' "$T/k$i")
		grep -q "^pending *$id" "$T/l" || fail "compose $i returned $id but it is gone"
	fi
done
ok "SIGKILL of ruf report at random points: every report that returned ($returned/6) is in the outbox"

# --- a damaged entry is quarantined and blocks nothing ----------------------
ruf report "${H[@]}" --risk low --title "to damage" --summary s >"$T/c5"
ID5=$(awk '{print $2}' "$T/c5")
printf 'garbage' >"$OB/$ID5.meta"
ruf outbox --home "$HOME_SD" >"$T/l" 2>"$T/e" || fail "outbox with a damaged entry"
grep -q "outbox entry $ID5 is damaged" "$T/e" || fail "no quarantine message: $(cat "$T/e")"
[ -e "$OB/quarantine/$ID5.meta" ] && [ ! -e "$OB/$ID5.meta" ] || fail "not quarantined"
grep -q "$ID1" "$T/l" || fail "the damaged entry hid the others"
ok "a damaged entry is moved to quarantine/ with a message; the others stay listed"

# --- rufd up: send delivers, receipts destroy the key wraps -----------------
rufd_start
ruf send "${H[@]}" --hq "127.0.0.1:$PORT" >"$T/s" 2>&1 || fail "send: $(cat "$T/s")"
grep -q "delivered $ID3: receipt verified, store seq [0-9]*, queues hrt,itf.darfur,sag" "$T/s" ||
	fail "send output: $(cat "$T/s")"
grep -q "delivered $ID2: .*queues itf.darfur,surge" "$T/s" || fail "surge: $(cat "$T/s")"
grep -q "delivered $ID1: .*queues hrt,itf.darfur," "$T/s" || fail "elevated: $(cat "$T/s")"
ruf outbox --home "$HOME_SD" >"$T/l"
grep -q '^pending\|^in-flight' "$T/l" && fail "still pending: $(cat "$T/l")"
[ "$(ls "$OB"/*.key 2>/dev/null | wc -l)" = 0 ] || fail "key wraps left: $(ls "$OB")"
grep -q "^delivered $ID1 .*receipt: store seq" "$T/l" || fail "outbox: $(cat "$T/l")"
ok "ruf send delivers what was composed offline; receipts verified; every key wrap destroyed"

tc hrt-desk -n 1 -o "$T" subscribe hrt >"$T/d" || fail "desk: $(cat "$T/d")"
grep -q "deliver queue=hrt seq=1" "$T/d" || fail "desk got nothing: $(cat "$T/d")"
ok "the routed desk receives the report"

# --- a cut mid-upload resumes where rufd's durable copy ends ---------------
head -c $((24 << 20)) /dev/urandom >"$T/huge.bin"
ruf report "${H[@]}" --risk high --title "big" --summary s --attach "$T/huge.bin" >"$T/c6"
ID6=$(awk '{print $2}' "$T/c6")
ruf send "${H[@]}" --hq "127.0.0.1:$PORT" --chunk 2048 >"$T/s1" 2>&1 &
SEND_PID=$!
held=0
for _ in $(seq 600); do
	# rufd spools a partial upload as spool/<id>.<offered length>.
	held=$( (cat "$T/state/spool/$ID6".* 2>/dev/null || true) | wc -c)
	[ "$held" -gt $((256 << 10)) ] && break
	sleep 0.05
done
kill -9 "$SEND_PID" 2>/dev/null || true
wait "$SEND_PID" 2>/dev/null || true
SEND_PID=
[ "$held" -gt 0 ] || fail "rufd held nothing before the cut"
grep -q "delivered $ID6" "$T/s1" && fail "the upload finished before the cut; make it bigger"
ruf send "${H[@]}" --hq "127.0.0.1:$PORT" --deadline 120 >"$T/s2" 2>&1 || fail "resume: $(cat "$T/s2")"
at=$(sed -n "s/^delivered $ID6: .*(resumed at \([0-9]*\) of \([0-9]*\) bytes)/\1/p" "$T/s2")
[ -n "$at" ] && [ "$at" -ge "$held" ] || fail "resumed at '$at', rufd held $held: $(cat "$T/s2")"
ok "a send killed mid-upload resumes at byte $at (rufd held $held at the cut)"

rufd_stop
echo "all $checks checks passed"
