#!/usr/bin/env bash
# Long fuzzing runs: every libFuzzer target for SECONDS each, starting from the
# checked-in corpus (tests/fuzz/corpus/NAME) copied into a scratch corpus, so
# the repository is never written. Prints one line per target: executions,
# coverage (cov: and ft: from the final stats), corpus size, crashes.
#
#   tests/fuzz/run-long.sh BUILD_DIR SECONDS [TARGET...]
#
# BUILD_DIR is a -DRUF_FUZZ=ON build (clang). SCRATCH (default
# /tmp/ruf-fuzz-long) keeps corpora, logs and crash artifacts between runs.
# Exit 1 if any target crashed, leaked or timed out.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "${1:?usage: run-long.sh BUILD_DIR SECONDS [TARGET...]}")
secs=${2:?usage: run-long.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
scratch=${SCRATCH:-/tmp/ruf-fuzz-long}
mkdir -p "$scratch"
scratch=$(realpath "$scratch")
if [ $# -eq 0 ]; then
	set -- $(cd "$build" && ls fuzz_* 2>/dev/null | sed 's/^fuzz_//')
fi
bad=0
printf '%-16s %12s %8s %8s %8s %s\n' target execs cov ft corpus crashes
for t in "$@"; do
	bin=$build/fuzz_$t
	[ -x "$bin" ] || { echo "$t: no $bin" >&2; bad=1; continue; }
	corp=$scratch/corpus/$t
	art=$scratch/artifacts/$t/
	mkdir -p "$corp" "$art"
	[ -d "$here/corpus/$t" ] && cp -n "$here/corpus/$t"/* "$corp"/ 2>/dev/null
	log=$scratch/$t.log
	# -jobs=1 writes fuzz-0.log into the working directory: keep it in scratch.
	(cd "$scratch" && nice -n 10 "$bin" -max_total_time="$secs" -jobs=1 -workers=1 -print_final_stats=1 \
		-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$art" "$corp" >"$log" 2>&1)
	rc=$?
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
	ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
	ncorp=$(ls "$corp" | wc -l)
	crashes=$(ls "$art" 2>/dev/null | wc -l)
	printf '%-16s %12s %8s %8s %8s %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$ncorp" \
		"$crashes$([ $rc = 0 ] || echo " (exit $rc, see $log)")"
	[ "$rc" = 0 ] && [ "$crashes" = 0 ] || bad=1
done
exit $bad
