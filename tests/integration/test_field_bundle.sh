#!/usr/bin/env bash
# Bundles: pending envelopes exported to one file, imported at HQ by
# rufctl import with the network path's checks, routing and dedup (same
# queues and store as rufd), receipts imported back by the device (verified;
# entries delivered, key wraps destroyed). A damaged envelope in a bundle is
# named and the others still imported. The bundle reader refuses damaged
# framing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} 2>/dev/null || true; rm -rf "$T"' EXIT
rufd_setup
enroll rc-sd-1
HOME_SD=$T/home/rc-sd-1
OB=$HOME_SD/outbox
H=(--home "$HOME_SD" --passphrase-file "$PASS")
R=$RUF_SRC/certs-example/reports

ruf report "${H[@]}" --in "$R/sitrep-darfur.json" >"$T/c1" || fail "compose"
ruf surge "${H[@]}" --in "$R/surge-darfur.json" >"$T/c2" || fail "compose surge"
head -c 300000 /dev/urandom >"$T/a.bin"
ruf report "${H[@]}" --risk low --title t --summary s --attach "$T/a.bin" >"$T/c3" || fail "compose 3"
ID1=$(awk '{print $2}' "$T/c1"); ID2=$(awk '{print $2}' "$T/c2"); ID3=$(awk '{print $2}' "$T/c3")

ruf bundle export "${H[@]:0:2}" --out "$T/b.rufb" >"$T/x" || fail "export: $(cat "$T/x")"
grep -q "bundle $T/b.rufb: 3 envelopes" "$T/x" || fail "export: $(cat "$T/x")"
head -c 8 "$T/b.rufb" | grep -q "RUFBNDL" || fail "no magic"
expect_exit 1 "already exists" ruf bundle export "${H[@]:0:2}" --out "$T/b.rufb"
ok "ruf bundle export writes the 3 pending envelopes into one file (never overwriting)"

if ! rufctl import --help >/dev/null 2>&1; then
	echo "SKIP: rufctl import is not built in (docs/FIELD.md, 'Building rufctl import')"
	echo "all $checks checks passed"
	exit 0
fi

# damaged copy: flip a byte inside the second entry's envelope
cp "$T/b.rufb" "$T/bad.rufb"
python3 - "$T/bad.rufb" <<'PY'
import struct, sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
off = 16
for i in range(2):
    n = struct.unpack('>Q', b[off + 17:off + 25])[0]
    if i == 1:
        b[off + 25 + n // 2] ^= 1
    off += 25 + n + 32
open(p, 'wb').write(b)
PY
rufd_start
rc=0
rufctl import "$T/bad.rufb" -c "$T/rufd.conf" --receipts "$T/bad.receipts" >"$T/i" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "damaged bundle: exit $rc: $(cat "$T/i")"
grep -q "entry 1 (.*): damaged in the bundle" "$T/i" || fail "bad entry not named: $(cat "$T/i")"
[ "$(grep -c '^receipt ' "$T/i")" = 2 ] || fail "good entries not imported: $(cat "$T/i")"
ok "a bundle with a damaged envelope: the good ones imported, the bad one named (exit 3)"

rufctl import "$T/b.rufb" -c "$T/rufd.conf" --receipts "$T/b.receipts" >"$T/i2" 2>&1 ||
	fail "import: $(cat "$T/i2")"
[ "$(grep -c '^receipt ' "$T/i2")" = 3 ] || fail "import: $(cat "$T/i2")"
for n in 1 2 3; do
	id=$(awk '{print $2}' "$T/c$n")
	q=$(sed 's/.* sealed to \([^:]*\):.*/\1/' "$T/c$n")
	grep -q "^receipt $id store_seq=[0-9]* queues=$q\$" "$T/i2" ||
		fail "queues of $id differ from the policy's ($q): $(cat "$T/i2")"
done
# dedup: the two imported before keep their receipts
for id in $(grep -o '^receipt [0-9a-f]* store_seq=[0-9]*' "$T/i" | awk '{print $2 "-" $3}'); do
	grep -q "^receipt ${id%-*} ${id#*-} " "$T/i2" || fail "dedup: ${id%-*} got another store_seq"
done
ok "rufctl import: each envelope routed to the policy's queues; dedup keeps the first receipts"

# the network path agrees: sending the same envelope gives the same receipt
ruf send "${H[@]}" --hq "127.0.0.1:$PORT" >"$T/s" 2>&1 || fail "send: $(cat "$T/s")"
s1=$(sed -n "s/^receipt $ID1 store_seq=\([0-9]*\).*/\1/p" "$T/i2")
grep -q "delivered $ID1: receipt verified, store seq $s1, queues hrt,itf.darfur,sag" "$T/s" ||
	fail "network receipt differs from import: $(cat "$T/s")"
ok "the network path returns the import's receipt (store seq $s1): one store, one dedup index"

tc hrt-desk -n 1 -o "$T" subscribe hrt >"$T/d" || fail "desk: $(cat "$T/d")"
grep -q "deliver queue=hrt seq=1" "$T/d" || fail "desk: $(cat "$T/d")"
ok "the desk receives the imported report from the store"
rufd_stop

ruf bundle receipts "$T/b.receipts" --home "$HOME_SD" >"$T/r" || fail "receipts: $(cat "$T/r")"
grep -q "3 receipts accepted, 0 refused" "$T/r" || fail "receipts: $(cat "$T/r")"
# a fresh home whose entries are pending: export, import, receipts mark delivered
H2=(--home "$T/home/fresh" --passphrase-file "$PASS")
ruf enroll --home "$T/home/fresh" --from "$T/certs/identities/rc-sd-1" \
	--directory "$T/certs/directory" --passphrase-file "$PASS" >/dev/null
ruf report "${H2[@]}" --risk high --title fresh --summary s >"$T/c4"
ID4=$(awk '{print $2}' "$T/c4")
ruf bundle export --home "$T/home/fresh" --out "$T/f.rufb" >/dev/null
rufctl import "$T/f.rufb" -c "$T/rufd.conf" --receipts "$T/f.receipts" >/dev/null 2>&1 ||
	fail "import fresh"
[ -e "$T/home/fresh/outbox/$ID4.key" ] || fail "no key wrap before the receipt"
ruf bundle receipts "$T/f.receipts" --home "$T/home/fresh" >"$T/r2" || fail "$(cat "$T/r2")"
grep -q "$ID4: delivered, receipt verified, store seq" "$T/r2" || fail "$(cat "$T/r2")"
[ ! -e "$T/home/fresh/outbox/$ID4.key" ] || fail "key wrap left after the receipt"
ruf outbox --home "$T/home/fresh" | grep -q "^delivered $ID4" || fail "not delivered"
ok "ruf bundle receipts verifies each receipt, marks delivered, destroys the key wrap"

# receipts signed by someone else are refused
head -c 20 "$T/f.receipts" >"$T/forged"
printf 'garbage' >>"$T/forged"
expect_exit 3 "" ruf bundle receipts "$T/forged" --home "$T/home/fresh"
ok "a damaged receipts file is refused"
echo "all $checks checks passed"
