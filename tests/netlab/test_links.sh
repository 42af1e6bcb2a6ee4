#!/usr/bin/env bash
# The field client over emulated bad links (netlab, needs root and network
# namespaces; skips with the reason printed otherwise). rufd runs in the
# "hq" namespace, ruf in "field". Measures, and checks delivery within
# bounds:
#   - a 10 KiB report over geo-satellite and edge-2g: process start to
#     verified receipt;
#   - bytes on the wire (both directions) for one 1 KiB report from cold;
#   - a 64 KiB attachment over edge-2g with one 20 s outage mid-upload
#     (the long 1 MiB / three-cut run is bench/field_links.sh).
# FIELD_LINKS_LONG=1 runs the 1 MiB edge-2g measurement with three cuts.
# Output lines "measure: ..." are what docs/BENCHMARKS.md records.
. "$(dirname "$0")/../integration/lib.sh"
NETLAB=${NETLAB:-$RUF_SRC/../shared/tools/netlab}
[ -x "$NETLAB" ] || NETLAB=/work/shared/tools/netlab
skip() { echo "SKIP: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "netlab needs root"
[ -x "$NETLAB" ] || skip "netlab not found (set NETLAB)"
command -v iptables >/dev/null || skip "iptables missing (netlab needs it)"
export NETLAB_FIELD_NS=rff$$ NETLAB_HQ_NS=rfh$$
trap '"$NETLAB" down >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
"$NETLAB" up clean >"$T/netlab.log" 2>&1 || skip "network namespaces unavailable: $(tail -1 "$T/netlab.log")"
F() { ip netns exec "$NETLAB_FIELD_NS" "$@"; }
HQ() { ip netns exec "$NETLAB_HQ_NS" "$@"; }
wire_bytes() { F cat /sys/class/net/lab0/statistics/tx_bytes /sys/class/net/lab0/statistics/rx_bytes | paste -sd+ | bc; }

make_pki
C=$T/certs
PORT=7443
cat >"$T/rufd.conf" <<CONF
listen = 10.200.0.2:$PORT
state_dir = $T/state
server_key = $C/hq/server.key
server_cert = $C/hq/server.cert
root_cert = $C/hq/root.cert
directory = $C/directory
metrics_listen = 127.0.0.1:0
CONF
sed -i '/^metrics_listen/d' "$T/rufd.conf"
HQ rufd -d -c "$T/rufd.conf" 2>>"$T/rufd.log" &
RUFD_PID=$!
for _ in $(seq 100); do grep -q "rufd started" "$T/rufd.log" 2>/dev/null && break; sleep 0.1; done
grep -q "rufd started" "$T/rufd.log" || { cat "$T/rufd.log"; fail "rufd did not start in the hq namespace"; }
trap 'kill -9 $RUFD_PID 2>/dev/null || true; "$NETLAB" down >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
enroll rc-sd-1
H=(--home "$T/home/rc-sd-1" --passphrase-file "$PASS")
SEND=(ruf send "${H[@]}" --hq "10.200.0.2:$PORT" --quiet --deadline 300)

# compose SIZE_BYTES: a report with an incompressible attachment of that size
compose() {
	head -c "$1" /dev/urandom >"$T/att.bin"
	ruf report "${H[@]}" --risk high --title "link test" --summary s --attach "$T/att.bin" |
		awk '{print $2}'
}
now() { date +%s.%N; }

# 1 KiB report from cold, clean link: every byte both ways, handshake included
"$NETLAB" up clean >/dev/null
id=$(compose 1024)
b0=$(wire_bytes)
F "${SEND[@]}" >"$T/s" 2>&1 || fail "clean: $(cat "$T/s")"
b1=$(wire_bytes)
env_len=$(stat -c %s "$T/home/rc-sd-1/outbox/$id.env")
echo "measure: 1 KiB report from cold: $((b1 - b0)) bytes on the wire (both directions, IP+TCP), envelope $env_len bytes"
ok "1 KiB report delivered from cold; wire total $((b1 - b0)) bytes"

for prof in geo-satellite edge-2g; do
	"$NETLAB" up "$prof" >/dev/null
	id=$(compose 10240)
	len=$(stat -c %s "$T/home/rc-sd-1/outbox/$id.env")
	t0=$(now)
	F "${SEND[@]}" >"$T/s" 2>&1 || fail "$prof: $(cat "$T/s")"
	t1=$(now)
	grep -q "delivered $id: receipt verified" "$T/s" || fail "$prof: $(cat "$T/s")"
	echo "measure: $prof: 10 KiB report ($len bytes sealed): $(echo "$t1 - $t0" | bc) s process start to verified receipt"
	ok "$prof: 10 KiB report delivered with a verified receipt"
done

# edge-2g, 64 KiB, one 20 s outage mid-upload
"$NETLAB" up edge-2g >/dev/null
id=$(compose 65536)
len=$(stat -c %s "$T/home/rc-sd-1/outbox/$id.env")
t0=$(now)
F "${SEND[@]}" >"$T/s" 2>&1 &
sp=$!
sleep 6
"$NETLAB" cut 20 >/dev/null
wait "$sp" || fail "edge-2g with a cut: $(cat "$T/s")"
t1=$(now)
grep -q "delivered $id" "$T/s" || fail "edge-2g cut: $(cat "$T/s")"
resumed=$(sed -n "s/^delivered $id: .*(resumed at \([0-9]*\) of.*/\1/p" "$T/s")
echo "measure: edge-2g: 64 KiB attachment ($len bytes) with a 20 s outage: $(echo "$t1 - $t0" | bc) s; last attempt resumed at $resumed; cuts seen by ruf: $(grep -c 'cut at' "$T/s" || true)"
ok "edge-2g: 64 KiB delivered across a 20 s outage"

if [ "${FIELD_LINKS_LONG:-0}" = 1 ]; then
	"$NETLAB" up edge-2g >/dev/null
	id=$(compose $((1 << 20)))
	len=$(stat -c %s "$T/home/rc-sd-1/outbox/$id.env")
	t0=$(now)
	F "${SEND[@]}" --deadline 1200 >"$T/s" 2>&1 &
	sp=$!
	for k in 1 2 3; do sleep 40; "$NETLAB" cut 20 >/dev/null; done
	wait "$sp" || fail "1 MiB: $(cat "$T/s")"
	t1=$(now)
	echo "measure: edge-2g: 1 MiB attachment ($len bytes) with three 20 s outages: $(echo "$t1 - $t0" | bc) s total"
	grep 'cut at\|resumed at' "$T/s" | sed 's/^/measure:   /'
fi
kill -TERM $RUFD_PID
wait $RUFD_PID || true
echo "all $checks checks passed"
