#!/usr/bin/env bash
# rufd under faults: SIGKILL during a stream of submissions then restart
# (every receipted report present exactly once, delivered once per cursor);
# a full store (tiny LMDB map) answers retry-later and loses nothing
# receipted, then recovers once SIGHUP raises map_size, without a restart; an envelope sealed under an
# older directory (without a queue the policy now routes to) gets "stale directory" with the current directory;
# systemd socket activation (LISTEN_FDS).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} 2>/dev/null || true; rm -rf "$T"' EXIT
rufd_setup
enroll rc-sd-1
R=$RUF_SRC/certs-example/reports

N=12
for i in $(seq $N); do seal rc-sd-1 "$R/sitrep-darfur.json" "$T/e$i.env"; done
rufd_start
(
	for i in $(seq $N); do
		tc rc-sd-1 submit "$T/e$i.env" >"$T/r$i" 2>&1 || true
		sleep 0.05
	done
) &
loop=$!
for _ in $(seq 200); do
	[ "$(grep -l '^receipt' "$T"/r* 2>/dev/null | wc -l)" -ge 4 ] && break
	sleep 0.05
done
kill -9 "$RUFD_PID"
wait "$RUFD_PID" 2>/dev/null || true
wait "$loop"
before=$(grep -l '^receipt' "$T"/r* | wc -l)
[ "$before" -ge 4 ] || fail "only $before receipts before the kill"
[ "$before" -lt "$N" ] || echo "note: every submission finished before the kill"
rufd_start
for i in $(seq $N); do
	tc rc-sd-1 submit "$T/e$i.env" >"$T/s$i" 2>&1 || fail "resubmit $i: $(cat "$T/s$i")"
	if grep -q '^receipt' "$T/r$i"; then
		diff <(grep '^receipt' "$T/r$i") <(grep '^receipt' "$T/s$i") >/dev/null ||
			fail "report $i: receipt changed after the crash"
	fi
done
curl -s "127.0.0.1:$MPORT/metrics" >"$T/m"
grep -q "^rufd_store_envelopes $N\$" "$T/m" || fail "store holds $(grep envelopes "$T/m")"
tc hrt-desk -n $N -w 4 subscribe hrt >"$T/d" || fail "desk: $(cat "$T/d")"
[ "$(grep -c '^deliver' "$T/d")" = $N ] || fail "deliveries: $(cat "$T/d")"
[ "$(grep -o 'id=[0-9a-f]*' "$T/d" | sort -u | wc -l)" = $N ] || fail "duplicate deliveries"
rc=0
tc hrt-desk -n 1 -t 2 subscribe hrt >"$T/d2" || rc=$?
[ "$rc" = 6 ] || fail "deliveries beyond the cursor: $(cat "$T/d2")"
ok "SIGKILL mid-stream ($before receipts before): after restart each report is stored once, receipts unchanged, desk gets each once"

# Stale directory: the policy now also routes sitreps to a new queue; an
# envelope sealed under the old directory has no wrap for it.
rufctl queue create watch --dir "$C/hq" --new-passphrase-file "$PASS" \
	--kdf interactive >/dev/null
cp "$RUF_SRC/certs-example/policy.txt" "$T/policy.txt"
printf '\nrule watch\n\tkind sitrep\n\tto watch\n' >>"$T/policy.txt"
rufctl directory publish --dir "$C/hq" --passphrase-file "$PASS" \
	--policy "$T/policy.txt" --expires 30d --hq-address "127.0.0.1:$PORT" \
	--out "$T/directory.new" >/dev/null
seal rc-sd-1 "$R/sitrep-darfur.json" "$T/stale.env"
cp "$T/directory.new" "$T/directory"
kill -HUP "$RUFD_PID"
for _ in $(seq 50); do grep -q 'reloaded: directory version 2' "$T/rufd.log" && break; sleep 0.1; done
rc=0
tc rc-sd-1 submit "$T/stale.env" >"$T/st" 2>&1 || rc=$?
[ "$rc" = 4 ] && grep -q 'nack reason=2 .*directory=[1-9]' "$T/st" ||
	fail "stale envelope not refused with the directory (exit $rc): $(cat "$T/st")"
