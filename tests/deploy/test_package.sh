#!/usr/bin/env bash
# The Debian package: builds ruf_VERSION_ARCH.deb with cpack in its own
# build directory ($RUF_BIN/deploy-pkg, prefix /usr, no tests), then checks
# with dpkg-deb that it holds the programs, units, sysusers.d/tmpfiles.d,
# man pages and docs in their places, that its maintainer scripts create the
# user but never enable or start rufd, and -- unpacked into a scratch
# directory -- that every shared library the programs need comes from a
# package in Depends: and resolves. Nothing is installed into the system
# unless RUF_TEST_DEB_INSTALL=1 is set (as root, with ruf not installed):
# then `apt-get install ./ruf_*.deb`, checks, and `apt-get purge ruf`.
# Skips (exit 77) without cpack, dpkg-deb or dpkg-shlibdeps.
set -euo pipefail
RUF_BIN=${RUF_BIN:?set RUF_BIN to the build directory}
RUF_SRC=${RUF_SRC:?set RUF_SRC to the source tree}
for t in cpack dpkg-deb dpkg-shlibdeps readelf; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "SKIP: $t not installed (dpkg-dev, binutils, cmake)"
		exit 77
	fi
done
T=$(mktemp -d /tmp/ruf-pkg.XXXXXX)
trap 'rm -rf "$T"' EXIT
checks=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }

B=$RUF_BIN/deploy-pkg
cmake -S "$RUF_SRC" -B "$B" -DRUF_TESTS=OFF -DRUF_SANITIZE=OFF -DRUF_FUZZ=OFF \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr >"$T/log" 2>&1 ||
	{ cat "$T/log" >&2; fail "cmake configure"; }
cmake --build "$B" -j2 >"$T/log" 2>&1 || { tail -30 "$T/log" >&2; fail "build"; }
rm -f "$B"/ruf_*.deb
(cd "$B" && cpack -G DEB) >"$T/log" 2>&1 || { cat "$T/log" >&2; fail "cpack"; }
debs=("$B"/ruf_*.deb)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || fail "cpack made no single ruf_*.deb"
DEB=${debs[0]}
ok "cpack built $(basename "$DEB")"

dpkg-deb --info "$DEB" >"$T/info"
field() { sed -n "s/^ $1: //p" "$T/info"; }
[ "$(field Package)" = ruf ] || fail "Package: $(field Package)"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture"
DEPENDS=$(field Depends)
[ -n "$DEPENDS" ] || fail "no Depends"
for s in postinst prerm postrm; do
	grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\* +$s " "$T/info" ||
		fail "no executable $s in the control archive"
done
ok "control: Package ruf, Depends: $DEPENDS"

dpkg-deb --contents "$DEB" | awk '{print $1, $NF}' >"$T/contents"
has() { # mode-prefix path
	grep -qE "^$1[^ ]* \./$2\$" "$T/contents" || fail "package lacks $2 ($1)"
}
has -rwxr-xr-x usr/bin/ruf
has -rwxr-xr-x usr/sbin/rufctl
has -rwxr-xr-x usr/sbin/rufd
for u in rufd.service rufd-socket.service rufd.socket; do has -rw-r--r-- "usr/lib/systemd/system/$u"; done
has -rw-r--r-- usr/lib/sysusers.d/ruf.conf
has -rw-r--r-- usr/lib/tmpfiles.d/ruf.conf
has -rw-r--r-- usr/share/man/man1/ruf.1
has -rw-r--r-- usr/share/man/man8/rufctl.8
has -rw-r--r-- usr/share/man/man8/rufd.8
has -rw-r--r-- usr/share/man/man5/rufd.conf.5
has -rw-r--r-- usr/share/doc/ruf/examples/rufd.conf
has -rw-r--r-- usr/share/doc/ruf/OPERATIONS.md
has -rw-r--r-- usr/share/doc/ruf/README.md
# Nothing in /etc: the package leaves configuration to the operator (no conffiles).
grep -q ' \./etc/' "$T/contents" && fail "package ships files in /etc"
# Nothing outside the standard places.
bad=$(awk '{print $2}' "$T/contents" | grep -vE '^\./(usr/(bin|sbin|lib/(systemd/system|sysusers\.d|tmpfiles\.d)|share/(man/man[158]|doc/ruf(/examples)?))/?[^/]*$|usr/(lib|share(/man|/doc)?|lib/systemd)/?$|usr/?$)|^\./$' || true)
[ -z "$bad" ] || fail "unexpected paths: $bad"
ok "contents: programs in bin/sbin, units, sysusers/tmpfiles, man 1/5/8, docs, nothing in /etc"

