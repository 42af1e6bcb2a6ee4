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
# routed queue, cursors never back). Prints per-rufd-life RSS (first and
# last sample), peak descriptors, totals; exit 1 on any failed check.
. "$RUF_SRC/tests/integration/lib.sh"
. "$RUF_SRC/tests/integration/rufd_lib.sh"
DURATION=${1:?usage: soak.sh SECONDS [KILL_EVERY] [HUP_EVERY]}
KILL_EVERY=${2:-60}
HUP_EVERY=${3:-15}
WORKERS=${RUF_SOAK_WORKERS:-2}
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
	local f id q n
	for f in "$T"/rcpt/*; do
		[ -e "$f" ] || continue
		id=$(basename "$f")
		for q in $(grep -o 'queues=[^ ]*' "$f" | cut -d= -f2 | tr , ' '); do
			n=$(grep -c "^entry $q [0-9]* $id " "$T/sc" || true)
			[ "$n" = 1 ] || fail "$1: receipted $id is $n times in $q"
		done
	done
	while read -r _ serial q seq; do
		[ "$seq" -ge "${last_cursor[$serial:$q]:-0}" ] || fail "$1: cursor $serial $q went back"
		last_cursor[$serial:$q]=$seq
	done < <(grep '^cursor ' "$T/sc")
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
echo "life sample_s rss_kb fds" >"$T/mem"
while :; do
	now=$(date +%s)
	[ $((now - t0)) -ge "$DURATION" ] && break
	pid=$(cat "$T/rufd.pid")
	if [ -r "/proc/$pid/status" ]; then
		echo "$LIFE $((now - t0)) $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") $(ls "/proc/$pid/fd" | wc -l)" >>"$T/mem"
	fi
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
	sleep 5
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
echo "soak: memory per rufd life (first and last sample, peak fds):"
awk 'NR > 1 { if (!($1 in first)) first[$1] = $3; last[$1] = $3; if ($4 > fds[$1]) fds[$1] = $4; n[$1]++ }
	END { for (l in first) printf "  life %s: %d samples, rss %d -> %d KiB, peak fds %d\n", l, n[l], first[l], last[l], fds[l] }' "$T/mem" | sort -n -k2
[ "${hbad:-0}" = 0 ] || { cat "$T"/logs/h.* | grep 'not ok' | head; fail "hostile runs failed during the soak"; }
echo "soak: all checks passed"
