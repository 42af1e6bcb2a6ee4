#!/usr/bin/env bash
# Crash safety: a load of submissions in flight from several device workers
# while desks consume and acknowledge; rufd is SIGKILLed at random moments
# RUF_CRASH_KILLS times (3 here; run with 20+ for the long version, see
# docs/RELIABILITY.md). After each kill, before the restart, the store is
# opened by tests/reliability/storecheck.c: it opens cleanly, the audit chain
# verifies, queues have no gaps, every receipted report is in every queue of
# its receipt exactly once, and no desk cursor moved backwards. At the end
# every report is receipted and every one routed to a consumed queue has been
# delivered (at-least-once) with the cursor at the queue's head.
. "$RUF_SRC/tests/integration/lib.sh"
. "$RUF_SRC/tests/integration/rufd_lib.sh"
KILLS=${RUF_CRASH_KILLS:-3}
PER_DEVICE=${RUF_CRASH_REPORTS:-32}
WORKERS=${RUF_CRASH_WORKERS:-3}
trap 'touch "$T/stop"; kill -9 ${RUFD_PID:-} 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$T"' EXIT
RUFD_EXTRA_CONF="submissions_per_minute = 100000" rufd_setup
R=$RUF_SRC/certs-example/reports
DEVICES="rc-sd-1 rc-cd-1"
mkdir -p "$T/rcpt" "$T/logs"
for dev in $DEVICES; do
	mkdir -p "$T/env/$dev"
	ruf_hostile -C "$C" -D "$T/directory" -p "$PASS" -r "$R/sitrep-darfur.json" \
		-G "$dev:$PER_DEVICE:$T/env/$dev" || fail "generating envelopes"
done
TOTAL=$((PER_DEVICE * 2))
# Desks consuming, and the queues they read.
CONSUMERS="itf-darfur-desk:itf.darfur sag-desk:sag"
cursor_args=()
for c in $CONSUMERS; do cursor_args+=(-c "$C/identities/${c%%:*}/cert:${c#*:}"); done

start() { # a fresh log per rufd life, so "started" is this one's
	[ -e "$T/rufd.log" ] && mv "$T/rufd.log" "$T/logs/rufd.$(date +%s%N).log"
	rufd_start
}
start

# Device workers: each submits its share until receipted, across crashes.
worker() { # device index-of-worker
	local dev=$1 w=$2 k=0 f id
	for f in "$T/env/$dev"/*.env; do
		k=$((k + 1))
		[ $((k % WORKERS)) = "$w" ] || continue
		id=$(basename "$f" .env)
		until [ -e "$T/stop" ]; do
			if tc "$dev" submit "$f" >"$T/logs/s.$id" 2>&1 && grep -q '^receipt' "$T/logs/s.$id"; then
				mv "$T/logs/s.$id" "$T/rcpt/$id"
				break
			fi
			sleep 0.2
		done
	done
}
for dev in $DEVICES; do
	for w in $(seq 0 $((WORKERS - 1))); do worker "$dev" "$w" & done
done
# Desk consumers: a few deliveries per connection, acked, until stopped.
for c in $CONSUMERS; do
	(
		until [ -e "$T/stop" ]; do
			tc "${c%%:*}" -n 3 -w 2 -t 2 subscribe "${c#*:}" >>"$T/logs/d.${c#*:}" 2>&1 || sleep 0.3
		done
	) &
done

declare -A last_cursor
check_store() { # label
	ruf_storecheck "$T/state/store" "${cursor_args[@]}" >"$T/sc" 2>"$T/sc.err" ||
		fail "$1: store check: $(cat "$T/sc.err")"
	local f id q n got=0
	for f in "$T"/rcpt/*; do
		[ -e "$f" ] || continue
		id=$(basename "$f")
		for q in $(grep -o 'queues=[^ ]*' "$f" | cut -d= -f2 | tr , ' '); do
			n=$(grep -c "^entry $q [0-9]* $id " "$T/sc" || true)
			[ "$n" = 1 ] || fail "$1: receipted $id is $n times in $q"
		done
		got=$((got + 1))
	done
	while read -r _ serial q seq; do
		[ "$seq" -ge "${last_cursor[$serial:$q]:-0}" ] ||
			fail "$1: cursor of desk $serial on $q went back from ${last_cursor[$serial:$q]} to $seq"
		last_cursor[$serial:$q]=$seq
	done < <(grep '^cursor ' "$T/sc")
	echo "# $1: $got receipted reports each once per queue; $(grep '^audit' "$T/sc") entries verified; $(grep '^cursor' "$T/sc" | tr '\n' ' ')"
}

for k in $(seq "$KILLS"); do
	sleep "$((RANDOM % 2 + 1)).$((RANDOM % 10))"
	kill -9 "$RUFD_PID"
	wait "$RUFD_PID" 2>/dev/null || true
	check_store "kill $k"
	start
done
ok "$KILLS SIGKILLs under load: after each, the store opens, audit chain verifies, each receipted report once per routed queue, cursors never back"

# Let the workers finish on the last rufd.
for _ in $(seq 600); do
	[ "$(ls "$T/rcpt" | wc -l)" -ge "$TOTAL" ] && break
	sleep 0.2
done
[ "$(ls "$T/rcpt" | wc -l)" = "$TOTAL" ] || fail "only $(ls "$T/rcpt" | wc -l) of $TOTAL receipted"
touch "$T/stop"
sleep 2.5
# Drain what is left for each consumer, then compare with the store.
for c in $CONSUMERS; do
	tc "${c%%:*}" -n 100000 -w 16 -t 3 subscribe "${c#*:}" >>"$T/logs/d.${c#*:}" 2>&1 || true
done
rufd_stop
check_store "final"
for c in $CONSUMERS; do
	q=${c#*:}
	head=$(grep -c "^entry $q " "$T/sc" || true)
	cur=$(grep "^cursor [0-9]* $q " "$T/sc" | awk '{print $4}')
	[ "$cur" = "$head" ] || fail "$q: cursor $cur, head $head after draining"
	for id in $(grep "^entry $q " "$T/sc" | awk '{print $4}'); do
		grep -q "id=$id " "$T/logs/d.$q" || fail "$q: $id never delivered"
	done
	dups=$( (grep -o "id=[0-9a-f]*" "$T/logs/d.$q" || true) | sort | uniq -d | wc -l)
	echo "# $q: $head entries, all delivered; $dups redelivered after a crash (at-least-once)"
done
[ "$(grep -c '^entry ' "$T/sc")" -ge "$TOTAL" ] || fail "store holds fewer entries than reports"
grep -q "^stats envelopes=$TOTAL " "$T/sc" || fail "store: $(grep stats "$T/sc"), wanted $TOTAL envelopes"
ok "all $TOTAL reports receipted and stored once; every consumed queue fully delivered, cursor at head"
echo "all $checks checks passed"
