#!/usr/bin/env bash
# Client outbox on a full file system: the device's home (keystore, outbox)
# on a small tmpfs the test mounts (needs root; skipped with the reason
# otherwise). With no block left, `ruf report` refuses with "disk full" and
# `ruf send` with "no space left on device"; with no inode left (the free
# space check passes, the writes fail) every step of a compose refuses, at
# whichever file it meets the full disk, and takes its own files back. Each
# time: exit 1, the outbox keeps exactly its entries, byte for byte, and no
# stray file. When space returns, without any repair, `ruf send` delivers
# every entry once (rufd's store holds exactly them) and composing works.
. "$RUF_SRC/tests/integration/lib.sh"
. "$RUF_SRC/tests/integration/rufd_lib.sh"
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root to mount a small tmpfs for the device's home"
	exit 0
fi
trap 'kill -9 ${RUFD_PID:-} ${RELAY:-} ${SENDER:-} 2>/dev/null || true; umount "$T/small" 2>/dev/null || true; rm -rf "$T"' EXIT
mkdir -p "$T/small"
# 4 MiB and 256 inodes: room for the identity and a few reports.
if ! mount -t tmpfs -o size=4m,nr_inodes=256,mode=0700 tmpfs "$T/small" 2>"$T/mount.err"; then
	echo "SKIP: cannot mount a tmpfs here: $(cat "$T/mount.err")"
	exit 0
fi
rufd_setup
HOME_SD=$T/small/home
ruf enroll --home "$HOME_SD" --from "$C/identities/rc-sd-1" --directory "$C/directory" \
	--passphrase-file "$PASS" >/dev/null || fail "enroll on the small file system"
OB=$HOME_SD/outbox
H=(--home "$HOME_SD" --passphrase-file "$PASS")
SEND=(ruf send "${H[@]}" --hq "127.0.0.1:$PORT" --quiet)
R=$RUF_SRC/certs-example/reports

compose() { # ARGS...: one report; exit status of ruf report
	ruf report "${H[@]}" --risk low --title "full disk" --summary "s" "$@"
}
# snapshot: the outbox's files and their hashes, the entries and states.
snapshot() {
	(cd "$OB" && find . -type f | sort | xargs -r sha256sum)
	ruf outbox --home "$HOME_SD" 2>&1 | awk '{print $1, $2}'
}
same_outbox() { # LABEL: the outbox is exactly as at the last snapshot
	snapshot >"$T/now"
	diff "$T/before" "$T/now" >"$T/diff" || fail "$1: the outbox changed: $(cat "$T/diff")"
}

head -c 204800 /dev/urandom >"$T/photo.bin"
compose --attach "$T/photo.bin" >/dev/null || fail "compose 1"
compose >/dev/null || fail "compose 2"
ruf report "${H[@]}" --in "$R/sitrep-darfur.json" >/dev/null || fail "compose 3"
[ "$(ls "$OB"/*.meta | wc -l)" = 3 ] || fail "three entries wanted: $(ls "$OB")"
snapshot >"$T/before"
ok "three reports composed on the small file system"

# --- no block left ----------------------------------------------------------
dd if=/dev/zero of="$T/small/ballast" bs=64k 2>/dev/null || true
[ "$(df --output=avail "$T/small" | tail -1)" -lt 64 ] || fail "the file system did not fill"
expect_exit 1 "disk full: sealing needs about [0-9]* KiB in $OB, [0-9]* KiB free; nothing composed (the outbox keeps its 3 entries)" \
	compose --attach "$T/photo.bin"
same_outbox "report on a full disk"
ok "ruf report on a full disk: a clear refusal, the outbox untouched"

rufd_start
expect_exit 1 "outbox: no space left on device" "${SEND[@]}" --deadline 2
echo "# send on a full disk: $(cat "$T/out")"
same_outbox "send on a full disk"
ruf_storecheck "$T/state/store" >"$T/sc" 2>&1 || fail "store: $(cat "$T/sc")"
grep -q '^stats envelopes=0 ' "$T/sc" || fail "sent without recording it: $(grep stats "$T/sc")"
ok "ruf send on a full disk: a clear refusal before anything is sent, the outbox untouched"

# --- no inode left: the free space check passes, the writes fail ------------
rm "$T/small/ballast"
nfill=0
fill_inodes() { # creates empty files until the file system has no inode left
	while { : >"$T/small/f.$nfill"; } 2>/dev/null; do nfill=$((nfill + 1)); done
}
free_inodes() { # N: deletes N of them
	for _ in $(seq 1 "$1"); do
		nfill=$((nfill - 1))
		rm "$T/small/f.$nfill"
	done
}
fill_inodes
[ "$nfill" -gt 0 ] || fail "no inode to fill"
refused=0
for free in 0 1 2 3 4 5 6; do
	free_inodes "$free"
	rc=0
	compose >"$T/out" 2>&1 || rc=$?
	[ "$rc" = 0 ] && break
	[ "$rc" = 1 ] || fail "$free free inodes: exit $rc: $(cat "$T/out")"
	grep -qi "no space left on device\|disk full" "$T/out" ||
		fail "$free free inodes: no clear error: $(cat "$T/out")"
	same_outbox "compose with $free free inodes"
	refused=$((refused + 1))
	echo "# $free free inodes: $(head -1 "$T/out")"
	fill_inodes
