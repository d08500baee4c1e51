"""An ASHA search over CartPole's learning rate through Ray Tune, and its best value against
the preset's on held-out seeds.

    .venv/bin/python benchmarks/ray_search.py [--samples 8] [--seeds 4] [--check-seeds 10]

1. `deepq train --env CartPole-v1 --seeds S --executor ray --search
   learning_rate=loguniform:1e-4:1e-2 --num-samples N` (ASHA stops weak trials early).
2. `deepq train --config OUT/best_config.json --seeds C --seed 1000` and the preset itself
   with the same C seeds (1000..), neither of which the search saw; a seed solves CartPole when
   its 100-episode greedy evaluation averages at least 475.
Needs the Ray extra (`pip install -e ".[ray]"`). Writes benchmarks/results/ray_search.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from ray_grid import timed

RESULTS = Path(__file__).resolve().parent / "results"
SPACE = "learning_rate=loguniform:1e-4:1e-2"
SOLVED = 475.0


def deepq(*args: str) -> float:
    return timed([*args, "--quiet"])


def solved(run: Path) -> dict:
    means = json.loads((run / "eval.json").read_text())["per_seed_mean"]
    return {"solved": sum(m >= SOLVED for m in means), "per_seed_mean": means}


def trials(search: Path) -> list[dict]:
    """Each trial's learning rate and the last score it reported (ASHA stopped some early)."""
    rows = []
    for result in sorted((search / "tune").rglob("result.json")):
        lines = [json.loads(x) for x in result.read_text().splitlines() if x.strip()]
        if lines:
            last = lines[-1]
            rows.append({"learning_rate": last["config"]["learning_rate"],
                         "clock": last.get("clock"), "score": last.get("score")})
    return sorted(rows, key=lambda r: r["learning_rate"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--check-seeds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        search, best, preset = (Path(tmp) / name for name in ("search", "best", "preset"))
        search_s = deepq("train", "--env", "CartPole-v1", "--seeds", str(args.seeds),
                         "--executor", "ray", "--out", str(search), "--search", SPACE,
                         "--num-samples", str(args.samples))
        best_config = json.loads((search / "best_config.json").read_text())
        held_out = ["--seeds", str(args.check_seeds), "--seed", "1000"]
        deepq("train", "--config", str(search / "best_config.json"), *held_out,
              "--out", str(best))
        deepq("train", "--env", "CartPole-v1", *held_out, "--out", str(preset))
        doc = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
               "machine": f"{platform.processor() or platform.machine()}, "
                          f"{os.cpu_count()} cores",
               "space": SPACE, "samples": args.samples, "search_seeds": args.seeds,
               "search_s": round(search_s, 1), "trials": trials(search),
               "best_learning_rate": best_config["values"]["learning_rate"],
               "best_search_score": best_config["score"],
               "check_seeds": list(range(1000, 1000 + args.check_seeds)),
               "best": solved(best), "preset": solved(preset)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray_search.json").write_text(json.dumps(doc, indent=1) + "\n")
    n = args.check_seeds
    lines = [f"# ASHA search over CartPole's learning rate ({doc['machine']})", "",
             f"Measured {doc['date']} by `benchmarks/ray_search.py`: `--search {SPACE} "
             f"--num-samples {args.samples}`, {args.seeds} seeds vmapped in each trial, ASHA "
             f"on the training return; {doc['search_s']} s for the whole search.", "",
             "| trial learning rate | last reported step | last score (mean of 20 "
             "episodes) |", "|---:|---:|---:|"]
    lines += [f"| {t['learning_rate']:.2e} | {t['clock']} | {t['score']} |"
              for t in doc["trials"]]
    lines += ["", f"Checked on seeds 1000-{1000 + n - 1}, which the search did not train "
              "(solved: 100-episode greedy mean >= 475):", "",
              "| config | learning rate | seeds solved |", "|---|---:|---:|",
              f"| the search's best | {doc['best_learning_rate']:.2e} | "
              f"{doc['best']['solved']} of {n} |",
              f"| the `cartpole` preset | 1.00e-03 | {doc['preset']['solved']} of {n} |", ""]
    (RESULTS / "ray_search.md").write_text("\n".join(lines))
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
