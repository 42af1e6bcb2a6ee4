#!/usr/bin/env bash
# bench/peers.sh - rufd side by side with Mosquitto (QoS 1, persistence) and
# NATS JetStream (file store), plus the machine's floors (Ed25519 verify,
# fsync), group-commit batch sizes, latency at a fixed 1k reports/s, RSS per
# idle connection, cold wire bytes vs MQTT over TLS 1.3, and bench_seal.
# Results and the reading: docs/BENCHMARKS.md.
#
#   bench/peers.sh [BUILD_DIR]        (default build/bench; built Release here)
#
# Environment: ROUNDS (3), WS ("20 256"), SECS (6: cap per run), PEER_N
# (60000 messages per peer run), RUF_N (20000 pre-sealed reports), IDLE_N
# ("1000 10000"), SEAL_MIB (256). Installs mosquitto, nats-server,
# libmosquitto-dev, libnats-dev with apt-get when run as root and missing
# (otherwise the peers are skipped). Everything listens on 127.0.0.1 on
# free ports, keeps its data under one temp dir on /var/tmp (a real disk:
# fsync on tmpfs is free) and is stopped on exit. Bounded: each client run is
# under `timeout`; the whole script takes 5-8 minutes on 2 cores.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$src/build/bench}
ROUNDS=${ROUNDS:-3}
WS=${WS:-20 256}
SECS=${SECS:-6}
PEER_N=${PEER_N:-60000}
RUF_N=${RUF_N:-20000}
IDLE_N=${IDLE_N:-1000 10000}
SEAL_MIB=${SEAL_MIB:-256}

