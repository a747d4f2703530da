/* fuzz_offgil.c - offgil's reader of `perf script` text with call chains (offgil.c); the first
 * byte picks the options. */
#include "fuzz.h"

#include "import/offgil.h"
#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_offgil_opts o;
	char why[256];
	FILE *in;

	gs_verbose = 0;
	if (size < 1)
		return 0;
	o.all_sleep = data[0] & 1;
	o.strip_take_gil = (data[0] >> 1) & 1;
	o.keep_evals = (data[0] >> 2) & 1;
	data++, size--;
	if (size == 0)
		return 0;
	in = fmemopen((void *)data, size, "r");
	if (!in)
		return 0;
	(void)gs_offgil_perf(in, fuzz_null(), &o, why, sizeof(why));
	fclose(in);
	return 0;
}
