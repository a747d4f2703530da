/* elfsym.h - what gilscope needs from an x86-64 ELF file: symbols, bytes at a virtual address,
 * load segments (for uprobe file offsets and load bias), PLT slots and function bounds.
 *
 * Symbols come from .symtab, else the MiniDebugInfo (.gnu_debugdata) or a debug file found by
 * build id, then .dynsym. The file is not trusted: every table offset and size is checked
 * against the file before use: a malformed file gives -GS_ECORRUPT or -ENOENT (fuzz_elf feeds
 * it hostile files). The handle owns everything it returns; strings live until gs_elf_free.
 */
#ifndef GS_ELFSYM_H
#define GS_ELFSYM_H

#include <stdint.h>
#include <stddef.h>

struct gs_elf;

/* Error codes beyond -errno. */
#define GS_ENOTELF 10001  /* not an ELF file, or not x86-64 */
#define GS_ECORRUPT 10002 /* ELF structures out of bounds */

/* Opens path read-only. Returns 0 and *out, or -errno / -GS_ENOTELF / -GS_ECORRUPT. */
int gs_elf_open(const char *path, struct gs_elf **out);
/* The same for a file of a process that sees another root (sysroot, such as /proc/PID/root: a
 * container): its debug file is looked for under sysroot's /usr/lib/debug first. */
int gs_elf_open_in(const char *path, const char *sysroot, struct gs_elf **out);
void gs_elf_free(struct gs_elf *elf);
const char *gs_elf_strerror(int err);

int gs_elf_is_pie_or_dyn(const struct gs_elf *elf);    /* ET_DYN */
int gs_elf_has_symtab(const struct gs_elf *elf);       /* has a .symtab (not stripped) */
int gs_elf_has_debuginfo(const struct gs_elf *elf);    /* has .debug_info */
const char *gs_elf_build_id(const struct gs_elf *elf); /* hex, or "" */

/* Where the full symbol table comes from: ".symtab", "MiniDebugInfo (.gnu_debugdata)",
 * "debug file PATH" (found by build id), or ".dynsym only". */
const char *gs_elf_symbols_from(const struct gs_elf *elf);

/* Looks a function or object up by name in .symtab (or the MiniDebugInfo / debug file one),
 * then .dynsym. Compiler clones of a
 * static function (name.lto_priv.N, name.constprop.N, name.isra.N) match too. 0 or -ENOENT. */
int gs_elf_symbol(const struct gs_elf *elf, const char *name, uint64_t *addr, uint64_t *size);
/* Only the dynamic (exported) symbol table. */
int gs_elf_dynsym(const struct gs_elf *elf, const char *name, uint64_t *addr, uint64_t *size);

/* Copies len file-backed bytes at virtual address vaddr. 0, or -EFAULT when not file-backed. */
int gs_elf_read(const struct gs_elf *elf, uint64_t vaddr, void *dst, size_t len);
/* File offset of virtual address vaddr (what uprobe_events wants). 0 or -EFAULT. */
int gs_elf_vaddr_to_offset(const struct gs_elf *elf, uint64_t vaddr, uint64_t *off);
/* Load bias of a mapping of this file that starts at map_start with file offset map_off:
 * runtime address = vaddr + bias. 0 or -ENOENT when no PT_LOAD matches. */
int gs_elf_load_bias(const struct gs_elf *elf, uint64_t map_start, uint64_t map_off, uint64_t *bias);

/* Address of the GOT slot through which the PLT calls the imported function name, from
 * .rela.plt. 0 or -ENOENT. */
int gs_elf_plt_slot(const struct gs_elf *elf, const char *name, uint64_t *slot);
/* Virtual address and size of the section called name. 0 or -ENOENT. */
int gs_elf_section(const struct gs_elf *elf, const char *name, uint64_t *addr, uint64_t *size);
/* The n-th executable PT_LOAD segment's file-backed [start, end). 0 or -ENOENT. */
int gs_elf_exec_segment(const struct gs_elf *elf, size_t n, uint64_t *start, uint64_t *end);
/* Does the file need (DT_NEEDED) a library whose name starts with prefix? 1 / 0. */
int gs_elf_needs(const struct gs_elf *elf, const char *prefix);
/* Bounds [start, end) of the function containing vaddr, from .eh_frame. 0 or -ENOENT. */
int gs_elf_function_bounds(const struct gs_elf *elf, uint64_t vaddr, uint64_t *start, uint64_t *end);

#endif