X=$T/x
dpkg-deb -x "$DEB" "$X"
for u in rufd.service rufd-socket.service rufd.socket; do
	cmp -s "$X/usr/lib/systemd/system/$u" "$RUF_SRC/systemd/$u" || fail "$u differs from systemd/$u"
done
# Every NEEDED library: resolvable, and owned by a package named in Depends.
for b in "$X/usr/bin/ruf" "$X/usr/sbin/rufctl" "$X/usr/sbin/rufd"; do
	ldd "$b" >"$T/ldd" 2>&1 || fail "ldd $b: $(cat "$T/ldd")"
	grep -q 'not found' "$T/ldd" && fail "$(basename "$b"): $(grep 'not found' "$T/ldd")"
	for lib in $(readelf -d "$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		path=$(awk -v l="$lib" '$1 == l {print $3; exit}' "$T/ldd")
		[ -n "$path" ] || fail "$(basename "$b"): $lib does not resolve"
		pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1) ||
			true
		[ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1) || true
		[ -n "$pkg" ] || fail "$(basename "$b"): no package owns $path ($lib)"
		grep -qE "(^|, )$pkg( |,|\$)" <<<"$DEPENDS" ||
			fail "$(basename "$b") needs $lib from $pkg, which Depends: lacks"
	done
done
ok "every library the programs need resolves and comes from a package in Depends"
"$X/usr/sbin/rufd" -h >/dev/null || fail "packaged rufd -h"
grep -q '^ruf ' <<<"$("$X/usr/bin/ruf" --version)" || fail "packaged ruf --version"
grep -q '^rufctl ' <<<"$("$X/usr/sbin/rufctl" --version)" || fail "packaged rufctl --version"
for f in usr/bin/ruf usr/sbin/rufctl usr/sbin/rufd; do
	grep -q 'DYN' <<<"$(readelf -h "$X/$f")" || fail "$f is not PIE"
	grep -q 'BIND_NOW' <<<"$(readelf -d "$X/$f")" || fail "$f lacks -z now"
done
ok "packaged programs run, PIE with full RELRO"

C=$T/control
dpkg-deb -e "$DEB" "$C"
for s in postinst prerm postrm; do sh -n "$C/$s" || fail "$s: syntax"; done
grep -qE 'systemctl +(enable|start|restart)|deb-systemd-helper +enable' "$C/postinst" &&
	fail "postinst enables or starts rufd"
grep -q 'systemd-sysusers' "$C/postinst" || fail "postinst does not run systemd-sysusers"
grep -q 'systemd-tmpfiles' "$C/postinst" || fail "postinst does not run systemd-tmpfiles"
grep -q 'rm ' "$C/postrm" && fail "postrm deletes files (the store must survive a purge)"
ok "maintainer scripts: user and directories created, rufd never enabled, store kept on purge"

if [ "${RUF_TEST_DEB_INSTALL:-0}" = 1 ]; then
	[ "$(id -u)" = 0 ] || fail "RUF_TEST_DEB_INSTALL=1 needs root"
	grep -q 'install ok installed' <<<"$(dpkg-query -W -f='${Status}' ruf 2>/dev/null || true)" &&
		fail "ruf is already installed here: not touching it"
	trap 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq ruf >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
	cp "$DEB" "$T/"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"$T/$(basename "$DEB")" >"$T/log" 2>&1 || { cat "$T/log" >&2; fail "apt-get install"; }
	getent passwd rufd >/dev/null || fail "no rufd user after install"
	[ "$(stat -c '%a %U' /var/lib/rufd)" = "700 rufd" ] || fail "/var/lib/rufd: $(stat -c '%a %U' /var/lib/rufd)"
	st=$(systemctl is-enabled rufd.service 2>/dev/null || true)
	[ "$st" = disabled ] || fail "rufd.service is '$st' after install, want disabled"
	st=$(systemctl is-enabled rufd.socket 2>/dev/null || true)
	[ "$st" = disabled ] || fail "rufd.socket is '$st' after install, want disabled"
	/usr/sbin/rufd -h >/dev/null || fail "installed rufd -h"
	MANPATH=/usr/share/man man -w rufd.conf >/dev/null 2>&1 || fail "man rufd.conf not found"
	out=$(cd / && systemd-analyze verify rufd.service rufd-socket.service rufd.socket 2>&1) ||
		fail "verify installed units: $out"
	[ -z "$out" ] || fail "verify installed units: $out"
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq ruf >"$T/log" 2>&1 ||
		{ cat "$T/log" >&2; fail "apt-get purge"; }
	[ ! -e /usr/sbin/rufd ] || fail "rufd left after purge"
	[ -d /var/lib/rufd ] || fail "purge removed the store directory"
	ok "apt-get install: user, 0700 state dir, units disabled and valid; purge keeps the store"
fi
echo "$checks checks passed"
