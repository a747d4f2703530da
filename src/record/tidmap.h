/* tidmap.h - thread ids as the host sees them, for the GIL events the inline probes write.
 *
 * The inline probes write the id a thread has in its own PID namespace (glibc's TID, read in
 * the thread itself); the scheduler events and the rest of the recording use the ids of
 * gilscope's namespace (the host's). A process of the target in another PID namespace (a
 * container, `unshare --pid`, a child forked after unshare(CLONE_NEWPID)) therefore writes ids
 * such as 1, 2, 3. The map learns each thread's pair (its own id, its host id) from the NSpid
 * line of /proc/HOSTTID/status: for every thread of a process when the process is added (set-up,
 * attach) and for each new thread when its fork/clone record arrives (those carry host ids),
 * each pair valid from the thread's birth to its exit. It stays off, translating nothing and
 * costing one stat of /proc/PID/ns/pid per new process, while every process of the target is in
 * gilscope's PID namespace. Once on, an id is translated by the thread that had it at the
 * event's time; an id that matches no known thread even after a fresh look at the target's
 * threads, or more than one, is counted as unattributed and never given to another thread.
 */
#ifndef GS_TIDMAP_H
#define GS_TIDMAP_H

#include <stdint.h>
#include <sys/types.h>

struct gs_tidmap;

struct gs_tidmap *gs_tidmap_new(void);
void gs_tidmap_free(struct gs_tidmap *m); /* NULL: nothing */

/* Process pid (a host id) belongs to the target: if it is in another PID namespace than
 * gilscope, translation starts and its threads are learnt. */
void gs_tidmap_add_process(struct gs_tidmap *m, pid_t pid);

/* A fork/clone record (host ids: pid is the new task's process, tid the task) at time now; a
 * new process is checked for its namespace, a new thread learnt when translation is on. */
void gs_tidmap_on_fork(struct gs_tidmap *m, uint32_t pid, uint32_t tid, uint64_t now);

/* An exit record: the thread's pair is valid up to now. */
void gs_tidmap_on_exit(struct gs_tidmap *m, uint32_t tid, uint64_t now);

/* 1 when some process of the target is in another PID namespace (ids need translating). */
int gs_tidmap_active(const struct gs_tidmap *m);

/* The host id of the thread that had id tid in its own namespace at time t, or 0 when none or
 * several could have (counted). Only to be called when active. */
uint32_t gs_tidmap_host(struct gs_tidmap *m, uint32_t tid, uint64_t t);

/* The same without counting (for other ids read from the target, such as a Python thread
 * state's native_thread_id). */
uint32_t gs_tidmap_lookup(struct gs_tidmap *m, uint32_t tid, uint64_t t);

/* Events translated, and events left unattributed. */
uint64_t gs_tidmap_translated(const struct gs_tidmap *m);
uint64_t gs_tidmap_unattributed(const struct gs_tidmap *m);

/* Learns one pair directly (what reading NSpid does), for tests: own is the id in the thread's
 * own namespace, host in gilscope's; valid from birth. Turns translation on. */
void gs_tidmap_learn(struct gs_tidmap *m, uint32_t host, uint32_t own, uint64_t birth);

#endif
