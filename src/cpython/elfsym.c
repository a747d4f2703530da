/* elfsym.c - ELF access through elfutils (libelf for tables, libdw for .eh_frame CFI). */
#define _GNU_SOURCE
#include "cpython/elfsym.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <lzma.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct gs_elf {
	int fd;
	Elf *elf;
	GElf_Ehdr ehdr;
	size_t nphdr;
	GElf_Phdr *phdr;
	Elf_Scn *symtab, *dynsym, *rela_plt;
	/* symbols from elsewhere when the file has no .symtab: MiniDebugInfo (.gnu_debugdata, an
	 * xz-compressed ELF) or a separate debug file found by build id */
	Elf *aux;
	int aux_fd;
	void *aux_buf;
	Elf_Scn *aux_symtab;
	char symbols_from[600];
	int has_debuginfo;
	char build_id[2 * 64 + 1];
};

const char *gs_elf_strerror(int err)
{
	if (err == -GS_ENOTELF)
		return "not an x86-64 ELF file";
	if (err == -GS_ECORRUPT)
		return "corrupt ELF file";
	return strerror(-err);
}

static void read_build_id(struct gs_elf *e)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		size_t off = 0, name_off, desc_off;
		GElf_Nhdr nh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    memcmp((char *)d->d_buf + name_off, "GNU", 4) == 0 && nh.n_descsz <= 64) {
				const unsigned char *b = (const unsigned char *)d->d_buf + desc_off;
				for (size_t i = 0; i < nh.n_descsz; i++) {
					static const char hex[] = "0123456789abcdef";
					e->build_id[2 * i] = hex[b[i] >> 4];
					e->build_id[2 * i + 1] = hex[b[i] & 15];
				}
				e->build_id[2 * nh.n_descsz] = '\0';
				return;
			}
		}
	}
}

static Elf_Scn *find_symtab(Elf *elf)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB)
			return scn;
	}
	return NULL;
}

static Elf_Scn *section_by_name(const struct gs_elf *e, const char *name, GElf_Shdr *sh)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	if (elf_getshdrstrndx(e->elf, &shstrndx) != 0)
		return NULL;
	while ((scn = elf_nextscn(e->elf, scn))) {
		const char *n;
		if (!gelf_getshdr(scn, sh))
			continue;
		n = elf_strptr(e->elf, shstrndx, sh->sh_name);
		if (n && strcmp(n, name) == 0)
			return scn;
	}
	return NULL;
}

/* .gnu_debugdata: at most 64 MiB compressed, 512 MiB decompressed. */
static int load_minidebuginfo(struct gs_elf *e)
{
	GElf_Shdr sh;
	Elf_Scn *scn = section_by_name(e, ".gnu_debugdata", &sh);
	Elf_Data *d = NULL;
	uint8_t *out;
	size_t cap = 1u << 20, in_pos = 0, out_pos = 0;
	uint64_t memlimit = 1ull << 30;

	if (scn && sh.sh_type == SHT_PROGBITS && sh.sh_size <= (64u << 20))
		d = elf_rawdata(scn, NULL);
	if (!d || !d->d_buf || !d->d_size)
		return -1;
	out = gs_malloc(cap);
	for (;;) {
		lzma_ret r =
			lzma_stream_buffer_decode(&memlimit, 0, NULL, d->d_buf, &in_pos, d->d_size, out, &out_pos, cap);
		if (r == LZMA_OK || r == LZMA_STREAM_END)
			break;
		if (r != LZMA_BUF_ERROR || cap >= (512u << 20)) {
			free(out);
			return -1;
		}
		/* too small: start again with a bigger buffer, never beyond the 512 MiB above (growing
		 * by 4 from 256 MiB allocated 1 GiB) */
		cap = cap * 4 > (512u << 20) ? (512u << 20) : cap * 4;
		out = gs_realloc_array(out, cap, 1);
		in_pos = out_pos = 0;
	}
	e->aux = elf_memory((char *)out, out_pos);
	if (!e->aux || elf_kind(e->aux) != ELF_K_ELF || !(e->aux_symtab = find_symtab(e->aux))) {
		if (e->aux)
			elf_end(e->aux);
		e->aux = NULL;
		free(out);
		return -1;
	}
	e->aux_buf = out;
	snprintf(e->symbols_from, sizeof(e->symbols_from), "MiniDebugInfo (.gnu_debugdata)");
	return 0;
}

/* /usr/lib/debug/.build-id/xx/yyyy.debug (or under $GILSCOPE_DEBUG_ROOT, for tests), then under
 * sysroot when given (the build id names the file, whoever's view it is found in). */
static int load_debug_file(struct gs_elf *e, const char *sysroot)
{
	char path[512];
	const char *root = getenv("GILSCOPE_DEBUG_ROOT");
	if (strlen(e->build_id) < 4)
		return -1;
	snprintf(path, sizeof(path), "%s/.build-id/%.2s/%s.debug", root ? root : "/usr/lib/debug", e->build_id,
		 e->build_id + 2);
	e->aux_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (e->aux_fd < 0 && sysroot && !root) {
		snprintf(path, sizeof(path), "%s/usr/lib/debug/.build-id/%.2s/%s.debug", sysroot, e->build_id,
			 e->build_id + 2);
		e->aux_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (e->aux_fd < 0)
		return -1;
	e->aux = elf_begin(e->aux_fd, ELF_C_READ_MMAP, NULL);
	if (!e->aux || elf_kind(e->aux) != ELF_K_ELF || !(e->aux_symtab = find_symtab(e->aux))) {
		if (e->aux)
			elf_end(e->aux);
		e->aux = NULL;
		close(e->aux_fd);
		e->aux_fd = -1;
		return -1;
	}
	snprintf(e->symbols_from, sizeof(e->symbols_from), "debug file %s", path);
	return 0;
}

static void load_aux_symbols(struct gs_elf *e, const char *sysroot)
{
	if (load_minidebuginfo(e) == 0 || load_debug_file(e, sysroot) == 0)
		return;
	snprintf(e->symbols_from, sizeof(e->symbols_from), ".dynsym only");
}

int gs_elf_open(const char *path, struct gs_elf **out) { return gs_elf_open_in(path, NULL, out); }

int gs_elf_open_in(const char *path, const char *sysroot, struct gs_elf **out)
{
	struct gs_elf *e = gs_calloc(1, sizeof(*e));
	size_t shstrndx;
	e->aux_fd = -1;
	Elf_Scn *scn = NULL;
	int err = 0;

	elf_version(EV_CURRENT);
	e->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (e->fd < 0) {
		err = -errno;
		goto fail;
	}
	e->elf = elf_begin(e->fd, ELF_C_READ_MMAP, NULL);
	if (!e->elf || elf_kind(e->elf) != ELF_K_ELF || !gelf_getehdr(e->elf, &e->ehdr) ||
	    e->ehdr.e_machine != EM_X86_64 || gelf_getclass(e->elf) != ELFCLASS64) {
		err = -GS_ENOTELF;
		goto fail;
	}
	if (elf_getphdrnum(e->elf, &e->nphdr) != 0 || e->nphdr > 4096 || elf_getshdrstrndx(e->elf, &shstrndx) != 0) {
		err = -GS_ECORRUPT;
		goto fail;
	}
	e->phdr = gs_calloc(e->nphdr, sizeof(GElf_Phdr));
	for (size_t i = 0; i < e->nphdr; i++)
		if (!gelf_getphdr(e->elf, (int)i, &e->phdr[i])) {
			err = -GS_ECORRUPT;
			goto fail;
		}
	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;
		const char *name;
		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(e->elf, shstrndx, sh.sh_name);
		if (sh.sh_type == SHT_SYMTAB)
			e->symtab = scn;
		else if (sh.sh_type == SHT_DYNSYM)
			e->dynsym = scn;
		else if (sh.sh_type == SHT_RELA && name && strcmp(name, ".rela.plt") == 0)
			e->rela_plt = scn;
		if (name && strcmp(name, ".debug_info") == 0 && sh.sh_type != SHT_NOBITS)
			e->has_debuginfo = 1;
	}
	read_build_id(e);
	e->aux_fd = -1;
	if (e->symtab)
		snprintf(e->symbols_from, sizeof(e->symbols_from), ".symtab");
	else
		load_aux_symbols(e, sysroot);
	*out = e;
	return 0;
fail:
	gs_elf_free(e);
	return err;
}

void gs_elf_free(struct gs_elf *e)
{
	if (!e)
		return;
	if (e->aux)
		elf_end(e->aux);
	if (e->aux_fd >= 0)
		close(e->aux_fd);
	free(e->aux_buf);
	if (e->elf)
		elf_end(e->elf);
	if (e->fd >= 0)
		close(e->fd);
	free(e->phdr);
	free(e);
}

int gs_elf_is_pie_or_dyn(const struct gs_elf *e) { return e->ehdr.e_type == ET_DYN; }
int gs_elf_has_symtab(const struct gs_elf *e) { return e->symtab != NULL; }
int gs_elf_has_debuginfo(const struct gs_elf *e) { return e->has_debuginfo; }
const char *gs_elf_build_id(const struct gs_elf *e) { return e->build_id; }

