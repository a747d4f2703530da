# gilscope - one non-recursive Makefile. `make V=1` shows the commands.
PREFIX ?= /usr/local
BUILD ?= build$(if $(SANITIZE),-san)
CC ?= cc
VERSION := 0.1.0
SANITIZE ?=

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS ?= -O2 -g
ALL_CFLAGS := $(CFLAGS) -std=gnu11 $(WARN) -DGS_VERSION='"$(VERSION)"' -Isrc -MMD -MP
LDLIBS := -ldw -lelf -llzma -ljansson -lz -lmicrohttpd -lpthread
# gcc's -fsanitize=undefined leaves float-cast-overflow out (clang's, the fuzzers', has it): added.
comma := ,
SAN_FLAGS := -fsanitize=$(SANITIZE)$(if $(findstring undefined,$(SANITIZE)),$(comma)float-cast-overflow)
ifneq ($(SANITIZE),)
ALL_CFLAGS += $(SAN_FLAGS) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += $(SAN_FLAGS)
endif

# The BPF scheduler source (src/bpf/sched.bpf.c, record/sched_bpf.h): compiled by clang for the BPF
# target against the kernel's BTF (vmlinux.h dumped by bpftool at build time) and embedded as a
# libbpf skeleton. Without clang, bpftool, libbpf-dev or /sys/kernel/btf/vmlinux it is left out
# (BPF=0): gilscope then records with the perf tracepoints only.
BPF_CLANG ?= clang
BPF ?= $(shell command -v $(BPF_CLANG) >/dev/null && PATH="$$PATH:/usr/sbin:/sbin" command -v bpftool >/dev/null && \
	[ -r /sys/kernel/btf/vmlinux ] && [ -r /usr/include/bpf/libbpf.h ] && echo 1 || echo 0)
