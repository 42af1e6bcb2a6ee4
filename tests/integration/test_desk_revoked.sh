#!/usr/bin/env bash
# A revoked sender through the real programs (rufd on loopback, a fresh
# example PKI): device rc-sd-1 seals reports A and B into its outbox and
# delivers A; HQ revokes the device (time R) and publishes a directory; B
# reaches rufd before rufd reloads (the window every revocation has), so rufd
# accepts it at or after R. The desk then shows A as genuine with the note
# "sender revoked since R" and B flagged (kept, listed with the flag, in the
# JSON and the export, `show` exits 3), judged by rufd's signed accept time,
# never by the time the device wrote into its header. Report C, accepted
# before R too, has its receipt altered in rufd's store: with no accept time
# the desk can verify it is flagged as well. Once rufd reloads, the device's
# open session is closed and new ones are refused. A later revocation dated
# back before A flags A too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} ${HOLD_PID:-} 2>/dev/null || true; rm -rf "$T"' EXIT
rufd_setup
enroll rc-sd-1
enroll itf-darfur-desk
rufd_start
HQ=127.0.0.1:$PORT
R=$RUF_SRC/certs-example/reports
DEV=(--home "$T/home/rc-sd-1" --passphrase-file "$PASS")
desk() { ruf "$@" --home "$T/home/itf-darfur-desk" --passphrase-file "$PASS"; }
publish() { # out
	rufctl directory publish --dir "$C/hq" --passphrase-file "$PASS" \
		--policy "$RUF_SRC/certs-example/policy.txt" --expires 30d --hq-address "$HQ" \
		--out "$1" >/dev/null
}
reload() { # version
	cp "$T/dir.v$1" "$T/directory"
	kill -HUP "$RUFD_PID"
	for _ in $(seq 50); do
		grep -q "reloaded: directory version $1" "$T/rufd.log" && return 0
		sleep 0.1
	done
	fail "rufd did not reload version $1: $(tail -3 "$T/rufd.log")"
}
msgid() { sed 's/.*"message_id": "\([0-9a-f]*\)".*/\1/' "$1"; }
# The report from certs-example with another title (it has casualty figures).
python3 - "$R/sitrep-darfur.json" "$T" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for tag in ("A", "B", "C"):
    json.dump(dict(d, title=f"report {tag}"), open(f"{sys.argv[2]}/{tag}.json", "w"))
PY

# A: sealed and delivered while the device is in good standing.
ruf report "${DEV[@]}" --json --in "$T/A.json" >"$T/a" || fail "report A: $(cat "$T/a")"
A=$(msgid "$T/a")
ruf report "${DEV[@]}" --json --in "$T/C.json" >"$T/c" || fail "report C: $(cat "$T/c")"
CID=$(msgid "$T/c")
ruf send "${DEV[@]}" --hq "$HQ" --quiet --deadline 20s >"$T/s1" 2>&1 || fail "send A, C: $(cat "$T/s1")"
# B: sealed now, not yet sent (no link, say).
ruf report "${DEV[@]}" --json --in "$T/B.json" >"$T/b" || fail "report B: $(cat "$T/b")"
B=$(msgid "$T/b")
ok "the device seals A, B and C; A and C are delivered"

# Accept times are whole seconds: let one pass so A was accepted before R.
sleep 1.2
serial=$(rufctl cert list --dir "$C/hq" --json |
	grep -o '"serial": [0-9]*, "role": "device", "subject": "rc-sd-1"' | grep -o '[0-9]\+' | head -1)
rufctl cert revoke "$serial" --dir "$C/hq" --reason "laptop seized" >"$T/rv" ||
	fail "revoke: $(cat "$T/rv")"
