#!/usr/bin/env bash
# Two rufd instances on one 3-node JetStream cluster (all on loopback,
# started here): a report submitted through A reaches a desk following on B
# live; the same envelope offered to B gets A's receipt (one store); both
# instances writing at once give every report one store_seq (conflicting
# batches are redone); rufd A killed mid-upload: `ruf send` moves to B and
# completes there, a desk following on A moves to B too, and A, restarted,
# catches up without delivering anything twice (shared cursors); a directory
# given to A (a revocation) reaches B by itself and survives B's restart;
# an instance on an empty state_dir rebuilds its view from the streams; a
# bundle imported with B's configuration while B runs is delivered by A.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/rufd_lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

CLUSTER_EXTRA_CONF="submissions_per_minute = 1000"
cluster_setup
for who in rc-sd-1 rc-cd-1 itf-darfur-desk sag-desk; do enroll_c "$who"; done
inst_start A
inst_start B
HQ_A=127.0.0.1:$PORT_A
HQ_B=127.0.0.1:$PORT_B
wait_metric A rufd_store_available 1 30
wait_metric B rufd_store_available 1 30
grep -q 'store: jetstream on 3 servers, prefix RUFTEST, 3 replicas' "$T/rufd-A.log" ||
	fail "A: no store line"

# --- submit through A, live at a desk on B ----------------------------------
desk itf-darfur-desk desk follow --hq "$HQ_B" --max 1 >"$T/follow" 2>"$T/follow.err" &
FOLLOW=$!
BG_PIDS=$FOLLOW
waitfor "subscribed to" "$T/rufd-B.log" 30
ID1=$(report rc-sd-1 "live across instances" elevated)
field rc-sd-1 send --hq "$HQ_A" --deadline 60 >"$T/send1" 2>&1 || fail "send: $(cat "$T/send1")"
grep -q "delivered $ID1" "$T/send1" || fail "send: $(cat "$T/send1")"
for _ in $(seq 300); do kill -0 "$FOLLOW" 2>/dev/null || break; sleep 0.1; done
kill -0 "$FOLLOW" 2>/dev/null && fail "the desk on B got nothing: $(cat "$T/follow.err")"
wait "$FOLLOW" || fail "follow: $(cat "$T/follow.err")"
BG_PIDS=
! grep -q "reconnecting" "$T/follow.err" || fail "the desk reconnected: $(cat "$T/follow.err")"
archived_ids itf-darfur-desk | grep -qx "$ID1" || fail "$ID1 not archived on the desk"
grep -q "stored $ID1" "$T/rufd-A.log" || fail "A did not store $ID1"
! grep -q "stored $ID1" "$T/rufd-B.log" || fail "B stored $ID1 itself"
[ "$(metric B rufd_cluster_notes_total)" -ge 1 ] || fail "B: no cluster notes counted"
ok "a report submitted through A is pushed live to a desk following on B (stored once, by A)"

# --- one store: the same envelope offered to B gets A's receipt -------------
python3 - "$RUF_SRC/certs-example/reports" "$T" <<'PY'
import json, sys
d = json.load(open(f"{sys.argv[1]}/sitrep-darfur.json"))
json.dump(dict(d, title="offered to both"), open(f"{sys.argv[2]}/both.json", "w"))
PY
field rc-sd-1 seal --in "$T/both.json" --out "$T/both.env" >/dev/null || fail "seal"
tcx() { ruf_testclient -i "$C/identities/$1" -p "$PASS" -D "$T/directory" -s "$2" "${@:3}"; }
tcx rc-sd-1 "$HQ_A" submit "$T/both.env" >"$T/rA" || fail "submit to A: $(cat "$T/rA")"
tcx rc-sd-1 "$HQ_B" submit "$T/both.env" >"$T/rB" || fail "submit to B: $(cat "$T/rB")"
seqA=$(grep -o 'store_seq=[0-9]*' "$T/rA") && seqB=$(grep -o 'store_seq=[0-9]*' "$T/rB") ||
	fail "no store_seq: $(cat "$T/rA" "$T/rB")"
[ "$seqA" = "$seqB" ] || fail "A said $seqA, B said $seqB"
[ "$(metric B rufd_dedup_hits_total)" = 1 ] || fail "B did not count a duplicate"
ok "the same envelope offered to A and then to B: one stored copy, B answers with A's receipt ($seqA)"

# --- both instances writing at once: conflicts are redone, nothing doubled -----
M=12
for i in $(seq "$M"); do
	report rc-sd-1 "through A $i" high >/dev/null
	report rc-cd-1 "through B $i" high >/dev/null
