#!/usr/bin/env bash
# Disk full: rufd's state_dir on a small tmpfs the test mounts (needs root;
# skipped with the reason otherwise) with a map_size far larger than the
# filesystem, so the disk fills before the LMDB map. Submitters get Nack
# retry-later; nothing receipted is lost; once space returns (a ballast file
# deleted) the next submissions succeed without restarting or signalling
# rufd; after a SIGKILL the store still checks out.
. "$RUF_SRC/tests/integration/lib.sh"
. "$RUF_SRC/tests/integration/rufd_lib.sh"
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root to mount a small tmpfs for state_dir"
	exit 0
fi
trap 'kill -9 ${RUFD_PID:-} 2>/dev/null || true; umount "$T/small" 2>/dev/null || true; [ -n "${KEEP:-}" ] && cp "$T"/rufd.log* /tmp/ || true; rm -rf "$T"' EXIT
mkdir -p "$T/small"
if ! mount -t tmpfs -o size=6m,mode=0700 tmpfs "$T/small" 2>"$T/mount.err"; then
	echo "SKIP: cannot mount a tmpfs here: $(cat "$T/mount.err")"
	exit 0
fi
RUFD_EXTRA_CONF="map_size = 256m
submissions_per_minute = 100000" rufd_setup
sed -i "s|^state_dir = .*|state_dir = $T/small/state|" "$T/rufd.conf"
R=$RUF_SRC/certs-example/reports
head -c 307200 /dev/urandom >"$T/blob.bin"
mkdir -p "$T/env"
N=24
ruf_hostile -C "$C" -D "$T/directory" -p "$PASS" -r "$R/sitrep-darfur.json" \
	-G "rc-sd-1:$N:$T/env:$T/blob.bin" || fail "generating envelopes"
# run LABEL STORE_DIR: fill the disk, free it, check; rufd started and killed here.
run() {
	local label=$1 store=$2 got=0 full=0 first_full= more=0 rc id f n
	rm -f "$T"/r.*
	# Ballast: what an operator can delete to make room.
	head -c 3M /dev/zero >"$T/small/ballast"
	rufd_start
	for f in "$T"/env/*.env; do
		id=$(basename "$f" .env)
		rc=0
		tc rc-sd-1 submit "$f" >"$T/r.$id" 2>&1 || rc=$?
		if [ "$rc" = 0 ]; then
			got=$((got + 1))
		else
			[ "$rc" = 4 ] && grep -q 'nack reason=1 ' "$T/r.$id" ||
				fail "$label: a full disk must give retry-later: $(cat "$T/r.$id")"
			full=$((full + 1))
			first_full=${first_full:-$id}
			[ "$full" -ge 3 ] && break
		fi
	done
	[ "$full" -ge 1 ] || fail "$label: the disk never filled ($got stored)"
	[ "$got" -ge 1 ] || fail "$label: nothing fit"
	# LMDB turns a short write on a full disk into EIO; the store reports it as
	# a full disk when the file system is out of space (docs/RELIABILITY.md).
	echo "# $label: refusals: $(grep -c 'store full' "$T/rufd.log" || true) store full (NOSPC), $(grep -c 'commit failed' "$T/rufd.log" || true) commit failed (EIO), $(grep -c 'spool write' "$T/rufd.log" || true) spool write"
	ok "$label: disk full: $got receipted, then retry-later ($(grep -o 'retry_after=[0-9]*' "$T/r.$first_full"))"

	kill -0 "$RUFD_PID" || fail "$label: rufd died on a full disk"
	tc rc-sd-1 ping >/dev/null || fail "$label: rufd does not answer a ping on a full disk"
	rm "$T/small/ballast"
	for f in "$T"/env/*.env; do
		id=$(basename "$f" .env)
		grep -q '^receipt' "$T/r.$id" 2>/dev/null && continue
		rc=0
		tc rc-sd-1 submit "$f" >"$T/r.$id" 2>&1 || rc=$?
		if [ "$rc" = 0 ]; then more=$((more + 1)); else break; fi
	done
	[ "$more" -ge 3 ] || fail "$label: after freeing space only $more more submissions succeeded: $(tail -2 "$T/rufd.log")"
	grep -q '^receipt' "$T/r.$first_full" || fail "$label: the first refused report was not accepted after space returned"
	ok "$label: space freed: $more more reports receipted without restarting or signalling rufd"

	# Every receipted report is still there, with its original receipt.
	for f in "$T"/r.*; do
		grep -q '^receipt' "$f" || continue
		id=${f##*/r.}
		tc rc-sd-1 submit "$T/env/$id.env" >"$T/again" 2>&1 || fail "resubmit $id: $(cat "$T/again")"
		diff <(grep '^receipt' "$f") <(grep '^receipt' "$T/again") >/dev/null || fail "$id: receipt changed"
	done
	kill -9 "$RUFD_PID"
	wait "$RUFD_PID" 2>/dev/null || true
	ruf_storecheck "$store" >"$T/sc" 2>&1 || fail "$label: store after a full disk: $(cat "$T/sc")"
	n=$(grep -c '^receipt' "$T"/r.* | awk -F: '{s+=$2} END {print s}')
	grep -q "^stats envelopes=$n " "$T/sc" || fail "$label: store: $(grep stats "$T/sc"), wanted $n"
	ok "$label: all $n receipted reports kept exactly once through the full disk and a SIGKILL; audit chain verifies"
}

# 1. The whole state_dir (spool of uploads and store) on the small filesystem.
run "spool+store" "$T/small/state/store"

# 2. Only the LMDB store on it (spool elsewhere): the commit itself meets ENOSPC.
umount "$T/small"
mount -t tmpfs -o size=6m,mode=0700 tmpfs "$T/small" || fail "remount"
mkdir -p "$T/state2" "$T/small/store"
chmod 0700 "$T/small/store"
ln -s "$T/small/store" "$T/state2/store"
sed -i "s|^state_dir = .*|state_dir = $T/state2|" "$T/rufd.conf"
mv "$T/rufd.log" "$T/rufd.log.1"
run "store only" "$T/small/store"
echo "all $checks checks passed"
