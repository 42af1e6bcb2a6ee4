#!/usr/bin/env bash
# bench/ab.sh - two builds of rufd alternated in one run on the same reports:
# the before/after ratio of a change on a shared, noisy machine.
#
#   bench/ab.sh BUILD_A BUILD_B        # e.g. a build of main and of a branch
#
# Each build dir holds rufd and bench_ingest (A also rufctl). For every
# round and every W, rufd A then rufd B ingest pre-sealed ~1 KiB reports
# (W connections of one device, one desk acking) for SECS seconds; prints
# each run, then per W the medians and B/A. CLIENT=own (default) runs each
# build's own bench_ingest (client library changes count); CLIENT=A runs
# A's against both (rufd alone).
# Environment: ROUNDS (5), WS ("20 256"), SECS (5), RUF_N (15000), CLIENT.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
A=$1
Bd=$2
ROUNDS=${ROUNDS:-5}
WS=${WS:-20 256}
SECS=${SECS:-5}
RUF_N=${RUF_N:-15000}
CLIENT=${CLIENT:-own}
T=$(mktemp -d /var/tmp/ruf-ab.XXXXXX)
RUFD_PID=
cleanup() {
	[ -n "$RUFD_PID" ] && kill "$RUFD_PID" 2>/dev/null && wait "$RUFD_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
# shellcheck source=bench/rufd_bench.sh
. "$src/bench/rufd_bench.sh"

RUFCTL=$A/rufctl "$src/certs-example/gen.sh" "$T/certs" >/dev/null
C=$T/certs
PASS=$C/PASSPHRASE-EXAMPLE-ONLY
DEV=$C/identities/rc-sd-1
DESK=$C/identities/itf-darfur-desk
mkdir -p "$T/env"
"$A/bench_ingest" seal -i "$DEV" -p "$PASS" -D "$C/directory" -o "$T/env" -n "$RUF_N" >&2

run() { # label build w
	local d=$T/run port mport
	rm -rf "$d"
	mkdir -p "$d"
	port=$(free_port)
	mport=$(free_port)
	rufd_bench_conf "$d" "$C" "$port" "$mport"
	rufd_bench_start "$2" "$d"
	local gen=$2/bench_ingest
	[ "$CLIENT" = A ] && gen=$A/bench_ingest
	timeout $((SECS + 60)) "$gen" run -s "127.0.0.1:$port" -p "$PASS" \
		-D "$C/directory" -d "$DEV=$T/env" -k "$DESK=itf.darfur" -w "$3" -t "$SECS" \
		-P "$RUFD_PID" >"$d/out" || true
	kill "$RUFD_PID" 2>/dev/null || true
	wait "$RUFD_PID" 2>/dev/null || true
	RUFD_PID=
	echo "rufd=$1 w=$3 $(sed 's/^result //' "$d/out")" | tee -a "$T/results"
}

for r in $(seq "$ROUNDS"); do
	for w in $WS; do
		run A "$A" "$w"
		run B "$Bd" "$w"
	done
done
python3 - "$T/results" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r'(\w+)=([^ ]+)', line))
    if 'ingest_per_s' not in kv:
        continue
    runs.setdefault((kv['w'], kv['rufd']), []).append(kv)
def med(rs, k):
    v = [float(x[k]) for x in rs if k in x]
    return statistics.median(v) if v else float('nan')
for w in sorted({k[0] for k in runs}, key=int):
    a, b = runs.get((w, 'A'), []), runs.get((w, 'B'), [])
    for key in ('ingest_per_s', 'rufd_cpu_us_per_report', 'receipt_p50_ms', 'receipt_p99_ms', 'errors'):
        ma, mb = med(a, key), med(b, key)
        print(f"W={w} {key}: A median {ma:.2f} B median {mb:.2f} B/A {mb / ma if ma else float('nan'):.2f}"
              f" (A runs {[x.get(key) for x in a]}, B runs {[x.get(key) for x in b]})")
PY
