#!/usr/bin/env bash
# rufd's in-memory path for small uploads (daemon/ingest.c): a report sent
# as one chunk is stored and receipted without ever creating a spool file,
# survives a SIGKILL right after its receipt, is refused without a trace
# when tampered, and a small upload sent in pieces still goes through the
# spool and resumes after a cut.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rufd_lib.sh"
trap 'kill -9 ${RUFD_PID:-} 2>/dev/null || true; rm -rf "$T"' EXIT
rufd_setup
enroll rc-sd-1
rufd_start
R=$RUF_SRC/certs-example/reports
SP=$T/state/spool
spool_files() { find "$SP" -type f | wc -l; }
# Creating or removing a spool file changes the directory's mtime (ns).
spool_mtime() { stat -c %y "$SP"; }

seal rc-sd-1 "$R/sitrep-darfur.json" "$T/a.env"
len=$(stat -c %s "$T/a.env")
[ "$len" -le 60000 ] || fail "the example report is $len bytes: not a one-chunk upload"
m0=$(spool_mtime)
tc rc-sd-1 submit "$T/a.env" >"$T/r1" || fail "submit: $(cat "$T/r1")"
grep -q '^have=0$' "$T/r1" || fail "a new upload did not start at 0: $(cat "$T/r1")"
grep -q '^receipt store_seq=1 ' "$T/r1" || fail "no receipt: $(cat "$T/r1")"
[ "$(spool_files)" = 0 ] || fail "a one-chunk upload left spool files: $(ls "$SP")"
[ "$(spool_mtime)" = "$m0" ] || fail "a one-chunk upload created (and removed) a spool file"
ok "a one-chunk upload is receipted without ever creating a spool file"

# The receipt means durable: kill -9 at once, restart, the same receipt back.
kill -9 "$RUFD_PID"
wait "$RUFD_PID" 2>/dev/null || true
rufd_start
tc rc-sd-1 submit "$T/a.env" >"$T/r2" || fail "resubmit: $(cat "$T/r2")"
diff <(grep receipt "$T/r1") <(grep receipt "$T/r2") >/dev/null ||
	fail "after SIGKILL: another answer: $(cat "$T/r2")"
ok "a receipted one-chunk upload survives SIGKILL (same receipt after restart)"

# A flipped byte in the signature: refused, nothing stored, nothing spooled.
seal rc-sd-1 "$R/sitrep-darfur.json" "$T/b.env"
python3 - "$T/b.env" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[-1] ^= 1
open(p, 'wb').write(b)
PY
m0=$(spool_mtime)
rc=0
tc rc-sd-1 submit "$T/b.env" >"$T/r3" 2>&1 || rc=$?
grep -q 'nack reason=3' "$T/r3" || fail "tampered upload not rejected (exit $rc): $(cat "$T/r3")"
grep -q 'ENV_SIGNATURE' "$T/rufd.log" || fail "no log line for the bad signature"
[ "$(spool_files)" = 0 ] || fail "a refused upload left spool files: $(ls "$SP")"
[ "$(spool_mtime)" = "$m0" ] || fail "a refused one-chunk upload touched the spool"
curl -s "127.0.0.1:$MPORT/metrics" >"$T/m"
grep -q '^rufd_store_envelopes 1$' "$T/m" || fail "stored: $(grep envelopes "$T/m")"
ok "a tampered one-chunk upload is rejected and leaves nothing behind"

# The same size in 500-byte pieces: spooled, resumable after a cut.
seal rc-sd-1 "$R/sitrep-darfur.json" "$T/c.env"
tc rc-sd-1 -c 500 -n 1000 submit "$T/c.env" >"$T/r4" || fail "cut: $(cat "$T/r4")"
grep -q 'cut at 1000' "$T/r4" || fail "no cut: $(cat "$T/r4")"
[ "$(spool_files)" = 1 ] || fail "a cut upload in pieces is not in the spool"
tc rc-sd-1 -c 500 submit "$T/c.env" >"$T/r5" || fail "resume: $(cat "$T/r5")"
grep -q '^have=1000$' "$T/r5" || fail "resume point: $(cat "$T/r5")"
grep -q '^receipt store_seq=2 ' "$T/r5" || fail "resume receipt: $(cat "$T/r5")"
[ "$(spool_files)" = 0 ] || fail "the stored upload's spool file remains"
ok "a small upload in pieces is spooled, resumes at have=1000, and its file goes once stored"

rufd_stop
! grep -q 'ERROR: AddressSanitizer\|LeakSanitizer' "$T/rufd.log" || fail "sanitizer report"
ok "SIGTERM: clean exit"
echo "all $checks checks passed"
