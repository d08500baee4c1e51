"""`make mutate`: mutmut over each core maths module in turn, with that module's own tests.

mutmut runs, for every mutant, the selected tests that call the mutated function. Selected
from the whole suite, a mutant of `make_agent` would run every test that builds an agent
(the drivers', the evaluation protocol's, ...); here each module gets the tests written for
its maths (`[tool.deepq.mutate]` in pyproject.toml), which cuts a full pass several times.

Each module runs in its own work dir, mutants/<module>/, holding links to src/ and tests/ and
a pyproject.toml whose [tool.mutmut] names that module and its tests; mutmut writes its
results under mutants/<module>/mutants/, where tools/mutation_report.py reads them. JAX's
persistent compilation cache (mutants/.jax-cache) lets every mutant reuse the compiled code
of the functions it leaves unchanged.

    python tools/mutate.py [MODULE ...]      # e.g. deepq.schedules; all by default
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "mutants"
MARKERS = ["-m", "not slow and not e2e", "-p", "no:xdist", "-p", "no:cacheprovider"]


def modules() -> dict[str, list[str]]:
    """{module path under src/: its test files}, from pyproject.toml."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["deepq"]["mutate"]


def dotted(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


def work_dir(path: str, tests: list[str]) -> Path:
    """mutants/<module>/ with links to src/ and tests/ and its own [tool.mutmut]."""
    work = WORK / dotted(path)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for name in ("src", "tests"):
        (work / name).symlink_to(ROOT / name)
    base = (ROOT / "pyproject.toml").read_text()
    selection = ", ".join(f'"{arg}"' for arg in [*tests, *MARKERS])
    (work / "pyproject.toml").write_text(
        base + "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f'only_mutate = ["{path}"]\n'
        f"pytest_add_cli_args_test_selection = [{selection}]\n"
        # Workers fork from a server that has imported but run nothing, so JAX's in-memory
        # caches start empty in each: no mutant reuses the original's jitted functions.
        'process_isolation = "forkserver"\n')
    return work


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="dotted names (all by default)")
    args = parser.parse_args(argv)
    table = modules()
    chosen = [p for p in table if not args.modules or dotted(p) in args.modules]
    unknown = set(args.modules) - {dotted(p) for p in table}
    if unknown:
        print(f"unknown module(s) {', '.join(sorted(unknown))}: choose from "
              f"{', '.join(dotted(p) for p in table)}", file=sys.stderr)
        return 2
    mutmut = Path(sys.executable).parent / "mutmut"
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(WORK / ".jax-cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    failed = []
    for path in chosen:
        start = time.time()
        work = work_dir(path, table[path])
        print(f"== {dotted(path)}: {', '.join(table[path])}", flush=True)
        proc = subprocess.run([str(mutmut), "run"], cwd=work, env=env)
        print(f"== {dotted(path)}: {time.time() - start:.0f} s", flush=True)
        if proc.returncode != 0:
            failed.append(dotted(path))
    if failed:  # e.g. a test that fails on the unmutated code stops mutmut before it starts
        print(f"mutmut failed on {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
