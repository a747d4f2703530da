#!/bin/sh
# Builds the small ELF files the symbol-source tests read (nothing binary is committed):
#   prog            with .symtab
#   stripped        no .symtab (only .dynsym)
#   minidebug       stripped + .gnu_debugdata (xz-compressed ELF holding the static symbols), as
#                   Fedora/RHEL ship them
#   debugroot/.build-id/xx/yyyy.debug   a separate debug file for `stripped`, found by build id
#   baddebugdata    stripped + a .gnu_debugdata section of garbage
set -eu
out=$1
mkdir -p "$out"
cd "$out"
cat > prog.c <<'C'
#include <stdio.h>
static int __attribute__((noinline)) secret_take(int x) { return x * 3 + 1; }
int exported_fn(int x) { return secret_take(x) + 2; }
int main(int argc, char **argv) { (void)argv; printf("%d\n", exported_fn(argc)); return 0; }
C
cc -O1 -g -rdynamic -Wl,--build-id=sha1 -o prog prog.c
strip --strip-all -o stripped prog
# MiniDebugInfo: keep only the function symbols that .dynsym lacks
objcopy --only-keep-debug prog prog.debug
objcopy -S --remove-section .comment --keep-symbol=secret_take prog.debug mini
rm -f mini.xz
xz -k mini
objcopy --add-section .gnu_debugdata=mini.xz stripped minidebug
# a separate debug file, where gdb and perf look for it
id=$(readelf -n prog | sed -n 's/.*Build ID: *\([0-9a-f]*\).*/\1/p')
mkdir -p "debugroot/.build-id/$(echo "$id" | cut -c1-2)"
cp prog.debug "debugroot/.build-id/$(echo "$id" | cut -c1-2)/$(echo "$id" | cut -c3-).debug"
head -c 4096 /dev/urandom > garbage.xz
objcopy --add-section .gnu_debugdata=garbage.xz stripped baddebugdata