T=$(mktemp -d /var/tmp/ruf-bench.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
R=$T/results
: >"$R"
say() { echo "== $*" >&2; }
stop() { # pid
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
# shellcheck source=bench/rufd_bench.sh
. "$src/bench/rufd_bench.sh"

# --- packages ---------------------------------------------------------------
PEERS=1
missing=()
for p in mosquitto nats-server libmosquitto-dev libnats-dev; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		say "installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			"${missing[@]}" >"$T/apt.log" 2>&1 || { cat "$T/apt.log" >&2; PEERS=0; }
	else
		say "missing ${missing[*]} (not root): peers skipped"
		PEERS=0
	fi
fi
# The packaged mosquitto service would hold port 1883; we use our own ports.
# Run as root, mosquitto drops to user "mosquitto", which could not write our
# temp dirs (persistence would silently fail): keep it as the invoking user.
MOSQ_USER=
[ "$(id -u)" = 0 ] && MOSQ_USER="user root"

# --- build ------------------------------------------------------------------
say "building Release in $B"
cmake -S "$src" -B "$B" -DCMAKE_BUILD_TYPE=Release -DRUF_TESTS=OFF >/dev/null
targets=(rufd rufctl bench_ingest bench_fsync bench_verify bench_seal)
[ "$PEERS" = 1 ] && targets+=(peer_mqtt peer_nats)
cmake --build "$B" -j2 --target "${targets[@]}" >/dev/null

# --- machine ----------------------------------------------------------------
extra=("libsodium: $(pkg-config --modversion libsodium)")
if [ "$PEERS" = 1 ]; then
	extra+=("mosquitto: $(dpkg-query -W -f '${Version}' mosquitto); libmosquitto: $(pkg-config --modversion libmosquitto)")
	extra+=("nats-server: $(nats-server --version 2>&1 | head -1); libnats: $(pkg-config --modversion libnats)")
fi
bench_machine "${extra[@]}"

# --- PKI and pre-sealed reports ---------------------------------------------
say "example PKI and $RUF_N sealed ~1 KiB reports"
bench_pki "$B" >"$T/seal.out" # not in a pipe: it sets C, PASS, DEV, DESK
tee -a "$R" <"$T/seal.out"
one_env=$(find "$T/env" -name '*.env' -print -quit)

# --- floors -----------------------------------------------------------------
say "Ed25519 verify capacity and fsync cost"
"$B/bench_verify" 1 "$one_env" "$C/hq/root.cert" "$C/directory" | tee -a "$R"
"$B/bench_fsync" "$T" 300 256 | tee -a "$R"

# --- the systems ------------------------------------------------------------
run_mosquitto() { # round w
	local port d pid
	port=$(free_port)
	d=$T/mosq.$1.$2
	mkdir -p "$d"
	cat >"$d/conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $d/
max_inflight_messages $2
max_queued_messages 1000000
$MOSQ_USER
CONF
	mosquitto -c "$d/conf" >"$d/log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	sleep 0.3
	timeout $((SECS + 40)) "$B/peer_mqtt" -p "$port" -w "$2" -n "$PEER_N" -t "$SECS" |
		sed "s/^/round=$1 /" | tee -a "$R" || say "mosquitto run failed (log: $d/log)"
	stop "$pid"
	rm -rf "$d"
}

run_nats() { # round w
	local port d pid
	port=$(free_port)
	d=$T/nats.$1.$2
	mkdir -p "$d"
	nats-server -js -sd "$d" -a 127.0.0.1 -p "$port" >"$d/log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	for _ in $(seq 50); do grep -q "Server is ready" "$d/log" && break; sleep 0.1; done
	timeout $((SECS + 40)) "$B/peer_nats" -u "nats://127.0.0.1:$port" -w "$2" -n "$PEER_N" \
		-t "$SECS" | sed "s/^/round=$1 /" | tee -a "$R" || say "nats run failed"
	stop "$pid"
	rm -rf "$d"
}

metric() { # port name
	curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

RUFD_PID=
start_rufd() { # dir
	local d=$1
	RPORT=$(free_port)
	MPORT=$(free_port)
	mkdir -p "$d"
	rufd_bench_conf "$d" "$C" "$RPORT" "$MPORT"
	local rc=0
	rufd_bench_start "$B" "$d" || rc=$?
	PIDS+=("$RUFD_PID")
	return "$rc"
}

run_ruf() { # round w [extra bench_ingest args...]
	local r=$1 w=$2 d=$T/ruf.$1.$2 c0 i0 c1 i1 bmax
	shift 2
	start_rufd "$d"
	c0=$(metric "$MPORT" rufd_commits_total)
	i0=$(metric "$MPORT" rufd_commit_items_total)
	timeout $((SECS + 60)) "$B/bench_ingest" run -s "127.0.0.1:$RPORT" -p "$PASS" \
		-D "$C/directory" -d "$DEV=$T/env" -k "$DESK=itf.darfur" -w "$w" -t "$SECS" \
		-P "$RUFD_PID" "$@" >"$d/out" || true
	c1=$(metric "$MPORT" rufd_commits_total)
	i1=$(metric "$MPORT" rufd_commit_items_total)
	bmax=$(metric "$MPORT" rufd_commit_batch_max)
	echo "round=$r system=ruf $(sed 's/^result //' "$d/out") commits=$((c1 - c0)) commit_items=$((i1 - i0)) batch_max=$bmax" |
		tee -a "$R"
	stop "$RUFD_PID"
	rm -rf "$d"
}

for r in $(seq "$ROUNDS"); do
	for w in $WS; do
		say "round $r, W=$w"
		if [ "$PEERS" = 1 ]; then
			run_mosquitto "$r" "$w"
			run_nats "$r" "$w"
		fi
		run_ruf "$r" "$w"
	done
done

say "ruf at a fixed 1000 reports/s (W=20, 5 s)"
SECS_SAVE=$SECS
SECS=5
run_ruf fixed1k 20 -r 1000
SECS=$SECS_SAVE

# --- idle connections ---------------------------------------------------------
for n in $IDLE_N; do
	say "RSS of rufd with $n idle authenticated connections"
	if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt $((n + 100)) ]; then
		echo "idle n=$n skipped: ulimit -Hn $(ulimit -Hn)" | tee -a "$R"
		continue
	fi
	(
		ulimit -n $((n + 200))
		d=$T/idle.$n
		trap 'kill "$RUFD_PID" 2>/dev/null || true' EXIT
		start_rufd "$d"
		rss0=$(awk '/VmRSS/ { print $2 }' "/proc/$RUFD_PID/status")
		timeout 120 "$B/bench_ingest" idle -s "127.0.0.1:$RPORT" -p "$PASS" -D "$C/directory" \
			-i "$DEV" -n "$n" -t 3 >"$d/out" &
		cp=$!
		for _ in $(seq 1100); do grep -q clients= "$d/out" && break; sleep 0.1; done
		sleep 1
		rss1=$(awk '/VmRSS/ { print $2 }' "/proc/$RUFD_PID/status")
		conns=$(curl -s "http://127.0.0.1:$MPORT/metrics" |
			awk '/^rufd_connections\{/ { n += $2 } END { print n + 0 }')
		wait "$cp" || true
		echo "idle n=$n connections=${conns:-0} rss0_kib=$rss0 rss1_kib=$rss1 kib_per_conn=$(
			python3 -c "print(round(($rss1 - $rss0) / max(1, ${conns:-0}), 2))") $(cat "$d/out")" |
			tee -a "$R"
		stop "$RUFD_PID"
		rm -rf "$d"
	)
done

# --- cold wire bytes vs MQTT over TLS 1.3 -----------------------------------
if [ "$PEERS" = 1 ] && command -v openssl >/dev/null; then
	say "MQTT over TLS 1.3 from cold (ECDSA P-256 server and client certificates)"
	k=$T/tls
	mkdir -p "$k"
	(
		cd "$k"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
			-subj /CN=bench-ca -keyout ca.key -out ca.crt 2>/dev/null
		for n in server client; do
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-subj "/CN=$n" -addext "subjectAltName=IP:127.0.0.1" \
				-keyout $n.key -out $n.csr 2>/dev/null
			openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
				-days 2 -copy_extensions copy -out $n.crt 2>/dev/null
		done
	)
	port=$(free_port)
	cat >"$k/conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
cafile $k/ca.crt
certfile $k/server.crt
keyfile $k/server.key
require_certificate true
tls_version tlsv1.3
$MOSQ_USER
CONF
	mosquitto -c "$k/conf" >"$k/log" 2>&1 &
	mp=$!
	PIDS+=("$mp")
	sleep 0.3
	timeout 20 "$B/peer_mqtt" -p "$port" -C "$k/ca.crt" -c "$k/client.crt" -k "$k/client.key" \
		-b 1024 cold | tee -a "$R" || echo "cold mqtt failed" >&2
	stop "$mp"
fi

# --- sealing (bench_seal) ---------------------------------------------------
say "bench_seal $SEAL_MIB MiB"
"$B/bench_seal" "$SEAL_MIB" "$T" | tee "$T/seal" >&2
awk -F'|' '/raw xchacha20poly1305 \(aead\)|ruf_envelope_seal / {
	name = $2; gsub(/^ +| +$/, "", name); gsub(/ /, "_", name); gsub(/ /, "", $4); gsub(/ /, "", $5)
	printf "seal phase=%s mib_per_s=%s peak_rss_mib=%s\n", name, $4, $5 }' "$T/seal" | tee -a "$R"

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$T/machine"
python3 "$src/bench/peers_table.py" "$R" "$T/machine"
