# nats_cluster.sh - a JetStream cluster of nats-server processes on loopback,
# for the tests (sourceable, or run as a command: nats_cluster.sh DIR CMD ARGS).
#
#   nats_cluster_start DIR BASE_PORT [N]   N (3) nodes; node i (1..N) serves
#                                          clients on BASE_PORT+i, routes on
#                                          BASE_PORT+10+i, monitoring on
#                                          BASE_PORT+20+i; data in DIR/n<i>
#   nats_cluster_urls DIR                  nats://127.0.0.1:P1,nats://...
#   nats_node_kill DIR I                   SIGKILL node I (no clean shutdown)
#   nats_node_stop DIR I                   SIGTERM node I and wait for it
#   nats_node_start DIR I                  (re)start node I with its data
#   nats_cluster_wait DIR [SECS]           until every running node reports
#                                          JetStream healthy (15 s default)
#   nats_cluster_stop DIR                  SIGKILL every node, wait for them
#
# Everything a node needs is in DIR (config, pid file, log, JetStream store),
# so another process (a unit test) can kill and restart nodes by running
# this file with DIR. nats-server (Debian: nats-server, 2.9.10) must be
# installed; nothing is installed here.
#
# Durability settings: see docs/STORE.md, "JetStream durability".

NATS_SERVER=${NATS_SERVER:-nats-server}

_nats_n() { cat "$1/nodes"; }

nats_cluster_start() {
	local dir=$1 base=$2 n=${3:-3} i j routes
	mkdir -p "$dir"
	echo "$n" >"$dir/nodes"
	echo "$base" >"$dir/base"
	for i in $(seq 1 "$n"); do
		routes=
		for j in $(seq 1 "$n"); do
			[ "$j" = "$i" ] && continue
			routes="$routes${routes:+, }\"nats-route://127.0.0.1:$((base + 10 + j))\""
		done
		mkdir -p "$dir/n$i"
		cat >"$dir/n$i.conf" <<-EOF
			server_name: n$i
			listen: 127.0.0.1:$((base + i))
			http: 127.0.0.1:$((base + 20 + i))
			pid_file: "$dir/n$i.pid"
			jetstream {
			  store_dir: "$dir/n$i"
			  max_memory_store: 64MB
			  max_file_store: 2GB
			}
			cluster {
			  name: ruf-test
			  listen: 127.0.0.1:$((base + 10 + i))
			  routes: [$routes]
			}
		EOF
		nats_node_start "$dir" "$i"
	done
}

nats_cluster_urls() {
	local dir=$1 base i out=
	base=$(cat "$dir/base")
	for i in $(seq 1 "$(_nats_n "$dir")"); do
		out="$out${out:+,}nats://127.0.0.1:$((base + i))"
	done
	echo "$out"
}

nats_node_start() {
	local dir=$1 i=$2
	rm -f "$dir/n$i.pid"
	# setsid: a test killing its own process group must not take the cluster with it.
	setsid "$NATS_SERVER" -c "$dir/n$i.conf" >>"$dir/n$i.log" 2>&1 </dev/null &
	echo $! >"$dir/n$i.spid"
	disown $! 2>/dev/null || true
}

_nats_pid() { [ -s "$1/n$2.spid" ] && cat "$1/n$2.spid"; }

# _nats_signal DIR I SIG: signals node I and waits until it is gone.
_nats_signal() {
	local pid
	pid=$(_nats_pid "$1" "$2") || return 0
	kill -"$3" "$pid" 2>/dev/null || true
	_nats_wait_gone "$pid"
	rm -f "$1/n$2.spid"
}

nats_node_kill() { _nats_signal "$1" "$2" KILL; }
nats_node_stop() { _nats_signal "$1" "$2" TERM; }

_nats_wait_gone() {
	local k
	for k in $(seq 1 100); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
}

# _nats_healthy PORT: the node's /healthz (JetStream included) answers 200.
# Plain bash, so the harness needs nothing but nats-server.
_nats_healthy() {
	local reply
	exec 3<>"/dev/tcp/127.0.0.1/$1" 2>/dev/null || return 1
	printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	reply=$(timeout 2 head -c 12 <&3 2>/dev/null) || true
	exec 3>&-
	case $reply in
	"HTTP/1."?" 200") return 0 ;;
	*) return 1 ;;
	esac
}

nats_cluster_wait() {
	local dir=$1 secs=${2:-15} base i k ok
	base=$(cat "$dir/base")
	for k in $(seq 1 $((secs * 5))); do
		ok=1
		for i in $(seq 1 "$(_nats_n "$dir")"); do
			[ -s "$dir/n$i.spid" ] || continue
			if ! kill -0 "$(cat "$dir/n$i.spid")" 2>/dev/null; then
				echo "nats node $i exited:" >&2
				tail -5 "$dir/n$i.log" >&2
				return 1
			fi
			_nats_healthy $((base + 20 + i)) || ok=0
		done
		[ "$ok" = 1 ] && return 0
		sleep 0.2
	done
	echo "nats cluster in $dir not healthy after ${secs}s" >&2
	return 1
}

nats_cluster_stop() {
	local dir=$1 i
	[ -f "$dir/nodes" ] || return 0
	for i in $(seq 1 "$(_nats_n "$dir")"); do
		nats_node_kill "$dir" "$i"
	done
}

# A free block of 30 ports for nats_cluster_start, from a range the other
# tests do not use; $1 seeds the choice (e.g. $$).
nats_free_base() {
	local seed=${1:-$$} base k p busy
	for k in $(seq 0 40); do
		base=$((24000 + ((seed + k * 7) % 200) * 40))
		busy=0
		for p in $(seq $((base + 1)) $((base + 29))); do
			if ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
				busy=1
				break
			fi
		done
		[ "$busy" = 0 ] && { echo "$base"; return 0; }
	done
	return 1
}

# As a command: nats_cluster.sh DIR kill|stop|start|wait|urls|stopall [I]
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -eu
	dir=$1 cmd=$2
	shift 2
	case $cmd in
	kill) nats_node_kill "$dir" "$1" ;;
	stop) nats_node_stop "$dir" "$1" ;;
	start) nats_node_start "$dir" "$1" ;;
	wait) nats_cluster_wait "$dir" "${1:-15}" ;;
	urls) nats_cluster_urls "$dir" ;;
	stopall) nats_cluster_stop "$dir" ;;
	*)
		echo "usage: $0 DIR kill|stop|start|wait|urls|stopall [I]" >&2
		exit 2
		;;
	esac
fi