done
field rc-sd-1 send --hq "$HQ_A" --deadline 120 --quiet >"$T/sendA" 2>&1 &
SA=$!
field rc-cd-1 send --hq "$HQ_B" --deadline 120 --quiet >"$T/sendB" 2>&1 &
SB=$!
BG_PIDS="$SA $SB"
wait "$SA" || fail "send to A: $(cat "$T/sendA")"
wait "$SB" || fail "send to B: $(cat "$T/sendB")"
BG_PIDS=
[ "$(grep -c '^delivered ' "$T/sendA")" = "$M" ] || fail "A: $(cat "$T/sendA")"
[ "$(grep -c '^delivered ' "$T/sendB")" = "$M" ] || fail "B: $(cat "$T/sendB")"
# One store_seq per report across both instances: no batch applied twice or lost.
seqs=$(cat "$T/send1" "$T/sendA" "$T/sendB" | sed -n 's/^delivered .* store seq \([0-9]*\),.*/\1/p' | sort -n)
[ "$(echo "$seqs" | wc -l)" = $((2 * M + 1)) ] || fail "receipts: $seqs"
[ "$(echo "$seqs" | uniq | wc -l)" = $((2 * M + 1)) ] || fail "a store_seq given twice: $seqs"
desk sag-desk desk pull --hq "$HQ_A" --idle 2 >"$T/pull0" 2>&1 || fail "pull: $(cat "$T/pull0")"
grep -q "$((2 * M + 1)) archived, 0 duplicates" "$T/pull0" || fail "sag desk: $(cat "$T/pull0")"
conflicts=$(($(metric A rufd_store_conflicts_total) + $(metric B rufd_store_conflicts_total)))
ok "$M reports through A and $M through B at once: one store_seq each, each at the desk once (with the envelope offered to both; $conflicts batches redone after a conflict)"

# --- rufd A killed mid-upload: the client completes on B ----------------------
head -c $((24 << 20)) /dev/urandom >"$T/big.bin"
IDBIG=$(report rc-sd-1 "big upload" high --attach "$T/big.bin")
# A desk following without --hq: on A (first in the directory), then B after A dies.
desk itf-darfur-desk desk pull --idle 2 >"$T/drain" 2>&1 || fail "drain: $(cat "$T/drain")"
nsub=$(grep -c "subscribed to" "$T/rufd-A.log")
desk itf-darfur-desk desk follow --max 1 >"$T/follow2" 2>"$T/follow2.err" &
FOLLOW=$!
for _ in $(seq 300); do
	[ "$(grep -c "subscribed to" "$T/rufd-A.log")" -gt "$nsub" ] && break
	sleep 0.1
done
field rc-sd-1 send --chunk 2048 --deadline 120 --quiet >"$T/sendbig" 2>&1 &
SEND=$!
BG_PIDS="$SEND $FOLLOW"
cut=
for _ in $(seq 600); do
	if [ -n "$(find "$T/state-A/spool" -type f -size +1024k 2>/dev/null)" ]; then
		cut=1
		break
	fi
	kill -0 "$SEND" 2>/dev/null || break
	sleep 0.05
done
[ -n "$cut" ] || fail "never saw the upload on A's spool: $(cat "$T/sendbig")"
inst_kill A
wait "$SEND" || fail "send after A died: $(cat "$T/sendbig")"
BG_PIDS=$FOLLOW
grep -q "delivered $IDBIG" "$T/sendbig" || fail "not delivered: $(cat "$T/sendbig")"
grep -q "connected to HQ at $HQ_B" "$T/sendbig" || fail "did not move to B: $(cat "$T/sendbig")"
grep -q "stored $IDBIG" "$T/rufd-B.log" || fail "B did not store it"
desk sag-desk desk pull --hq "$HQ_B" --idle 2 >"$T/pull1" 2>&1 || fail "pull: $(cat "$T/pull1")"
archived_ids sag-desk | grep -qx "$IDBIG" || fail "the big report is not at the sag desk"
grep -q "1 archived, 0 duplicates" "$T/pull1" || fail "pull: $(cat "$T/pull1")"
ok "rufd A killed mid-upload: ruf send moved to B, uploaded again from 0 and got B's receipt"
for _ in $(seq 300); do kill -0 "$FOLLOW" 2>/dev/null || break; sleep 0.1; done
kill -0 "$FOLLOW" 2>/dev/null && fail "the following desk got nothing after A died: $(cat "$T/follow2.err")"
wait "$FOLLOW" || fail "follow: $(cat "$T/follow2.err")"
BG_PIDS=
grep -q "connected to HQ at $HQ_B" "$T/follow2.err" || fail "desk did not move to B: $(cat "$T/follow2.err")"
archived_ids itf-darfur-desk | grep -qx "$IDBIG" || fail "the following desk did not archive it"
ok "a desk following on A (the directory's first address) moved to B by itself and got the report"

