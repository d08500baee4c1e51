"""Atomic checkpoints: a msgpack of the whole driver state plus a metadata dict.

A checkpoint is written to a temporary file in the same directory, fsynced, then renamed
over its final name, so a kill at any moment leaves either the old file or the new one.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from deepq.errors import UserError

CHECKPOINT_DIR = "checkpoints"
# Read once at import: os.umask can only be read by setting it, which would race with
# threads creating files (XLA's compilation cache writes from its compile thread).
_UMASK = os.umask(0)
os.umask(_UMASK)
_NAME = re.compile(r"^step_(\d+)\.msgpack$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide run files from others
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write names no file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_savefig(fig: Any, out: Path, **kwargs: Any) -> Path:
    """A matplotlib figure written as `out`'s format, atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(out).suffix[1:].lower(), **kwargs)
    atomic_write_bytes(Path(out), buffer.getvalue())
    return Path(out)


def save(run_dir: Path, steps: int, state: Any, meta: dict, keep: int = 3,
         drop: tuple[str, ...] = ()) -> Path:
    """Write checkpoints/step_<steps>.msgpack; keep the newest `keep` of them.

    `drop` names top-level-to-leaf paths (dotted) left out of the file, e.g. the replay.
    """
    tree = serialization.to_state_dict(jax.device_get(state))
    for dotted in drop:
        node = tree
        *parents, last = dotted.split(".")
        for p in parents:
            node = node[p]
        node.pop(last, None)
    data = serialization.msgpack_serialize({"meta": meta, "state": tree})
    folder = Path(run_dir) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{steps:012d}.msgpack"
    atomic_write_bytes(path, data)
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: Path) -> list[Path]:
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def latest(run_dir: Path) -> Path:
    found = list_checkpoints(run_dir)
    if not found:
        raise UserError(f"no checkpoint in {Path(run_dir) / CHECKPOINT_DIR}: train the run first "
                        "(deepq train ... --out RUN)")
    return found[-1]


def read_latest(run_dir: Path) -> tuple[Path, dict]:
    """The newest checkpoint and its raw contents. A reader beside a training run may see the
    newest file rotated away between listing and reading: it then takes the new newest."""
    for tries_left in (2, 1, 0):
        path = latest(run_dir)
        try:
            return path, read_raw(path, missing_is_user_error=not tries_left)
        except FileNotFoundError:
            continue


def read_raw(path: Path, missing_is_user_error: bool = True) -> dict:
    """The checkpoint as nested dicts of numpy arrays: {"meta": ..., "state": ...}."""
    try:
        raw = serialization.msgpack_restore(Path(path).read_bytes())
    except FileNotFoundError:
        if not missing_is_user_error:
            raise
        raise UserError(f"checkpoint {path} does not exist") from None
    except Exception:
        raise UserError(
            f"checkpoint {path} is corrupt (unreadable msgpack): delete it to fall back to the "
            "previous one, or retrain"
        ) from None
    if not isinstance(raw, dict) or "meta" not in raw or "state" not in raw:
        raise UserError(f"checkpoint {path} is not a deepq checkpoint: delete it or retrain")
    return raw


def restore(path: Path, template: Any) -> tuple[Any, dict]:
    """Restore into the structure of `template`; a missing subtree keeps the template's."""
    raw = read_raw(path)
    target = serialization.to_state_dict(template)
    _check_and_fill(raw["state"], target, path, prefix="")
    state = serialization.from_state_dict(template, raw["state"])
    return state, raw["meta"]


def _check_and_fill(stored: Any, expected: Any, path: Path, prefix: str) -> None:
    """Shapes and dtypes must match the template; absent subtrees are filled from it."""
    if isinstance(expected, dict):
        if not isinstance(stored, dict):
            raise _mismatch(path, prefix or "state")
        extra = set(stored) - set(expected)
        if extra:
            raise _mismatch(path, f"{prefix}{sorted(extra)[0]}")
        for key, sub in expected.items():
            if key not in stored:
                stored[key] = sub  # e.g. a replay buffer left out on purpose
            else:
                _check_and_fill(stored[key], sub, path, f"{prefix}{key}.")
        return
    want = np.asarray(expected)
    got = np.asarray(stored)
    if got.shape != want.shape or got.dtype != want.dtype:
        raise _mismatch(path, f"{prefix.rstrip('.')} {got.shape} {got.dtype} != {want.shape} "
                              f"{want.dtype}")


def _mismatch(path: Path, where: str) -> UserError:
    return UserError(
        f"checkpoint {path} does not match this run's config (at {where}): resume it with the "
        "config it was trained with (its run dir's config.json)"
    )
