"""Checkpoints are written as a stream in flax's msgpack format: what flax reads back equals
what `flax.serialization.msgpack_serialize` would have stored, leaf by leaf, for arrays
streamed in pieces, arrays split into flax's chunked form, sharded arrays and scalars; and
saving a big replay adds no second copy of it to the process's memory."""

import io
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from deepq import checkpoint, frame_replay
from deepq.errors import Interrupted


def _streamed(tree) -> dict:
    f = io.BytesIO()
    checkpoint.write_msgpack(f, tree)
    return serialization.msgpack_restore(f.getvalue())


def _assert_same(got, want) -> None:
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def small_pieces(monkeypatch):
    """Pieces of 1,000 bytes and streaming from 10 bytes up: every path on small arrays."""
    monkeypatch.setattr(checkpoint, "PIECE_BYTES", 1000)
    monkeypatch.setattr(checkpoint, "STREAM_BYTES", 10)


def test_stream_reads_back_as_flax_wrote_it(small_pieces):
    rng = np.random.default_rng(0)
    tree = {"meta": {"clock": 5, "name": "run", "sizes": [1, 2]},
            "state": {"frames": rng.integers(0, 256, (7, 13, 11), dtype=np.uint8),
                      "w": jnp.arange(5000, dtype=jnp.float32).reshape(50, 100),
                      "half": jnp.linspace(0, 1, 300).astype(jnp.bfloat16),
                      "scalar": np.float32(3.0), "zero_d": jnp.zeros(()), "empty": {},
                      **{f"k{i}": np.int32(i) for i in range(20)}}}  # a map of > 15 keys
    _assert_same(_streamed(tree), serialization.msgpack_restore(
        serialization.msgpack_serialize(tree)))


def test_arrays_above_flax_limit_are_chunked_across_pieces(small_pieces, monkeypatch):
    monkeypatch.setattr(serialization, "MAX_CHUNK_SIZE", 4096)  # 1,024 float32 per chunk
    big = np.random.default_rng(1).standard_normal((37, 29, 3)).astype(np.float32)
    f = io.BytesIO()
    checkpoint.write_msgpack(f, {"big": big, "on_device": jnp.asarray(big)})
    raw = serialization.msgpack_restore(f.getvalue())
    np.testing.assert_array_equal(raw["big"], big)
    np.testing.assert_array_equal(raw["on_device"], big)
    unchunked = serialization.msgpack_restore(serialization.msgpack_serialize({"big": big}))
    np.testing.assert_array_equal(raw["big"], unchunked["big"])


@pytest.mark.skipif(jax.device_count() < 2, reason="needs two JAX devices")
def test_sharded_array_gathered_piece_by_piece(small_pieces):
    mesh = Mesh(np.array(jax.devices()[:2]), ("seeds",))
    values = np.arange(2 * 30 * 20, dtype=np.int32).reshape(2, 30, 20)
    sharded = jax.device_put(values, NamedSharding(mesh, PartitionSpec("seeds")))
    assert len(sharded.sharding.device_set) == 2
    np.testing.assert_array_equal(_streamed({"x": sharded})["x"], values)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_saving_a_replay_adds_no_copy_of_it(tmp_path):
    replay = frame_replay.init(40_000, 1, (84, 84), 4)  # 270 MiB of frames
    replay = replay.replace(frames=jnp.full(replay.frames.shape, 7, jnp.uint8))
    jax.block_until_ready(replay)

    def kib(field: str) -> int:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines()
                    if x.startswith(field + ":"))
        return int(line.split()[1])

    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts from now
    before = kib("VmRSS")
    path = checkpoint.save(tmp_path, 1, replay, {"clock": 1})
    extra_mib = (kib("VmHWM") - before) / 1024
    assert extra_mib < 32, extra_mib  # flax's msgpack_serialize: ~4x the replay, 1 GiB
    restored, _ = checkpoint.restore(path, frame_replay.init(40_000, 1, (84, 84), 4))
    assert int(restored.frames.min()) == 7 == int(restored.frames.max())


def test_a_signal_while_reading_is_not_called_corruption(tmp_path, monkeypatch):
    """SIGTERM's handler raises Interrupted wherever the main thread is, e.g. inside the
    msgpack reader: it must reach the command line as the stop, not as a corrupt file."""
    path = checkpoint.save(tmp_path, 1, {"w": jnp.ones(3)}, {"clock": 1})

    def stopped(data):
        raise Interrupted("stopped by SIGTERM", 15)

    monkeypatch.setattr(serialization, "msgpack_restore", stopped)
    with pytest.raises(Interrupted):
        checkpoint.read_raw(path)
