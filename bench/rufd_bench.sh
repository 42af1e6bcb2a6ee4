# bench/rufd_bench.sh - sourced by peers.sh and ab.sh: a free loopback port
# and the rufd configuration every benchmark run uses (the example PKI in C).

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Writes DIR/rufd.conf for a rufd on 127.0.0.1:PORT (metrics on MPORT) whose
# state is under DIR, with limits that do not throttle a benchmark.
rufd_bench_conf() { # dir certs port mport
	cat >"$1/rufd.conf" <<CONF
listen = 127.0.0.1:$3
state_dir = $1/state
server_key = $2/hq/server.key
server_cert = $2/hq/server.cert
root_cert = $2/hq/root.cert
directory = $2/directory
metrics_listen = 127.0.0.1:$4
max_connections = 100000
submissions_per_minute = 100000
delivery_window = 1024
CONF
}

# Starts build's rufd on DIR/rufd.conf; sets RUFD_PID; waits until it runs.
rufd_bench_start() { # build dir
	"$1/rufd" -d -c "$2/rufd.conf" 2>>"$2/rufd.log" &
	RUFD_PID=$!
	for _ in $(seq 100); do
		grep -q "rufd started" "$2/rufd.log" 2>/dev/null && return 0
		sleep 0.1
	done
	cat "$2/rufd.log" >&2
	return 1
}
