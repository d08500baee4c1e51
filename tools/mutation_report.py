"""Per-module kill rates of a `mutmut run` (`make mutate`), written to docs/mutation.md.

Reads mutmut's results as tools/mutate.py leaves them (mutants/<module>/mutants/**/*.py.meta:
an exit code per mutant), the mutated sources beside them (each mutant is a copy of its
function, `x_NAME__mutmut_N`, next to the original `x_NAME__mutmut_orig`) and the mutants
judged equivalent to the original (docs/mutation_equivalent.txt: `function | changed line |
reason`, one a line; keyed by the changed line rather than mutmut's numbering, which shifts
when a function is edited). A mutant is killed when its tests failed (exit 1 or 3) or timed
out; the kill rate is killed / (killed + survived). Survivors that are not listed as
equivalent are written out with their changed lines, so that each gets a test or a reason.

    python tools/mutation_report.py [--out docs/mutation.md] [--min-rate 0.9]
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import sys
from pathlib import Path

import mutate  # tools/mutate.py: the modules a pass covers

ROOT = Path(__file__).resolve().parents[1]
KILLED = {1, 3, 36, 24, -24, 152, 255}  # test failure, pytest internal error, timeouts
CLASS_MARK = "\u01c1"  # mutmut names a method's mutants xǁClassǁmethod__mutmut_N
STATUS = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}


def read_equivalent(path: Path) -> dict[tuple[str, str], str]:
    """{(function, changed line): reason}."""
    reasons = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                function, changed, reason = (part.strip() for part in line.split(" | ", 2))
                reasons[(function, changed)] = reason
    return reasons


def module_of(mutant: str) -> str:
    return mutant.rsplit(".", 1)[0]


def function_of(mutant: str) -> str:
    """deepq.replay.x_add_batch__mutmut_3 -> deepq.replay.add_batch (methods: Class.name)."""
    module, local = mutant.rsplit(".", 1)
    local = local.rsplit("__mutmut_", 1)[0]
    local = local[2:] if local.startswith(("x_", "x" + CLASS_MARK)) else local
    return f"{module}.{local.replace(CLASS_MARK, '.')}"  # xǁClassǁname -> Class.name


def changed_lines(meta: Path) -> dict[str, str]:
    """{mutant: its changed lines, stripped and joined with ' / '} for one mutated file."""
    source = meta.with_suffix("").read_text()
    text = source.splitlines()
    functions = {node.name: "\n".join(text[node.lineno - 1:node.end_lineno])
                 for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)}
    parts = meta.with_suffix("").with_suffix("").parts  # .../mutants/src/deepq/replay
    start = max(i for i in range(1, len(parts)) if parts[i - 1:i + 1] == ("mutants", "src"))
    module = ".".join(parts[start + 1:])
    out = {}
    for name, body in functions.items():
        base, _, number = name.rpartition("__mutmut_")
        if not base or not number.isdigit() or f"{base}__mutmut_orig" not in functions:
            continue
        orig = functions[f"{base}__mutmut_orig"].splitlines()[1:]
        new = body.splitlines()[1:]
        header = (functions[f"{base}__mutmut_orig"].splitlines()[0], body.splitlines()[0])
        if header[0].replace("__mutmut_orig", "") != header[1].replace(f"__mutmut_{number}", ""):
            orig, new = [header[0]] + orig, [header[1]] + new  # a default value was changed
        plus = [line[1:].strip() for line in difflib.ndiff(orig, new) if line.startswith("+ ")]
        out[f"{module}.{name}"] = " / ".join(plus) or "(a line removed)"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "mutation.md"))
    parser.add_argument("--min-rate", type=float, default=0.9)
    parser.add_argument("--equivalent", default=str(ROOT / "docs" / "mutation_equivalent.txt"))
    parser.add_argument("--note", default="", help="a paragraph on the pass: machine, times")
    args = parser.parse_args(argv)

    metas = sorted((ROOT / "mutants").glob("*/mutants/src/**/*.py.meta"))  # tools/mutate.py
    if not metas:
        print("no mutmut results under mutants/: run `make mutate` first", file=sys.stderr)
        return 2
    equivalent = read_equivalent(Path(args.equivalent))
    codes: dict[str, int | None] = {}
    changes: dict[str, str] = {}
    for meta in metas:
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
        changes.update(changed_lines(meta))

    def reason(mutant: str) -> str | None:
        return equivalent.get((function_of(mutant), changes.get(mutant, "")))

    rows, survivors, listed = [], [], []
    modules = sorted({module_of(m) for m in codes})
    never = sorted({mutate.dotted(path) for path in mutate.modules()} - set(modules))
    totals = dict(mutants=0, killed=0, equivalent=0, alive=0, unrun=0)
    for module in modules:
        names = [m for m in codes if module_of(m) == module]
        killed = [m for m in names if codes[m] in KILLED]
        equiv = [m for m in names if codes[m] not in KILLED and reason(m)]
        unrun = [m for m in names if codes[m] is None]  # a pass stopped before reaching them
        alive = [m for m in names if m not in killed and m not in equiv and m not in unrun]
        listed += equiv
        survivors += [(m, STATUS.get(codes[m], f"exit {codes[m]}")) for m in alive]
        judged = len(killed) + len(alive)
        rate = f"{len(killed) / judged:.1%}" if judged else "-"
        rows.append((module, len(names), len(killed), len(equiv), len(alive), len(unrun), rate))
        for key, n in zip(totals, rows[-1][1:6]):
            totals[key] += n
    judged = totals["killed"] + totals["alive"]
    overall = totals["killed"] / judged if judged else 1.0

    lines = [
        "# Mutation score",
        "",
        "`make mutate` runs [mutmut](https://github.com/boxed/mutmut) over each core maths",
        "module with the tests written for it (`[tool.deepq.mutate]` in pyproject.toml,",
        "`e2e` and `slow` tests left out); mutmut runs, for each mutant, those of them that",
        "call the mutated function. Killed: a test failed or timed out. Equivalent: the",
        "mutant computes the same thing as the original (listed below with the reason).",
        "Rate: killed / (killed + survived), survived counting the mutants no selected test",
        "reaches. Not run: mutants a stopped pass never reached. Written by",
        "`tools/mutation_report.py`.",
        "",
        "mutmut changes undecorated functions only: the layers' `@nn.compact` methods",
        "(`NoisyDense`, `PatchConv`, `FirstDense`, the MLPs) are not scored here; the",
        "realistic bugs in them are among those `tools/known_bugs.py` puts in one at a time.",
        "",
        f"This pass ran {totals['mutants'] - totals['unrun']:,} of the {totals['mutants']:,} "
        "mutants of the modules it reached"
        + (f"; it did not reach {', '.join(never)}." if never else "."),
        "",
        *([args.note, ""] if args.note else []),
        "| module | mutants | killed | equivalent | survived | not run | kill rate |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| `{m}` | {n} | {k} | {e} | {a} | {u} | {r} |"
              for m, n, k, e, a, u, r in rows]
    lines += [f"| `{m}` | not run this pass | | | | | |" for m in never]
    lines += [f"| **all** | {totals['mutants']} | {totals['killed']} | {totals['equivalent']} | "
              f"{totals['alive']} | {totals['unrun']} | **{overall:.1%}** |", ""]
    if listed:
        lines += ["## Equivalent mutants", "",
                  "`mutmut show NAME` prints each one's diff.", ""]
        lines += [f"- `{m}`: `{changes.get(m, '')}`: {reason(m)}" for m in sorted(listed)]
        lines.append("")
    if survivors:
        lines += ["## Surviving mutants", ""]
        lines += [f"- `{m}` ({status}): `{changes.get(m, '?')}`"
                  for m, status in sorted(survivors)]
        lines.append("")
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(line for line in lines if line.startswith("|")))
    print(f"wrote {args.out}")
    if totals["unrun"] or never:
        print("the pass stopped before it ran every mutant", file=sys.stderr)
    return 0 if overall >= args.min_rate and not totals["unrun"] and not never else 1


if __name__ == "__main__":
    sys.exit(main())
