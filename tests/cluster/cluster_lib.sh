# Two rufd instances, A and B, on one 3-node NATS JetStream cluster, all on
# loopback and started by the test itself (sourced after
# ../integration/lib.sh and ../integration/rufd_lib.sh). Both instances run
# with the same server identity (the directory names one Noise key for HQ)
# and each has its own state_dir, port and metrics port; the directory lists
# A's address first, then B's.
#
#   cluster_setup                 PKI, NATS cluster (healthy), configs, directory
#   inst_start X / inst_kill X / inst_stop X      X is A or B
#   metric X NAME                 a value from X's /metrics
#   wait_metric X NAME VALUE [S]  until NAME == VALUE (S seconds, 30)
#   waitfor PATTERN FILE [S]      until PATTERN is in FILE
#   field WHO ARGS... / desk WHO ARGS...   ruf as an enrolled identity
CL_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=nats_cluster.sh
. "$CL_HERE/nats_cluster.sh"

command -v nats-server >/dev/null 2>&1 || {
	echo "SKIP: nats-server is not installed (Debian: nats-server)"
	exit 77
}

cluster_cleanup() {
	local p
	for p in ${PID_A:-} ${PID_B:-} ${BG_PIDS:-}; do kill -9 "$p" 2>/dev/null || true; done
	[ -n "${NATS_DIR:-}" ] && nats_cluster_stop "$NATS_DIR"
	if [ -n "${KEEP_T:-}" ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cluster_cleanup EXIT

cluster_setup() {
	local x
	make_pki
	C=$T/certs
	NATS_DIR=$T/nats
	NATS_BASE=$(nats_free_base $$) || fail "no free ports for NATS"
	nats_cluster_start "$NATS_DIR" "$NATS_BASE" 3
	nats_cluster_wait "$NATS_DIR" 30 || fail "the NATS cluster did not become healthy"
	NATS_URLS=$(nats_cluster_urls "$NATS_DIR")
	PORT_A=$(free_port)
	PORT_B=$(free_port)
	MPORT_A=$(free_port)
	MPORT_B=$(free_port)
	rufctl directory publish --dir "$C/hq" --passphrase-file "$PASS" \
		--policy "$RUF_SRC/certs-example/policy.txt" --expires 30d \
		--hq-address "127.0.0.1:$PORT_A" --hq-address "127.0.0.1:$PORT_B" \
		--out "$T/directory" >/dev/null || fail "directory publish"
	for x in A B; do
		local port=PORT_$x mport=MPORT_$x
		cp "$T/directory" "$T/directory-$x"
		cat >"$T/rufd-$x.conf" <<-CONF
			# instance $x of two on one JetStream cluster
			listen = 127.0.0.1:${!port}
			state_dir = $T/state-$x
			server_key = $C/hq/server.key
			server_cert = $C/hq/server.cert
			root_cert = $C/hq/root.cert
			directory = $T/directory-$x
			metrics_listen = 127.0.0.1:${!mport}
			handshake_timeout = 2s
			store_backend = jetstream
			jetstream_servers = $NATS_URLS
			jetstream_prefix = RUFTEST
			jetstream_replicas = 3
			jetstream_timeout_ms = 3000
			${CLUSTER_EXTRA_CONF:-}
		CONF
	done
}

inst_start() {
	local x=$1 pid n0
	n0=$(grep -c "rufd started" "$T/rufd-$x.log" 2>/dev/null || true)
	rufd -d -c "$T/rufd-$x.conf" 2>>"$T/rufd-$x.log" &
	pid=$!
	eval "PID_$x=$pid"
	for _ in $(seq 300); do
		[ "$(grep -c "rufd started" "$T/rufd-$x.log" 2>/dev/null || true)" -gt "${n0:-0}" ] &&
			return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			if grep -q "no such store backend" "$T/rufd-$x.log"; then
				echo "SKIP: this build has no jetstream store backend (libnats-dev)"
				exit 77
			fi
			cat "$T/rufd-$x.log" >&2
			fail "rufd $x died at start"
		fi
		sleep 0.1
	done
	cat "$T/rufd-$x.log" >&2
	fail "rufd $x did not start"
}

inst_kill() {
	local x=$1 p="PID_$1"
	kill -9 "${!p}" 2>/dev/null || true
	wait "${!p}" 2>/dev/null || true
	eval "PID_$x="
}

inst_stop() {
	local x=$1 p="PID_$1" rc=0
	kill -TERM "${!p}"
	wait "${!p}" || rc=$?
	eval "PID_$x="
	[ "$rc" = 0 ] || { tail -20 "$T/rufd-$x.log" >&2; fail "rufd $x exited $rc after SIGTERM"; }
}

metric() {
	local mport="MPORT_$1"
	curl -sf -m 5 "http://127.0.0.1:${!mport}/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

wait_metric() {
	local x=$1 name=$2 want=$3 secs=${4:-30} v=
	for _ in $(seq $((secs * 5))); do
		v=$(metric "$x" "$name")
		[ "$v" = "$want" ] && return 0
		sleep 0.2
	done
	tail -20 "$T/rufd-$x.log" >&2
	fail "$x: $name is '$v', wanted $want after ${secs}s"
}

waitfor() {
	local secs=${3:-60}
	for _ in $(seq $((secs * 10))); do
		grep -q -- "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	cat "$2" >&2 2>/dev/null || true
	fail "no '$1' in $2 after ${secs}s"
}

enroll_c() { # name: enrolled with the two-instance directory
	ruf enroll --home "$T/home/$1" --from "$C/identities/$1" --directory "$T/directory" \
		--passphrase-file "$PASS" >/dev/null || fail "enroll $1"
}

field() { local who=$1; shift; ruf "$@" --home "$T/home/$who" --passphrase-file "$PASS"; }
desk() { local who=$1; shift; ruf "$@" --home "$T/home/$who" --passphrase-file "$PASS"; }

# report WHO TITLE RISK [ARGS...]: a sitrep into WHO's outbox; prints its id.
report() {
	local who=$1 title=$2 risk=$3 out
	shift 3
	out=$(field "$who" report --risk "$risk" --title "$title" --summary "cluster test" "$@") ||
		fail "report $title: $out"
	echo "$out" | awk '{print $2}'
}

# archived_ids DESK: the message ids in the desk's archive, one a line, sorted.
archived_ids() {
	desk "$1" desk list --json | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    print(r["message_id"])' | sort
}