ok "an envelope missing a queue the current policy adds gets stale-directory with the directory"
rufd_stop
rufd -a -c "$T/rufd.conf" >"$T/a" || fail "audit after the crash: $(cat "$T/a")"
grep -q "hash chain OK; $N envelopes" "$T/a" || fail "audit: $(cat "$T/a")"
ok "after SIGKILL and restart the audit log still verifies"

# A full store: 1 MiB map, envelopes with 300 KiB incompressible attachments.
rm -rf "$T/state"
sed -i 's/^metrics_listen.*/&\nmap_size = 1m/' "$T/rufd.conf"
cp "$C/directory" "$T/directory"
rm -rf "$T/home/rc-sd-1" && enroll rc-sd-1
head -c 307200 /dev/urandom >"$T/blob.bin"
python3 - "$R/sitrep-darfur.json" "$T/big.json" "$T/blob.bin" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["attachments"] = [{"path": sys.argv[3], "name": "blob.bin"}]
json.dump(d, open(sys.argv[2], "w"))
PY
for i in 1 2 3 4 5; do seal rc-sd-1 "$T/big.json" "$T/b$i.env"; done
rufd_start
got=0 full=0
for i in 1 2 3 4 5; do
	rc=0
	tc rc-sd-1 submit "$T/b$i.env" >"$T/b$i" 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then got=$((got + 1)); else
		[ "$rc" = 4 ] && grep -q 'nack reason=1 ' "$T/b$i" || fail "full store: $(cat "$T/b$i")"
		full=$((full + 1))
	fi
done
[ "$full" -ge 1 ] || fail "a 1 MiB map took five 300 KiB envelopes"
[ "$got" -ge 1 ] || fail "nothing fit in the map"
grep -q 'store full' "$T/rufd.log" || fail "no log line for the full store"
sed -i 's/^map_size = 1m/map_size = 64m/' "$T/rufd.conf"
kill -HUP "$RUFD_PID"
for _ in $(seq 50); do grep -q 'store: map_size now' "$T/rufd.log" && break; sleep 0.1; done
grep -q 'store: map_size now 67108864' "$T/rufd.log" || fail "map not grown: $(tail -3 "$T/rufd.log")"
for i in 1 2 3 4 5; do
	tc rc-sd-1 submit "$T/b$i.env" >"$T/c$i" 2>&1 || fail "after growing the map: $(cat "$T/c$i")"
	if grep -q '^receipt' "$T/b$i"; then
		diff <(grep '^receipt' "$T/b$i") <(grep '^receipt' "$T/c$i") >/dev/null ||
			fail "receipt changed"
	fi
done
tc hrt-desk -n 5 -o "$T" subscribe hrt >"$T/d" || fail "desk after full store: $(cat "$T/d")"
[ "$(grep -c '^deliver' "$T/d")" = 5 ] || fail "deliveries: $(cat "$T/d")"
rufd_stop
ok "a full map gives retry-later ($got stored, $full refused), keeps the receipted, recovers when SIGHUP grows the map"

# Socket activation: a listening socket passed as fd 3 with LISTEN_PID/LISTEN_FDS.
python3 - "$T" "$PORT" <<'PY' &
import os, socket, sys
t, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = "1"
err = os.open(t + "/rufd.log", os.O_WRONLY | os.O_APPEND)
os.dup2(err, 2)
conf = t + "/rufd-sd.conf"
with open(t + "/rufd.conf") as f, open(conf, "w") as g:
    g.write("".join(l for l in f if not l.startswith("listen")))
    g.write("listen = 127.0.0.1:1\n")
os.execvp("rufd", ["rufd", "-d", "-c", conf])
PY
RUFD_PID=$!
for _ in $(seq 100); do grep -q 'listening on socket 3 from systemd' "$T/rufd.log" && break; sleep 0.1; done
grep -q 'listening on socket 3 from systemd' "$T/rufd.log" || fail "no socket activation: $(tail -3 "$T/rufd.log")"
tc rc-sd-1 ping >/dev/null || fail "no ping over the systemd socket"
rufd_stop
ok "socket activation: rufd serves on the descriptor systemd passes"
echo "all $checks checks passed"
