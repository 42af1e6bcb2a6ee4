#!/usr/bin/env bash
# Stale directory: a report composed under directory version 1 is sent after
# HQ's policy routes sitreps to a new queue (directory version 2). rufd
# answers stale-directory with the new directory; ruf send installs it,
# re-seals the report with the kept content key to the new queues under the
# SAME message id, and rufd accepts it; the desks get it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} 2>/dev/null || true; rm -rf "$T"' EXIT
rufd_setup
enroll rc-sd-1
HOME_SD=$T/home/rc-sd-1
H=(--home "$HOME_SD" --passphrase-file "$PASS")

head -c 200000 /dev/urandom >"$T/photo.bin"
ruf report "${H[@]}" --risk high --title "Before the policy change" --summary s \
	--attach "$T/photo.bin" >"$T/c1" || fail "compose: $(cat "$T/c1")"
ID=$(awk '{print $2}' "$T/c1")
grep -q "sealed to itf.darfur,sag:" "$T/c1" || fail "compose: $(cat "$T/c1")"

rufctl queue create watch --dir "$C/hq" --new-passphrase-file "$PASS" --kdf interactive >/dev/null
cp "$RUF_SRC/certs-example/policy.txt" "$T/policy.txt"
printf '\nrule watch\n\tkind sitrep\n\tto watch\n' >>"$T/policy.txt"
rufctl directory publish --dir "$C/hq" --passphrase-file "$PASS" \
	--policy "$T/policy.txt" --expires 30d --hq-address "127.0.0.1:$PORT" \
	--out "$T/directory" >/dev/null
rufd_start

ruf send "${H[@]}" --hq "127.0.0.1:$PORT" >"$T/s" 2>&1 || fail "send: $(cat "$T/s")"
grep -q "directory updated from version 1 to 2" "$T/s" || fail "no directory install: $(cat "$T/s")"
grep -q "$ID: re-sealed to itf.darfur,sag,watch (directory version 2)" "$T/s" ||
	fail "no re-seal: $(cat "$T/s")"
grep -q "delivered $ID: receipt verified, store seq 1, queues itf.darfur,sag,watch" "$T/s" ||
	fail "not accepted: $(cat "$T/s")"
ok "stale directory: installed v2, re-sealed under the same message id to +watch, accepted"

[ ! -e "$HOME_SD/outbox/$ID.key" ] || fail "the new wrap outlived the receipt"
ls -a "$HOME_SD/outbox" | grep -q '^\.reseal\|^\.tmp' && fail "re-seal left files: $(ls -a "$HOME_SD/outbox")"
ok "no decrypted attachment or temporary file left; the key wrap is destroyed"

tc itf-darfur-desk -n 1 -o "$T" subscribe itf.darfur >"$T/d" || fail "desk: $(cat "$T/d")"
grep -q "deliver queue=itf.darfur seq=1" "$T/d" ||
	fail "desk: $(cat "$T/d")"
enroll itf-darfur-desk
mkdir "$T/att"
ruf open "$T/itf.darfur-1.env" --home "$T/home/itf-darfur-desk" --passphrase-file "$PASS" \
	--save-attachments "$T/att" >"$T/o" || fail "open: $(cat "$T/o")"
grep -q "Before the policy change" "$T/o" || fail "open: $(cat "$T/o")"
cmp -s "$T/att/photo.bin" "$T/photo.bin" || fail "attachment changed by the re-seal"
ok "a desk of the old queues opens the re-sealed report and its attachment, unchanged"
rufd_stop
echo "all $checks checks passed"
