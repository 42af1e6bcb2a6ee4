#!/usr/bin/env bash
# The NATS cluster under two rufd instances fails (all on loopback, started
# here): one node SIGKILLed during a stream of submissions through A loses
# no acknowledged report and the stream goes on; with two of three nodes
# gone (no quorum) both instances answer "retry later" (never a receipt),
# say so in their logs and metrics, keep delivering what they hold, and
# recover by themselves when the nodes return.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/rufd_lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

CLUSTER_EXTRA_CONF="submissions_per_minute = 1000"
cluster_setup
for who in rc-sd-1 itf-darfur-desk sag-desk; do enroll_c "$who"; done
inst_start A
inst_start B
wait_metric A rufd_store_available 1 30
wait_metric B rufd_store_available 1 30
HQ_A=127.0.0.1:$PORT_A
HQ_B=127.0.0.1:$PORT_B
tcx() { ruf_testclient -i "$C/identities/$1" -p "$PASS" -D "$T/directory" -s "$2" "${@:3}"; }

# --- one NATS node killed during a stream of submissions ----------------------
N=30
: >"$T/ids"
for i in $(seq "$N"); do report rc-sd-1 "stream $i" high >>"$T/ids"; done
sort -o "$T/ids" "$T/ids"
field rc-sd-1 send --hq "$HQ_A" --deadline 120 --quiet >"$T/send" 2>"$T/send.err" &
SEND=$!
BG_PIDS=$SEND
waitfor "^delivered " "$T/send" 60
nats_node_kill "$NATS_DIR" 1
before=$(grep -c "^delivered " "$T/send" || true)
wait "$SEND" || fail "send with a node down: $(cat "$T/send" "$T/send.err")"
BG_PIDS=
[ "$before" -lt "$N" ] || echo "note: every submission finished before the kill"
[ "$(grep -c "^delivered " "$T/send")" = "$N" ] || fail "not all delivered: $(cat "$T/send")"
# Every report with a verified receipt is at the desk on the other instance, once.
grep -o "^delivered [0-9a-f]*" "$T/send" | awk '{print $2}' | sort >"$T/acked"
cmp -s "$T/acked" "$T/ids" || fail "receipts do not cover the reports"
desk itf-darfur-desk desk pull --hq "$HQ_B" --idle 3 >"$T/pull" 2>&1 || fail "pull: $(cat "$T/pull")"
archived_ids itf-darfur-desk >"$T/got"
cmp -s "$T/got" "$T/ids" || fail "desk on B: $(wc -l <"$T/got") of $N: $(diff "$T/ids" "$T/got")"
grep -q "$N archived, 0 duplicates" "$T/pull" || fail "pull: $(cat "$T/pull")"
nats_node_start "$NATS_DIR" 1
nats_cluster_wait "$NATS_DIR" 30 || fail "node 1 did not rejoin"
ok "NATS node killed after $before of $N receipts: all $N acknowledged, each at the desk on B once"

# --- quorum lost: retry later, never a receipt; recovery by itself ------------
ID_OUT=$(report rc-sd-1 "during the outage" high)
python3 - "$RUF_SRC/certs-example/reports" "$T" <<'PY'
import json, sys
d = json.load(open(f"{sys.argv[1]}/sitrep-darfur.json"))
json.dump(dict(d, title="offered without quorum"), open(f"{sys.argv[2]}/nq.json", "w"))
PY
field rc-sd-1 seal --in "$T/nq.json" --out "$T/nq.env" >/dev/null || fail "seal"
nats_node_kill "$NATS_DIR" 2
nats_node_kill "$NATS_DIR" 3
for x in A B; do
	wait_metric "$x" rufd_store_available 0 60
	grep -q "unavailable" "$T/rufd-$x.log" || fail "$x logged nothing"
done
rc=0
tcx rc-sd-1 "$HQ_A" submit "$T/nq.env" >"$T/nqA" 2>&1 || rc=$?
[ "$rc" = 4 ] && grep -q "nack reason=1 " "$T/nqA" || fail "A without quorum (exit $rc): $(cat "$T/nqA")"
rc=0
tcx rc-sd-1 "$HQ_B" submit "$T/nq.env" >"$T/nqB" 2>&1 || rc=$?
[ "$rc" = 4 ] && grep -q "nack reason=1 " "$T/nqB" || fail "B without quorum (exit $rc): $(cat "$T/nqB")"
rc=0
timeout 60 ruf send --home "$T/home/rc-sd-1" --passphrase-file "$PASS" --deadline 8 --quiet \
	>"$T/sendq" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "retry later" "$T/sendq" || fail "send without quorum (exit $rc): $(cat "$T/sendq")"
! grep -q "^delivered" "$T/sendq" || fail "a receipt without quorum: $(cat "$T/sendq")"
grep -q "rufd_submissions_total{result=\"retry_later\"} [1-9]" <(curl -sf "http://127.0.0.1:$MPORT_A/metrics") ||
	fail "A: no retry_later counted"
ok "quorum lost: A and B answer 'retry later' (ruf send tries both), log it, metrics say unavailable"

# What each instance holds is still delivered.
desk sag-desk desk pull --hq "$HQ_B" --idle 3 >"$T/pullq" 2>&1 || fail "pull without quorum: $(cat "$T/pullq")"
[ "$(archived_ids sag-desk | wc -l)" = "$N" ] || fail "sag desk without quorum: $(cat "$T/pullq")"
ok "without quorum the desks still get what is stored (their acks are not saved: delivered again later)"

nats_node_start "$NATS_DIR" 2
nats_node_start "$NATS_DIR" 3
nats_cluster_wait "$NATS_DIR" 60 || fail "nodes 2 and 3 did not return"
for x in A B; do wait_metric "$x" rufd_store_available 1 60; done
field rc-sd-1 send --deadline 60 --quiet >"$T/sendr" 2>&1 || fail "send after recovery: $(cat "$T/sendr")"
grep -q "delivered $ID_OUT" "$T/sendr" || fail "not delivered after recovery: $(cat "$T/sendr")"
tcx rc-sd-1 "$HQ_B" submit "$T/nq.env" >"$T/nqr" || fail "submit after recovery: $(cat "$T/nqr")"
grep -q "available again" "$T/rufd-A.log" || fail "A: recovery not logged"
desk itf-darfur-desk desk pull --hq "$HQ_A" --idle 3 >"$T/pullr" 2>&1 || fail "pull after: $(cat "$T/pullr")"
[ "$(archived_ids itf-darfur-desk | wc -l)" = $((N + 2)) ] || fail "after recovery: $(cat "$T/pullr")"
ok "nodes back: both instances recover by themselves and accept again; the desk gets the rest once"

inst_stop A
inst_stop B
echo "all $checks checks passed"
