#!/usr/bin/env bash
# Soak: a bounded long run of mixed load against a real rufd, with periodic
# SIGKILLs and SIGHUP reloads, hostile peers in between, and memory and
# descriptors sampled. Not part of ctest; see docs/RELIABILITY.md.
#
#   RUF_BIN=build/rel RUF_SRC=. tests/reliability/soak.sh SECONDS [KILL_EVERY] [HUP_EVERY]
#
# Defaults: kill every 60 s, reload every 15 s. Use a build without
# sanitizers for memory figures (ASan's quarantine grows by design).
# Load: 2 devices x RUF_SOAK_WORKERS submitters sealing fresh reports in
# batches, 2 desks consuming and acknowledging, a hostile run (quick cases)
# every few seconds. After every kill the stopped store is checked
# (ruf_storecheck: audit chain, no gaps, each receipted report once per
# routed queue, cursors never back). Samples rufd's anonymous and file-backed
# resident memory (RssAnon, RssFile of /proc/PID/status) and VmHWM every
# RUF_SOAK_SAMPLE seconds (5); prints per-rufd-life first/last/max of each,
# the slope of RssAnon after warm-up, peak descriptors and totals. Exit 1 on
# any failed check, or when anonymous memory keeps growing: RssAnon's floor
# (minimum) over the last RUF_SOAK_WARMUP seconds (120) of a life may not be
# more than RUF_SOAK_ANON_BOUND KiB (1024) above its floor over the
# RUF_SOAK_WARMUP seconds after warm-up, nor above the first life's late floor
# (lives shorter than 3 x RUF_SOAK_WARMUP are reported, not judged). RssFile
# is LMDB's map: it follows the store's size and is reported only.
. "$RUF_SRC/tests/integration/lib.sh"
. "$RUF_SRC/tests/integration/rufd_lib.sh"
DURATION=${1:?usage: soak.sh SECONDS [KILL_EVERY] [HUP_EVERY]}
KILL_EVERY=${2:-60}
HUP_EVERY=${3:-15}
WORKERS=${RUF_SOAK_WORKERS:-2}
SAMPLE=${RUF_SOAK_SAMPLE:-5}
WARMUP=${RUF_SOAK_WARMUP:-120}
ANON_BOUND=${RUF_SOAK_ANON_BOUND:-1024}
trap 'touch "$T/stop"; kill -9 $(cat "$T/rufd.pid" 2>/dev/null) 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; if [ -n "${KEEP:-}" ]; then cp -r "$T" /tmp/ruf-soak-kept; fi; rm -rf "$T"' EXIT
RUFD_EXTRA_CONF="submissions_per_minute = 100000
max_connections = 128" rufd_setup
R=$RUF_SRC/certs-example/reports
mkdir -p "$T/rcpt" "$T/logs"
: >"$T/lock"
CONSUMERS="itf-darfur-desk:itf.darfur sag-desk:sag"
cursor_args=()
for c in $CONSUMERS; do cursor_args+=(-c "$C/identities/${c%%:*}/cert:${c#*:}"); done
QUICK="garbage_message1 zero_length_message1 wrong_prologue small_order_ephemeral replayed_message1
frame_unknown_field frame_two_bodies client_sends_receipt chunk_offset_rewinds chunk_for_another_message_id
forged_signature envelope_of_another_device offer_hash_mismatch desk_subscribes_beyond_certificate
field_device_subscribes ack_of_a_delivery_never_sent ping_flood_answered_in_order single_byte_writes_still_work"

start() {
	[ -e "$T/rufd.log" ] && mv "$T/rufd.log" "$T/logs/rufd.$(date +%s%N).log"
	rufd_start
	echo "$RUFD_PID" >"$T/rufd.pid"
	LIFE=$((${LIFE:--1} + 1))
}

