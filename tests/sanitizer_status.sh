#!/bin/sh
# Proves that a sanitizer report reaches every test runner as exit status 86 (Makefile SAN_ENV),
# never as a status a test expects (1, 2): a throw-away copy of the tree gets a signed overflow
# in gs_malloc that fires when GILSCOPE_INJECT_UB is set, is built with ASan+UBSan, and then the
# unit tests, the fuzz replay and a functional test that expects status 1 must each fail with 86.
# Usage: tests/sanitizer_status.sh (about 2 minutes; not part of make check).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/gilscope-sanstatus-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$root"
git ls-files -z | xargs -0 cp --parents -t "$work"
cd "$work"
python3 - <<'PY'
p = "src/base/util.c"
s = open(p).read()
needle = "void *gs_malloc(size_t n)\n{\n"
assert needle in s, "gs_malloc not found: update the injection"
s = s.replace(needle, needle + "\t{ volatile int inj = getenv(\"GILSCOPE_INJECT_UB\") ? 0x7fffffff : 0; inj = inj + (inj != 0); }\n")
open(p, "w").write(s)
PY
make -s SANITIZE=address,undefined all >/dev/null
fail=0
expect86() { # what, then the command
	what=$1; shift
	set +e
	GILSCOPE_INJECT_UB=1 "$@" >"$work/out.txt" 2>&1
	st=$?
	set -e
	if [ "$st" != 0 ] && { [ "$st" = 86 ] || grep -qE "Error 86|assert 86 ==" "$work/out.txt"; }; then
		echo "ok   $what: the sanitizer report arrives as status 86"
	else
		echo "FAIL $what: status $st, no 86 in its output:"; tail -5 "$work/out.txt"; fail=1
	fi
}
expect86 "make unit" make -s SANITIZE=address,undefined unit
expect86 "make replay" make -s SANITIZE=address,undefined replay
# make functional's own runner (SAN_ENV), one test that expects gilscope's status 1
expect86 "make functional" env PYTEST_ADDOPTS="-p no:cacheprovider -k test_attach_to_missing_process" \
	make -s SANITIZE=address,undefined functional
exit $fail
