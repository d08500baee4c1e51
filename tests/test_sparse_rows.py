"""networks.sparse_rows and the gathering layer behind FirstDense (networks._gather_matmul)
against dense numpy products: every non-zero kept in column order, each row padded with
column D and value 0 to K = the most non-zeros in a row rounded up to a power of two (at
least min_k), and sum_k value_k W[index_k] equal to x W."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepq.networks import FirstDense, SparseRows, _gather_matmul, sparse_rows


def _with_counts(counts, D, seed=0):
    """Rows [len(counts), D] of int8 with counts[i] non-zeros (+-1, 2, -3) at random columns."""
    rng = np.random.default_rng(seed)
    x = np.zeros((len(counts), D), np.int8)
    for i, c in enumerate(counts):
        x[i, rng.choice(D, c, replace=False)] = rng.choice([-3, -1, 1, 2], c)
    return x


def test_sparse_rows_keep_each_rows_non_zeros_and_pad_with_column_d():
    D = 40
    counts = [0, 1, 5, 3, 2, 4]  # 5 = min_k + 1: K rounds up to 8
    x = _with_counts(counts, D).reshape(3, 2, D)  # leading axes [T, B] kept
    rows = sparse_rows(x, min_k=4)
    assert rows.index.shape == (3, 2, 8) and rows.value.shape == (3, 2, 8)
    assert rows.index.dtype == np.int32 and rows.value.dtype == np.float32
    index, value = rows.index.reshape(6, 8), rows.value.reshape(6, 8)
    for i, (row, c) in enumerate(zip(x.reshape(6, D), counts)):
        cols = np.flatnonzero(row)  # in column order
        np.testing.assert_array_equal(index[i, :c], cols)
        np.testing.assert_array_equal(value[i, :c], row[cols].astype(np.float32))
        np.testing.assert_array_equal(index[i, c:], D)  # padding: column D, value 0
        np.testing.assert_array_equal(value[i, c:], 0.0)


@pytest.mark.parametrize("counts,min_k,K", [
    ([0, 0], 1, 1), ([1, 0], 1, 1), ([2, 1], 1, 2), ([3, 1], 1, 4),  # powers of two >= count
    ([3, 0], 128, 128),  # the default floor: few compiled shapes
    ([129, 7], 128, 256), ([128, 7], 128, 128), ([5], 4, 8), ([4], 4, 4),
])
def test_sparse_rows_width_is_the_largest_count_rounded_up_to_a_power_of_two(counts, min_k, K):
    x = _with_counts(counts, 300, seed=len(counts) + K)
    rows = sparse_rows(x) if min_k == 128 else sparse_rows(x, min_k=min_k)
    assert rows.index.shape == (len(counts), K)
    for i, c in enumerate(counts):
        assert (rows.index[i] < 300).sum() == c


def test_sparse_rows_of_no_rows():
    rows = sparse_rows(np.zeros((0, 50), np.int8))
    assert rows.index.shape == (0, 128) and rows.value.shape == (0, 128)


@pytest.mark.parametrize("block", [2, 4, 16])  # 2 and 4 leave part of a block to pad
def test_gather_matmul_is_the_dense_product(block):
    """n = 7 rows with up to 5 non-zeros, K = 8: sum_k value_k W[index_k] = x W, for every
    block size; the padding (column D) adds nothing and takes no gradient."""
    D, F = 30, 3
    x = _with_counts([5, 0, 2, 3, 1, 4, 5], D, seed=3)
    rows = sparse_rows(x, min_k=8)
    kernel = np.random.default_rng(4).normal(size=(D, F)).astype(np.float32)
    dense = x.astype(np.float64) @ kernel.astype(np.float64)
    index, value = jnp.asarray(rows.index), jnp.asarray(rows.value)
    got = _gather_matmul(index, value, jnp.asarray(kernel), block)
    assert got.shape == (7, F)
    np.testing.assert_allclose(got, dense, rtol=1e-5, atol=1e-5)
    # d(sum_b c_b . out_b)/d value[b, k] = W[index[b, k]] . c_b: 0 at the padding.
    c = np.random.default_rng(5).normal(size=(7, F)).astype(np.float32)
    grad = jax.grad(lambda v: jnp.sum(_gather_matmul(index, v, jnp.asarray(kernel), block) * c))(
        value)
    padded_kernel = np.concatenate([kernel, np.zeros((1, F), np.float32)])  # row D: zeros
    want = np.einsum("bkf,bf->bk", padded_kernel[rows.index], c)
    np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(grad)[rows.index == D] == 0.0)
    # d/dW = x^T c, as for the dense layer.
    grad_w = jax.grad(lambda w: jnp.sum(_gather_matmul(index, value, w, block) * c))(
        jnp.asarray(kernel))
    np.testing.assert_allclose(grad_w, x.T.astype(np.float64) @ c, rtol=1e-5, atol=1e-5)


def test_first_dense_on_sparse_rows_is_the_dense_layer():
    D, F = 30, 4
    x = _with_counts([3, 1, 0, 2, 6], D, seed=6)
    layer = FirstDense(F, block=2)
    params = layer.init(jax.random.PRNGKey(0), jnp.zeros((1, D)))
    kernel = np.asarray(params["params"]["kernel"], np.float64)
    bias = np.random.default_rng(7).normal(size=F)
    params = {"params": {"kernel": params["params"]["kernel"],
                         "bias": jnp.asarray(bias, jnp.float32)}}
    sparse = SparseRows(*map(jnp.asarray, sparse_rows(x, min_k=4)))
    np.testing.assert_allclose(layer.apply(params, sparse), x @ kernel + bias, rtol=1e-5,
                               atol=1e-6)
