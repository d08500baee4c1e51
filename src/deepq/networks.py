"""Q-networks (flax.linen): an MLP and the papers' convolutional nets.

Observations arrive batched, in the env's own dtype (float, bool or uint8 pixels); the
networks cast them to float32 themselves, so replay can store them compactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh}


def dense(x: jnp.ndarray, features: int, weight_init: str = "lecun_normal",
          name: str | None = None) -> jnp.ndarray:
    """x through an nn.Dense (created in the calling module's scope) with the run's
    initialisation, the fan-in being x's last axis. "lecun_normal" is flax's default: weights of
    variance 1/fan-in (truncated normal), zero biases. "torch" draws weights and biases from
    U(-1/sqrt(fan-in), 1/sqrt(fan-in)), the default of torch7's nn.Linear and
    nn.SpatialConvolution (DeepMind's DQN code) and of PyTorch's nn.Linear and nn.Conv2d
    (kaiming_uniform with a = sqrt(5); MinAtar's examples/dqn.py): weights of variance
    1/(3 fan-in)."""
    if weight_init == "lecun_normal":
        return nn.Dense(features, name=name)(x)
    bound = 1.0 / float(np.sqrt(x.shape[-1]))

    def uniform(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jnp.ndarray:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return nn.Dense(features, kernel_init=uniform, bias_init=uniform, name=name)(x)


class NoisyDense(nn.Module):
    """Linear layer with factorised Gaussian noise (Fortunato et al. 2018, eq. 10-11):

        w = mu_w + sigma_w * (f(e_in) f(e_out)^T),   b = mu_b + sigma_b * f(e_out),
        f(x) = sign(x) sqrt(|x|),   e ~ N(0, 1),

    mu ~ U[-1/sqrt(p), 1/sqrt(p)] and sigma = sigma0 / sqrt(p) at init, p the fan-in. Noise
    is drawn from the "noise" rng when the caller passes one; without it the layer is its
    mean (mu), which is what greedy evaluation and Q traces use.
    """

    features: int
    sigma0: float = 0.5

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        p = x.shape[-1]
        bound = 1.0 / jnp.sqrt(p)

        def uniform(key, shape):
            return jax.random.uniform(key, shape, jnp.float32, -bound, bound)

        def constant(key, shape):
            return jnp.full(shape, self.sigma0 / jnp.sqrt(p), jnp.float32)

        mu_w = self.param("mu_kernel", uniform, (p, self.features))
        mu_b = self.param("mu_bias", uniform, (self.features,))
        sigma_w = self.param("sigma_kernel", constant, (p, self.features))
        sigma_b = self.param("sigma_bias", constant, (self.features,))
        if not self.has_rng("noise"):
            return x @ mu_w + mu_b
        k_in, k_out = jax.random.split(self.make_rng("noise"))
        f_in = _scaled_noise(k_in, p)
        f_out = _scaled_noise(k_out, self.features)
        self.sow("intermediates", "noise", (f_in, f_out))  # kept only when asked for
        # Forming the kernel costs p x features multiply-adds once; the alternative,
        # x @ mu + ((x * f_in) @ sigma) * f_out, is a second matmul per sample (at batch 32
        # it made a MinAtar Rainbow update 1.9x the flops).
        kernel = mu_w + sigma_w * jnp.outer(f_in, f_out)
        return x @ kernel + mu_b + sigma_b * f_out


def _scaled_noise(key: jax.Array, size: int) -> jnp.ndarray:
    e = jax.random.normal(key, (size,), jnp.float32)
    return jnp.sign(e) * jnp.sqrt(jnp.abs(e))


def q_head(x: jnp.ndarray, num_actions: int, hidden: int, activation: str = "relu",
           dueling: bool = False, noisy: bool = False, noisy_sigma0: float = 0.5,
           atoms: int = 1, first: int = 0, weight_init: str = "lecun_normal",
           layer_norm: bool = False) -> jnp.ndarray:
    """The layers after the torso, created in the calling module's scope: one hidden layer,
    then an output per action (and per atom for C51). `dueling` splits them into a value and
    an advantage stream, each with its own hidden layer (Wang et al. 2016, Fig. 1):

        Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')        (Wang et al. 2016, eq. 9)

    applied per atom to the logits with C51 (Hessel et al. 2017, eq. 4 before the softmax).
    `noisy` makes these layers NoisyDense (with their own initialisation), else they are
    initialised by `weight_init` (see `dense`); `layer_norm` normalises the hidden layers
    before their activation (`normed`). Returns [B, A] Q-values, or [B, A, atoms] logits
    when `atoms` > 1.
    """

    def layer(features: int, name: str, inputs: jnp.ndarray) -> jnp.ndarray:
        if noisy:
            return NoisyDense(features, noisy_sigma0, name=name)(inputs)
        return dense(inputs, features, weight_init, name)

    act = ACTIVATIONS[activation]
    A, N = num_actions, atoms
    if dueling:
        v = layer(N, "value", act(normed(layer(hidden, "value_hidden", x), layer_norm)))
        a = layer(A * N, "advantage",
                  act(normed(layer(hidden, "advantage_hidden", x), layer_norm)))
        v, a = v.reshape(-1, 1, N), a.reshape(-1, A, N)
        out = v + a - a.mean(axis=1, keepdims=True)
    else:
        # Named as the plain networks always were, so their checkpoints still load.
        h = act(normed(layer(hidden, f"Dense_{first}", x), layer_norm))
        out = layer(A * N, f"Dense_{first + 1}", h).reshape(-1, A, N)
    return out[..., 0] if N == 1 else out


def normed(x: jnp.ndarray, on: bool) -> jnp.ndarray:
    """x through a LayerNorm over its last axis (Ba et al. 2016), created in the calling
    module's scope, when `on`: PQN's networks normalise every hidden layer before its
    activation (Gallici et al. 2024)."""
    return nn.LayerNorm()(x) if on else x


class MLP(nn.Module):
    """Fully connected Q-network: obs -> hidden layers -> one Q-value per action. The last
    hidden layer belongs to the head (q_head), which dueling and noisy layers replace."""

    hidden_sizes: Sequence[int]
    num_actions: int
    activation: str = "relu"
    head: dict = dataclasses.field(default_factory=dict)
    weight_init: str = "lecun_normal"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        x = obs.reshape((obs.shape[0], -1)).astype(jnp.float32)  # [batch, features]
        act = ACTIVATIONS[self.activation]
        *torso, last = self.hidden_sizes
        for i, size in enumerate(torso):
            x = act(normed(dense(x, size, self.weight_init, f"Dense_{i}"),
                           self.head.get("layer_norm", False)))
        return q_head(x, self.num_actions, last, self.activation, first=len(torso),
                      weight_init=self.weight_init, **self.head)


class SparseRows(NamedTuple):
    """Mostly-zero observations [..., D] kept as each row's non-zeros: their columns and
    values, padded with column D and value 0 to K per row (`sparse_rows`)."""

    index: jnp.ndarray  # [..., K] int32
    value: jnp.ndarray  # [..., K] float32


def sparse_rows(x: np.ndarray, min_k: int = 128) -> SparseRows:
    """Host-side: [..., D] -> SparseRows with K = the most non-zeros in a row, rounded up to
    a power of two of at least `min_k` (few compiled shapes)."""
    *lead, D = x.shape
    flat = x.reshape(-1, D)
    rows, cols = np.nonzero(flat)  # row-major: each row's columns in order
    counts = np.bincount(rows, minlength=flat.shape[0])
    K = max(min_k, 1 << int(max(counts.max(initial=0), 1) - 1).bit_length())
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    index = np.full((flat.shape[0], K), D, np.int32)
    value = np.zeros((flat.shape[0], K), np.float32)
    index[rows, slot] = cols
    value[rows, slot] = flat[rows, cols]
    return SparseRows(index.reshape(*lead, K), value.reshape(*lead, K))


class FirstDense(nn.Module):
    """A Dense layer (same parameters as nn.Dense) that also takes SparseRows: x W is then
    the sum of x_i W_i over each row's non-zeros, computed in blocks of rows. For Karpathy's
    difference frames (~20 of 6400 inputs non-zero) that is ~1% of the dense work."""

    features: int
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    block: int = 256  # rows per gather: [block, K, features] floats at a time

    @nn.compact
    def __call__(self, x) -> jnp.ndarray:
        if isinstance(x, SparseRows):  # the kernel exists: init always sees dense inputs
            kernel = self.get_variable("params", "kernel")
            y = _gather_matmul(x.index, x.value, kernel, self.block)
        else:
            kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features))
            y = x @ kernel
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


def _gather_matmul(index: jnp.ndarray, value: jnp.ndarray, kernel: jnp.ndarray,
                   block: int) -> jnp.ndarray:
    n, k = index.shape
    block = min(block, n)  # one small block for a step's few rows
    pad = -n % block
    index = jnp.pad(index, ((0, pad), (0, 0)), constant_values=kernel.shape[0])
    value = jnp.pad(value, ((0, pad), (0, 0)))

    def one(args):
        idx, val = args  # column D (padding) gathers zeros
        rows = jnp.take(kernel, idx, axis=0, mode="fill", fill_value=0.0)  # [block, K, F]
        return jnp.einsum("bk,bkf->bf", val, rows)

    out = jax.lax.map(one, (index.reshape(-1, block, k), value.reshape(-1, block, k)))
    return out.reshape(-1, kernel.shape[1])[:n]


class PolicyMLP(nn.Module):
    """REINFORCE's networks: obs -> hidden layers -> `num_logits` policy logits, and with
    `baseline` a second MLP of the same shape -> V(s). Weights start N(0, 1/fan-in), as
    Karpathy's `randn(H, D) / sqrt(D)` ("Xavier") initialisation. The observations may come
    as SparseRows (the first layer then skips the zeros)."""

    hidden_sizes: Sequence[int]
    num_logits: int
    activation: str = "relu"
    use_bias: bool = True
    baseline: bool = False

    @nn.compact
    def __call__(self, obs) -> tuple[jnp.ndarray, jnp.ndarray]:
        if not isinstance(obs, SparseRows):
            obs = obs.reshape((obs.shape[0], -1)).astype(jnp.float32)
        act = ACTIVATIONS[self.activation]
        init = nn.initializers.variance_scaling(1.0, "fan_in", "normal")

        def mlp(outputs: int, name: str) -> jnp.ndarray:
            sizes = [*self.hidden_sizes, outputs]
            h = FirstDense(sizes[0], self.use_bias, init,
                           name=f"{name}_0" if len(sizes) > 1 else f"{name}_out")(obs)
            for i, size in enumerate(sizes[1:], start=1):
                name_i = f"{name}_{i}" if i < len(sizes) - 1 else f"{name}_out"
                h = nn.Dense(size, use_bias=self.use_bias, kernel_init=init, name=name_i)(act(h))
            return h

        logits = mlp(self.num_logits, "policy")
        rows = obs.index.shape[0] if isinstance(obs, SparseRows) else obs.shape[0]
        value = mlp(1, "value")[:, 0] if self.baseline else jnp.zeros(rows)
        return logits, value


class PerActionMLP(nn.Module):
    """One small network per action, each mapping the observation to that action's Q-value
    (the architecture of the from-scratch numpy notebook: a 2-layer tanh net per action,
    trained with SGD). Q[:, a] is network a's output."""

    hidden_sizes: Sequence[int]
    num_actions: int
    activation: str = "tanh"
    weight_init: str = "lecun_normal"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        x = obs.reshape((obs.shape[0], -1)).astype(jnp.float32)
        act = ACTIVATIONS[self.activation]
        init = self.weight_init
        outs = []
        for a in range(self.num_actions):
            h = x
            for i, size in enumerate(self.hidden_sizes):
                h = act(dense(h, size, init, f"action_{a}_Dense_{i}"))
            outs.append(dense(h, 1, init, f"action_{a}_out"))
        return jnp.concatenate(outs, axis=-1)


class PatchConv(nn.Module):
    """A VALID, strided 2-D convolution computed as image patches times a dense kernel.

    The same layer as `nn.Conv` (kernel [k*k*C_in, C_out], initialised over the same fan-in,
    k*k*C_in), written out because XLA's CPU convolution is slow at these sizes: a whole DQN
    update is 4-5x faster this way than with `nn.Conv` for the MinAtar net and 11x for the
    Nature net (benchmarks/conv_micro.py).
    """

    features: int
    kernel: int
    stride: int
    weight_init: str = "lecun_normal"

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
        return dense(patches, self.features, self.weight_init, "Dense_0")


class ConvQNet(nn.Module):
    """Conv layers (features, kernel, stride; VALID padding, ReLU) -> one dense hidden
    layer -> one Q-value per action. Input [batch, height, width, channels]."""

    convs: Sequence[tuple[int, int, int]]
    hidden: int
    num_actions: int
    scale: float = 1.0  # 1/255 for uint8 pixels
    head: dict = dataclasses.field(default_factory=dict)
    weight_init: str = "lecun_normal"

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        x = obs.astype(jnp.float32) * self.scale
        for i, (features, kernel, stride) in enumerate(self.convs):
            x = nn.relu(normed(PatchConv(features, kernel, stride, self.weight_init,
                                         name=f"Conv_{i}")(x), self.head.get("layer_norm", False)))
        return q_head(x.reshape((x.shape[0], -1)), self.num_actions, self.hidden,
                      weight_init=self.weight_init, **self.head)


# Every conv is a PatchConv. A whole DQN update against the same net with XLA's conv
# (nn.Conv), on the 2-core CPU (benchmarks/conv_micro.py, results/conv_micro.md): 5.1x
# faster for MinAtar's 10x10 input and 10.9x for the Nature net on 84x84 pixels, one seed;
# vmapped over 2 seeds, as `--seeds` runs a block, 4.0x and 17.9x.
CONV_NETS = {
    # Young & Tian 2019 (MinAtar): 16 3x3 filters, stride 1 -> 128 units.
    "minatar_cnn": dict(convs=((16, 3, 1),), hidden=128),
    # Mnih et al. 2013: 16 8x8/4 -> 32 4x4/2 -> 256 units, on 84x84x4 pixels.
    "dqn2013_cnn": dict(convs=((16, 8, 4), (32, 4, 2)), hidden=256, scale=1 / 255),
    # Mnih et al. 2015 (Nature): 32 8x8/4 -> 64 4x4/2 -> 64 3x3/1 -> 512 units.
    "nature_cnn": dict(convs=((32, 8, 4), (64, 4, 2), (64, 3, 1)), hidden=512, scale=1 / 255),
}


def make_network(name: str, num_actions: int, hidden_sizes: Sequence[int] = (64, 64),
                 activation: str = "relu", weight_init: str = "lecun_normal",
                 **head) -> nn.Module:
    """`head`: q_head's dueling, noisy, noisy_sigma0, atoms and layer_norm (all off by
    default; layer_norm also normalises the torso's layers);
    `weight_init`: lecun_normal or torch (see `dense`)."""
    if name == "mlp":
        return MLP(tuple(hidden_sizes), num_actions, activation, head, weight_init)
    if name == "per_action":
        return PerActionMLP(tuple(hidden_sizes), num_actions, activation, weight_init)
    return ConvQNet(num_actions=num_actions, head=head, weight_init=weight_init,
                    **CONV_NETS[name])
