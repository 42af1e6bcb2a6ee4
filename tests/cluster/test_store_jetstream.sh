# The store contract suite (tests/unit/test_store.c) against the "jetstream"
# backend, on a 3-node nats-server cluster this test starts on loopback
# (non-default ports, data in a temp dir removed at the end), plus the
# multi-instance, lost-quorum and crash tests. Skipped (77) without
# nats-server or without the backend.
set -euo pipefail
RUF_BIN=${RUF_BIN:?set RUF_BIN to the build directory}
RUF_SRC=${RUF_SRC:?set RUF_SRC to the source tree}
command -v "${NATS_SERVER:-nats-server}" >/dev/null 2>&1 ||
	{ echo "nats-server not installed: skipped"; exit 77; }
[ -x "$RUF_BIN/test_store" ] || { echo "no $RUF_BIN/test_store"; exit 1; }
. "$RUF_SRC/tests/cluster/nats_cluster.sh"

T=$(mktemp -d /tmp/ruf-js-store.XXXXXX)
cleanup() {
	nats_cluster_stop "$T/nats" || true
	rm -rf "$T"
}
trap cleanup EXIT

base=$(nats_free_base $$) || { echo "no free port block"; exit 1; }
nats_cluster_start "$T/nats" "$base" 3
nats_cluster_wait "$T/nats" 30

rc=0
RUF_TEST_NATS=$(nats_cluster_urls "$T/nats") \
	RUF_TEST_NATS_CTL="bash $RUF_SRC/tests/cluster/nats_cluster.sh $T/nats" \
	CMOCKA_MESSAGE_OUTPUT=stdout \
	timeout 540 "$RUF_BIN/test_store" || rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
	for i in 1 2 3; do
		echo "--- nats node $i (last lines)"
		tail -15 "$T/nats/n$i.log" || true
	done
fi
exit "$rc"