/* name matches want exactly, or is want + ".lto_priv.N" / ".constprop.N" / ".isra.N". */
static int name_matches(const char *name, const char *want, int *exact)
{
	size_t n = strlen(want);
	if (strncmp(name, want, n) != 0)
		return 0;
	if (name[n] == '\0') {
		*exact = 1;
		return 1;
	}
	*exact = 0;
	return strncmp(name + n, ".lto_priv.", 10) == 0 || strncmp(name + n, ".constprop.", 11) == 0 ||
	       strncmp(name + n, ".isra.", 6) == 0;
}

static int lookup_in(Elf *elf, Elf_Scn *scn, const char *want, uint64_t *addr, uint64_t *size)
{
	GElf_Shdr sh;
	Elf_Data *d;
	size_t n;
	int found = 0;

	if (!scn || !gelf_getshdr(scn, &sh) || !(d = elf_getdata(scn, NULL)) || sh.sh_entsize == 0)
		return -ENOENT;
	n = sh.sh_size / sh.sh_entsize;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym s;
		const char *name;
		int exact;
		if (!gelf_getsym(d, (int)i, &s) || s.st_shndx == SHN_UNDEF || s.st_value == 0)
			continue;
		name = elf_strptr(elf, sh.sh_link, s.st_name);
		if (!name || !name_matches(name, want, &exact))
			continue;
		*addr = s.st_value;
		*size = s.st_size;
		found = 1;
		if (exact)
			return 0;
	}
	return found ? 0 : -ENOENT;
}

int gs_elf_symbol(const struct gs_elf *e, const char *name, uint64_t *addr, uint64_t *size)
{
	if (e->symtab && lookup_in(e->elf, e->symtab, name, addr, size) == 0)
		return 0;
	if (e->aux_symtab && lookup_in(e->aux, e->aux_symtab, name, addr, size) == 0)
		return 0;
	return lookup_in(e->elf, e->dynsym, name, addr, size);
}

int gs_elf_dynsym(const struct gs_elf *e, const char *name, uint64_t *addr, uint64_t *size)
{
	return lookup_in(e->elf, e->dynsym, name, addr, size);
}

const char *gs_elf_symbols_from(const struct gs_elf *e) { return e->symbols_from; }

static const GElf_Phdr *load_for_vaddr(const struct gs_elf *e, uint64_t vaddr, size_t len)
{
	for (size_t i = 0; i < e->nphdr; i++) {
		const GElf_Phdr *p = &e->phdr[i];
		if (p->p_type != PT_LOAD)
			continue;
		if (vaddr >= p->p_vaddr && vaddr - p->p_vaddr <= p->p_filesz &&
		    len <= p->p_filesz - (vaddr - p->p_vaddr))
			return p;
	}
	return NULL;
}

int gs_elf_vaddr_to_offset(const struct gs_elf *e, uint64_t vaddr, uint64_t *off)
{
	const GElf_Phdr *p = load_for_vaddr(e, vaddr, 1);
	if (!p)
		return -EFAULT;
	*off = vaddr - p->p_vaddr + p->p_offset;
	return 0;
}

int gs_elf_read(const struct gs_elf *e, uint64_t vaddr, void *dst, size_t len)
{
	const GElf_Phdr *p = load_for_vaddr(e, vaddr, len);
	size_t fsize;
	char *raw;

	if (!p)
		return -EFAULT;
	raw = elf_rawfile(e->elf, &fsize);
	if (!raw)
		return -EFAULT;
	uint64_t off = vaddr - p->p_vaddr + p->p_offset;
	if (off > fsize || len > fsize - off)
		return -EFAULT;
	memcpy(dst, raw + off, len);
	return 0;
}

int gs_elf_load_bias(const struct gs_elf *e, uint64_t map_start, uint64_t map_off, uint64_t *bias)
{
	const uint64_t page = 4096;
	for (size_t i = 0; i < e->nphdr; i++) {
		const GElf_Phdr *p = &e->phdr[i];
		if (p->p_type != PT_LOAD)
			continue;
		if ((p->p_offset & ~(page - 1)) == map_off) {
			*bias = map_start - (p->p_vaddr & ~(page - 1));
			return 0;
		}
	}
	return -ENOENT;
}

