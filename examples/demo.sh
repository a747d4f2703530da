#!/bin/sh
# make demo: record the bundled contention example and print gilscope's table.
set -eu
gilscope=${1:-build/gilscope}
python=/usr/bin/python3.11
[ -x "$python" ] || python=$(command -v python3)
if [ "$(id -u)" != 0 ]; then
	echo "gilscope: the demo records with perf events and uprobes: run \`sudo make demo\`" >&2
	exit 1
fi
echo "\$ gilscope record -o demo.rec -- $python examples/contention.py"
"$gilscope" record -o demo.rec -- "$python" examples/contention.py
echo
echo "The recording is in demo.rec: \`$gilscope report demo.rec\` prints this again, \`--json\` as JSON."