worker() { # device worker
	local dev=$1 w=$2 b=0 f id dir
	until [ -e "$T/stop" ]; do
		b=$((b + 1))
		dir=$T/env/$dev.$w.$b
		mkdir -p "$dir"
		ruf_hostile -C "$C" -D "$T/directory" -p "$PASS" -r "$R/sitrep-darfur.json" \
			-G "$dev:10:$dir" >/dev/null 2>&1 || { sleep 1; continue; }
		for f in "$dir"/*.env; do
			id=$(basename "$f" .env)
			until [ -e "$T/stop" ]; do
				if tc "$dev" submit "$f" >"$T/logs/s.$id" 2>&1 && grep -q '^receipt' "$T/logs/s.$id"; then
					mv "$T/logs/s.$id" "$T/rcpt/$id"
					rm -f "$f"
					break
				fi
				sleep 0.3
			done
		done
	done
}

declare -A last_cursor
check_store() {
	ruf_storecheck "$T/state/store" "${cursor_args[@]}" >"$T/sc" 2>"$T/sc.err" ||
		fail "$1: store check: $(cat "$T/sc.err")"
	# One pass over all receipts (tens of thousands in a run of hours).
	find "$T/rcpt" -type f -exec grep -H -o 'queues=[^ ]*' {} + >"$T/rq" || true
	awk 'FNR == NR { if ($1 == "entry") n[$2 " " $4]++; next }
		{
			i = index($0, ":queues="); id = substr($0, 1, i - 1); sub(/.*\//, "", id)
			nq = split(substr($0, i + 8), q, ",")
			for (j = 1; j <= nq; j++)
				if (n[q[j] " " id] != 1) { printf "receipted %s is %d times in %s\n", id, n[q[j] " " id], q[j]; exit 1 }
		}' "$T/sc" "$T/rq" >"$T/rq.err" || fail "$1: $(cat "$T/rq.err")"
	while read -r _ serial q seq; do
		[ "$seq" -ge "${last_cursor[$serial:$q]:-0}" ] || fail "$1: cursor $serial $q went back"
		last_cursor[$serial:$q]=$seq
	done < <(grep '^cursor ' "$T/sc")
}

# sample PID T: one line of $T/mem. RssAnon is the heap (and thread stacks);
# RssFile is the binaries and LMDB's read-only map of data.mdb, which grows
# with the store (the kernel's page cache, not rufd's to free): the line
# also has data.mdb's size and the resident part of its mapping (smaps).
sample() {
	[ -r "/proc/$1/status" ] || return 0
	local mdb mapped
	mdb=$(($(stat -c %s "$T/state/store/data.mdb" 2>/dev/null || echo 0) / 1024))
	mapped=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { m = ($6 ~ /\/data\.mdb$/) } m && /^Rss:/ { s += $2 }
		END { print s + 0 }' "/proc/$1/smaps" 2>/dev/null)
	awk -v life="$LIFE" -v t="$2" -v fds="$(ls "/proc/$1/fd" 2>/dev/null | wc -l)" \
		-v mdb="$mdb" -v mapped="${mapped:-0}" '
		/^VmRSS:/ { rss = $2 } /^RssAnon:/ { anon = $2 } /^RssFile:/ { file = $2 }
		/^RssShmem:/ { shm = $2 } /^VmHWM:/ { hwm = $2 }
		END { if (rss != "") print life, t, rss, anon, file, shm, hwm, fds, mdb, mapped }' \
		"/proc/$1/status" >>"$T/mem"
}

# memory_report: per life first/last/max of RssAnon and RssFile, VmHWM, the
# least-squares slope of RssAnon after warm-up (KiB/min), peak fds, and the
# growth of anon's floor: its minimum over the last WARMUP seconds of the life
# minus its minimum over the WARMUP seconds after warm-up. Floors, not peaks:
# a connection's buffers (up to max_conn_buffer each) lift a sample for a
# moment, a leak lifts every later sample. Lives that break the bound (or
# whose late floor is more than the bound above the first life's) go to
# $T/mem.bad.
memory_report() {
	echo "soak: memory per rufd life (KiB; anon = RssAnon, file = RssFile; slope (KiB/min) and floor growth of anon after ${WARMUP}s warm-up; data.mdb size and its resident mapping at the last sample):"
	awk -v warm="$WARMUP" -v bound="$ANON_BOUND" -v bad="$T/mem.bad" '
		NR == 1 { next }
		{
			l = $1; a = $4; f = $5
			if (!(l in t0)) { t0[l] = $2; afirst[l] = a; ffirst[l] = f; lives[++nl] = l }
			k = ++n[l]; t = $2 - t0[l]; ts[l, k] = t; as[l, k] = a
			alast[l] = a; flast[l] = f; hwm[l] = $7; tl[l] = t; mdb[l] = $9; mapped[l] = $10
			if (a > amax[l]) amax[l] = a
			if (f > fmax[l]) fmax[l] = f
			if ($8 > fds[l]) fds[l] = $8
			if (t < warm) next
			x = t / 60; m[l]++; sx[l] += x; sy[l] += a; sxx[l] += x * x; sxy[l] += x * a
		}
		END {
			printf "  %-4s %5s %5s  %-22s %6s %6s  %-22s %-15s %6s %4s\n", "life", "secs", "samp",
				"anon first/last/max", "slope", "floor+", "file first/last/max", "data.mdb/mapped", "hwm", "fds"
			for (i = 1; i <= nl; i++) {
				l = lives[i]; slope = "-"; grow = "-"; early = -1; late = -1
				for (k = 1; k <= n[l]; k++) {
					t = ts[l, k]; a = as[l, k]
					if (t >= warm && t < 2 * warm && (early < 0 || a < early)) early = a
					if (t > tl[l] - warm && t >= 2 * warm && (late < 0 || a < late)) late = a
				}
				if (m[l] >= 3) {
					d = m[l] * sxx[l] - sx[l] * sx[l]
					if (d > 0) slope = sprintf("%+.0f", (m[l] * sxy[l] - sx[l] * sy[l]) / d)
				}
				if (early >= 0 && late >= 0) {
					grow = late - early
					if (grow > bound)
						printf "life %s: RssAnon floor %d -> %d KiB after warm-up (bound %d); ", l, early, late, bound >>bad
					if (i == 1) late1 = late
					else if (late1 != "" && late > late1 + bound)
						printf "life %s: RssAnon floor %d KiB, first life %d (bound +%d); ", l, late, late1, bound >>bad
				}
				printf "  %-4s %5d %5d  %-22s %6s %6s  %-22s %-15s %6d %4d\n", l, tl[l], n[l],
					afirst[l] "/" alast[l] "/" amax[l], slope, grow,
					ffirst[l] "/" flast[l] "/" fmax[l], mdb[l] "/" mapped[l], hwm[l], fds[l]
			}
		}' "$T/mem"
}

start
for dev in rc-sd-1 rc-cd-1; do
	for w in $(seq 1 "$WORKERS"); do worker "$dev" "$w" & done
done
for c in $CONSUMERS; do
	(
		until [ -e "$T/stop" ]; do
			tc "${c%%:*}" -n 5 -w 4 -t 2 subscribe "${c#*:}" >>"$T/logs/d.${c#*:}" 2>&1 || sleep 0.3
		done
	) &
done
(
	runs=0 bad=0
	until [ -e "$T/stop" ]; do
		# shellcheck disable=SC2086
		if flock "$T/lock" ruf_hostile -s "127.0.0.1:$PORT" -C "$C" -D "$T/directory" -p "$PASS" \
			-r "$R/sitrep-darfur.json" -H 2 -M 128 $QUICK >"$T/logs/h.$runs" 2>&1; then
			rm -f "$T/logs/h.$runs"
		else
			bad=$((bad + 1))
		fi
		runs=$((runs + 1))
		echo "$runs $bad" >"$T/hostile.count"
		sleep 2
	done
) &

t0=$(date +%s) next_kill=$((t0 + KILL_EVERY)) next_hup=$((t0 + HUP_EVERY)) kills=0 hups=0
echo "life t_s rss_kb anon_kb file_kb shmem_kb hwm_kb fds mdb_kb mdb_mapped_kb" >"$T/mem"
while :; do
	now=$(date +%s)
	[ $((now - t0)) -ge "$DURATION" ] && break
	pid=$(cat "$T/rufd.pid")
	sample "$pid" "$((now - t0))"
	if [ "$now" -ge "$next_hup" ]; then
		kill -HUP "$pid"
		hups=$((hups + 1))
		next_hup=$((now + HUP_EVERY))
	fi
	if [ "$now" -ge "$next_kill" ]; then
		exec 9>"$T/lock"
		flock 9
		sleep "0.$((RANDOM % 10))"
		kill -9 "$pid"
		wait "$pid" 2>/dev/null || true
		check_store "kill $((kills + 1))"
		start
		flock -u 9
		kills=$((kills + 1))
		next_kill=$(($(date +%s) + KILL_EVERY))
	fi
	sleep "$SAMPLE"
done
touch "$T/stop"
sleep 3
wait_workers=0
for c in $CONSUMERS; do
	tc "${c%%:*}" -n 100000 -w 16 -t 3 subscribe "${c#*:}" >>"$T/logs/d.${c#*:}" 2>&1 || true
done
rufd_stop
check_store "final"
read -r hruns hbad <"$T/hostile.count" || true
echo "soak: ${DURATION}s, $kills SIGKILLs, $hups SIGHUPs, $(ls "$T/rcpt" | wc -l) reports receipted, $(grep '^stats' "$T/sc")"
echo "soak: hostile runs $hruns ($(echo $QUICK | wc -w) cases each), failed runs $hbad"
for c in $CONSUMERS; do
	q=${c#*:}
	head=$(grep -c "^entry $q " "$T/sc" || true)
	cur=$(grep "^cursor [0-9]* $q " "$T/sc" | awk '{print $4}')
	echo "soak: $q: $head entries, desk cursor $cur"
	[ "$cur" = "$head" ] || fail "$q: cursor $cur, head $head after draining"
done
memory_report
[ -z "${RUF_SOAK_MEM:-}" ] || cp "$T/mem" "$RUF_SOAK_MEM"
[ ! -s "$T/mem.bad" ] || fail "anonymous memory kept growing: $(cat "$T/mem.bad")"
[ "${hbad:-0}" = 0 ] || { cat "$T"/logs/h.* | grep 'not ok' | head; fail "hostile runs failed during the soak"; }
echo "soak: all checks passed"
