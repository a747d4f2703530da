#!/bin/sh
# Installs Debian's CPython 3.13 (from trixie), 3.14 and 3.15 (from sid) next to the system,
# for the tests:
#   PREFIX/3.13/usr/bin/python3.13   PREFIX/3.14/usr/bin/python3.14   PREFIX/3.15/usr/bin/python3.15
# Usage: tests/pythons.sh [PREFIX]        (default PREFIX=/opt/gilscope-pythons)
#
# How: a private apt configuration (sources list, lists, cache and an empty dpkg status, all
# under PREFIX/.work) downloads the interpreter packages and their runtime libraries from the
# suite; `dpkg -x` unpacks them into one root per version; patchelf points the interpreter at
# that root's ld.so and libraries (DT_RPATH, so it also covers the dependencies of the
# extension modules it dlopens). /etc/apt, the system's dpkg database and the system's python
# are not touched; only patchelf may be installed with the system's apt-get.
#
# Idempotent: an interpreter that already runs is skipped. Every version is attempted; the exit
# status is non-zero if any of them could not be installed or verified.
set -u

PREFIX=${1:-/opt/gilscope-pythons}
VERSIONS="3.13 3.14 3.15"
MIRROR=${GILSCOPE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
ARCH=amd64
TRIPLET=x86_64-linux-gnu
LDSO=ld-linux-x86-64.so.2
# runtime libraries the interpreter, its stdlib and its extension modules link against
LIBS="libc6 libexpat1 zlib1g libssl3t64 libffi8 libbz2-1.0 liblzma5 libzstd1 libgcc-s1 libuuid1
libsqlite3-0 libncursesw6 libtinfo6 libreadline8t64 libmpdec4"
# taken too when the suite has them (libdb5.3t64: _dbm in 3.13/3.14)
OPTLIBS="libdb5.3t64"
SMOKE='import sys, threading, hashlib, zlib; print(sys.version)'
THREADS='import threading
n = [0, 0]
def work(i):
    for _ in range(200000):
        n[i] += 1
ts = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
for t in ts: t.start()
for t in ts: t.join()
assert n == [200000, 200000], n
print("ok")'

export DEBIAN_FRONTEND=noninteractive LC_ALL=C
exec </dev/null

err() { echo "pythons.sh: $*" >&2; }

suite_of() { case $1 in 3.13) echo trixie ;; *) echo sid ;; esac; }
py_of() { echo "$PREFIX/$1/usr/bin/python$1"; }
runs() { "$(py_of "$1")" -c "$SMOKE" >/dev/null 2>&1; }