RT=$(rufctl cert list --dir "$C/hq" --json | python3 -c '
import json, sys
print([c["revoked_at"] for c in json.load(sys.stdin) if c["subject"] == "rc-sd-1"][0])')
publish "$T/dir.v2"
rufctl inspect "$T/dir.v2" --root "$C/hq/root.cert" >"$T/insp" || fail "inspect"
grep -q "revoked     $serial *from $RT  laptop seized" "$T/insp" || fail "inspect: $(cat "$T/insp")"
ok "HQ revokes the device at $RT with a reason; the signed directory carries both"

# rufd has not reloaded yet: B is accepted, at or after R.
ruf send "${DEV[@]}" --hq "$HQ" --quiet --deadline 20s >"$T/s2" 2>&1 || fail "send B: $(cat "$T/s2")"
ok "B reaches rufd before it reloads the directory"

# A device session open across the reload is closed; new ones are refused.
conns() { grep -c "device rc-sd-1 #$serial: connected" "$T/rufd.log" || true; }
n0=$(conns)
tc rc-sd-1 -W 15 idle >"$T/hold" 2>&1 &
HOLD_PID=$!
for _ in $(seq 100); do [ "$(conns)" -gt "$n0" ] && break; sleep 0.1; done
[ "$(conns)" -gt "$n0" ] || fail "device session not open: $(tail -3 "$T/rufd.log")"
reload 2
rc=0
wait "$HOLD_PID" || rc=$?
HOLD_PID=
# 5: rufd sent an Error frame and closed (6 would be: still open at the deadline).
[ "$rc" = 5 ] || fail "the revoked device's open session was not closed (exit $rc): $(cat "$T/hold")"
grep -q 'certificate revoked: disconnecting' "$T/rufd.log" || fail "no disconnect logged"
rc=0
tc rc-sd-1 ping >"$T/out" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "a revoked device could open a session (exit $rc)"
grep -q 'handshake refused (revoked)' "$T/rufd.log" || fail "no refusal logged"
ok "after the reload rufd closes the device's open session and refuses new ones"

# C's signed receipt altered inside rufd's store (one byte of its body).
rufd_stop
python3 - "$T/state" "$CID" "$T/home/rc-sd-1/outbox/$CID.env" <<'PY' || fail "C's receipt not found in the store"
import hashlib, os, sys
mid = bytes.fromhex(sys.argv[2])
h = hashlib.blake2b(open(sys.argv[3], "rb").read(), digest_size=32).digest()
body = b"\x0a\x10" + mid + b"\x12\x20" + h  # WireReceiptBody fields 1 and 2
hits = 0
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        if f != "data.mdb":
            continue
        p = os.path.join(root, f)
        data = bytearray(open(p, "rb").read())
        i = data.find(body)
        while i >= 0:
            data[i + len(body) - 1] ^= 0x01
            hits += 1
            i = data.find(body, i + 1)
        if hits:
            with open(p, "r+b") as fp:
                fp.write(data)
                fp.flush()
                os.fsync(fp.fileno())
assert hits >= 1
PY
started=$(grep -c 'rufd started' "$T/rufd.log")
rufd -d -c "$T/rufd.conf" 2>>"$T/rufd.log" &
RUFD_PID=$!
for _ in $(seq 100); do
	[ "$(grep -c 'rufd started' "$T/rufd.log")" -gt "$started" ] && break
	sleep 0.1
done
[ "$(grep -c 'rufd started' "$T/rufd.log")" -gt "$started" ] || fail "rufd did not restart"

# The desk: A genuine with the note, B flagged, nothing dropped.
rc=0
desk desk pull --hq "$HQ" --idle 1 >"$T/pull" 2>"$T/pull.err" || rc=$?
[ "$rc" = 3 ] || fail "pull with a flagged report: exit $rc, wanted 3: $(cat "$T/pull" "$T/pull.err")"
grep -q 'installed directory version 2' "$T/pull.err" || fail "desk did not get v2: $(cat "$T/pull.err")"
grep -q '3 archived, 0 duplicates, 0 quarantined, 2 flagged' "$T/pull.err" ||
	fail "pull counts: $(cat "$T/pull.err")"
grep "report A" "$T/pull" | grep -q "\[sender revoked since $RT (laptop seized)\]" ||
	fail "A's pull line: $(cat "$T/pull")"
grep "report B" "$T/pull" | grep -q "\[FLAGGED, not genuine: sender revoked since $RT" ||
	fail "B's pull line: $(cat "$T/pull")"
grep "report C" "$T/pull" | grep -q "\[FLAGGED, not genuine: .*, no rufd accept time to trust\]" ||
	fail "C's pull line: $(cat "$T/pull")"
ok "pull archives all three: A with the revoked-since note, B flagged, C (bad receipt) flagged (exit 3)"

desk desk list >"$T/list" || fail "list"
[ "$(wc -l <"$T/list")" = 3 ] || fail "list: $(cat "$T/list")"
grep "report B" "$T/list" | grep -q 'FLAGGED' || fail "list B: $(cat "$T/list")"
grep "report A" "$T/list" | grep -v -q 'FLAGGED' || fail "list A: $(cat "$T/list")"
desk desk list --json >"$T/list.json" || fail "list --json"
python3 - "$T/list.json" "$A" "$B" "$RT" "$CID" <<'PY' || fail "list --json: $(cat "$T/list.json")"
import json, sys
recs = {r["message_id"]: r for r in json.load(open(sys.argv[1]))}
a, b, rt, c = recs[sys.argv[2]], recs[sys.argv[3]], sys.argv[4], recs[sys.argv[5]]
assert c["flagged"] is True and c["accepted"] is None, c
assert a["flagged"] is False and a["verification"] == "verified", a
assert a["sender_revoked_since"] == rt and a["revocation_reason"] == "laptop seized", a
assert a["accepted"] < rt, a
assert b["flagged"] is True and b["verification"] == "flagged", b
assert b["accepted"] >= rt and "revoked since " + rt in b["flag_reason"], b
# B's own header says it was created before R: that is not what counts.
assert b["created"] < rt, b
PY
ok "list: B shown with a flag; --json: flagged, accept time, revocation time and reason"

desk desk show "$A" >"$T/showA" || fail "show A: $(cat "$T/showA")"
grep -q "^note        sender revoked since $RT (laptop seized)" "$T/showA" || fail "show A: $(cat "$T/showA")"
grep -q 'accepted by rufd before its revocation' "$T/showA" || fail "show A verified line"
expect_exit 3 '\*\*\* FLAGGED, not genuine' desk desk show "$B"
grep -q '^verified    NO: FLAGGED' "$T/out" || fail "show B: $(cat "$T/out")"
rc=0
desk desk show "$B" --json >"$T/showB.json" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "show B --json exit $rc"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["flagged"] and r["verified_now"] is False' \
	"$T/showB.json" || fail "show B --json: $(cat "$T/showB.json")"
# A loose file carries no accept time: ruf open refuses it and says why.
expect_exit 3 "revoked since $RT (laptop seized)" desk open "$T/home/itf-darfur-desk/archive/$A.env"
ok "show: A genuine with the note (exit 0); B under a FLAGGED banner (exit 3); ruf open refuses the file"

desk desk export --format csv --out "$T/x.csv" 2>"$T/x.err" || fail "export csv: $(cat "$T/x.err")"
grep -q "$B: exported marked as flagged" "$T/x.err" || fail "export stderr: $(cat "$T/x.err")"
desk desk export --format jsonl >"$T/x.jsonl" 2>/dev/null || fail "export jsonl"
python3 - "$T/x.csv" "$T/x.jsonl" "$A" "$B" "$CID" <<'PY' || fail "export: $(cat "$T/x.csv")"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
a, b, c = sys.argv[3], sys.argv[4], sys.argv[5]
assert rows and {r["report_id"] for r in rows} == {a, b, c}, rows
for r in rows:
    assert r["flag"] == ("" if r["report_id"] == a else "flagged"), r
lines = [json.loads(l) for l in open(sys.argv[2])]
assert {l["message_id"]: l["flagged"] for l in lines} == {a: False, b: True, c: True}, lines
PY
ok "export: every figure kept, B's rows marked in the flag column and JSONL"

# A revocation dated back (the laptop was seized before A was sent) flags A too.
AT=$(python3 -c 'import json,sys; print([r for r in json.load(open(sys.argv[1])) if r["message_id"]==sys.argv[2]][0]["accepted"])' "$T/list.json" "$A")
rufctl cert revoke "$serial" --dir "$C/hq" --at "$AT" --reason "seized earlier" >"$T/rv2" ||
	fail "revoke --at: $(cat "$T/rv2")"
grep -q "from $AT" "$T/rv2" || fail "revoke --at: $(cat "$T/rv2")"
publish "$T/dir.v3"
reload 3
desk desk pull --hq "$HQ" --idle 1 >/dev/null 2>"$T/pull3.err" || true
grep -q 'installed directory version 3' "$T/pull3.err" || fail "desk v3: $(cat "$T/pull3.err")"
desk desk list >"$T/list3"
[ "$(grep -c FLAGGED "$T/list3")" = 3 ] || fail "after the back-dated revocation: $(cat "$T/list3")"
expect_exit 3 'FLAGGED' desk desk show "$A"
ok "a revocation dated back to A's accept time flags A as well (judged again at each use)"

rufd_stop
! grep -q 'ERROR: AddressSanitizer\|LeakSanitizer' "$T/rufd.log" || fail "sanitizer report"
echo "all $checks checks passed"
