#!/usr/bin/env bash
# Would the units' system call filter let rufd work? Runs the real rufd under
# strace through start-up, a device submission, desk delivery, metrics, a
# SIGHUP reload and SIGTERM, and checks every system call it made is allowed
# by SystemCallFilter=@system-service minus the groups rufd.service denies.
# (A denied call would fail with EPERM under systemd and break that path.)
# Skips (exit 77) without strace or systemd-analyze, or when rufd is built
# with sanitizers (their run-time makes calls the release build never does).
set -euo pipefail
. "$RUF_SRC/tests/integration/lib.sh"
. "$RUF_SRC/tests/integration/rufd_lib.sh"
for t in strace systemd-analyze curl; do
	command -v "$t" >/dev/null 2>&1 || { echo "SKIP: $t not installed"; exit 77; }
done
needed=$(readelf -d "$RUF_BIN/rufd" 2>/dev/null || true)
if grep -qE 'lib(asan|ubsan|tsan|msan)' <<<"$needed"; then
	echo "SKIP: $RUF_BIN/rufd is built with sanitizers; run this on a release build"
	exit 77
fi
strace -f -qq -o /dev/null true 2>/dev/null || { echo "SKIP: ptrace not permitted here"; exit 77; }

# The allowed set, from the unit itself.
U=$RUF_SRC/systemd/rufd.service
expand() { # @group or name -> names, recursively
	systemd-analyze syscall-filter "$1" | sed 1d | grep -v '^ *#' | sed 's/^ *//' |
		while read -r x; do
			[ -z "$x" ] && continue
			case $x in @*) expand "$x" ;; *) echo "$x" ;; esac
		done
}
allow=$(sed -n 's/^SystemCallFilter=\([^~].*\)$/\1/p' "$U")
deny=$(sed -n 's/^SystemCallFilter=~\(.*\)$/\1/p' "$U")
[ -n "$allow" ] && [ -n "$deny" ] || fail "no SystemCallFilter allow and deny lines in $U"
for g in $allow; do expand "$g"; done | sort -u >"$T/allowed"
for g in $deny; do expand "$g"; done | sort -u >"$T/denied"
comm -23 "$T/allowed" "$T/denied" >"$T/permitted"
[ "$(wc -l <"$T/permitted")" -gt 100 ] || fail "could not expand the filter"

rufd_setup
strace -f -qq -o "$T/trace" rufd -d -c "$T/rufd.conf" 2>>"$T/rufd.log" &
SPID=$!
for _ in $(seq 150); do grep -q "rufd started" "$T/rufd.log" 2>/dev/null && break; sleep 0.1; done
grep -q "rufd started" "$T/rufd.log" || { cat "$T/rufd.log" >&2; fail "rufd did not start under strace"; }
RUFD_PID=$(ps -o pid= --ppid "$SPID" | tr -d ' ')
[ -n "$RUFD_PID" ] || fail "no rufd under strace"

for n in rc-sd-1 hrt-desk; do enroll "$n"; done
seal rc-sd-1 "$RUF_SRC/certs-example/reports/sitrep-darfur.json" "$T/e.env"
tc rc-sd-1 submit "$T/e.env" >"$T/r" || fail "submit: $(cat "$T/r")"
mkdir -p "$T/got"
tc hrt-desk -n 1 -o "$T/got" subscribe hrt >"$T/d" || fail "subscribe: $(cat "$T/d")"
grep -q '^rufd_store_envelopes 1$' <<<"$(curl -s "127.0.0.1:$MPORT/metrics")" || fail "metrics"
kill -HUP "$RUFD_PID"
for _ in $(seq 50); do grep -q 'reloaded' "$T/rufd.log" && break; sleep 0.1; done
grep -q 'reloaded' "$T/rufd.log" || fail "no reload"
kill -TERM "$RUFD_PID"
rc=0
wait "$SPID" || rc=$?
[ "$rc" = 0 ] || fail "rufd exited $rc"
ok "rufd under strace: start, submit, deliver, metrics, reload, stop"

# "PID name(args" lines; skip resumptions and signal lines.
sed -n 's/^[0-9]\+ \+\([a-z_0-9]\+\)(.*/\1/p' "$T/trace" | sort -u >"$T/used"
[ "$(wc -l <"$T/used")" -gt 20 ] || fail "strace saw too few calls"
# execve is the exec of rufd itself (systemd's, before the filter applies).
bad=$(comm -23 "$T/used" "$T/permitted" | grep -vx 'execve' || true)
[ -z "$bad" ] || fail "rufd made calls the unit's filter denies: $(echo $bad)"
ok "all $(wc -l <"$T/used") system calls rufd made are allowed by the unit's SystemCallFilter"
echo "$checks checks passed"
