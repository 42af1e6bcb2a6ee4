#!/usr/bin/env bash
# End to end through the real programs: rufctl builds the PKI, ruf seals as a
# field device and opens as each desk; every wrong identity is refused with
# the right error.
. "$(dirname "$0")/lib.sh"
make_pki
for who in rc-sd-1 rc-cd-1 itf-darfur-desk sag-desk hrt-desk surge-desk triage-desk \
	rqr-east-africa-desk; do
	enroll "$who"
done
ok "example PKI generated and 8 identities enrolled"

R=$RUF_SRC/certs-example/reports
seal() { # home in out
	ruf seal --home "$T/home/$1" --passphrase-file "$PASS" --in "$2" --out "$3"
}
seal rc-sd-1 "$R/sitrep-darfur.json" "$T/darfur.env" >"$T/sealed"
grep -q 'hrt' "$T/sealed" && grep -q 'sag' "$T/sealed" && grep -q 'itf.darfur' "$T/sealed" ||
	fail "darfur report not routed to itf.darfur, sag and hrt: $(cat "$T/sealed")"
ok "sitrep routed to itf.darfur, sag, hrt"

for desk in hrt-desk sag-desk itf-darfur-desk; do
	ruf open --home "$T/home/$desk" --passphrase-file "$PASS" "$T/darfur.env" >"$T/opened" ||
		fail "$desk could not open"
	grep -q 'rc-sd-1' "$T/opened" || fail "$desk: sender not shown"
	grep -q 'verified' "$T/opened" || fail "$desk: no verification line"
done
ok "each destination desk opens it and sees the verified sender"

ruf open --home "$T/home/hrt-desk" --passphrase-file "$PASS" --json "$T/darfur.env" >"$T/j"
python3 - "$T/j" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["verified"] is True, d
assert d["sender"]["subject"] == "rc-sd-1", d
assert d["report"]["kind"] == "sitrep", d
assert d["opened_as"] == "hrt", d
PY
ok "ruf open --json gives the report and verification"

for desk in surge-desk triage-desk rqr-east-africa-desk; do
	expect_exit 3 ENV_NOT_RECIPIENT ruf open --home "$T/home/$desk" --passphrase-file "$PASS" \
		"$T/darfur.env"
done
ok "desks the report was not routed to are refused (ENV_NOT_RECIPIENT)"

: >"$T/empty.env"
expect_exit 3 'ENV_FORMAT' ruf open --home "$T/home/hrt-desk" --passphrase-file "$PASS" \
	"$T/empty.env"
expect_exit 1 'INVAL' ruf open --home "$T/home/hrt-desk" --passphrase-file "$PASS" /dev/null
cp "$T/darfur.env" "$T/flipped.env"
size=$(stat -c %s "$T/flipped.env")
for off in 0 9 40 $((size / 2)) $((size - 70)) $((size - 1)); do
	cp "$T/darfur.env" "$T/flipped.env"
	printf '\xff' | dd of="$T/flipped.env" bs=1 seek="$off" conv=notrunc status=none
	cmp -s "$T/darfur.env" "$T/flipped.env" && printf '\x00' |
		dd of="$T/flipped.env" bs=1 seek="$off" conv=notrunc status=none
	expect_exit 3 'ENV_' ruf open --home "$T/home/hrt-desk" --passphrase-file "$PASS" \
		"$T/flipped.env"
done
head -c $((size - 1)) "$T/darfur.env" >"$T/short.env"
expect_exit 3 'ENV_' ruf open --home "$T/home/hrt-desk" --passphrase-file "$PASS" "$T/short.env"
ok "a flipped byte anywhere, or a truncation, is refused"

expect_exit 1 'passphrase' ruf open --home "$T/home/hrt-desk" --passphrase-file /dev/null \
	"$T/darfur.env"
echo wrong >"$T/wrongpass"
expect_exit 1 'wrong passphrase' ruf open --home "$T/home/hrt-desk" \
	--passphrase-file "$T/wrongpass" "$T/darfur.env"
ok "missing and wrong passphrases give a clear error"

# Surge request and early warning route where the example policy says.
seal rc-sd-1 "$R/surge-darfur.json" "$T/surge.env" >"$T/sealed"
grep -q 'surge' "$T/sealed" || fail "surge request not routed to surge"
ruf open --home "$T/home/surge-desk" --passphrase-file "$PASS" "$T/surge.env" >/dev/null
seal rc-cd-1 "$R/sitrep-kivu-early-warning.json" "$T/kivu.env" >"$T/sealed"
grep -q 'itf.kivu' "$T/sealed" && grep -q 'rqr.great-lakes' "$T/sealed" ||
	fail "kivu early warning misrouted: $(cat "$T/sealed")"
