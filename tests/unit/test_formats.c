/* Unit tests: the recording file (round trip, truncation, garbage, the loader's options),
 * /proc/PID/maps lines and tracefs format files. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <cmocka.h>

#include "analysis/analysis.h"
#include "base/procfs.h"
#include "base/recfile.h"
#include "cpython/native.h"
#include "probe/tracefs.h"

static char path[64];

static int setup(void **state)
{
	int fd;
	(void)state;
	snprintf(path, sizeof(path), "/tmp/gilscope-test-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void write_sample(int with_end)
{
	struct gs_recwriter *w;
	struct gs_rec r = { .type = GS_REC_GIL_WRITE, .pid = 7, .tid = 8, .time = 1234, .arg = 1, .arg64 = 0xfeed };
	assert_int_equal(gs_recwriter_open(path, 1000, &w), 0);
	assert_int_equal(gs_recwriter_meta(w, 7, "python.version", "3.11.7"), 0);
	assert_int_equal(gs_recwriter_add(w, &r, NULL, 0), 0);
	assert_int_equal(gs_recwriter_flush(w), 0); /* v3: the COMM below in a block of its own */
	r.type = GS_REC_COMM;
	assert_int_equal(gs_recwriter_add(w, &r, "worker-1", 9), 0);
	if (with_end) {
		r.type = GS_REC_END;
		assert_int_equal(gs_recwriter_add(w, &r, NULL, 0), 0);
	}
	assert_int_equal(gs_recwriter_close(w), 0);
}

static void test_round_trip(void **state)
{
	struct gs_recreader *rd;
	struct gs_rec r;
	const void *p;
	size_t plen;
	char why[256];
	(void)state;
	write_sample(1);
	assert_int_equal(gs_recreader_open(path, &rd, why, sizeof(why)), 0);
	assert_int_equal(gs_recreader_start(rd), 1000);
	assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), 1);
	assert_int_equal(r.type, GS_REC_META);
	assert_string_equal((const char *)p, "python.version");
	assert_string_equal((const char *)p + 15, "3.11.7");
	assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), 1);
	assert_int_equal(r.type, GS_REC_GIL_WRITE);
	assert_int_equal(r.size, 32);
	assert_int_equal(r.pid, 7);
	assert_int_equal(r.tid, 8);
	assert_int_equal(r.time, 1234);
	assert_int_equal(r.arg, 1);
	assert_int_equal(r.arg64, 0xfeed);
	assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), 1);
	assert_int_equal(r.type, GS_REC_COMM);
	assert_string_equal((const char *)p, "worker-1");
	assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), 1);
	assert_int_equal(r.type, GS_REC_END);
	assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), 0);
	assert_false(gs_recreader_truncated(rd));
	gs_recreader_close(rd);
}

static void test_truncated(void **state)
{
	struct gs_recreader *rd;
	struct gs_rec r;
	const void *p;
	size_t plen;
	char why[256];
	FILE *f;
	long size;
	(void)state;
	write_sample(0);
	f = fopen(path, "r+");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fclose(f);
	assert_int_equal(truncate(path, size - 20), 0); /* cut inside the COMM record */
	assert_int_equal(gs_recreader_open(path, &rd, why, sizeof(why)), 0);
	assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), 1);
	assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), 1);
	assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), 0);
	assert_true(gs_recreader_truncated(rd));
	gs_recreader_close(rd);
}

static void test_garbage(void **state)
{
	struct gs_recreader *rd;
	char why[256];
	FILE *f = fopen(path, "w");
	struct gs_rec r;
	const void *p;
	size_t plen;
	(void)state;
	fputs("this is not a recording, just some text\n", f);
	fclose(f);
	assert_int_equal(gs_recreader_open(path, &rd, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "not a gilscope recording"));
	/* a valid header followed by a record with an impossible size */
	write_sample(0);
	f = fopen(path, "r+");
	fseek(f, 64, SEEK_SET);
	fputc(0x01, f);
	fputc(0x00, f);
	fputc(0x03, f); /* size 3 */
	fputc(0x00, f);
	fclose(f);
	assert_int_equal(gs_recreader_open(path, &rd, why, sizeof(why)), 0);
	assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), -EIO);
	gs_recreader_close(rd);
	/* a future format version */
	f = fopen(path, "r+");
	fseek(f, 8, SEEK_SET);
	fputc(99, f);
	fclose(f);
	assert_int_equal(gs_recreader_open(path, &rd, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "version 99"));
}

