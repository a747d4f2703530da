/* pylayout.c - the layout table. Numbers were read with gdb from the DWARF of the builds
 * named in `verified`, and each is also checked at run time against the interpreter's own
 * machine code (python.c: the `locked = 1` store in take_gil). */
#include "pylayout.h"

#include <stddef.h>

static const struct gs_pylayout layouts[] = {
	{
		.major = 3, .minor = 11, .debug = -1, .gil_home = GS_GIL_IN_RUNTIME,
		.gil = 0x168, .ceval_gil = 8, .drop_request = 0xe6a0, .interp_head = 0x28,
		.gil_interval = 0, .gil_last_holder = 8, .gil_locked = 16, .gil_switch_number = 24,
		.interp_threads_head = 0x10, .tstate_next = 8, .tstate_native_tid = 0xa0,
		.verified = "3.11.7 (pyenv, DWARF), 3.11.2 (Debian, machine code), 3.11.2 Py_DEBUG (DWARF)",
	},
};

const struct gs_pylayout *gs_pylayout_find(unsigned major, unsigned minor, int debug)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		const struct gs_pylayout *l = &layouts[i];
		if (l->major == major && l->minor == minor && (l->debug < 0 || l->debug == debug))
			return l;
	}
	return NULL;
}
