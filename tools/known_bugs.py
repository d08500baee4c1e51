"""Plausible wrong versions of deepq's maths, each put into a copy of the source: the test
suite must fail on every one.

Each entry names a file, a line as it is and the same line with the bug, and the test files
that `make test` runs which should catch it (the suite fails as soon as one of them fails, so
running those alone proves that `make test` fails). The bugs are the ones a reading of the
suite once found it blind to, plus a few of the same kind. `make mutate` covers the same
modules with every mutation mutmut generates; this list keeps the realistic ones named.

    python tools/known_bugs.py [NAME ...]      # all of them by default; about 10 minutes
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Bug:
    name: str
    path: str  # under src/deepq
    line: str  # the correct code, found exactly `count` times in the file
    wrong: str
    tests: tuple[str, ...]
    count: int = 1


AGENT = ("tests/test_agent_updates.py",)
BUGS = [
    Bug("double-dqn-selects-with-target", "agents/dqn.py",
        "select = forward(params, batch.next_obs, k_select)",
        "select = forward(target_params, batch.next_obs, k_select)", AGENT),
    Bug("terminal-not-cut", "replay.py",
        "discount = gamma * (1.0 - jnp.asarray(t.terminated, jnp.float32))",
        "discount = gamma * (1.0 + 0.0 * jnp.asarray(t.terminated, jnp.float32))",
        ("tests/test_agent_updates.py", "tests/test_maths.py")),
    Bug("pseudo-huber-k-not-squared", "agents/dqn.py", "return huber_delta**2 * (",
        "return huber_delta * (", ("tests/test_maths.py", "tests/test_agent_updates.py")),
    Bug("rmsprop-always-pytorch-form", "agents/base.py",
        "eps_in_sqrt=cfg.rmsprop_eps_in_sqrt,", "eps_in_sqrt=False,", AGENT),
    Bug("per-weights-not-attached", "drivers/common.py",
        "return batch._replace(weight=weight), slots", "return batch, slots", AGENT, count=2),
    Bug("per-beta-not-annealed", "drivers/common.py",
        "return cfg.priority_beta + (1.0 - cfg.priority_beta) * frac",
        "return cfg.priority_beta + 0.0 * frac", AGENT),
    Bug("per-weight-exponent-sign", "prioritized.py", "** (-beta)", "** (beta)",
        ("tests/test_rainbow.py", "tests/test_agent_updates.py")),
    Bug("noisy-f-is-identity", "networks.py", "return jnp.sign(e) * jnp.sqrt(jnp.abs(e))",
        "return e", ("tests/test_agent_updates.py", "tests/test_rainbow.py")),
    # flax's @nn.compact methods, which mutmut leaves out (it mutates undecorated functions):
    Bug("noisy-sigma-over-fan-in", "networks.py", "self.sigma0 / jnp.sqrt(p)",
        "self.sigma0 / p", ("tests/test_rainbow.py",)),
    Bug("noisy-mean-layer-without-bias", "networks.py", "return x @ mu_w + mu_b",
        "return x @ mu_w", ("tests/test_rainbow.py", "tests/test_agent_updates.py")),
    Bug("patch-conv-window-transposed", "networks.py", "for i in range(k) for j in range(k)",
        "for j in range(k) for i in range(k)", ("tests/test_minatar.py",)),
    Bug("mlp-torso-without-activation", "networks.py",
        "x = act(normed(dense(x, size, self.weight_init, f\"Dense_{i}\"),",
        "x = (normed(dense(x, size, self.weight_init, f\"Dense_{i}\"),",
        ("tests/test_rainbow.py", "tests/test_agent_updates.py")),
    Bug("reinforce-baseline-added", "agents/reinforce.py",
        "adv = target - value if cfg.baseline else target",
        "adv = target + value if cfg.baseline else target", ("tests/test_reinforce.py",)),
    Bug("reinforce-standardised-over-time", "agents/reinforce.py",
        "jax.vmap(standardize, in_axes=1, out_axes=1)",
        "jax.vmap(standardize, in_axes=0, out_axes=0)",
        ("tests/test_reinforce.py", "tests/test_reinforce_maths.py")),
    Bug("compare-iqm-is-the-mean", "compare.py", "np.array([metrics.aggregate_iqm(x),",
        "np.array([metrics.aggregate_mean(x),", ("tests/test_compare.py",)),
    Bug("compare-first-100-episodes", "compare.py", "[-LAST_EPISODES:].mean()",
        "[:LAST_EPISODES].mean()", ("tests/test_compare.py",)),
]


def check(bug: Bug, work: Path) -> tuple[bool, float, str]:
    """(caught, seconds, last line of pytest's output) for one bug in a fresh copy."""
    tree = work / bug.name
    shutil.copytree(ROOT / "src", tree / "src")
    shutil.copytree(ROOT / "tests", tree / "tests")
    shutil.copy2(ROOT / "pyproject.toml", tree / "pyproject.toml")
    target = tree / "src" / "deepq" / bug.path
    text = target.read_text()
    found = text.count(bug.line)
    if found != bug.count:
        raise SystemExit(f"{bug.name}: expected {bug.count} of {bug.line!r} in {bug.path}, "
                         f"found {found}: update tools/known_bugs.py")
    target.write_text(text.replace(bug.line, bug.wrong))
    env = dict(os.environ, PYTHONPATH=f"{tree / 'src'}{os.pathsep}{tree}")
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p",
         "no:xdist", "-m", "not slow", *bug.tests],
        cwd=tree, env=env, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    return proc.returncode == 1, time.time() - start, lines[-1] if lines else proc.stderr[-200:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="bugs to try (all by default)")
    args = parser.parse_args(argv)
    unknown = set(args.names) - {b.name for b in BUGS}
    if unknown:
        print(f"unknown bug(s) {', '.join(sorted(unknown))}: see tools/known_bugs.py",
              file=sys.stderr)
        return 2
    chosen = [b for b in BUGS if not args.names or b.name in args.names]
    missed = []
    with tempfile.TemporaryDirectory(prefix="deepq-bugs-") as work:
        for bug in chosen:
            caught, seconds, last = check(bug, Path(work))
            print(f"{'caught' if caught else 'MISSED':6}  {bug.name:34} {seconds:5.0f} s  {last}",
                  flush=True)
            if not caught:
                missed.append(bug.name)
    print(f"{len(chosen) - len(missed)} of {len(chosen)} caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