BPFTOOL ?= $(shell PATH="$$PATH:/usr/sbin:/sbin" command -v bpftool)
BPF_ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BPF_SKEL := $(BUILD)/bpf/sched.skel.h
ifeq ($(BPF),1)
ALL_CFLAGS += -I$(BUILD)/bpf -DGS_HAVE_BPF
LDLIBS += -lbpf
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRC := $(sort $(filter-out src/cmd/% src/bpf/%,$(wildcard src/*/*.c)))
CMD_SRC := $(sort $(wildcard src/cmd/*.c))
CMD_OBJ := $(CMD_SRC:src/%.c=$(BUILD)/%.o)
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: bench-cpu all clean install check unit functional demo bench deps pythons lint valgrind stress fuzz fuzz-build replay san-status mutate
all: $(BUILD)/gilscope

$(BUILD)/%.o: src/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/bpf/vmlinux.h:
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BTF     $@")
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/bpf/sched.bpf.o: src/bpf/sched.bpf.c src/bpf/sched_event.h $(BUILD)/bpf/vmlinux.h
	@$(if $(Q),echo "  BPF     $<")
	$(Q)$(BPF_CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -I$(BUILD)/bpf -Isrc -c -o $@ $<

$(BPF_SKEL): $(BUILD)/bpf/sched.bpf.o
	@$(if $(Q),echo "  SKEL    $@")
	$(Q)$(BPFTOOL) gen skeleton $< name gs_sched_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/libgilscope.a: $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/gilscope: $(CMD_OBJ) $(BUILD)/libgilscope.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libgilscope.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libgilscope.a $(LDLIBS) -lcmocka

# The inline probes' recording sequence in a loop, 1 and 2 threads (bench/ring_bench.c).
$(BUILD)/bench/ring_bench: bench/ring_bench.c $(BUILD)/libgilscope.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libgilscope.a $(LDLIBS) -lpthread

# Installs the Debian packages the build and tests need (root; no-op when present).
deps:
	$(Q)./tests/deps.sh

# Debian's CPython 3.13, 3.14 and 3.15 next to the system, for the tests (tests/pythons.sh).
PYTHONS_PREFIX ?= /opt/gilscope-pythons
pythons:
	$(Q)./tests/pythons.sh $(PYTHONS_PREFIX) >/dev/null

install: $(BUILD)/gilscope
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/gilscope $(DESTDIR)$(PREFIX)/bin/gilscope

$(BUILD)/fixtures/stamp: tests/unit/make_elf_fixtures.sh
	$(Q)./tests/unit/make_elf_fixtures.sh $(BUILD)/fixtures && touch $@

unit: $(UNIT_BIN) $(BUILD)/fixtures/stamp replay
	$(Q)set -e; for t in $(UNIT_BIN); do echo "== $$t"; GILSCOPE_FIXTURES=$(BUILD)/fixtures $(SAN_ENV) $$t; done

# Sanitizer reports stop the program (also compiled in: -fno-sanitize-recover=all) with exit
# status 86, which no gilscope path returns: a test that expects a failure (1, 2) cannot mistake
# a sanitizer report for it.
SAN_ENV := $(if $(SANITIZE),ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:exitcode=86 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=86)

# Planted semantic bugs, each caught by the test that names its property (tests/mutate.py; a few
# minutes on a built tree). Fails when one survives or no longer applies to the code.
mutate: all
	$(Q)/usr/bin/python3 tests/mutate.py

# A sanitizer report must reach every runner as status 86: proved on a throw-away copy with an
# injected overflow (tests/sanitizer_status.sh, about 2 minutes).
san-status:
	$(Q)./tests/sanitizer_status.sh

# ---- fuzzing (fuzz/README.md) ---------------------------------------------------------------
# One libFuzzer target per input parser: fuzz/fuzz_NAME.c. `make fuzz` builds them with clang
# (coverage, ASan, UBSan) in build-fuzz/ and runs each for FUZZ_TIME seconds on a copy of
# fuzz/corpus/NAME plus fuzz/regressions/NAME; any crash, leak or timeout fails. `make unit`
# replays the corpora and the regressions through the same entry points, built normally.
FUZZ_TARGETS := recfile perfscript offgil elf pystack trace ring_decode inline merge procfs pyname sched_bpf accept
FUZZ_TIME ?= 300
FUZZ_CC ?= clang
FUZZ_BUILD ?= build-fuzz
FUZZ_CFLAGS := -O1 -g -std=gnu11 $(WARN) -Wno-format-nonliteral -MMD -MP -DGS_VERSION='"$(VERSION)"' -Isrc -Ifuzz -fno-omit-frame-pointer \
               -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS += $(if $(filter 1,$(BPF)),-I$(BUILD)/bpf -DGS_HAVE_BPF)
FUZZ_LIB_OBJ := $(LIB_SRC:src/%.c=$(FUZZ_BUILD)/%.o)
REPLAY_BIN := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/replay_%)
# The replays run with the fuzzers' sanitizers whatever SANITIZE is (a library of their own in
# $(BUILD)/replay): a reverted fix then fails `make unit` as it failed under libFuzzer.
# REPLAY_TIMEOUT: seconds one input may take; REPLAY_MIN: inputs each corpus directory must hold.
REPLAY_SAN := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer
REPLAY_ENV := ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:exitcode=86 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=86
REPLAY_TIMEOUT ?= 10
REPLAY_MIN ?= 2
REPLAY_LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/replay/%.o)

$(FUZZ_BUILD)/%.o: src/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libgilscope.a: $(FUZZ_LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(FUZZ_BUILD)/libgilscope.a
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libgilscope.a $(LDLIBS)

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)set -e; for t in $(FUZZ_TARGETS); do ./fuzz/run.sh $(FUZZ_BUILD) $$t $(FUZZ_TIME); done

$(BUILD)/replay/%.o: src/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  SANCC   $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(REPLAY_SAN) -c -o $@ $<

$(BUILD)/replay/libgilscope.a: $(REPLAY_LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/replay.c fuzz/fuzz.h $(BUILD)/replay/libgilscope.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(REPLAY_SAN) -Ifuzz $(LDFLAGS) -o $@ $< fuzz/replay.c $(BUILD)/replay/libgilscope.a $(LDLIBS)

# Each target's corpus must be there and hold REPLAY_MIN inputs; its regressions, when there are.
replay: $(REPLAY_BIN)
	$(Q)set -e; for t in $(FUZZ_TARGETS); do printf '== fuzz/%s: ' $$t; \
		$(REPLAY_ENV) $(BUILD)/fuzz/replay_$$t -t $(REPLAY_TIMEOUT) -m $(REPLAY_MIN) fuzz/corpus/$$t; \
		if [ -d fuzz/regressions/$$t ]; then printf '   regressions: '; \
		$(REPLAY_ENV) $(BUILD)/fuzz/replay_$$t -t $(REPLAY_TIMEOUT) -m 1 fuzz/regressions/$$t; fi; done

functional: $(BUILD)/gilscope
	$(Q)$(SAN_ENV) GILSCOPE=$(abspath $(BUILD)/gilscope) /usr/bin/python3 -m pytest -ra -q --durations=25 tests/functional

# Debian's 3.13-3.15 are part of what check tests: when tests/pythons.sh cannot install them
# (no network, a mirror without them), check fails, unless GILSCOPE_ALLOW_MISSING_PYTHONS=1 says
# to test without them (their tests are then SKIPPED).
check: deps
	$(Q)./tests/pythons.sh $(PYTHONS_PREFIX) >/dev/null || if [ "$${GILSCOPE_ALLOW_MISSING_PYTHONS:-0}" = 1 ]; then \
		echo "gilscope: Debian's 3.13-3.15 could not all be installed (tests/pythons.sh); their tests will be SKIPPED (GILSCOPE_ALLOW_MISSING_PYTHONS=1)" >&2; \
	else echo "gilscope: Debian's 3.13-3.15 could not all be installed by tests/pythons.sh into $(PYTHONS_PREFIX) (see its messages above); set GILSCOPE_ALLOW_MISSING_PYTHONS=1 to test without them" >&2; exit 1; fi
	$(Q)$(MAKE) --no-print-directory all unit
	$(Q)$(MAKE) --no-print-directory functional

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)./examples/demo.sh $(BUILD)/gilscope

bench: deps
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/bench/ring_bench
	$(Q)$(BUILD)/bench/ring_bench
	$(Q)/usr/bin/python3 bench/bench.py --gilscope $(BUILD)/gilscope
	$(Q)/usr/bin/python3 bench/sched_bench.py --gilscope $(BUILD)/gilscope
	$(Q)/usr/bin/python3 bench/export_bench.py --gilscope $(BUILD)/gilscope
	$(Q)/usr/bin/python3 bench/perf2trace_bench.py --gilscope $(BUILD)/gilscope
	$(Q)/usr/bin/python3 bench/compare_tachyon.py --gilscope $(BUILD)/gilscope
	$(Q)/usr/bin/python3 bench/blame_bench.py --gilscope $(BUILD)/gilscope
	$(Q)/usr/bin/python3 bench/proctree_bench.py --gilscope $(BUILD)/gilscope

# The CPU-bound rows long enough to tell 3% from noise (1.03x targets): 10 times the iterations
# of make bench's (about 4.5 s a run untraced), 7 interleaved rounds; about 3 minutes.
bench-cpu: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)/usr/bin/python3 bench/bench.py --gilscope $(BUILD)/gilscope --only "CPU-bound,Python stacks 1 kHz" \
		--cpu-iterations 30000000 --repeat 7

# gilscope under valgrind's memcheck on real work: errors, leaks and leaked descriptors fail
# (tests/valgrind.py; a plain build: valgrind and the sanitizers do not mix).
valgrind: deps
	$(Q)$(MAKE) --no-print-directory SANITIZE= all
	$(Q)/usr/bin/python3 tests/valgrind.py --gilscope build/gilscope

# 64 contending CPU threads for 60 s and 5,000 short-lived threads: no lost event, a consistent
# report, gilscope's peak RSS (tests/stress.py; about 75 s). STRESS_ARGS to change the sizes.
STRESS_ARGS ?= --threads 64 --seconds 60 --short 5000
stress: $(BUILD)/gilscope
	$(Q)/usr/bin/python3 tests/stress.py --gilscope $(BUILD)/gilscope $(STRESS_ARGS)

# Static checks; installs nothing (make deps does): cppcheck, the house size limits
# (tests/sizes.py), and clang-format's verdict on every source (.clang-format).
LINT_SRC := $(wildcard src/*/*.c src/*/*.h tests/unit/*.c fuzz/*.c fuzz/*.h)
lint:
	$(Q)command -v cppcheck >/dev/null && command -v clang-format >/dev/null || \
		{ echo "make lint needs cppcheck and clang-format: apt-get install cppcheck clang-format (or make deps)" >&2; exit 1; }
	$(Q)cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr -Isrc -isrc/bpf src
	$(Q)/usr/bin/python3 tests/sizes.py
	$(Q)clang-format --dry-run --Werror $(LINT_SRC)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)

# the BPF source's object includes the generated skeleton (in every build of the library)
ifeq ($(BPF),1)
$(BUILD)/record/sched_bpf.o $(BUILD)/replay/record/sched_bpf.o $(FUZZ_BUILD)/record/sched_bpf.o: $(BPF_SKEL)
endif

-include $(LIB_OBJ:.o=.d) $(CMD_OBJ:.o=.d) $(FUZZ_LIB_OBJ:.o=.d) $(REPLAY_LIB_OBJ:.o=.d)
