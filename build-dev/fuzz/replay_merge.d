build-dev/fuzz/replay_merge: fuzz/replay.c fuzz/fuzz.h
fuzz/fuzz.h:
