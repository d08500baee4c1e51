"""How long `deepq train --env CartPole-v1` takes as a whole process, first and again.

    .venv/bin/python benchmarks/first_run.py [--seeds 10]

For each seed 0..N-1: once with an empty compilation cache (DEEPQ_JAX_CACHE pointing at a
new dir: the first run after install), then once more with the cache that run filled (a
rerun). Wall time of the whole process (interpreter start to exit), the split that
summary.json records (setup incl. imports, the first chunk incl. its compile, training,
eval, artifacts: curves.png, the GIF, the model file), the time `import deepq.cli` takes
alone, and whether the seed solved CartPole (eval mean >= 475 over 100 episodes).
Writes benchmarks/results/first_run.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DEEPQ = Path(sys.executable).parent / "deepq"
SPLIT = ("setup_seconds", "first_chunk_seconds", "train_seconds", "eval_seconds",
         "artifact_seconds")


def one_run(seed: int, cache: Path, out: Path) -> dict:
    env = {**os.environ, "DEEPQ_JAX_CACHE": str(cache)}
    start = time.perf_counter()
    subprocess.run([str(DEEPQ), "train", "--env", "CartPole-v1", "--seed", str(seed), "--out",
                    str(out), "--force", "--quiet"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    score = json.loads((out / "eval.json").read_text())["mean"]
    return {"seed": seed, "wall_s": round(wall, 2), "eval_mean": score,
            **{k: summary[k] for k in SPLIT}}


def import_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import deepq.cli"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    first, again = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            cache, out = Path(tmp) / f"cache{seed}", Path(tmp) / "run"
            first.append(one_run(seed, cache, out))
            again.append(one_run(seed, cache, out))
            print(first[-1], again[-1], flush=True)
    imports = [import_seconds() for _ in range(3)]
    med = lambda rows, key: round(statistics.median(r[key] for r in rows), 2)  # noqa: E731
    doc = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
           "median_first_s": med(first, "wall_s"), "median_rerun_s": med(again, "wall_s"),
           "import_deepq_cli_s": round(min(imports), 2),
           "solved": sum(r["eval_mean"] >= 475 for r in first + again), "runs": len(first) * 2,
           "first": first, "rerun": again}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "first_run.json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = [f"# `deepq train --env CartPole-v1`, whole process ({doc['machine']})", "",
             f"Measured {doc['date']} by `benchmarks/first_run.py`, seeds 0-{args.seeds - 1}, "
             "each first with an empty compilation cache, then again. Medians in seconds; "
             f"`import deepq.cli` alone: {doc['import_deepq_cli_s']} s. Solved (eval >= 475): "
             f"{doc['solved']} of {doc['runs']} runs.", "",
             "| run | whole process | setup | first chunk | training | eval | artifacts |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, rows in (("first (empty cache)", first), ("again", again)):
        lines.append(f"| {name} | {med(rows, 'wall_s')} | "
                     + " | ".join(str(med(rows, k)) for k in SPLIT) + " |")
    (RESULTS / "first_run.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
