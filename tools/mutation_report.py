"""Per-module kill rates of a `mutmut run` (`make mutate`), written to docs/mutation.md.

Reads mutmut's results (mutants/**/*.py.meta: an exit code per mutant) and the list of
mutants judged equivalent to the original (docs/mutation_equivalent.txt, one
`mutant_name: reason` a line). A mutant is killed when its tests failed (exit 1 or 3) or
timed out; the kill rate of a module is killed / (mutants - equivalent). Survivors that are
not listed as equivalent are printed, so that each gets a test or a reason.

    python tools/mutation_report.py [--out docs/mutation.md] [--min-rate 0.9]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KILLED = {1, 3, 36, 24, -24, 152, 255}  # test failure, pytest internal error, timeouts
STATUS = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}


def read_equivalent(path: Path) -> dict[str, str]:
    reasons = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                name, _, reason = line.partition(":")
                reasons[name.strip()] = reason.strip()
    return reasons


def module_of(mutant: str) -> str:
    return mutant.rsplit(".", 1)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "mutation.md"))
    parser.add_argument("--min-rate", type=float, default=0.9)
    parser.add_argument("--equivalent", default=str(ROOT / "docs" / "mutation_equivalent.txt"))
    args = parser.parse_args(argv)

    metas = sorted((ROOT / "mutants").glob("src/**/*.py.meta"))
    if not metas:
        print("no mutmut results under mutants/: run `make mutate` first", file=sys.stderr)
        return 2
    equivalent = read_equivalent(Path(args.equivalent))
    codes: dict[str, int | None] = {}
    for meta in metas:
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])

    rows, survivors = [], []
    modules = sorted({module_of(m) for m in codes})
    totals = dict(mutants=0, killed=0, equivalent=0, alive=0)
    for module in modules:
        names = [m for m in codes if module_of(m) == module]
        killed = [m for m in names if codes[m] in KILLED]
        equiv = [m for m in names if m in equivalent and codes[m] not in KILLED]
        alive = [m for m in names if m not in killed and m not in equiv]
        survivors += [(m, STATUS.get(codes[m], f"exit {codes[m]}")) for m in alive]
        judged = len(names) - len(equiv)
        rate = len(killed) / judged if judged else 1.0
        rows.append((module, len(names), len(killed), len(equiv), len(alive), rate))
        for key, n in zip(totals, (len(names), len(killed), len(equiv), len(alive))):
            totals[key] += n
    judged = totals["mutants"] - totals["equivalent"]
    overall = totals["killed"] / judged if judged else 1.0

    lines = [
        "# Mutation score",
        "",
        "`make mutate` runs [mutmut](https://github.com/boxed/mutmut) over the core maths",
        "modules (`[tool.mutmut] only_mutate` in pyproject.toml) with the fast unit tests",
        "(`pytest_add_cli_args_test_selection`); mutmut runs, for each mutant, only the tests",
        "that call the mutated function. Killed: a test failed or timed out. Equivalent: the",
        "mutant computes the same thing as the original (listed below with the reason).",
        "Rate: killed / (mutants - equivalent). Written by `tools/mutation_report.py`.",
        "",
        "| module | mutants | killed | equivalent | survived | kill rate |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| `{m}` | {n} | {k} | {e} | {a} | {r:.1%} |" for m, n, k, e, a, r in rows]
    lines += [f"| **all** | {totals['mutants']} | {totals['killed']} | {totals['equivalent']} | "
              f"{totals['alive']} | **{overall:.1%}** |", ""]
    listed = sorted(m for m in equivalent if m in codes and codes[m] not in KILLED)
    if listed:
        lines += ["## Equivalent mutants", "", "`mutmut show NAME` prints each one's diff.", ""]
        lines += [f"- `{m}`: {equivalent[m]}" for m in listed]
        lines.append("")
    if survivors:
        lines += ["## Surviving mutants", ""]
        lines += [f"- `{m}` ({status})" for m, status in sorted(survivors)]
        lines.append("")
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines[9:9 + len(rows) + 3]))
    print(f"wrote {args.out}")
    return 0 if overall >= args.min_rate else 1


if __name__ == "__main__":
    sys.exit(main())
