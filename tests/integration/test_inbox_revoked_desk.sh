#!/usr/bin/env bash
# A reply from a desk revoked since, in the RC's inbox (rufd on loopback, a
# fresh example PKI): the surge desk approves a surge request; HQ then
# revokes the desk. The RC's inbox still shows the reply, as genuine, with
# "sender revoked since R": rufd accepted it before R (its signed receipt
# says when). A revocation dated back before the reply flags it instead:
# kept and listed with the flag, `ruf inbox` exits 3. Before, any reply from
# a since-revoked desk failed verification outright.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} 2>/dev/null || true; rm -rf "$T"' EXIT
rufd_setup
enroll rc-sd-1
enroll surge-desk
rufd_start
HQ=127.0.0.1:$PORT
DEV=(--home "$T/home/rc-sd-1" --passphrase-file "$PASS")
DESK=(--home "$T/home/surge-desk" --passphrase-file "$PASS")
publish() { # out [revoke args...]
	local out=$1
	shift
	rufctl cert revoke "$@" --dir "$C/hq" >"$T/rv" 2>&1 || fail "revoke: $(cat "$T/rv")"
	rufctl directory publish --dir "$C/hq" --passphrase-file "$PASS" \
		--policy "$RUF_SRC/certs-example/policy.txt" --expires 30d --hq-address "$HQ" \
		--out "$out" >/dev/null || fail "publish"
}

ruf surge "${DEV[@]}" --json --in "$RUF_SRC/certs-example/reports/surge-darfur.json" >"$T/sg" ||
	fail "surge: $(cat "$T/sg")"
SURGE=$(sed 's/.*"message_id": "\([0-9a-f]*\)".*/\1/' "$T/sg")
ruf send "${DEV[@]}" --hq "$HQ" --quiet --deadline 20s >"$T/s" 2>&1 || fail "send: $(cat "$T/s")"
ruf desk pull "${DESK[@]}" --hq "$HQ" --idle 1 >"$T/p" 2>&1 || fail "pull: $(cat "$T/p")"
ruf desk reply "$SURGE" "${DESK[@]}" --hq "$HQ" --status approved --text "4 officers" >"$T/r" 2>&1 ||
	fail "reply: $(cat "$T/r")"
ruf inbox "${DEV[@]}" --hq "$HQ" --idle 1 >"$T/i0" 2>&1 || fail "inbox: $(cat "$T/i0")"
grep -q 'from surge-desk *approved .*4 officers' "$T/i0" || fail "inbox: $(cat "$T/i0")"
! grep -q 'revoked' "$T/i0" || fail "a note before any revocation: $(cat "$T/i0")"
ok "the RC holds the surge desk's approval"

# Accept times are whole seconds: R is after the reply's.
sleep 1.2
serial=$(rufctl cert list --dir "$C/hq" --json | python3 -c '
import json, sys
print([c["serial"] for c in json.load(sys.stdin) if c["subject"] == "surge-desk"][0])')
publish "$T/dir.v2" "$serial" --reason "desk laptop lost"
ruf directory update "$T/dir.v2" --home "$T/home/rc-sd-1" >/dev/null || fail "directory update"
ruf inbox "${DEV[@]}" --offline >"$T/i1" 2>&1 || fail "inbox after the revocation: $(cat "$T/i1")"
grep -q 'from surge-desk *approved .*4 officers' "$T/i1" || fail "reply gone: $(cat "$T/i1")"
grep -q '\[sender revoked since .* (desk laptop lost)\]' "$T/i1" || fail "no note: $(cat "$T/i1")"
ruf inbox "${DEV[@]}" --offline --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert len(r) == 1 and r[0]["flagged"] is False and r[0]["sender_revoked_since"], r' ||
	fail "inbox --json after the revocation"
ok "after the desk's revocation its earlier reply is shown genuine, with the revoked-since note"

# Dated back before the reply: the reply is flagged, kept, exit 3.
publish "$T/dir.v3" "$serial" --at "$(date -u -d '-1 day' '+%Y-%m-%dT%H:%M:%SZ')" --reason "lost earlier"
ruf directory update "$T/dir.v3" --home "$T/home/rc-sd-1" >/dev/null || fail "directory update 3"
expect_exit 3 "FLAGGED, not genuine: sender revoked since" ruf inbox "${DEV[@]}" --offline
grep -q 'from surge-desk *approved .*4 officers' "$T/out" || fail "flagged reply not listed: $(cat "$T/out")"
ok "a revocation dated before the reply flags it: listed with the flag, exit 3"
echo "all $checks checks passed"
