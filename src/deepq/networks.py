"""Q-networks (flax.linen): an MLP and the papers' convolutional nets.

Observations arrive batched, in the env's own dtype (float, bool or uint8 pixels); the
networks cast them to float32 themselves, so replay can store them compactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh}


class MLP(nn.Module):
    """Fully connected Q-network: obs -> hidden layers -> one Q-value per action."""

    hidden_sizes: Sequence[int]
    num_actions: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        x = obs.reshape((obs.shape[0], -1)).astype(jnp.float32)  # [batch, features]
        act = ACTIVATIONS[self.activation]
        for size in self.hidden_sizes:
            x = act(nn.Dense(size)(x))
        return nn.Dense(self.num_actions)(x)


class PatchConv(nn.Module):
    """A VALID, strided 2-D convolution computed as image patches times a dense kernel.

    The same layer as `nn.Conv` (kernel [k*k*C_in, C_out], LeCun-normal init over the same
    fan-in), written out because XLA's CPU convolution is slow at these sizes: one MinAtar
    DQN update takes 1.07 ms this way against 2.55 ms with `nn.Conv`
    (benchmarks/conv_micro.py).
    """

    features: int
    kernel: int
    stride: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        k, s = self.kernel, self.stride
        _, h, w, _ = x.shape
        out_h, out_w = (h - k) // s + 1, (w - k) // s + 1
        patches = jnp.concatenate(
            [x[:, i:i + s * (out_h - 1) + 1:s, j:j + s * (out_w - 1) + 1:s, :]
             for i in range(k) for j in range(k)],
            axis=-1,
        )  # [B, out_h, out_w, k*k*C_in], row-major over the kernel window
        return nn.Dense(self.features)(patches)


class ConvQNet(nn.Module):
    """Conv layers (features, kernel, stride; VALID padding, ReLU) -> one dense hidden
    layer -> one Q-value per action. Input [batch, height, width, channels]."""

    convs: Sequence[tuple[int, int, int]]
    hidden: int
    num_actions: int
    scale: float = 1.0  # 1/255 for uint8 pixels

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        x = obs.astype(jnp.float32) * self.scale
        for i, (features, kernel, stride) in enumerate(self.convs):
            x = nn.relu(PatchConv(features, kernel, stride, name=f"Conv_{i}")(x))
        x = nn.relu(nn.Dense(self.hidden, name="Dense_0")(x.reshape((x.shape[0], -1))))
        return nn.Dense(self.num_actions, name="Dense_1")(x)


# Every conv is a PatchConv. Measured on the 2-core CPU against XLA's conv (nn.Conv): 2.4x
# faster for MinAtar's 10x10 input (1.07 vs 2.55 ms an update, benchmarks/update_micro.py);
# on 84x84 pixels even for one network (Nature net 33-34 ms an update), but vmapped over
# seeds, as the drivers run it, XLA's conv becomes a grouped conv 4.5x slower (295 vs 65 ms).
CONV_NETS = {
    # Young & Tian 2019 (MinAtar): 16 3x3 filters, stride 1 -> 128 units.
    "minatar_cnn": dict(convs=((16, 3, 1),), hidden=128),
    # Mnih et al. 2013: 16 8x8/4 -> 32 4x4/2 -> 256 units, on 84x84x4 pixels.
    "dqn2013_cnn": dict(convs=((16, 8, 4), (32, 4, 2)), hidden=256, scale=1 / 255),
    # Mnih et al. 2015 (Nature): 32 8x8/4 -> 64 4x4/2 -> 64 3x3/1 -> 512 units.
    "nature_cnn": dict(convs=((32, 8, 4), (64, 4, 2), (64, 3, 1)), hidden=512, scale=1 / 255),
}


def make_network(name: str, num_actions: int, hidden_sizes: Sequence[int] = (64, 64),
                 activation: str = "relu") -> nn.Module:
    if name == "mlp":
        return MLP(tuple(hidden_sizes), num_actions, activation)
    return ConvQNet(num_actions=num_actions, **CONV_NETS[name])
