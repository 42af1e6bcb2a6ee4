#!/usr/bin/env bash
# Man pages (docs/man): formatted without a single warning by man and groff,
# and complete: every long option the programs' --help prints, every
# subcommand, every rufd option and every rufd.conf key appears in its page.
set -euo pipefail
RUF_BIN=${RUF_BIN:?set RUF_BIN to the build directory}
RUF_SRC=${RUF_SRC:?set RUF_SRC to the source tree}
M=$RUF_SRC/docs/man
checks=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
command -v groff >/dev/null 2>&1 || fail "groff missing (scripts/deps --test installs groff-base)"

pages=(ruf.1 rufctl.8 rufd.8 rufd.conf.5)
for p in "${pages[@]}"; do
	[ -f "$M/$p" ] || fail "no $M/$p"
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 groff -ww -z -b -man -Tutf8 "$M/$p" 2>&1)
	[ -z "$out" ] || fail "groff warns about $p: $out"
	if command -v man >/dev/null 2>&1; then
		out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$M/$p" 2>&1 >/dev/null)
		[ -z "$out" ] || fail "man --warnings warns about $p: $out"
	fi
	grep -qi "^\.TH ${p%.*} ${p##*.} " <<<"$(head -1 "$M/$p")" ||
		fail "$p: .TH does not name the page and section"
done
ok "${#pages[@]} pages format without warnings"

# has PAGE TEXT: the page's source holds TEXT (roff escapes: '-' as '\-').
has() {
	local esc=${2//-/\\-}
	grep -qF -- "$esc" "$M/$1" || fail "$1 does not mention '$2'"
}
# Every --option in a help text is in the page.
opts_in() { # page, help text on stdin
	local o
	for o in $(grep -oE -- '--[a-z][a-z-]*' | sort -u); do
		has "$1" "$o"
	done
}
ruf=$RUF_BIN/ruf rufctl=$RUF_BIN/rufctl rufd=$RUF_BIN/rufd
for b in "$ruf" "$rufctl" "$rufd"; do [ -x "$b" ] || fail "no $b"; done

for c in $("$ruf" --help | awk '/^Commands:/ {f=1; next} f && !NF {exit} f {print $1}'); do
	has ruf.1 ".SS $c"
	"$ruf" "$c" --help 2>/dev/null | opts_in ruf.1
done
has ruf.1 "directory update"
has ruf.1 "directory show"
ok "ruf.1 documents every ruf command and option"

for c in $("$rufctl" --help | awk '/^Commands:/ {f=1; next} f && !NF {exit} f {print $1}'); do
	grep -qE "^\.SS $c( |\$)" "$M/rufctl.8" || fail "rufctl.8 has no section for $c"
	"$rufctl" "$c" --help 2>/dev/null | opts_in rufctl.8
done
for s in "cert issue" "cert revoke" "cert list" "queue create" "queue list" \
	"directory publish"; do
	has rufctl.8 ".SS $s"
done
has rufctl.8 "--dir"
ok "rufctl.8 documents every rufctl command, subcommand and option"

for o in $("$rufd" -h | grep -oE '^  -[a-z]' | tr -d ' '); do
	grep -qE "^\.B(I)? \\\\$o( |\$)" "$M/rufd.8" || fail "rufd.8 lacks option $o"
done
keys=$("$rufd" -h | awk '/^configuration options/ {f=1; next} f && NF {print $1}')
[ -n "$keys" ] || fail "no option table in rufd -h"
for k in $keys; do
	grep -qE "^\.BI $k \" = " "$M/rufd.conf.5" || fail "rufd.conf.5 lacks option $k"
done
ok "rufd.8 documents every rufd option, rufd.conf.5 every configuration key"

for p in ruf.1 rufctl.8 rufd.8; do
	for s in "EXIT STATUS" EXAMPLES FILES; do has "$p" ".SH $s"; done
done
for code in 0 1 2 3; do
	has ruf.1 ".B $code"
	has rufctl.8 ".B $code"
done
has rufd.8 ".SH SIGNALS"
has rufd.8 "SIGHUP"
has rufd.8 "SIGTERM"
ok "exit codes, files, examples and signals are documented"
echo "$checks checks passed"
