"""A CartPole grid in this process against the same grid through Ray Tune on this machine.

    .venv/bin/python benchmarks/ray_grid.py [--presets dqn,double,dueling,nstep] [--seeds 4]

Runs `deepq train --preset P1,P2,... --seeds N` twice as whole processes, first with the
in-process executor (members one after another, each using every core), then with
`--executor ray` (a local Ray started by the command, one trial per core), and times each
from interpreter start to exit. Then `deepq compare` on both grid dirs: the two tables must
have the same shape (columns and one row per member). Needs the Ray extra
(`pip install -e ".[ray]"`). Writes benchmarks/results/ray_grid.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DEEPQ = Path(sys.executable).parent / "deepq"


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([str(DEEPQ), *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def table_shape(grid: Path) -> tuple[list[str], list[str]]:
    """`deepq compare GRID`'s header cells and the first cell of each row."""
    text = subprocess.run([str(DEEPQ), "compare", str(grid)], check=True,
                          capture_output=True, text=True).stdout
    rows = [line for line in text.splitlines() if line.startswith("|")]
    cells = lambda line: [c.strip() for c in line.strip("|").split("|")]  # noqa: E731
    return cells(rows[0]), sorted(cells(r)[0] for r in rows[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="dqn,double,dueling,nstep")
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    base = ["train", "--preset", args.presets, "--seeds", str(args.seeds), "--quiet"]
    with tempfile.TemporaryDirectory() as tmp:
        local, ray = Path(tmp) / "local", Path(tmp) / "ray"
        local_s = timed([*base, "--out", str(local)])
        ray_s = timed([*base, "--out", str(ray), "--executor", "ray"])
        shapes = table_shape(local), table_shape(ray)
    members = len(args.presets.split(","))
    doc = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
           "presets": args.presets, "seeds": args.seeds, "members": members,
           "local_s": round(local_s, 1), "ray_s": round(ray_s, 1),
           "ratio": round(ray_s / local_s, 2), "same_table_shape": shapes[0] == shapes[1],
           "compare_columns": shapes[0][0], "compare_rows": shapes[0][1]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray_grid.json").write_text(json.dumps(doc, indent=1) + "\n")
    (RESULTS / "ray_grid.md").write_text("\n".join([
        f"# A CartPole grid in-process and through Ray ({doc['machine']})", "",
        f"Measured {doc['date']} by `benchmarks/ray_grid.py`: `deepq train --preset "
        f"{args.presets} --seeds {args.seeds}`, {members} members x {args.seeds} seeds, "
        "whole processes (the Ray run includes starting and stopping its local Ray).", "",
        "| executor | seconds |", "|---|---:|",
        f"| in-process (default) | {doc['local_s']} |",
        f"| `--executor ray` (one trial per core) | {doc['ray_s']} |",
        f"| ratio Ray / in-process | {doc['ratio']} |", "",
        f"`deepq compare` gives the same table shape on both: {doc['same_table_shape']} "
        f"(columns {', '.join(doc['compare_columns'])}; rows "
        f"{', '.join(doc['compare_rows'])}).", ""]))
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
