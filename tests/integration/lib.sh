# Shared by the end-to-end tests: real rufctl and ruf binaries, temp dirs, checks.
# RUF_BIN (the build directory) and RUF_SRC (the source tree) come from ctest.
set -euo pipefail
RUF_BIN=${RUF_BIN:?set RUF_BIN to the build directory}
RUF_SRC=${RUF_SRC:?set RUF_SRC to the source tree}
export PATH="$RUF_BIN:$PATH"
T=$(mktemp -d /tmp/ruf-e2e.XXXXXX)
trap 'rm -rf "$T"' EXIT
checks=0

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }

# expect_exit CODE PATTERN CMD...: runs CMD, wants exit CODE and PATTERN in its stderr+stdout.
expect_exit() {
	local want=$1 pat=$2 rc=0; shift 2
	"$@" >"$T/out" 2>&1 || rc=$?
	[ "$rc" = "$want" ] || { cat "$T/out" >&2; fail "exit $rc, wanted $want: $*"; }
	grep -q -- "$pat" "$T/out" || { cat "$T/out" >&2; fail "no '$pat' in output of: $*"; }
}

# A fresh example PKI in $T/certs (interactive Argon2id limits keep it quick).
make_pki() {
	RUFCTL=rufctl "$RUF_SRC/certs-example/gen.sh" "$T/certs" >/dev/null
	PASS=$T/certs/PASSPHRASE-EXAMPLE-ONLY
}

enroll() { # name
	ruf enroll --home "$T/home/$1" --from "$T/certs/identities/$1" \
		--directory "$T/certs/directory" --passphrase-file "$PASS" >/dev/null
}