/* The loader's options reach the analysis: a stack of an evaluation-loop frame under a Python
 * frame keeps it only with keep_evals (--keep-cpython-evals). */
static void test_load_opts(void **state)
{
	static const char eval[] = "_PyEval_EvalFrameDefault\0python3.11", work[] = "work\0app.py";
	const uint32_t frames[2] = { 2, 1 }; /* innermost first: work above the evaluation loop */
	const struct gs_analysis_opts keep = { .keep_evals = 1 };
	struct gs_rec r = {
		.type = GS_REC_NATFRAME, .pid = 7, .tid = 7, .time = 1000, .arg = GS_NATFRAME_EVAL, .arg64 = 1
	};
	struct gs_recwriter *w;
	struct gs_analysis a;
	const uint32_t *f;
	char why[256];
	int n = 0;
	(void)state;

	assert_int_equal(gs_recwriter_open(path, 1000, &w), 0);
	assert_int_equal(gs_recwriter_add(w, &r, eval, sizeof(eval)), 0);
	r.type = GS_REC_PYFRAME, r.arg = 3, r.arg64 = 2;
	assert_int_equal(gs_recwriter_add(w, &r, work, sizeof(work)), 0);
	r.type = GS_REC_STACK, r.arg = 2, r.arg64 = 1;
	assert_int_equal(gs_recwriter_add(w, &r, frames, sizeof(frames)), 0);
	assert_int_equal(gs_recwriter_close(w), 0);

	assert_int_equal(gs_analysis_load(&a, path, NULL, why, sizeof(why)), 0);
	f = gs_analysis_stack(&a, 1, &n);
	assert_non_null(f);
	assert_int_equal(n, 1);
	assert_int_equal(f[0], 2);
	gs_analysis_free(&a);

	assert_int_equal(gs_analysis_load(&a, path, &keep, why, sizeof(why)), 0);
	f = gs_analysis_stack(&a, 1, &n);
	assert_non_null(f);
	assert_int_equal(n, 2);
	assert_int_equal(f[0], 2);
	assert_int_equal(f[1], 1);
	gs_analysis_free(&a);
}

static void test_maps_lines(void **state)
{
	struct gs_map m;
	(void)state;
	assert_int_equal(
		gs_maps_parse_line("7f12a000-7f12b000 r-xp 00001000 fd:01 1234   /opt/my python/lib python.so\n", &m),
		0);
	assert_int_equal(m.start, 0x7f12a000);
	assert_int_equal(m.end, 0x7f12b000);
	assert_int_equal(m.offset, 0x1000);
	assert_string_equal(m.perms, "r-xp");
	assert_string_equal(m.path, "/opt/my python/lib python.so");
	assert_false(m.deleted);
	assert_int_equal(gs_maps_parse_line("400000-401000 r--p 00000000 fd:01 99 /usr/bin/python3.11 (deleted)", &m),
			 0);
	assert_true(m.deleted);
	assert_string_equal(m.path, "/usr/bin/python3.11");
	assert_int_equal(gs_maps_parse_line("7ffd000-7ffe000 rw-p 00000000 00:00 0 ", &m), 0);
	assert_string_equal(m.path, "");
	assert_int_equal(gs_maps_parse_line("garbage", &m), -1);
	assert_int_equal(gs_maps_parse_line("1000-2000", &m), -1);
	assert_int_equal(gs_maps_parse_line("2000-1000 r-xp 0 00:00 0 x", &m), -1);
	assert_int_equal(gs_maps_parse_line("12345678901234567-1 r-xp 0 00:00 0 x", &m), -1);
}

static void test_tracefs_format(void **state)
{
	static const char fmt[] = "name: sched_switch\nID: 316\nformat:\n"
				  "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
				  "\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n"
				  "\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;\n"
				  "\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;\n"
				  "\tfield:pid_t next_pid;\toffset:56;\tsize:4;\tsigned:1;\n";
	unsigned off, size;
	(void)state;
	assert_int_equal(gs_tracefs_parse_field(fmt, "prev_state", &off, &size), 0);
	assert_int_equal(off, 32);
	assert_int_equal(size, 8);
	assert_int_equal(gs_tracefs_parse_field(fmt, "prev_comm", &off, &size), 0);
	assert_int_equal(off, 8);
	assert_int_equal(size, 16);
	assert_int_equal(gs_tracefs_parse_field(fmt, "pid", &off, &size), -ENOENT); /* not a suffix match */
	assert_int_equal(gs_tracefs_parse_field("field:int x;\toffset:zz;\tsize:4;", "x", &off, &size), -EINVAL);
	assert_int_equal(gs_tracefs_parse_field("", "x", &off, &size), -ENOENT);
}

