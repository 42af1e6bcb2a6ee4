#!/usr/bin/env bash
# rufctl through the real binary: policy errors name the line, inspect shows
# clear parts only, every command has --help and fails with one clear line.
. "$(dirname "$0")/lib.sh"
make_pki

for c in init cert queue directory inspect; do
	rufctl "$c" --help | grep -q usage || fail "rufctl $c --help"
done
for c in enroll seal open directory; do
	ruf "$c" --help | grep -q usage || fail "ruf $c --help"
done
expect_exit 2 'unknown command' rufctl frobnicate
expect_exit 2 'unknown command' ruf frobnicate
ok "every command has --help; unknown commands are usage errors"

pub() { rufctl directory publish --dir "$T/certs/hq" --passphrase-file "$PASS" --policy "$1"; }
printf 'policy 1\nrule a\n  situation darfur\n  to itf.${situation}\n  frobnicate yes\n' >"$T/p1"
expect_exit 1 'line 5' pub "$T/p1"
printf 'policy 1\nrule a\n  situation darfur\n  to itf.nowhere\n' >"$T/p2"
expect_exit 1 'line 2.*itf.nowhere' pub "$T/p2"
printf 'policy 1\nrule a\n  risk high\n  to sag\n  stop\nrule b\n  risk high\n  flags escalation\n  to hrt\n' >"$T/p3"
expect_exit 1 'line 6.*unreachable' pub "$T/p3"
ok "policy errors name the line: unknown field, queue without key, unreachable rule"

v1=$(rufctl inspect "$T/certs/directory" --dir "$T/certs/hq" --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
pub "$RUF_SRC/certs-example/policy.txt" >/dev/null
v2=$(rufctl inspect "$T/certs/hq/directory" --dir "$T/certs/hq" --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
[ "$v2" -gt "$v1" ] || fail "directory version did not increase ($v1 -> $v2)"
ok "each publish increases the directory version"

rufctl inspect "$T/certs/identities/rc-sd-1/cert" --dir "$T/certs/hq" >"$T/o"
grep -q 'role        device' "$T/o" && grep -q 'situation   darfur' "$T/o" &&
	grep -q 'verified    yes' "$T/o" || { cat "$T/o"; fail "inspect cert"; }
rufctl inspect "$T/certs/identities/rc-sd-1/keystore" >"$T/o"
grep -q 'passphrase-protected' "$T/o" || fail "inspect keystore"
rufctl inspect "$T/certs/hq/server.key" >"$T/o"
grep -q 'UNPROTECTED' "$T/o" || fail "server key should be shown unprotected"
ok "inspect shows certificates and keystores without secrets"

ruf enroll --home "$T/home/rc" --from "$T/certs/identities/rc-sd-1" \
	--directory "$T/certs/directory" --passphrase-file "$PASS" >/dev/null
ruf seal --home "$T/home/rc" --passphrase-file "$PASS" \
	--in "$RUF_SRC/certs-example/reports/sitrep-darfur.json" --out "$T/e.env" >/dev/null
rufctl inspect "$T/e.env" --dir "$T/certs/hq" --json >"$T/o"
python3 - "$T/o" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["type"] == "envelope" and d["verified"] is True, d
assert d["situation"] == "darfur" and d["kind"] == "sitrep", d
assert sorted(r["queue"] for r in d["recipients"]) == ["hrt", "itf.darfur", "sag"], d
assert "summary" not in json.dumps(d), "inspect must not show contents"
PY
grep -qi 'killed\|janjaweed\|summary' "$T/o" && fail "inspect leaked report contents"
strings "$T/e.env" | grep -qi 'summary' && fail "report text visible in the envelope file"
ok "inspect shows the clear header and recipients, never the contents"

expect_exit 1 'already' rufctl init "$T/certs/hq" --new-passphrase-file "$PASS"
expect_exit 2 'serial 1' rufctl cert revoke 1 --dir "$T/certs/hq"
expect_exit 1 'no certificate' rufctl cert revoke 9999 --dir "$T/certs/hq"
expect_exit 2 'subject' rufctl cert issue --dir "$T/certs/hq" --role device --subject "Bad Name" \
	--situation darfur --out "$T/x"
expect_exit 1 'no key' rufctl cert issue --dir "$T/certs/hq" --passphrase-file "$PASS" \
	--new-passphrase-file "$PASS" --kdf interactive --role desk --subject d2 \
	--queue itf.nowhere --out "$T/x2"
ok "rufctl refuses re-init, revoking the root, unknown serials, bad names, unknown queues"

echo "$checks passed, 0 failed"
