#!/usr/bin/env bash
# ruf desk end to end: the real rufd on loopback with the example PKI; field
# devices rc-sd-1 and rc-cd-1 seal reports with different headers and submit
# them (tests/tools/ruf_libclient, over lib/client.h); each desk pulls and
# holds exactly what rufd routed to its queue; list/show/export (CSV parsed
# by python3's csv module, figures add up); a reply round trip to the RC's
# inbox and the surge view; a desk killed mid-stream gets everything once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} 2>/dev/null || true; rm -rf "$T"' EXIT
rufd_setup
for who in rc-sd-1 rc-cd-1 itf-darfur-desk sag-desk hrt-desk surge-desk rqr-east-africa-desk triage-desk; do
	enroll "$who"
done
DESKS="itf-darfur-desk sag-desk hrt-desk surge-desk rqr-east-africa-desk triage-desk"
rufd_start
HQ=127.0.0.1:$PORT
R=$RUF_SRC/certs-example/reports
desk() { local who=$1; shift; ruf "$@" --home "$T/home/$who" --passphrase-file "$PASS" --hq "$HQ"; }
deskl() { local who=$1; shift; ruf "$@" --home "$T/home/$who" --passphrase-file "$PASS"; }

# Reports with different headers.
mkdir -p "$T/r"
python3 - "$R" "$T/r" <<'PY'
import json, sys
src, out = sys.argv[1], sys.argv[2]
d = json.load(open(f"{src}/sitrep-darfur.json"))
json.dump(d, open(f"{out}/a-darfur-high.json", "w"))
low = dict(d, risk="low", escalate=False, title="low risk darfur, one figure, quoted \"name\", comma")
low["casualties"] = [dict(d["casualties"][0], killed=3, injured=1, missing=0,
                          source='Clinic "A", north ward')]
open(f"{out}/photo.bin", "wb").write(bytes(range(256)) * 300)
low["attachments"] = [{"path": "photo.bin", "name": "photo.jpg", "media_type": "image/jpeg"}]
json.dump(low, open(f"{out}/b-darfur-low.json", "w"))
quiet = dict(d, risk="low", escalate=False, title="darfur quiet week")
for k in ("casualties", "violation_categories"):
    quiet.pop(k, None)
json.dump(quiet, open(f"{out}/c-darfur-quiet.json", "w"))
json.dump(json.load(open(f"{src}/sitrep-kivu-early-warning.json")), open(f"{out}/d-kivu-ew.json", "w"))
json.dump(json.load(open(f"{src}/surge-darfur.json")), open(f"{out}/e-surge.json", "w"))
PY
: >"$T/sent"
submit() { # who report-name
	local id
	ruf seal --home "$T/home/$1" --passphrase-file "$PASS" --json --in "$T/r/$2.json" \
		--out "$T/r/$2.env" >"$T/seal.json" || fail "seal $2: $(cat "$T/seal.json")"
	id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["message_id"])' "$T/seal.json")
	ruf_libclient -i "$C/identities/$1" -p "$PASS" -D "$T/directory" -s "$HQ" \
		submit "$T/r/$2.env" >"$T/rc" || fail "submit $2: $(cat "$T/rc")"
	q=$(sed -n 's/.* queues=\([^ ]*\) .*/\1/p' "$T/rc")
	echo "$id $q $2" >>"$T/sent"
}
submit rc-sd-1 a-darfur-high
submit rc-sd-1 b-darfur-low
submit rc-sd-1 c-darfur-quiet
submit rc-cd-1 d-kivu-ew
submit rc-sd-1 e-surge
grep -q ' hrt,itf.darfur,sag a-darfur-high$' "$T/sent" || fail "routing: $(cat "$T/sent")"
grep -q ' itf.darfur b-darfur-low$' "$T/sent" || grep -q ' hrt,itf.darfur b-darfur-low$' "$T/sent" ||
	fail "routing b: $(cat "$T/sent")"
ok "five reports with different headers submitted; rufd's receipts name their queues"

# Each desk pulls its queues and holds exactly what was routed there.
for d in $DESKS; do
	desk "$d" desk pull --idle 1 >"$T/pull-$d" 2>"$T/pull-$d.err" ||
		fail "$d pull: $(cat "$T/pull-$d" "$T/pull-$d.err")"
	deskl "$d" desk list --json >"$T/list-$d.json" || fail "$d list"
done
python3 - "$T" $DESKS <<'PY' || fail "desk contents differ from routing"
import json, sys
t, desks = sys.argv[1], sys.argv[2:]
queue_of = {"itf-darfur-desk": "itf.darfur", "sag-desk": "sag", "hrt-desk": "hrt",
            "surge-desk": "surge", "rqr-east-africa-desk": "rqr.east-africa",
            "triage-desk": "triage"}
sent = [l.split() for l in open(f"{t}/sent")]
for d in desks:
    q = queue_of[d]
    want = sorted(i for i, qs, _ in sent if q in qs.split(","))
    got = json.load(open(f"{t}/list-{d}.json"))
    ids = sorted(r["message_id"] for r in got)
    if ids != want:
        print(d, "want", want, "got", ids); sys.exit(1)
    for r in got:
        assert r["verification"] == "verified" and r["queues"] == [q], r
        assert r["sender"]["subject"] in ("rc-sd-1", "rc-cd-1"), r
PY
ok "every desk's archive holds exactly the messages rufd routed to its queue, verified"

grep -q 'darfur .*sitrep high .*rc-sd-1' "$T/pull-hrt-desk" || fail "summary: $(cat "$T/pull-hrt-desk")"
desk hrt-desk desk pull --idle 1 >"$T/again" 2>&1 || fail "second pull"
grep -q '0 archived, 0 duplicates' "$T/again" || fail "second pull: $(cat "$T/again")"
ok "pull prints one line per report; a second pull gets nothing (acked only once archived)"

