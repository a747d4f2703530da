#!/bin/sh
# fuzz/run.sh BUILD NAME SECONDS: runs BUILD/fuzz_NAME (one process) for SECONDS on a scratch
# copy of fuzz/corpus/NAME (new inputs go there, never into the repository), after replaying
# fuzz/regressions/NAME. Fails on any crash, leak, timeout or out-of-memory; the input that
# caused it is left in BUILD/artifacts/NAME/.
set -eu
build=$1 name=$2 secs=$3
dir=$(dirname "$0")
case $name in
recfile) maxlen=65536 ;;
perfscript | offgil) maxlen=16384 ;;
elf) maxlen=65536 ;;
pystack) maxlen=8192 ;;
trace) maxlen=16384 ;;
ring_decode) maxlen=8192 ;;
inline) maxlen=36000 ;; # 8 rings of 128 slots: 8 * (256 + 128 * 32) + 10
pyname) maxlen=8192 ;;
*) maxlen=4096 ;;
esac
work=$build/work/$name
art=$build/artifacts/$name
rm -rf "$work"
mkdir -p "$work" "$art"
[ -d "$dir/corpus/$name" ] && cp "$dir/corpus/$name"/* "$work"/ 2>/dev/null || true
[ -d "$dir/regressions/$name" ] && cp "$dir/regressions/$name"/* "$work"/ 2>/dev/null || true
# a missing or emptied corpus would fuzz from nothing and pass: at least one seed
[ "$(find "$work" -type f | wc -l)" -ge 1 ] || { echo "fuzz: $name has no seed in $dir/corpus/$name" >&2; exit 1; }
dict=""
[ -f "$dir/$name.dict" ] && dict="-dict=$dir/$name.dict"
echo "== fuzz $name for ${secs}s (max_len $maxlen)"
# shellcheck disable=SC2086
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
"$build/fuzz_$name" -max_total_time="$secs" -max_len="$maxlen" -timeout=10 -rss_limit_mb=2048 \
	-malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$art/" $dict "$work" \
	>"$build/fuzz-$name.log" 2>&1 || {
	tail -n 60 "$build/fuzz-$name.log" >&2
	echo "fuzz: $name failed; the input is in $art/ (log: $build/fuzz-$name.log)" >&2
	exit 1
}
grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' "$build/fuzz-$name.log" || true
