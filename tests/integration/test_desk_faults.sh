#!/usr/bin/env bash
# ruf desk under faults, with the real rufd on loopback: a desk killed
# (SIGKILL) mid-stream and restarted ends with every report archived exactly
# once; `ruf desk follow` reconnects by itself after rufd restarts; an
# envelope damaged inside rufd's LMDB store is quarantined with its reason,
# never archived or shown as genuine; a queue the desk holds no key for, or
# its certificate does not permit, is named.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} ${FOLLOW_PID:-} ${PULL_PID:-} 2>/dev/null || true; rm -rf "$T"' EXIT
rufd_setup
for who in rc-sd-1 itf-darfur-desk sag-desk; do
	enroll "$who"
done
rufd_start
HQ=127.0.0.1:$PORT
R=$RUF_SRC/certs-example/reports
desk() { local who=$1; shift; ruf "$@" --home "$T/home/$who" --passphrase-file "$PASS" --hq "$HQ"; }
deskl() { local who=$1; shift; ruf "$@" --home "$T/home/$who" --passphrase-file "$PASS"; }

# N low-risk darfur reports: each goes to itf.darfur (and hrt).
N=12
mkdir -p "$T/r"
python3 - "$R" "$T/r" "$N" <<'PY'
import json, sys
d = json.load(open(f"{sys.argv[1]}/sitrep-darfur.json"))
for k in ("casualties", "violation_categories"):
    d.pop(k, None)
for i in range(int(sys.argv[3])):
    json.dump(dict(d, risk="low", escalate=False, title=f"quiet week {i}"),
              open(f"{sys.argv[2]}/q{i}.json", "w"))
PY
submit() { # who name
	ruf seal --home "$T/home/$1" --passphrase-file "$PASS" --in "$T/r/$2.json" \
		--out "$T/r/$2.env" >/dev/null || fail "seal $2"
	ruf_libclient -i "$C/identities/$1" -p "$PASS" -D "$T/directory" -s "$HQ" \
		submit "$T/r/$2.env" >"$T/rc" || fail "submit $2: $(cat "$T/rc")"
	grep -q 'queues=.*itf.darfur' "$T/rc" || fail "routing $2: $(cat "$T/rc")"
}
for i in $(seq 0 $((N - 1))); do submit rc-sd-1 "q$i"; done

# Killed mid-stream (wherever it is), then a plain pull: everything, once.
desk itf-darfur-desk desk pull --idle 5 >"$T/p1" 2>&1 &
PULL_PID=$!
for _ in $(seq 200); do
	[ "$(grep -c 'quiet week' "$T/p1" || true)" -ge 3 ] && break
	kill -0 "$PULL_PID" 2>/dev/null || break
	sleep 0.05
done
kill -9 "$PULL_PID" 2>/dev/null || true
wait "$PULL_PID" 2>/dev/null || true
PULL_PID=
desk itf-darfur-desk desk pull --idle 1 >"$T/p2" 2>"$T/p2.err" || fail "pull after kill: $(cat "$T/p2.err")"
deskl itf-darfur-desk desk list --json >"$T/l.json" || fail "list"
python3 - "$T/l.json" "$N" <<'PY' || fail "after the kill the archive is not exactly the $N reports"
import json, sys
recs = json.load(open(sys.argv[1]))
titles = sorted(r["title"] for r in recs)
assert len(recs) == int(sys.argv[2]), len(recs)
assert len(set(r["message_id"] for r in recs)) == len(recs)
assert all(r["verification"] == "verified" for r in recs)
PY
desk itf-darfur-desk desk pull --idle 1 >"$T/p3" 2>&1 || fail "third pull"
grep -q '0 archived, 0 duplicates' "$T/p3" || fail "third pull: $(cat "$T/p3")"
ok "a desk killed mid-stream and pulling again holds all $N reports exactly once; nothing is left queued"

# follow: stays connected; reconnects after rufd restarts.
desk sag-desk desk follow >"$T/f" 2>"$T/f.err" &
FOLLOW_PID=$!
python3 - "$R" "$T/r" <<'PY'
import json, sys
d = json.load(open(f"{sys.argv[1]}/sitrep-darfur.json"))
json.dump(dict(d, title="before restart"), open(f"{sys.argv[2]}/h1.json", "w"))
json.dump(dict(d, title="after restart"), open(f"{sys.argv[2]}/h2.json", "w"))
PY
sealsub() {
	ruf seal --home "$T/home/rc-sd-1" --passphrase-file "$PASS" --in "$T/r/$1.json" \
		--out "$T/r/$1.env" >/dev/null || fail "seal $1"
	ruf_libclient -i "$C/identities/rc-sd-1" -p "$PASS" -D "$T/directory" -s "$HQ" \
		submit "$T/r/$1.env" >"$T/rc" || fail "submit $1: $(cat "$T/rc")"
}
waitfor() { # pattern file
	for _ in $(seq 600); do grep -q "$1" "$2" && return 0; sleep 0.1; done
	cat "$2" "$2.err" >&2; fail "no '$1' in $2"
}
sealsub h1
waitfor "before restart" "$T/f"
rufd_stop
rufd_start
sealsub h2
waitfor "after restart" "$T/f"
grep -q "reconnecting in" "$T/f.err" || fail "no reconnect logged: $(cat "$T/f.err")"
kill "$FOLLOW_PID"; wait "$FOLLOW_PID" 2>/dev/null || true; FOLLOW_PID=
ok "follow receives live, and reconnects by itself (back-off with jitter) after rufd restarts"

