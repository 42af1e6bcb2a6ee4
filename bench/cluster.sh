#!/usr/bin/env bash
# bench/cluster.sh - rufd on the embedded LMDB store against rufd on a
# replicated NATS JetStream store (3 nodes, replicas 3, all on loopback), in
# the same run: ingest rate and submit->ack / submit->desk latency
# (bench_ingest, one desk acking every delivery), alternating the two
# stores in each round, fresh state every run. Results and the reading:
# docs/BENCHMARKS.md, "Multi-site store".
#
#   bench/cluster.sh [BUILD_DIR]        (default build/bench; built Release here)
#
# Environment: ROUNDS (3), WS ("1 20": submissions in flight), SECS (6 per
# run), RUF_N (8000 pre-sealed ~1 KiB reports), RATE (100: the fixed-rate
# latency run). Needs nats-server (Debian: nats-server) and a build with the
# jetstream backend (libnats-dev). Data on /var/tmp (a real disk). Everything
# it starts is stopped on exit; each client run is under `timeout`.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$src/build/bench}
ROUNDS=${ROUNDS:-3}
WS=${WS:-1 20}
SECS=${SECS:-6}
RUF_N=${RUF_N:-8000}
RATE=${RATE:-100}

T=$(mktemp -d /var/tmp/ruf-cluster-bench.XXXXXX)
RUFD_PID=
cleanup() {
	[ -n "$RUFD_PID" ] && kill "$RUFD_PID" 2>/dev/null
	[ -f "$T/nats/nodes" ] && nats_cluster_stop "$T/nats"
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=../tests/cluster/nats_cluster.sh
. "$src/tests/cluster/nats_cluster.sh"
R=$T/results
: >"$R"
say() { echo "== $*" >&2; }
# shellcheck source=bench/rufd_bench.sh
. "$src/bench/rufd_bench.sh"
metric() { # port name
	curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}
command -v nats-server >/dev/null || { echo "nats-server is not installed" >&2; exit 1; }

say "building Release in $B"
cmake -S "$src" -B "$B" -DCMAKE_BUILD_TYPE=Release -DRUF_TESTS=OFF >/dev/null
cmake --build "$B" -j2 --target rufd rufctl bench_ingest >/dev/null

bench_machine "nats-server: $(nats-server --version 2>&1 | head -1); libnats: $(pkg-config --modversion libnats)"

say "example PKI and $RUF_N sealed ~1 KiB reports"
bench_pki "$B" >>"$R"

start_rufd() { # dir store
	local d=$1 store=$2
	RPORT=$(free_port)
	MPORT=$(free_port)
	mkdir -p "$d"
	rufd_bench_conf "$d" "$C" "$RPORT" "$MPORT"
	if [ "$store" = jetstream ]; then
		nats_cluster_start "$T/nats" "$(nats_free_base $$)" 3
		nats_cluster_wait "$T/nats" 30
		cat >>"$d/rufd.conf" <<-CONF
			store_backend = jetstream
			jetstream_servers = $(nats_cluster_urls "$T/nats")
			jetstream_replicas = 3
		CONF
	fi
	"$B/rufd" -d -c "$d/rufd.conf" 2>>"$d/rufd.log" &
	RUFD_PID=$!
	for _ in $(seq 300); do
		# Started, and (jetstream) connected: the first connection is made in the background.
		grep -q "rufd started" "$d/rufd.log" 2>/dev/null &&
			[ "$(metric "$MPORT" rufd_store_available)" = 1 ] && return 0
		sleep 0.1
	done
	cat "$d/rufd.log" >&2
	return 1
}

stop_all() {
	kill "$RUFD_PID" 2>/dev/null || true
	wait "$RUFD_PID" 2>/dev/null || true
	RUFD_PID=
	if [ -f "$T/nats/nodes" ]; then
		nats_cluster_stop "$T/nats"
		rm -rf "$T/nats"
	fi
}

run() { # round store w [extra bench_ingest args...]
	local r=$1 store=$2 w=$3 d=$T/run c0 i0 c1 i1
	shift 3
	start_rufd "$d" "$store"
	c0=$(metric "$MPORT" rufd_commits_total)
	i0=$(metric "$MPORT" rufd_commit_items_total)
	timeout $((SECS + 60)) "$B/bench_ingest" run -s "127.0.0.1:$RPORT" -p "$PASS" \
		-D "$C/directory" -d "$DEV=$T/env" -k "$DESK=itf.darfur" -w "$w" -t "$SECS" \
		-P "$RUFD_PID" "$@" >"$d/out" || true
	c1=$(metric "$MPORT" rufd_commits_total)
	i1=$(metric "$MPORT" rufd_commit_items_total)
	echo "round=$r store=$store $(sed 's/^result //' "$d/out") commits=$((c1 - c0)) commit_items=$((i1 - i0))" |
		tee -a "$R" >&2
	stop_all
	rm -rf "$d"
}

for r in $(seq "$ROUNDS"); do
	for w in $WS; do
		for store in lmdb jetstream; do
			say "round $r, W=$w, $store"
			run "$r" "$store" "$w"
		done
	done
done
for store in lmdb jetstream; do
	say "fixed $RATE reports/s, W=20, $store"
	run "fixed" "$store" 20 -r "$RATE"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$T/machine" >&2

# --- the table ----------------------------------------------------------------
echo
echo '```'
cat "$T/machine"
echo '```'
echo
python3 - "$R" <<'PY'
import statistics, sys
rows = []
for line in open(sys.argv[1]):
    if not line.startswith("round="):
        continue
    kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
    rows.append(kv)
def f(k, rs):
    return [float(x[k]) for x in rs]
print("| W | store | ingest/s median (min-max) | submit->ack p50/p99 ms | submit->desk p50/p99 ms | rufd CPU us/report | items/commit | rounds |")
print("|---|-------|---------------------------|------------------------|-------------------------|--------------------|--------------|--------|")
med = {}
for fixed in (False, True):
    for w in sorted({x["w"] for x in rows}, key=int):
        for store in ("lmdb", "jetstream"):
            rs = [x for x in rows if x["w"] == w and x["store"] == store and (x["round"] == "fixed") == fixed]
            if not rs:
                continue
            ing = f("ingest_per_s", rs)
            m = statistics.median(ing)
            med[(fixed, w, store)] = m
            items = sum(float(x["commit_items"]) for x in rs) / max(1, sum(float(x["commits"]) for x in rs))
            label = f"{w} (fixed rate)" if fixed else w
            print(f"| {label} | {store} | {m:.0f} ({min(ing):.0f}-{max(ing):.0f}) | "
                  f"{statistics.median(f('receipt_p50_ms', rs)):.2f} / {statistics.median(f('receipt_p99_ms', rs)):.2f} | "
                  f"{statistics.median(f('desk_p50_ms', rs)):.2f} / {statistics.median(f('desk_p99_ms', rs)):.2f} | "
                  f"{statistics.median(f('rufd_cpu_us_per_report', rs)):.0f} | {items:.1f} | {len(rs)} |")
print()
for (fixed, w, store), m in sorted(med.items()):
    if store == "jetstream" and not fixed and (fixed, w, "lmdb") in med:
        print(f"- W={w}: jetstream/lmdb ingest ratio = {m / med[(fixed, w, 'lmdb')]:.2f}")
PY
