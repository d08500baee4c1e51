"""Atomic checkpoints: a msgpack of the whole driver state plus a metadata dict.

A checkpoint is written to a temporary file in the same directory, fsynced, then renamed
over its final name, so a kill at any moment leaves either the old file or the new one.
The file is flax's msgpack format (`flax.serialization.msgpack_restore` reads it), written
as a stream: a big array goes to the file in pieces of at most 64 MiB straight from its
buffer, so saving a replay of frames never holds a second copy of it in memory
(benchmarks/checkpoint_memory.py measures the peak).
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import jax
import msgpack
import numpy as np
from flax import serialization

from deepq.atomic import atomic_write
from deepq.errors import UserError

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d+)\.msgpack$")


def save(run_dir: Path, steps: int, state: Any, meta: dict, keep: int = 3,
         drop: tuple[str, ...] = ()) -> Path:
    """Write checkpoints/step_<steps>.msgpack; keep the newest `keep` of them.

    `drop` names top-level-to-leaf paths (dotted) left out of the file, e.g. the replay.
    """
    tree = serialization.to_state_dict(state)
    for dotted in drop:
        node = tree
        *parents, last = dotted.split(".")
        for p in parents:
            node = node[p]
        node.pop(last, None)
    folder = Path(run_dir) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{steps:012d}.msgpack"
    atomic_write(path, lambda f: write_msgpack(f, {"meta": meta, "state": tree}))
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


# Arrays at least this big are streamed; smaller subtrees go through flax's own packer.
STREAM_BYTES = 1 << 20
PIECE_BYTES = 1 << 26
_EXT_NDARRAY = 1  # flax.serialization._MsgpackExtType.ndarray
_CHUNKED = "__msgpack_chunked_array__"


def write_msgpack(f: IO[bytes], tree: Any) -> None:
    """`tree` (nested dicts with str keys; numpy or JAX array leaves) to `f` in the format of
    `flax.serialization.msgpack_serialize`, without building the file in memory."""
    if isinstance(tree, dict):
        f.write(_map_header(len(tree)))
        for key, value in tree.items():
            f.write(msgpack.packb(key))
            write_msgpack(f, value)
    elif isinstance(tree, np.ndarray | jax.Array) and tree.nbytes >= STREAM_BYTES:
        _write_array(f, tree)
    else:
        f.write(serialization.msgpack_serialize(tree))


def _map_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x80 | n])
    return b"\xde" + struct.pack(">H", n) if n < 1 << 16 else b"\xdf" + struct.pack(">I", n)


def _write_array(f: IO[bytes], arr: Any) -> None:
    """One array leaf: flax's ndarray ext type, or its chunked form above its 1 GiB limit."""
    itemsize = np.dtype(arr.dtype).itemsize
    if arr.nbytes <= serialization.MAX_CHUNK_SIZE:
        _write_ext(f, arr.shape, np.dtype(arr.dtype), arr.nbytes, _pieces(arr))
        return
    per_chunk = max(1, serialization.MAX_CHUNK_SIZE // itemsize)
    sizes = [min(per_chunk, arr.size - start) for start in range(0, arr.size, per_chunk)]
    f.write(_map_header(3))
    f.write(msgpack.packb(_CHUNKED) + msgpack.packb(True))
    f.write(msgpack.packb("shape"))
    f.write(msgpack.packb({str(i): int(d) for i, d in enumerate(arr.shape)}))
    f.write(msgpack.packb("chunks") + _map_header(len(sizes)))
    flat = _pieces(arr)
    leftover: list[np.ndarray] = []
    for i, size in enumerate(sizes):
        f.write(msgpack.packb(str(i)))
        _write_ext(f, (size,), np.dtype(arr.dtype), size * itemsize,
                   _take(flat, size, leftover))


def _write_ext(f: IO[bytes], shape: tuple, dtype: np.dtype, nbytes: int,
               pieces: Iterator[np.ndarray]) -> None:
    head = (b"\x93" + msgpack.packb([int(d) for d in shape]) + msgpack.packb(dtype.name)
            + b"\xc6" + struct.pack(">I", nbytes))  # (shape, dtype name, bin32 data)
    f.write(b"\xc9" + struct.pack(">Ib", len(head) + nbytes, _EXT_NDARRAY) + head)
    written = 0
    for piece in pieces:
        f.write(memoryview(np.ascontiguousarray(piece).view(np.uint8)))
        written += piece.nbytes
    if written != nbytes:
        raise RuntimeError(f"array changed size while saved: {written} of {nbytes} bytes")


def _pieces(arr: Any) -> Iterator[np.ndarray]:
    """`arr`'s elements in C order, flat, in pieces of at most PIECE_BYTES. A numpy array or
    a JAX array on one CPU device is read in place; a sharded one is gathered piece by piece
    (its slices along the leading axes)."""
    if isinstance(arr, jax.Array) and len(arr.sharding.device_set) > 1 and arr.ndim:
        if arr.nbytes // arr.shape[0] > PIECE_BYTES:
            for i in range(arr.shape[0]):
                yield from _pieces(arr[i])
        else:
            step = max(1, PIECE_BYTES // (arr.nbytes // arr.shape[0]))
            for start in range(0, arr.shape[0], step):
                yield np.asarray(arr[start:start + step]).reshape(-1)
        return
    flat = np.asarray(arr).reshape(-1)
    step = max(1, PIECE_BYTES // flat.itemsize)
    for start in range(0, flat.size, step):
        yield flat[start:start + step]


def _take(flat: Iterator[np.ndarray], count: int,
          leftover: list[np.ndarray]) -> Iterator[np.ndarray]:
    """The next `count` elements of the flat stream `flat`; what a piece has beyond them
    waits in `leftover` for the next chunk."""
    while count:
        piece = leftover.pop() if leftover else next(flat)
        if piece.size > count:
            leftover.append(piece[count:])
            piece = piece[:count]
        count -= piece.size
        yield piece


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
    try:  # mapped, not read: the file's bytes stay in the page cache, not in this process
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            raw = serialization.msgpack_restore(data)
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