# An envelope damaged inside rufd's store: quarantined, never archived.
python3 - "$R" "$T/r" <<'PY'
import json, sys
d = json.load(open(f"{sys.argv[1]}/sitrep-darfur.json"))
for k in ("casualties", "violation_categories"):
    d.pop(k, None)
json.dump(dict(d, risk="low", escalate=False, title="to be damaged"), open(f"{sys.argv[2]}/bad.json", "w"))
PY
submit rc-sd-1 bad
rufd_stop
python3 - "$T/state" "$T/r/bad.env" <<'PY' || fail "could not find the envelope in the store"
import os, sys
env = open(sys.argv[2], "rb").read()
hits = 0
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        if f != "data.mdb":
            continue
        p = os.path.join(root, f)
        data = bytearray(open(p, "rb").read())
        i = data.find(env)
        while i >= 0:
            data[i + len(env) - 100] ^= 0x01  # inside the signature
            hits += 1
            i = data.find(env, i + 1)
        if hits:
            with open(p, "r+b") as fp:
                fp.write(data)
                fp.flush()
                os.fsync(fp.fileno())
assert hits >= 1, "envelope bytes not found"
PY
rufd_start
rc=0
desk itf-darfur-desk desk pull --idle 1 >"$T/q" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "pull of a damaged envelope: exit $rc: $(cat "$T/q")"
grep -q 'QUARANTINED .* ENV_SIGNATURE' "$T/q" || fail "no quarantine line: $(cat "$T/q")"
ls "$T/home/itf-darfur-desk/quarantine/"*.reason >/dev/null || fail "no reason file"
grep -q ENV_SIGNATURE "$T/home/itf-darfur-desk/quarantine/"*.reason || fail "reason"
deskl itf-darfur-desk desk list >"$T/l" || fail "list"
grep -q "to be damaged" "$T/l" && fail "a damaged report is listed as genuine"
desk itf-darfur-desk desk pull --idle 1 >"$T/q2" 2>&1 || fail "pull after quarantine: $(cat "$T/q2")"
grep -q '0 archived, 0 duplicates, 0 quarantined' "$T/q2" || fail "quarantined one came again: $(cat "$T/q2")"
ok "an envelope damaged in rufd's store is quarantined with its reason (exit 3), not listed, acked once"

# A rotated queue key the desk does not hold yet: named, not acked, not quarantined.
mkdir "$T/oldq" && mv "$C/hq/queues/itf.darfur."* "$T/oldq/" # rufctl has no rotate verb yet
rufctl queue create itf.darfur --epoch 2 --dir "$C/hq" --new-passphrase-file "$PASS" \
	--kdf interactive >/dev/null
rufctl directory publish --dir "$C/hq" --passphrase-file "$PASS" \
	--policy "$RUF_SRC/certs-example/policy.txt" --expires 30d --hq-address "$HQ" \
	--out "$T/directory.new" >/dev/null
cp "$T/directory.new" "$T/directory"
kill -HUP "$RUFD_PID"
for _ in $(seq 50); do grep -q 'reloaded: directory version 2' "$T/rufd.log" && break; sleep 0.1; done
ruf directory update "$T/directory.new" --home "$T/home/rc-sd-1" >/dev/null || fail "device directory update"
python3 - "$R" "$T/r" <<'PY'
import json, sys
d = json.load(open(f"{sys.argv[1]}/sitrep-darfur.json"))
for k in ("casualties", "violation_categories"):
    d.pop(k, None)
json.dump(dict(d, risk="low", escalate=False, title="epoch two"), open(f"{sys.argv[2]}/e2.json", "w"))
PY
submit rc-sd-1 e2
for n in 1 2; do
	expect_exit 1 "lacks the key for queue itf.darfur" desk itf-darfur-desk desk pull --idle 1
done
[ "$(ls "$T/home/itf-darfur-desk/quarantine/"*.env | wc -l)" = 1 ] || fail "a missing key was quarantined"
ok "a delivery sealed to a queue key the desk lacks names the queue, stays queued (twice), is not quarantined"

expect_exit 1 "does not permit" desk sag-desk desk pull hrt
expect_exit 2 "" deskl sag-desk desk export --format xml
ok "a queue outside the desk certificate is named; bad options are usage errors"
echo "PASS: $checks checks"
