"""Grids: several presets or algorithms x N seeds in one command, one run dir each.

    deepq train --env CartPole-v1 --preset dqn,double,rainbow --seeds 10 --out runs/ablation

trains runs/ablation/dqn, runs/ablation/double and runs/ablation/rainbow one after the
other, each with its seeds vmapped in one program (different presets build different
networks and replays, so they cannot share one), then writes runs/ablation/compare.{md,json,
png} (see compare.py). `deepq train --resume runs/ablation` finishes what did not finish.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepq import checkpoint
from deepq.atomic import atomic_write_text
from deepq.compare import compare
from deepq.config import Config
from deepq.drivers import make_driver
from deepq.errors import UserError
from deepq.rundir import LOCK_FILE, SUMMARY_FILE, RunLock, check_writable, clear_run
from deepq.training import train

GRID_FILE = "grid.json"


def is_grid(path: str | Path) -> bool:
    return (Path(path) / GRID_FILE).exists()


def read_members(out: Path) -> list[dict]:
    """grid.json's members: {"name", "preset", "config"} each, the configs checked."""
    path = Path(out) / GRID_FILE
    try:
        members = json.loads(path.read_text())["members"]
        if not isinstance(members, list) or not members:
            raise TypeError
        for m in members:
            name = m["name"]
            if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
                raise TypeError
            Config.from_dict({"preset": m.get("preset"), **m["config"]})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"{path} is missing or corrupt: start the grid again with --force") \
            from None
    except UserError as exc:
        raise UserError(f"{path}: {exc}; fix the file or start the grid again with --force") \
            from None
    return members


def member_name(preset: str | None, algo: str | None, several_algos: bool) -> str:
    name = preset or "default"
    return f"{name}-{algo}" if several_algos and algo else name


def start(members: list[tuple[str, str | None, Config]], out: str | Path, force: bool,
          on_member: Callable | None = None, executor: Any = None, **train_kwargs) -> list:
    """A new grid in `out`: (name, preset, config) per member. Every member's config and env
    are checked before anything is written. `executor`: None trains the members here, one
    after the other; a `distributed.RayExecutor` runs each as a Ray Tune trial."""
    out = Path(out)
    names = [name for name, _, _ in members]
    if len(set(names)) != len(names):
        raise UserError(f"the grid names a member twice ({', '.join(names)}): list each preset "
                        "or algorithm once")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory: pick another --out")
    if out.is_dir() and any(p.name != LOCK_FILE for p in out.iterdir()):
        if not is_grid(out):
            raise UserError(f"grid dir {out} already exists and holds no {GRID_FILE}: pick "
                            "another --out")
        if not force:
            raise UserError(f"grid dir {out} already exists: pass --resume {out} to finish it, "
                            "or --force to start it over")
    for _, _, cfg in members:
        make_driver(cfg)  # an env or option the driver refuses fails before any training
    check_writable(out)
    with RunLock(out):
        for name in names:  # --force: every member starts over
            if (out / name).is_dir():
                clear_run(out / name)
        doc = {"members": [{"name": n, "preset": p, "config": c.to_dict()}
                           for n, p, c in members]}
        atomic_write_text(out / GRID_FILE, json.dumps(doc, indent=2) + "\n")
        return _run_members(out, on_member, executor, **train_kwargs)


def run(out: str | Path, on_member: Callable | None = None, executor: Any = None,
        **train_kwargs) -> list:
    """Train every member of the grid in `out` that has not finished (a member with
    checkpoints resumes from its last one), then compare them all. One process at a time:
    the grid dir is locked (RunLock)."""
    out = Path(out)
    read_members(out)  # a missing or corrupt grid.json is named before the lock file is made
    with RunLock(out):
        return _run_members(out, on_member, executor, **train_kwargs)


def unfinished(out: Path) -> list[dict]:
    """The members of the grid in `out` without a summary.json."""
    return [m for m in read_members(out) if not (out / m["name"] / SUMMARY_FILE).exists()]


def train_member(out: Path, member: dict, **train_kwargs) -> Any:
    """One member of the grid in `out`: resumed from its newest checkpoint when it has one,
    else trained from the start (a restarted Ray trial resumes the same way)."""
    member_dir = Path(out) / member["name"]
    if checkpoint.list_checkpoints(member_dir):
        return train(out=member_dir, resume=True, **train_kwargs)
    cfg = Config.from_dict({"preset": member["preset"], **member["config"]})
    return train(cfg, member_dir, force=True, **train_kwargs)


def _run_members(out: Path, on_member: Callable | None, executor: Any,
                 **train_kwargs) -> list:
    members = read_members(out)
    todo = unfinished(out)
    runs = []
    if executor is not None:
        executor.run_grid(out, todo, **train_kwargs)
    else:
        for m in todo:
            run_ = train_member(out, m, **train_kwargs)
            runs.append(run_)
            if on_member is not None:
                on_member(run_)
    compare([out / m["name"] for m in members], out)
    return runs