/* Format 2's typed facts, and format 1's text ones, through one decoder. */
static void test_meta_decode(void **state)
{
	struct gs_rec r = { .type = GS_REC_META };
	struct gs_meta m;
	char buf[64];
	size_t n;
	(void)state;
	assert_int_equal(gs_meta_decode(&r, "mode\0launch\0", 12, &m), 0);
	assert_string_equal(m.key, "mode");
	assert_string_equal(m.text, "launch");
	assert_int_equal(m.type, GS_META_TEXT);
	assert_false(m.is_number);
	assert_int_equal(gs_meta_decode(&r,
					"target_pid\0"
					"1234\0",
					16, &m),
			 0);
	assert_true(m.is_number);
	assert_int_equal(m.u64, 1234);
	n = gs_meta_u64_payload(buf, sizeof(buf), "native.merged", 18446744073709551615ull);
	assert_int_equal(n, 14 + 8);
	r.arg = GS_META_U64;
	assert_int_equal(gs_meta_decode(&r, buf, n, &m), 0);
	assert_string_equal(m.key, "native.merged");
	assert_int_equal(m.u64, 18446744073709551615ull);
	assert_string_equal(m.text, "18446744073709551615");
	/* malformed: a short number, no key, no terminator, an unknown type */
	assert_int_equal(gs_meta_decode(&r, buf, n - 1, &m), -EINVAL);
	assert_int_equal(gs_meta_decode(&r, "\0abcdefgh", 10, &m), -EINVAL);
	r.arg = GS_META_TEXT;
	assert_int_equal(gs_meta_decode(&r, "key\0value", 9, &m), -EINVAL);
	assert_int_equal(gs_meta_decode(&r, "key", 3, &m), -EINVAL);
	assert_int_equal(gs_meta_decode(&r, NULL, 0, &m), -EINVAL);
	r.arg = 7;
	assert_int_equal(gs_meta_decode(&r, "mode\0launch\0", 12, &m), -EINVAL);
	assert_int_equal(gs_meta_u64_payload(buf, 8, "native.merged", 1), 0);
}

/* A number field of /proc/PID/status, for gilscope itself and by pid; hex for capabilities. */
static void test_proc_status_fields(void **state)
{
	uint64_t v;
	(void)state;
	assert_int_equal(gs_proc_status_u64(0, "Tgid", 10, &v), 0);
	assert_int_equal(v, (uint64_t)getpid());
	assert_int_equal(gs_proc_status_u64(getpid(), "Pid", 10, &v), 0);
	assert_int_equal(v, (uint64_t)getpid());
	assert_int_equal(gs_proc_status_u64(0, "VmHWM", 10, &v), 0);
	assert_true(v > 0);
	assert_int_equal(gs_proc_status_u64(0, "CapEff", 16, &v), 0); /* hex digits */
	assert_int_equal(gs_proc_status_u64(0, "TracerPid", 10, &v), 0);
	assert_int_equal(gs_proc_status_u64(0, "Name", 10, &v), -EINVAL); /* the first line, not a number */
	assert_int_equal(gs_proc_status_u64(0, "NoSuchField", 10, &v), -ENOENT);
	assert_int_equal(gs_proc_status_u64(0, "Pi", 10, &v), -ENOENT);        /* a prefix of "Pid" is not a field */
	assert_int_equal(gs_proc_status_u64(4000000, "Pid", 10, &v), -ENOENT); /* no such process */
	assert_int_equal(gs_task_tgid(getpid()), getpid());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta_decode),
		cmocka_unit_test(test_proc_status_fields),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_opts, setup, teardown),
		cmocka_unit_test(test_maps_lines),
		cmocka_unit_test(test_tracefs_format),
	};
	return cmocka_run_group_tests_name("formats", tests, NULL, NULL);
}
