/* fuzz_elf.c - the ELF reader (elfsym.c): gs_elf_open (with .gnu_debugdata, MiniDebugInfo, xz
 * decompression) and every lookup, then the interpreter analysis that reads machine code
 * through it (python.c gs_pyimage_analyse). The input is the file, read through a memfd. */
#include "fuzz.h"

#include "cpython/elfsym.h"
#include "cpython/python.h"
#include "base/util.h"

static const char *const names[] = {
	"take_gil", "drop_gil",    "_PyRuntime",  "PyEval_SaveThread", "PyEval_RestoreThread",   "PyEval_AcquireLock",
	"main",     "exported_fn", "secret_take", "Py_Version",        "pthread_cond_timedwait",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path;
	struct gs_elf *e;
	struct gs_pyimage img;
	char why[512];
	uint64_t addr, sz, a2, off, bias;
	uint8_t buf[64];

	gs_verbose = 0;
	/* never read the machine's debug files: the input alone is the test */
	setenv("GILSCOPE_DEBUG_ROOT", "/nonexistent-gilscope-fuzz", 1);
	path = fuzz_file(0, data, size);
	if (!path)
		return 0;
	if (gs_elf_open(path, &e) == 0) {
		(void)gs_elf_is_pie_or_dyn(e);
		(void)gs_elf_has_symtab(e);
		(void)gs_elf_has_debuginfo(e);
		if (strlen(gs_elf_build_id(e)) > 128 || !gs_elf_symbols_from(e))
			abort();
		for (size_t i = 0; i < GS_ARRAY_SIZE(names); i++) {
			if (gs_elf_symbol(e, names[i], &addr, &sz) == 0) {
				(void)gs_elf_read(e, addr, buf, sizeof(buf));
				(void)gs_elf_vaddr_to_offset(e, addr, &off);
				(void)gs_elf_function_bounds(e, addr, &a2, &sz);
			}
			(void)gs_elf_dynsym(e, names[i], &addr, &sz);
			(void)gs_elf_plt_slot(e, names[i], &addr);
		}
		for (size_t n = 0; n < 4; n++)
			if (gs_elf_exec_segment(e, n, &addr, &a2) == 0) {
				(void)gs_elf_read(e, addr, buf, sizeof(buf));
				(void)gs_elf_read(e, a2 - 1, buf, 1);
				(void)gs_elf_function_bounds(e, addr + 16, &addr, &a2);
			}
		(void)gs_elf_section(e, ".text", &addr, &sz);
		(void)gs_elf_section(e, ".data", &addr, &sz);
		(void)gs_elf_needs(e, "libpython");
		(void)gs_elf_load_bias(e, 0x7f0000000000ull, 0, &bias);
		(void)gs_elf_load_bias(e, 0x7f0000001000ull, 0x1000, &bias);
		(void)gs_elf_read(e, 0, buf, sizeof(buf));
		(void)gs_elf_read(e, UINT64_MAX - 8, buf, sizeof(buf));
		gs_elf_free(e);
		/* the interpreter analysis (symbols, machine code, _Py_DebugOffsets) */
		memset(&img, 0, sizeof(img));
		(void)gs_pyimage_analyse(path, &img, why, sizeof(why));
		(void)gs_pyimage_take_gil_by_calls(path, &addr);
	}
	return 0;
}