ok "surge request to surge; early warning to itf.kivu and rqr.great-lakes"

# A device may only report on its own situations and country.
expect_exit 1 "not enrolled to report on situation 'darfur'" \
	ruf seal --home "$T/home/rc-cd-1" --passphrase-file "$PASS" --in "$R/sitrep-darfur.json" \
	--out "$T/x.env"
[ ! -e "$T/x.env" ] || fail "refused seal left a file"
ok "a device cannot report on a situation it is not enrolled for"

# Bad report JSON names the field.
sed 's/"summary"/"sumary"/' "$R/sitrep-darfur.json" >"$T/bad.json"
expect_exit 1 'sumary' ruf seal --home "$T/home/rc-sd-1" --passphrase-file "$PASS" \
	--in "$T/bad.json" --out "$T/y.env"
ok "an invalid report is refused naming the field"

# Attachments: any file, saved only on request, hash checked.
head -c 300000 /dev/urandom >"$T/photo.jpg"
python3 - "$R/sitrep-darfur.json" "$T/att.json" "$T/photo.jpg" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["attachments"] = [{"path": sys.argv[3], "name": "photo.jpg", "media_type": "image/jpeg"}]
json.dump(d, open(sys.argv[2], "w"))
PY
seal rc-sd-1 "$T/att.json" "$T/att.env" >/dev/null
mkdir "$T/saved"
ruf open --home "$T/home/hrt-desk" --passphrase-file "$PASS" --save-attachments "$T/saved" \
	"$T/att.env" >"$T/opened"
cmp "$T/photo.jpg" "$T/saved/photo.jpg" || fail "attachment differs"
grep -q 'photo.jpg' "$T/opened" || fail "attachment not listed"
ok "an attachment travels, is hash-checked and saved on request"

# Revocation: HQ revokes the device; a desk with the new directory refuses its envelopes.
serial=$(rufctl cert list --dir "$T/certs/hq" --json | python3 -c '
import json, sys
print([c["serial"] for c in json.load(sys.stdin) if c["subject"] == "rc-sd-1"][0])')
rufctl cert revoke "$serial" --dir "$T/certs/hq" --reason "test" >/dev/null
rufctl directory publish --dir "$T/certs/hq" --passphrase-file "$PASS" \
	--policy "$RUF_SRC/certs-example/policy.txt" --out "$T/dir2" >/dev/null
expect_exit 3 'DIR_ROLLBACK' ruf directory update --home "$T/home/hrt-desk" "$T/certs/directory"
ruf directory update --home "$T/home/hrt-desk" "$T/dir2" >"$T/o"
grep -q 'to 2' "$T/o" || fail "directory update to version 2"
expect_exit 3 'DIR_ROLLBACK' ruf directory update --home "$T/home/hrt-desk" "$T/certs/directory"
ruf directory show --home "$T/home/hrt-desk" --json >"$T/o"
grep -q '"version": 2' "$T/o" || fail "directory show"
expect_exit 3 ENV_SENDER ruf open --home "$T/home/hrt-desk" --passphrase-file "$PASS" \
	"$T/darfur.env"
ruf directory update --home "$T/home/rc-sd-1" "$T/dir2" >"$T/o" 2>&1
grep -q 'revoked' "$T/o" ||
	fail "a revoked device is not warned when it installs the directory revoking it"
expect_exit 3 'revoked' ruf seal --home "$T/home/rc-sd-1" --passphrase-file "$PASS" \
	--in "$R/sitrep-darfur.json" --out "$T/z.env"
ok "directories only move forward; after revocation the device's envelopes are refused and it cannot seal"

# The HQ root is pinned: a directory from another root is refused at enrolment.
RUFCTL=rufctl "$RUF_SRC/certs-example/gen.sh" "$T/other" >/dev/null
expect_exit 3 'DIR\|directory' ruf enroll --home "$T/home/mixed" \
	--from "$T/certs/identities/hrt-desk" --directory "$T/other/directory" \
	--passphrase-file "$PASS"
[ ! -e "$T/home/mixed" ] || fail "failed enrolment left a home"
expect_exit 3 'not ' ruf enroll --home "$T/home/pin" --from "$T/certs/identities/sag-desk" \
	--directory "$T/certs/directory" --passphrase-file "$PASS" --expect-root 00112233445566778899aabbccddeeff
ok "enrolment refuses a directory from another root and an unexpected root"

echo "$checks passed, 0 failed"