int gs_elf_plt_slot(const struct gs_elf *e, const char *name, uint64_t *slot)
{
	GElf_Shdr sh, symsh;
	Elf_Data *d, *symd;
	Elf_Scn *symscn;
	size_t n;

	if (!e->rela_plt || !gelf_getshdr(e->rela_plt, &sh) || !(d = elf_getdata(e->rela_plt, NULL)) ||
	    sh.sh_entsize == 0)
		return -ENOENT;
	symscn = elf_getscn(e->elf, sh.sh_link);
	if (!symscn || !gelf_getshdr(symscn, &symsh) || !(symd = elf_getdata(symscn, NULL)))
		return -ENOENT;
	n = sh.sh_size / sh.sh_entsize;
	for (size_t i = 0; i < n; i++) {
		GElf_Rela r;
		GElf_Sym s;
		const char *sname;
		if (!gelf_getrela(d, (int)i, &r) || !gelf_getsym(symd, (int)GELF_R_SYM(r.r_info), &s))
			continue;
		sname = elf_strptr(e->elf, symsh.sh_link, s.st_name);
		if (sname && strcmp(sname, name) == 0) {
			*slot = r.r_offset;
			return 0;
		}
	}
	return -ENOENT;
}

/* .eh_frame_hdr holds a sorted table (initial_location, FDE address) of every function with
 * unwind info; the FDE holds the function's length. Only the encodings that GCC and Clang emit
 * on x86-64 are accepted (table: datarel|sdata4; FDE: pcrel|sdata4 begin, 4-byte range). */
int gs_elf_function_bounds(const struct gs_elf *e, uint64_t vaddr, uint64_t *start, uint64_t *end)
{
	uint64_t hdr = 0, table, lo, hi, fde;
	uint8_t h[4];
	int32_t v32;
	uint32_t count, range;
	int found = 0;

	for (size_t i = 0; i < e->nphdr; i++)
		if (e->phdr[i].p_type == PT_GNU_EH_FRAME) {
			hdr = e->phdr[i].p_vaddr;
			found = 1;
		}
	if (!found || gs_elf_read(e, hdr, h, 4) < 0)
		return -ENOENT;
	/* version 1; eh_frame_ptr pcrel|sdata4 (0x1b); fde_count udata4 (0x03); table datarel|sdata4 (0x3b) */
	if (h[0] != 1 || h[1] != 0x1b || h[2] != 0x03 || h[3] != 0x3b)
		return -ENOENT;
	if (gs_elf_read(e, hdr + 8, &count, 4) < 0 || count == 0 || count > (1u << 24))
		return -ENOENT;
	table = hdr + 12;
	lo = 0;
	hi = count; /* find the last entry with initial_location <= vaddr */
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (gs_elf_read(e, table + mid * 8, &v32, 4) < 0)
			return -ENOENT;
		if (hdr + (uint64_t)(int64_t)v32 <= vaddr)
			lo = mid;
		else
			hi = mid;
	}
	if (gs_elf_read(e, table + lo * 8, &v32, 4) < 0)
		return -ENOENT;
	*start = hdr + (uint64_t)(int64_t)v32;
	if (gs_elf_read(e, table + lo * 8 + 4, &v32, 4) < 0)
		return -ENOENT;
	fde = hdr + (uint64_t)(int64_t)v32;
	if (gs_elf_read(e, fde + 12, &range, 4) < 0 || *start > vaddr)
		return -ENOENT;
	*end = *start + range;
	return vaddr < *end ? 0 : -ENOENT;
}

int gs_elf_needs(const struct gs_elf *e, const char *prefix)
{
	Elf_Scn *scn = NULL;
	size_t plen = strlen(prefix);
	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC || sh.sh_entsize == 0)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Dyn dyn;
			const char *name;
			if (!gelf_getdyn(d, (int)i, &dyn))
				break;
			if (dyn.d_tag != DT_NEEDED)
				continue;
			name = elf_strptr(e->elf, sh.sh_link, dyn.d_un.d_val);
			if (name && strncmp(name, prefix, plen) == 0)
				return 1;
		}
	}
	return 0;
}

int gs_elf_exec_segment(const struct gs_elf *e, size_t n, uint64_t *start, uint64_t *end)
{
	for (size_t i = 0; i < e->nphdr; i++) {
		const GElf_Phdr *p = &e->phdr[i];
		if (p->p_type != PT_LOAD || !(p->p_flags & PF_X))
			continue;
		if (n-- == 0) {
			*start = p->p_vaddr;
			*end = p->p_vaddr + p->p_filesz;
			return 0;
		}
	}
	return -ENOENT;
}

int gs_elf_section(const struct gs_elf *e, const char *name, uint64_t *addr, uint64_t *size)
{
	GElf_Shdr sh;
	if (!section_by_name(e, name, &sh) || sh.sh_type == SHT_NOBITS)
		return -ENOENT;
	*addr = sh.sh_addr;
	*size = sh.sh_size;
	return 0;
}
