#!/usr/bin/env bash
# PQN learning Pong on one GPU for MINUTES minutes (default 6), then its frames per second
# and its curve: the mean training return per 100k frames (frames = 4 x agent steps).
#
#   benchmarks/gpu_wheels.sh                      # here, once: the wheels into .whl/
#   bash benchmarks/gpu_pong.sh [MINUTES]         # there, with .whl carried along
#
# The run is stopped by SIGTERM at the time limit (it checkpoints and exits 143); the
# curve and the speed come from its metrics.csv. Output: stdout and $OUT/gpu_pong.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD/src" PYTHONUNBUFFERED=1
RUN=/tmp/pong-gpu
MINUTES="${1:-6}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
start=$(date +%s)
timeout -s TERM "$((MINUTES * 60))" python3 -m deepq train --algo pqn --env ALE/Pong-v5 \
    --out "$RUN" --force --no-artifacts --set qtrace_states=0 --set checkpoint_minutes=2
echo "exit $? after $(( $(date +%s) - start )) s"
python3 - "$RUN" <<'PY' | tee "${OUT:-/tmp}/gpu_pong.txt"
import csv, sys
rows = list(csv.DictReader(open(f"{sys.argv[1]}/metrics.csv")))
if not rows:
    sys.exit("no finished episode")
steps = [int(r["env_step"]) for r in rows]
print(f"episodes {len(rows)}, agent steps {max(steps):,} = {4 * max(steps):,} frames")
print(f"frames/s (last chunk): {4 * float(rows[-1]['steps_per_sec']):,.0f}")
buckets = {}
for r in rows:
    buckets.setdefault(4 * int(r["env_step"]) // 100_000, []).append(float(r["return"]))
print("frames (100k) | episodes | mean training return")
for b in sorted(buckets):
    v = buckets[b]
    print(f"{b:13d} | {len(v):8d} | {sum(v) / len(v):7.2f}")
PY
