/* tracer.h - the hand-over of a launched command, and its test hook.
 *
 * gs_handover_step(STEP) marks a step of the hand-over (the time between gilscope's PTRACE_SEIZE of
 * the launched command and its final PTRACE_DETACH). It is a test hook and nothing else: when the
 * environment variable GILSCOPE_TEST_KILL_AT names STEP, gilscope SIGKILLs itself there, so a test
 * can show that no step leaves the command harmed. The steps: seize, exec, planted, running,
 * breakpoint, syscall-set, syscall-cont, syscall-ran, pokes, detach (README, "Tests").
 */
#ifndef GS_TRACER_H
#define GS_TRACER_H

/* Test hook: SIGKILLs gilscope when GILSCOPE_TEST_KILL_AT equals step; otherwise nothing. */
void gs_handover_step(const char *step);

#endif
