#!/usr/bin/env bash
# A slow desk cannot make rufd buffer without bound: with max_conn_buffer =
# 128k, a desk that stops reading while 8 MiB of envelopes are due leaves at
# most about 128 KiB (plus one frame) queued in rufd; everything arrives
# intact once it reads again, and other clients are served meanwhile.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} 2>/dev/null || true; rm -rf "$T"' EXIT
RUFD_EXTRA_CONF='max_conn_buffer = 128k'
rufd_setup
enroll rc-sd-1
R=$RUF_SRC/certs-example/reports
head -c $((2 * 1024 * 1024)) /dev/urandom >"$T/blob.bin"
python3 - "$R/sitrep-darfur.json" "$T/big.json" "$T/blob.bin" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["attachments"] = [{"path": sys.argv[3], "name": "blob.bin"}]
json.dump(d, open(sys.argv[2], "w"))
PY
rufd_start
for i in 1 2 3 4; do
	seal rc-sd-1 "$T/big.json" "$T/b$i.env"
	tc rc-sd-1 submit "$T/b$i.env" >"$T/r$i" || fail "submit $i: $(cat "$T/r$i")"
done
ok "four 2 MiB envelopes stored"

mkdir -p "$T/got"
tc hrt-desk -S 6 -n 4 -t 60 -o "$T/got" subscribe hrt >"$T/d" 2>&1 &
desk=$!
sleep 3
curl -s "127.0.0.1:$MPORT/metrics" >"$T/m1"
tc rc-sd-1 ping >/dev/null || fail "another client not served while a desk stalls"
wait "$desk" || fail "slow desk: $(cat "$T/d")"
curl -s "127.0.0.1:$MPORT/metrics" >"$T/m2"
buffered=$(sed -n 's/^rufd_buffered_bytes //p' "$T/m1")
peak=$(sed -n 's/^rufd_conn_buffer_max_bytes //p' "$T/m2")
limit=$((128 * 1024 + 65537))
[ "$buffered" -gt 0 ] || fail "the desk was not stalled (nothing buffered)"
[ "$buffered" -le "$limit" ] || fail "rufd buffered $buffered bytes for a stalled desk"
[ "$peak" -le "$limit" ] || fail "a connection's write queue peaked at $peak bytes"
for i in 1 2 3 4; do
	# Submitted one after the other: queue order is submission order.
	cmp -s "$T/got/hrt-$i.env" "$T/b$i.env" || fail "envelope $i not delivered intact"
done
ok "a stalled desk: $buffered bytes queued (peak $peak, limit $limit); all 8 MiB delivered intact after"
rufd_stop
echo "all $checks checks passed"