done
[ "$rc" = 0 ] || fail "compose never succeeded with up to 6 free inodes: $(cat "$T/out")"
[ "$refused" -ge 2 ] || fail "only $refused refusals before a compose fit"
NEWID=$(awk '{print $2}' "$T/out")
[ -s "$OB/$NEWID.env" ] && [ -s "$OB/$NEWID.key" ] && [ -s "$OB/$NEWID.meta" ] ||
	fail "the compose that fit left an incomplete entry"
ok "no inode left: $refused composes refused at the file they could not create, each taking its files back; the outbox kept its entries; with $free free inodes it fit"

# --- space returns -----------------------------------------------------------
rm -f "$T"/small/f.*
"${SEND[@]}" --deadline 30 >"$T/s" 2>&1 || fail "send after space returned: $(cat "$T/s")"
[ "$(grep -c '^delivered ' "$T/s")" = 4 ] || fail "4 deliveries wanted: $(cat "$T/s")"
ruf outbox --home "$HOME_SD" >"$T/l" || fail "outbox"
[ "$(grep -c '^delivered' "$T/l")" = 4 ] || fail "not all delivered: $(cat "$T/l")"
! ls "$OB"/*.key >/dev/null 2>&1 || fail "a key wrap survived its receipt"
compose >"$T/c5" || fail "compose after space returned: $(cat "$T/c5")"
"${SEND[@]}" --deadline 30 >"$T/s" 2>&1 || fail "send 5: $(cat "$T/s")"
ok "space returned: without repair, ruf send delivered all 4 entries, a new report was composed and delivered"

# --- the disk fills during an upload ------------------------------------------
# A relay throttles the device's bytes to rufd (32 KiB/s) so the upload of a
# 200 KiB report lasts seconds; once the entry is in flight every inode is
# taken, so the receipt cannot be recorded. HQ holds the report: the send
# fails with a clear error and leaves the entry to be sent again; with room
# back, the next send gets rufd's original receipt (the store holds it once).
PPORT=$(free_port)
cat >"$T/relay.py" <<'PY'
import socket, sys, threading, time
lis = socket.socket()
lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lis.bind(("127.0.0.1", int(sys.argv[1])))
lis.listen(4)
def pipe(a, b, slow):
    try:
        while True:
            d = a.recv(1024 if slow else 65536)
            if not d:
                break
            b.sendall(d)
            if slow:
                time.sleep(1 / 32)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = lis.accept()
    u = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    threading.Thread(target=pipe, args=(c, u, True), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c, False), daemon=True).start()
PY
python3 "$T/relay.py" "$PPORT" "$PORT" &
RELAY=$!
compose --attach "$T/photo.bin" >"$T/c6" || fail "compose 6: $(cat "$T/c6")"
ID6=$(awk '{print $2}' "$T/c6")
for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $PPORT))" 2>/dev/null && break; sleep 0.1; done
ruf send "${H[@]}" --hq "127.0.0.1:$PPORT" --quiet --deadline 5 >"$T/s6" 2>&1 &
SENDER=$!
for _ in $(seq 200); do
	ruf outbox --home "$HOME_SD" 2>/dev/null | grep -q "^in-flight $ID6" && break
	sleep 0.05
done
ruf outbox --home "$HOME_SD" | grep -q "^in-flight $ID6" || fail "the upload never started: $(cat "$T/s6")"
fill_inodes
rc=0
wait "$SENDER" || rc=$?
[ "$rc" = 1 ] || fail "send with the disk full at the receipt: exit $rc: $(cat "$T/s6")"
echo "# receipt on a full disk: $(cat "$T/s6")"
grep -q "no space left on device" "$T/s6" || fail "no clear error: $(cat "$T/s6")"
! grep -q "receipt refused" "$T/s6" || fail "a verified receipt called refused: $(cat "$T/s6")"
kill "$RELAY" 2>/dev/null || true
rm -f "$T"/small/f.*
ruf outbox --home "$HOME_SD" >"$T/l" || fail "outbox"
grep -q "^in-flight $ID6\|^pending $ID6" "$T/l" || fail "the entry is not left to send again: $(cat "$T/l")"
[ -s "$OB/$ID6.key" ] || fail "the key wrap went before the receipt was recorded"
"${SEND[@]}" --deadline 30 >"$T/s7" 2>&1 || fail "send after space returned: $(cat "$T/s7")"
grep -q "^delivered $ID6" "$T/s7" || fail "not delivered: $(cat "$T/s7")"
ok "the disk filled during an upload: a clear error, the entry kept, and with room back the same report is recorded delivered"

ls "$OB"/*.meta | sed 's|.*/||; s|\.meta$||' | sort >"$T/ids"
rufd_stop
ruf_storecheck "$T/state/store" >"$T/sc" 2>&1 || fail "store: $(cat "$T/sc")"
grep -q '^stats envelopes=6 ' "$T/sc" || fail "6 envelopes wanted: $(grep stats "$T/sc")"
# Every entry of the outbox is in every queue of its receipt exactly once.
for id in $(cat "$T/ids"); do
	n=$(grep -c "^entry [^ ]* [0-9]* $id " "$T/sc" || true)
	[ "$n" -ge 1 ] || fail "$id not in rufd's store"
	[ "$(grep "^entry [^ ]* [0-9]* $id " "$T/sc" | awk '{print $2}' | sort | uniq -d)" = "" ] ||
		fail "$id twice in a queue"
done
[ "$(wc -l <"$T/ids")" = 6 ] || fail "6 entries wanted: $(cat "$T/ids")"
! find "$OB" -name '*.tmp*' -o -name '.tmp-*' | grep -q . || fail "stray files: $(ls -A "$OB")"
ok "rufd holds exactly the 6 reports of the outbox, each once per queue"
echo "all $checks checks passed"
