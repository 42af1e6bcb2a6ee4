# Helpers for the rufd end-to-end tests (sourced after lib.sh): a fresh PKI,
# enrolled identities, a config on a free loopback port, start/stop rufd,
# and the test client (tests/tools/ruf_testclient.c).

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# rufd_setup: PKI, identities, $T/rufd.conf; sets PORT, MPORT, C (certs), PASS.
rufd_setup() {
	make_pki
	C=$T/certs
	PORT=$(free_port)
	MPORT=$(free_port)
	cat >"$T/rufd.conf" <<CONF
# test configuration
listen = 127.0.0.1:$PORT
state_dir = $T/state
server_key = $C/hq/server.key
server_cert = $C/hq/server.cert
root_cert = $C/hq/root.cert
directory = $T/directory
metrics_listen = 127.0.0.1:$MPORT
handshake_timeout = 2s
${RUFD_EXTRA_CONF:-}
CONF
	cp "$C/directory" "$T/directory"
}

# rufd_start: starts rufd -d in the background, logs to $T/rufd.log (appended).
rufd_start() {
	rufd -d -c "$T/rufd.conf" 2>>"$T/rufd.log" &
	RUFD_PID=$!
	for _ in $(seq 100); do
		grep -q "rufd started" "$T/rufd.log" 2>/dev/null && return 0
		kill -0 "$RUFD_PID" 2>/dev/null || { cat "$T/rufd.log" >&2; fail "rufd died at start"; }
		sleep 0.1
	done
	fail "rufd did not start"
}

# rufd_stop: SIGTERM, waits, wants exit 0.
rufd_stop() {
	local rc=0
	kill -TERM "$RUFD_PID"
	wait "$RUFD_PID" || rc=$?
	[ "$rc" = 0 ] || { tail -20 "$T/rufd.log" >&2; fail "rufd exited $rc after SIGTERM"; }
}

# tc IDENTITY ARGS...: the test client as IDENTITY.
tc() {
	local who=$1; shift
	ruf_testclient -i "$C/identities/$who" -p "$PASS" -D "$T/directory" \
		-s "127.0.0.1:$PORT" "$@"
}

seal() { # identity report out
	ruf seal --home "$T/home/$1" --passphrase-file "$PASS" --in "$2" --out "$3" >/dev/null
}
