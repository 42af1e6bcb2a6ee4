# bench/rufd_bench.sh - sourced by peers.sh, ab.sh and cluster.sh: the
# machine description, a free loopback port, the example PKI with pre-sealed
# reports, and the rufd configuration every benchmark run uses.

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

# Prints date, CPU, kernel and load (and any extra lines given) to stderr
# and to T/machine, the header of every results file.
bench_machine() { # [extra line...]
	{
		echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "nproc: $(nproc); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
		echo "kernel: $(uname -r); $(grep -m1 PRETTY_NAME /etc/os-release | cut -d= -f2 | tr -d '"')"
		for l in "$@"; do echo "$l"; done
		echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	} | tee "$T/machine" >&2
}

# The example PKI in T/certs (C, PASS, DEV, DESK set) and RUF_N sealed ~1 KiB
# reports of DEV in T/env; bench_ingest's sealing figures go to stdout.
bench_pki() { # build
	RUFCTL=$1/rufctl "$src/certs-example/gen.sh" "$T/certs" >/dev/null
	C=$T/certs
	PASS=$C/PASSPHRASE-EXAMPLE-ONLY
	DEV=$C/identities/rc-sd-1
	DESK=$C/identities/itf-darfur-desk
	mkdir -p "$T/env"
	"$1/bench_ingest" seal -i "$DEV" -p "$PASS" -D "$C/directory" -o "$T/env" -n "$RUF_N"
}