# A restarts, catches up with what B stored; the desk's cursor is shared.
inst_start A
desk sag-desk desk pull --hq "$HQ_A" --idle 2 >"$T/pull2" 2>&1 || fail "pull A: $(cat "$T/pull2")"
grep -q "0 archived, 0 duplicates" "$T/pull2" || fail "A delivered again: $(cat "$T/pull2")"
wait_metric A rufd_store_envelopes "$(metric B rufd_store_envelopes)" 30
desk itf-darfur-desk desk pull --hq "$HQ_A" --idle 2 >"$T/pull3" 2>&1 || fail "pull3"
grep -q "0 archived, 0 duplicates" "$T/pull3" || fail "A delivered again: $(cat "$T/pull3")"
ok "A restarted catches up with B's entries; a desk's cursor is the same on both instances"

# --- a directory given to A reaches B: a revocation ---------------------------
tcx rc-cd-1 "$HQ_B" ping >"$T/p0" 2>&1 || fail "rc-cd-1 ping on B: $(cat "$T/p0")"
serial=$(rufctl cert list --dir "$C/hq" --json | python3 -c '
import json, sys
print([c["serial"] for c in json.load(sys.stdin) if c["subject"] == "rc-cd-1"][0])')
rufctl cert revoke "$serial" --dir "$C/hq" --reason "cluster test" >/dev/null || fail "revoke"
rufctl directory publish --dir "$C/hq" --passphrase-file "$PASS" \
	--policy "$RUF_SRC/certs-example/policy.txt" --expires 30d \
	--hq-address "$HQ_A" --hq-address "$HQ_B" --out "$T/directory-A" >/dev/null ||
	fail "publish"
V=$(rufctl inspect "$T/directory-A" --root "$C/hq/root.cert" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
kill -HUP "$PID_A"
waitfor "reloaded: directory version $V" "$T/rufd-A.log" 30
wait_metric B rufd_directory_version "$V" 30
grep -q "directory from the cluster: directory version $V" "$T/rufd-B.log" ||
	fail "B: no adoption logged"
rc=0
tcx rc-cd-1 "$HQ_B" ping >"$T/p1" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "revoked rc-cd-1 still admitted by B (exit $rc): $(cat "$T/p1")"
ok "a directory with a revocation given to A (SIGHUP) reaches B by itself: B refuses the revoked device"

# B restarted with its old directory file keeps the newer one from the cluster.
inst_stop B
inst_start B
[ "$(metric B rufd_directory_version)" = "$V" ] || fail "B went back to its file's directory"
ok "B restarted with an older directory file takes the cluster's newer one"

# A view lost with its disk is rebuilt from the streams.
inst_stop B
rm -rf "$T/state-B"
inst_start B
wait_metric B rufd_store_envelopes "$(metric A rufd_store_envelopes)" 30
desk sag-desk desk pull --hq "$HQ_B" --idle 2 >"$T/pull4" 2>&1 || fail "pull4: $(cat "$T/pull4")"
grep -q "0 archived, 0 duplicates" "$T/pull4" || fail "rebuilt B delivered again: $(cat "$T/pull4")"
ok "B started on an empty state_dir rebuilds its view from the streams (cursors included)"

# --- a bundle imported at B while B runs reaches a desk on A -----------------
if rufctl import --help >/dev/null 2>&1; then
	IDB=$(report rc-sd-1 "carried on a USB stick" elevated)
	ruf bundle export --home "$T/home/rc-sd-1" --out "$T/b.rufb" >"$T/bx" 2>&1 ||
		fail "bundle export: $(cat "$T/bx")"
	rufctl import "$T/b.rufb" -c "$T/rufd-B.conf" --receipts "$T/b.receipts" >"$T/imp" 2>&1 ||
		fail "import at B: $(cat "$T/imp")"
	[ -s "$T/b.receipts" ] || fail "import wrote no receipts: $(cat "$T/imp")"
	[ -d "$T/state-B/import-view" ] || fail "import did not use a view of its own"
	desk itf-darfur-desk desk pull --hq "$HQ_A" --idle 2 >"$T/pull5" 2>&1 ||
		fail "pull5: $(cat "$T/pull5")"
	archived_ids itf-darfur-desk | grep -qx "$IDB" || fail "imported $IDB not delivered by A"
	rufctl import "$T/b.rufb" -c "$T/rufd-B.conf" --receipts "$T/b2.receipts" >"$T/imp2" 2>&1 ||
		fail "second import: $(cat "$T/imp2")"
	cmp -s "$T/b.receipts" "$T/b2.receipts" || fail "a second import gave other receipts"
	ok "a bundle imported with B's configuration while B runs is stored once in the cluster and delivered by A"
fi

inst_stop A
inst_stop B
echo "all $checks checks passed"