case $PREFIX in
/*) ;;
*) PREFIX=$(pwd)/$PREFIX ;;
esac
PREFIX=${PREFIX%/}
WORK=$PREFIX/.work

# ---- what is missing? ----------------------------------------------------------------------
todo=""
for v in $VERSIONS; do runs "$v" || todo="$todo $v"; done

failed=""
if [ -n "$todo" ]; then
	if ! mkdir -p "$WORK" 2>/dev/null || [ ! -w "$PREFIX" ]; then
		err "cannot write to $PREFIX (run as root or pass a writable PREFIX); not installed:$todo"
		exit 1
	fi
	# one installer at a time per PREFIX
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$WORK/lock"
		flock 9 || { err "cannot lock $WORK/lock"; exit 1; }
		# another run may have finished the job while we waited
		left=""
		for v in $todo; do runs "$v" || left="$left $v"; done
		todo=$left
	fi
fi

if [ -n "$todo" ]; then
	echo "pythons.sh: installing Python$todo into $PREFIX" >&2

	# ---- tools ---------------------------------------------------------------------------
	if ! command -v patchelf >/dev/null 2>&1; then
		if [ "$(id -u)" != 0 ]; then
			err "patchelf is missing; run as root or: sudo apt-get install patchelf"
			exit 1
		fi
		echo "pythons.sh: installing patchelf with apt-get" >&2
		apt-get install -y -q patchelf >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q patchelf >/dev/null 2>&1; } ||
			{ err "could not install patchelf (apt-get install patchelf failed)"; exit 1; }
	fi
	for t in apt-get apt-cache dpkg-deb; do
		command -v $t >/dev/null 2>&1 || { err "$t not found (need a Debian system)"; exit 1; }
	done
	[ -r "$KEYRING" ] || { err "$KEYRING missing (apt-get install debian-archive-keyring)"; exit 1; }

	# ---- per suite: private apt configuration, update, download --------------------------
	suites=""
	for v in $todo; do
		s=$(suite_of "$v")
		case " $suites " in *" $s "*) ;; *) suites="$suites $s" ;; esac
	done
	bad_suites=""
	for s in $suites; do
		d=$WORK/$s
		rm -rf "$d/debs"
		mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/debs" || { bad_suites="$bad_suites $s"; continue; }
		echo "deb [signed-by=$KEYRING] $MIRROR $s main" >"$d/sources.list"
		: >"$d/status"
		# apt as root drops to user _apt for downloads; let it read and write our directories
		chmod 755 "$WORK" "$d" 2>/dev/null
		chown -R _apt "$d/lists/partial" "$d/cache/archives/partial" "$d/debs" 2>/dev/null
		# private everything; the pkgcache options undo Docker's apt.conf.d/docker-clean, without
		# which every apt-cache call below re-parses the whole package list (~1 s each)
		set -- -q -o "Dir::Etc::sourcelist=$d/sources.list" -o Dir::Etc::sourceparts=/dev/null \
			-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o "Dir::State::status=$d/status" \
			-o Dir::Etc::preferences=/dev/null -o Dir::Etc::preferencesparts=/dev/null \
			-o APT::Architecture=$ARCH -o APT::Architectures=$ARCH -o Acquire::Languages=none \
			-o Dir::Cache::pkgcache=pkgcache.bin -o Dir::Cache::srcpkgcache=srcpkgcache.bin
		# apt-get update exits 0 when an index could not be fetched: look at its messages too
		if ! apt-get "$@" update >"$d/update.log" 2>&1 ||
			grep -q '^E: \|Failed to fetch\|failed to download\|NO_PUBKEY\|not signed' "$d/update.log"; then
			err "apt-get update for $s failed: $(grep '^[EW]: ' "$d/update.log" | head -n 1) (see $d/update.log)"
			bad_suites="$bad_suites $s"
			continue
		fi
		pkgs=$LIBS
		for v in $todo; do
			[ "$(suite_of "$v")" = "$s" ] && pkgs="$pkgs python$v-minimal libpython$v-minimal libpython$v-stdlib"
		done
		# keep only the packages the suite has; a missing interpreter package fails its version
		# below, a missing library is reported and skipped
		get=""
		for p in $pkgs $OPTLIBS; do
			if apt-cache "$@" show "$p" >/dev/null 2>&1; then
				get="$get $p"
			else
				case " $OPTLIBS " in *" $p "*) ;; *) err "$s has no package $p" ;; esac
			fi
		done
		# shellcheck disable=SC2086
		if ! (cd "$d/debs" && apt-get "$@" download $get) >"$d/download.log" 2>&1; then
			err "apt-get download from $s failed: $(grep '^E: ' "$d/download.log" | head -n 1) (see $d/download.log)"
			bad_suites="$bad_suites $s"
		fi
	done

	# ---- per version: unpack into a fresh root, patch, verify, move into place -----------
	for v in $todo; do
		s=$(suite_of "$v")
		case " $bad_suites " in *" $s "*) failed="$failed $v"; continue ;; esac
		d=$WORK/$s
		root=$PREFIX/$v
		new=$PREFIX/.new-$v
		rm -rf "$new"
		mkdir -p "$new"
		ok=1
		for f in "$d"/debs/*.deb; do
			case ${f##*/} in
			python3.[0-9]*-minimal_* | libpython3.[0-9]*-minimal_* | libpython3.[0-9]*-stdlib_*)
				# only this version's interpreter packages
				case ${f##*/} in *"python${v}-"*) ;; *) continue ;; esac ;;
			esac
			dpkg-deb -x "$f" "$new" 2>"$d/x.log" || { err "$v: dpkg -x ${f##*/} failed: $(head -n 1 "$d/x.log")"; ok=0; break; }
		done
		py=$new/usr/bin/python$v
		if [ $ok = 1 ] && [ ! -x "$py" ]; then
			err "$v: no usr/bin/python$v after unpacking (python$v-minimal not in $s?)"
			ok=0
		fi
		if [ $ok = 1 ] && [ ! -e "$new/usr/lib/$TRIPLET/$LDSO" ]; then
			err "$v: no usr/lib/$TRIPLET/$LDSO after unpacking (libc6 not downloaded?)"
			ok=0
		fi
		# the interpreter and library paths must be the final ones: $root, not $new
		if [ $ok = 1 ] && ! patchelf --set-interpreter "$root/usr/lib/$TRIPLET/$LDSO" \
			--force-rpath --set-rpath "$root/usr/lib/$TRIPLET" "$py" 2>"$d/patchelf.log"; then
			err "$v: patchelf failed: $(head -n 1 "$d/patchelf.log")"
			ok=0
		fi
		if [ $ok = 1 ]; then
			if ! { rm -rf "$root" && mv "$new" "$root"; }; then
				err "$v: cannot move $new to $root"
				ok=0
			fi
		fi
		if [ $ok = 1 ] && ! out=$("$(py_of "$v")" -c "$SMOKE" 2>&1); then
			err "$v: $(py_of "$v") does not run: $(echo "$out" | tail -n 1)"
			ok=0
		fi
		[ $ok = 1 ] || { failed="$failed $v"; rm -rf "$new"; }
	done
	# the downloaded .debs and apt's binary caches (~90 MB a suite) are no longer needed; the
	# package lists are kept for the next run
	for s in $suites; do rm -rf "$WORK/$s/debs" "$WORK/$s/cache/"*.bin; done
fi

# ---- verify every interpreter and report -------------------------------------------------
for v in $VERSIONS; do
	case " $failed " in *" $v "*) continue ;; esac
	py=$(py_of "$v")
	if ! ver=$("$py" -c 'import sys; print(sys.version.replace("\n", " "))' 2>&1); then
		err "$v: $py does not run: $(echo "$ver" | tail -n 1)"
		failed="$failed $v"
		continue
	fi
	if ! out=$("$py" -c "$SMOKE" 2>&1); then
		err "$v: $py: import sys, threading, hashlib, zlib failed: $(echo "$out" | tail -n 1)"
		failed="$failed $v"
		continue
	fi
	if ! out=$("$py" -c "$THREADS" 2>&1); then
		err "$v: $py: two-thread program failed: $(echo "$out" | tail -n 1)"
		failed="$failed $v"
		continue
	fi
	if [ "$v" = 3.15 ] && ! out=$("$py" -m profiling.sampling --help 2>&1); then
		err "$v: $py -m profiling.sampling --help failed: $(echo "$out" | tail -n 1)"
		failed="$failed $v"
		continue
	fi
	echo "$py $ver"
done

if [ -n "$failed" ]; then
	err "FAILED:$failed (the others are installed)"
	exit 1
fi
exit 0