HIGH=$(awk '$3 == "a-darfur-high" {print $1}' "$T/sent")
deskl hrt-desk desk show "${HIGH:0:8}" >"$T/show" || fail "show: $(cat "$T/show")"
grep -q 'sender      rc-sd-1, device' "$T/show" && grep -q 'Um Sidr' "$T/show" &&
	grep -q 'verified    verified at receipt' "$T/show" || fail "show: $(cat "$T/show")"
deskl hrt-desk desk show "$HIGH" --json | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["report"]["kind"]=="sitrep" and r["verified_now"]' ||
	fail "show --json"
LOW=$(awk '$3 == "b-darfur-low" {print $1}' "$T/sent")
mkdir "$T/att"
deskl itf-darfur-desk desk show "$LOW" --save-attachments "$T/att" >"$T/show" || fail "show att: $(cat "$T/show")"
cmp -s "$T/att/photo.jpg" "$T/r/photo.bin" || fail "saved attachment differs"
grep -q 'photo.jpg  76800 bytes  blake2b [0-9a-f]* (checked)  saved to' "$T/show" || fail "show att: $(cat "$T/show")"
expect_exit 1 "not found" deskl sag-desk desk show 0000
ok "show renders header, sender, verification, the casualty table and saves attachments (hash checked); --json parses"

deskl itf-darfur-desk desk list --risk low >"$T/l" || fail "list filter"
[ "$(wc -l <"$T/l")" = 2 ] || fail "--risk low: $(cat "$T/l")"
deskl itf-darfur-desk desk list --kind surge --json | python3 -c 'import json,sys; r=json.load(sys.stdin); assert len(r)==1 and r[0]["kind"]=="surge"' ||
	fail "--kind surge"
deskl itf-darfur-desk desk list --sender rc-cd-1 >"$T/l"; [ ! -s "$T/l" ] || fail "--sender"
ok "list filters by risk, kind and sender"

# CSV: parsed by python's csv module; the figures add up to what was sent.
deskl itf-darfur-desk desk export --format csv --out "$T/cas.csv" || fail "export csv"
deskl itf-darfur-desk desk export --format jsonl >"$T/all.jsonl" || fail "export jsonl"
python3 - "$T" <<'PY' || fail "export does not add up"
import csv, json, sys
t = sys.argv[1]
rows = list(csv.DictReader(open(f"{t}/cas.csv", newline="")))
want = {}
for name in ("a-darfur-high", "b-darfur-low"):
    for c in json.load(open(f"{t}/r/{name}.json")).get("casualties", []):
        for k in ("killed", "injured", "missing", "detained"):
            want[k] = want.get(k, 0) + c.get(k, 0)
got = {k: sum(int(r[k]) for r in rows) for k in want}
assert got == want, (got, want)
assert len(rows) == 4, rows
assert any(r["source"] == 'Clinic "A", north ward' for r in rows)
assert all(r["situation"] == "darfur" and len(r["report_id"]) == 32 for r in rows)
lines = [json.loads(l) for l in open(f"{t}/all.jsonl")]
assert len(lines) == 4 and all(l["verification"] == "verified" and l["report"]["kind"] in ("sitrep", "surge") for l in lines)
PY
ok "export: CSV (RFC 4180 quoting) parses and its figures add up; JSONL has every report"

# Replies: the surge desk approves; the RC sees it in its inbox.
SURGE=$(awk '$3 == "e-surge" {print $1}' "$T/sent")
desk surge-desk desk reply "$SURGE" --status under-review --text "Roster check started" >"$T/rp" ||
	fail "reply: $(cat "$T/rp")"
grep -q 'to inbox.rc-sd-1 submitted' "$T/rp" || fail "reply: $(cat "$T/rp")"
desk surge-desk desk reply "$SURGE" --status approved --text "4 officers, start 16 Nov" >"$T/rp" ||
	fail "reply 2: $(cat "$T/rp")"
deskl surge-desk desk surge >"$T/sv" || fail "surge view"
grep -q "approved" "$T/sv" || fail "surge view: $(cat "$T/sv")"
deskl surge-desk desk surge "${SURGE:0:10}" >"$T/sv" || fail "surge history"
grep -q 'under-review *by surge-desk' "$T/sv" && grep -q 'approved *by surge-desk' "$T/sv" ||
	fail "surge history: $(cat "$T/sv")"
ruf inbox --home "$T/home/rc-sd-1" --passphrase-file "$PASS" --hq "$HQ" --idle 1 >"$T/ib" ||
	fail "inbox: $(cat "$T/ib")"
grep -q 'from surge-desk *approved *re .*4 officers, start 16 Nov' "$T/ib" || fail "inbox: $(cat "$T/ib")"
grep -q 'under-review' "$T/ib" || fail "inbox: $(cat "$T/ib")"
ruf inbox --home "$T/home/rc-sd-1" --passphrase-file "$PASS" --offline --json |
	python3 -c 'import json,sys; r=json.load(sys.stdin); assert len(r)==2 and r[-1]["status"]=="approved" and r[-1]["sender"]["role"]=="desk"' ||
	fail "inbox --json"
ruf inbox --home "$T/home/rc-cd-1" --passphrase-file "$PASS" --hq "$HQ" --idle 1 >"$T/ib2" || fail "inbox cd"
grep -q 'no replies' "$T/ib2" || fail "another device sees the reply: $(cat "$T/ib2")"
expect_exit 2 "status" deskl surge-desk desk reply "$SURGE" --status maybe
ok "reply round trip: surge desk -> rufd -> inbox.rc-sd-1; the RC opens it; surge view shows the history"
echo "PASS: $checks checks"
