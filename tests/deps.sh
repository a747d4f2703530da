#!/bin/sh
# Installs the Debian packages gilscope's build, tests and demo need. Idempotent; quiet when
# everything is present. Needs root (apt-get) only when something is missing.
set -eu
pkgs="gcc make libelf-dev libdw-dev liblzma-dev libjansson-dev zlib1g-dev libcmocka-dev python3-pytest linux-perf util-linux xz-utils binutils"
# the three CPython 3.11 builds the tests exercise (pyenv's 3.11.7 comes with the image)
pkgs="$pkgs python3.11 python3.11-dbg"
# the HTML report is checked in a headless browser
pkgs="$pkgs chromium protobuf-compiler python3-ipython python3-setuptools python3-pip"
# the Python package (test_package.py: a wheel built offline, installed into a venv)
pkgs="$pkgs python3-wheel python3-venv python3-pytest-xdist"
# the speedscope export is validated against the schema of npm's speedscope (test_formats.py installs it)
pkgs="$pkgs python3-jsonschema"
# the fuzz targets (make fuzz): clang and its libFuzzer/sanitizer runtimes
pkgs="$pkgs clang libclang-rt-14-dev"
# the BPF scheduler source: clang (above) compiles it, bpftool makes its skeleton, libbpf loads it
pkgs="$pkgs bpftool libbpf-dev"
# make valgrind and make lint
pkgs="$pkgs valgrind cppcheck"
# serve (libmicrohttpd), top (a terminal, driven by tmux), and the real Prometheus and promtool of its tests
pkgs="$pkgs libmicrohttpd-dev libncurses-dev tmux prometheus"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# npm: any npm will do (nodesource's nodejs ships its own and conflicts with Debian's npm package)
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "gilscope: missing Debian packages:$missing; run as root or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "gilscope: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $missing >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $missing >/dev/null; }
