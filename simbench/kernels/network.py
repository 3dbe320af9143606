"""Network kernels: forward and backward passes on one flat parameter vector.

Parameter layout
----------------
A network maps ``p`` inputs through ``L`` hidden layers of widths ``h_1 .. h_L`` to one
output unit.  ``sizes = [p, h_1, ..., h_L, 1]``; layer ``l`` (``0 <= l <= L``, layer ``L`` is
the output unit) has ``fan_in = sizes[l]`` and ``fan_out = sizes[l + 1]`` and occupies::

    theta[offs[l] : offs[l] + fan_out]          bias  b_l
    theta[offs[l] + fan_out : offs[l + 1]]      weights W_l, fan_out x fan_in, row-major

With no hidden layer ``theta = [b, w_1, ..., w_p]`` is exactly the GLM coefficient vector
``[intercept, x_1 .. x_p]``, in the order of ``fit_glm``.

Forward: ``Z_l = H_{l-1} W_l^T + b_l`` (``H_{-1} = X``), ``H_l = f_l(Z_l)`` for hidden
layers, and the output unit's ``eta = Z_L + offset``; the output activation (inverse link,
a ``LINK_*`` code) and the loss are applied together by the loss kernels, which return
``l'(eta)`` per row.  Backward, with ``delta_L = w l'(eta) * gscale``::

    grad b_l = sum_rows delta_l,   grad W_l = delta_l^T H_{l-1},
    delta_{l-1} = (delta_l W_l) * f'_{l-1}(Z_{l-1})

The forward pass stores ``f'`` beside ``f`` (``act_layer``), and ``delta`` overwrites the
stored ``f'`` in place, so one batch needs one activation and one derivative buffer per
hidden layer and a scratch buffer.  Matrix products go through BLAS (``np.dot`` on
contiguous 2-D arrays: an MLP batch's rows are first gathered into a buffer); elementwise
work is fused with the bias add.

Networks without hidden layers take a separate path.  A full-data evaluation
(``_glm_block``) takes blocks of rows small enough to stay in cache: ``eta = b + x . beta``
row by row (``row_eta``, the one kernel compiled with reassociation, so the sum over a row
runs in SIMD lanes as in a BLAS dot product and 3-10x faster than a strict left-to-right
sum), the loss derivatives, and ``grad += sum_i w_i l'_i x_i`` four rows at a time,
vectorised over the columns: X is streamed from memory once.  Mini-batches, their
optimiser steps and whole epochs are :mod:`simbench.kernels.minibatch`.

Loss values.  A full-data evaluation calls the losses' one-pass kernel ``loss_grad_hess``
(fused loops for canonical pairs).  A mini-batch step needs only ``l'``; ``loss_d1`` hoists
the same (loss, activation) dispatch and calls the small fused scalar kernels, which the
compiler inlines and strips of the value (for Poisson-log the value's ``log y`` and
``expm1`` cost more than the derivative).

Determinism.  Full-data evaluations split the rows into fixed chunks of ``CHUNK`` rows
(a constant, not a function of the thread count), reduce each chunk serially and add the
chunk results in chunk order, so results are bit-identical whatever the number of threads.
Whether the chunks run on Numba's threads, and on how many, is decided per call by
:func:`region_threads`, the thread policy of :mod:`simbench._threads`.
There is no randomness in this module: permutations and dropout masks come in as arrays.

Activations over a batch.  ``tanh`` and ``sigmoid`` are evaluated by a branch-free
``expm1``/``exp`` (Cody-Waite reduction, degree-13 polynomial, the power of two built from
its bits) that LLVM vectorises; a libm call per element would cost ~10x more and dominate
an MLP step.  They agree with ``act_fd`` to a few ulp (tested); the other activations call
``act_fd`` directly.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, prange, set_num_threads

from simbench import _threads
from simbench._jit import kernel, readonly
from simbench.kernels.activations import act_fd
from simbench.kernels.codes import (
    ACT_IDENTITY,
    ACT_RELU,
    ACT_SIGMOID,
    ACT_TANH,
    HESS_EXPECTED,
)
from simbench.kernels.losses import (
    PAIR_BERNOULLI_LOGIT,
    PAIR_GAMMA_LOG,
    PAIR_GAUSSIAN_IDENTITY,
    PAIR_POISSON_LOG,
    _bernoulli_cdf,
    _bernoulli_logit,
    _gamma_log,
    _gaussian_identity,
    fused_pair,
    is_cdf_pair,
    loss_eval,
    loss_eval_generic,
    loss_grad_hess,
    poisson_log_row,
)
from simbench.kernels.vecmath import _exp_nonpos, _expm1_nonneg, exp_fast, log_y_or_zero

# Rows per fixed reduction chunk of a full-data evaluation.  Part of the result's
# definition (the order of floating-point sums), so never derived from the thread count.
CHUNK = 2048

# An absent optional array (weights, offsets, log y) for the Python-level entry points.
_EMPTY = np.empty(0)


@kernel(inline=True)
def tanh_fd(x):
    """``(tanh x, 1 - tanh^2 x)`` with ``m = expm1(2|x|)``: ``tanh = m / (m + 2)`` and
    ``tanh' = 4 (m + 1) / (m + 2)^2`` (full relative accuracy in the tails)."""
    a = abs(x)
    if a > 350.0:  # tanh = 1 to double precision; NaN fails the test and propagates
        a = 350.0
    m = _expm1_nonneg(2.0 * a)
    q = m + 2.0
    t = m / q
    d = (4.0 * (m + 1.0) / q) / q
    return (t if x >= 0.0 else -t), d


@kernel(inline=True)
def sigmoid_fd(x):
    """``(s, s (1 - s))`` with ``z = e^{-|x|}``: ``s = 1/(1+z)`` or ``z/(1+z)`` by the sign."""
    a = abs(x)
    if a > 708.0:
        a = 708.0
    z = _exp_nonpos(-a)
    q = 1.0 + z
    s = (1.0 if x >= 0.0 else z) / q
    return s, z / (q * q)


@kernel(inline=True)
def act_layer(code, z, bias, a_out, d_out):
    """``a_out = f(z + bias)`` and ``d_out = f'(z + bias)`` over a (rows x units) block.

    ``a_out`` may be ``z`` itself.  The branch on ``code`` is outside the loops.
    """
    nr, nu = z.shape
    if code == ACT_IDENTITY:
        for i in range(nr):
            for j in range(nu):
                a_out[i, j] = z[i, j] + bias[j]
                d_out[i, j] = 1.0
    elif code == ACT_RELU:
        for i in range(nr):
            for j in range(nu):
                x = z[i, j] + bias[j]
                pos = x > 0.0
                a_out[i, j] = x if pos else 0.0
                d_out[i, j] = 1.0 if pos else 0.0
    elif code == ACT_TANH:
        for i in range(nr):
            for j in range(nu):
                a_out[i, j], d_out[i, j] = tanh_fd(z[i, j] + bias[j])
    elif code == ACT_SIGMOID:
        for i in range(nr):
            for j in range(nu):
                a_out[i, j], d_out[i, j] = sigmoid_fd(z[i, j] + bias[j])
    else:
        for i in range(nr):
            for j in range(nu):
                a_out[i, j], d_out[i, j] = act_fd(code, z[i, j] + bias[j])


# ---- layout ---------------------------------------------------------------------------------


@kernel
def hidden_offsets(sizes):
    """Start of every hidden layer's column block in the activation buffers, and the total."""
    nh = sizes.size - 2
    hoffs = np.zeros(nh + 1, np.int64)
    for l in range(nh):
        hoffs[l + 1] = hoffs[l] + sizes[l + 1]
    return hoffs


@kernel
def max_hidden(sizes):
    m = 1
    for l in range(1, sizes.size - 1):
        m = max(m, sizes[l])
    return m


# ---- networks without hidden layers -----------------------------------------------------------


@kernel(reassoc=True)
def row_eta(theta, X, i):
    """``theta[0] + X[i] . theta[1:]``.

    The one kernel with reassociation (see :mod:`simbench._jit`): the sum over the row is
    split into SIMD lanes by the compiler, in an order fixed by the compiled code, as a BLAS
    dot product would do; a strict left-to-right sum waits on every addition and ran 3-10x
    slower.  Results do not depend on the thread count.
    """
    s = 0.0
    for k in range(X.shape[1]):
        s += X[i, k] * theta[k + 1]
    return theta[0] + s


# Rows per block of the fused full-data pass, at most BLOCK_ELEMENTS elements of X (64 kB): the
# block stays in L1/L2 between the eta loop and the gradient loop, so X comes from memory once.
BLOCK = 128
BLOCK_ELEMENTS = 8192


@kernel
def loss_d1(lcode, a, hcode, lam, y, eta, d1_out, nb):
    """``d1_out[r] = l'(y[r], eta[r])`` for ``r < nb``, without the loss value.

    A mini-batch step needs only the derivative.  The (loss, activation) dispatch is hoisted
    out of the loop as in ``loss_grad_hess``, and every loop calls one small fused kernel,
    which the compiler inlines and strips of the value's logarithms (half the cost of a
    Poisson row); other pairs take the generic path.  Equal to ``loss_eval``'s d1 (tested).
    """
    pair = fused_pair(lcode, hcode)
    if pair == PAIR_POISSON_LOG:
        for r in range(nb):  # vectorised: exp_fast has no calls
            d1_out[r] = exp_fast(eta[r]) - y[r]
    elif pair == PAIR_BERNOULLI_LOGIT:
        for r in range(nb):
            d1_out[r] = _bernoulli_logit(y[r], eta[r], 1.0)[1]
    elif pair == PAIR_GAUSSIAN_IDENTITY:
        for r in range(nb):
            d1_out[r] = _gaussian_identity(y[r], eta[r], 1.0)[1]
    elif pair == PAIR_GAMMA_LOG:
        for r in range(nb):
            d1_out[r] = _gamma_log(y[r], eta[r], 1.0, HESS_EXPECTED)[1]
    elif is_cdf_pair(pair):
        for r in range(nb):
            d1_out[r] = _bernoulli_cdf(pair, y[r], eta[r], 1.0, HESS_EXPECTED)[1]
    else:
        for r in range(nb):
            d1_out[r] = loss_eval_generic(lcode, a, 1.0, hcode, lam, y[r], eta[r], HESS_EXPECTED)[1]


@kernel(inline=True)
def _poisson_log_rows(yb, lyb, eta, wb, ob, out, vbuf):
    """Poisson-log value and derivative of a block from ``log y`` (``lyb``):
    ``sum w l`` and ``out = w (mu - y)``, by :func:`~simbench.kernels.losses.poisson_log_row`
    (no logarithm or division per row, so the loop vectorises, unlike the losses' fused
    kernel).  The values go to ``vbuf`` and are added in row order by a second loop (a sum
    would stop the first from vectorising)."""
    nb = eta.size
    has_w = wb.size > 0
    has_off = ob.size > 0
    for i in range(nb):
        e = eta[i] + ob[i] if has_off else eta[i]
        v, _, f, _ = poisson_log_row(yb[i], e, lyb[i])
        if has_w:
            w = wb[i]
            out[i] = 0.0 if w == 0.0 else -w * f
            vbuf[i] = 0.0 if w == 0.0 else w * v
        else:
            out[i] = -f
            vbuf[i] = v
    total = 0.0
    for i in range(nb):
        total += vbuf[i]
    return total


@kernel
def output_loss(need_value, lcode, a, hcode, lam, yb, eta, wb, ob, out, lyb, vbuf):
    """Σ w ℓ (0.0 unless ``need_value``) and ``out[i] = w_i dℓ/dη_i`` for the rows of a batch.

    With the value, the losses' own one-pass kernel (fused loops for canonical pairs), or for
    Poisson-log given ``log y`` (``lyb`` non-empty) the vectorised :func:`_poisson_log_rows`;
    without it, the cheaper derivative-only loop, the offset added to ``eta`` in place.  A
    zero weight is an absent row, even where its loss is not finite.
    """
    nb = eta.size
    if need_value:
        if lyb.size > 0:
            return _poisson_log_rows(yb, lyb, eta, wb, ob, out, vbuf)
        return loss_grad_hess(
            lcode, a, 1.0, hcode, lam, HESS_EXPECTED, yb, eta, wb, ob, out, np.empty(0)
        )
    if ob.size > 0:
        for i in range(nb):
            eta[i] += ob[i]
    loss_d1(lcode, a, hcode, lam, yb, eta, out, nb)
    if wb.size > 0:
        for i in range(nb):
            w = wb[i]
            out[i] = 0.0 if w == 0.0 else w * out[i]
    return 0.0


@kernel(inline=True)
def _glm_block(theta, xb, yb, wb, ob, lyb, lcode, a, hcode, lam, need_value, eta, dv, grad):
    """One contiguous block of rows: ``grad += sum w l'(eta) (1, x)``; return ``sum w l``
    (0.0 unless ``need_value``: without it the compiler drops the loss's logarithms).

    ``eta = b + xb theta[1:]`` is one BLAS product (rows in independent SIMD dot products,
    a thing a loop here could not do without reassociating sums); the loss derivatives follow;
    then the gradient four rows at a time, vectorised over the columns, from cache.
    """
    nb, p = xb.shape
    for r in range(nb):
        eta[r] = row_eta(theta, xb, r)
    total = output_loss(
        need_value, lcode, a, hcode, lam, yb, eta[:nb], wb, ob, dv[:nb], lyb, eta[nb : 2 * nb]
    )
    # a local accumulator: the compiler sees that it aliases none of the inputs, so the
    # column loop is vectorised without run-time overlap checks
    acc = np.zeros(p)
    g = 0.0
    r = 0
    while r + 4 <= nb:
        g0 = dv[r]
        g1 = dv[r + 1]
        g2 = dv[r + 2]
        g3 = dv[r + 3]
        g += (g0 + g1) + (g2 + g3)
        for k in range(p):
            x01 = g0 * xb[r, k] + g1 * xb[r + 1, k]
            acc[k] += x01 + (g2 * xb[r + 2, k] + g3 * xb[r + 3, k])
        r += 4
    while r < nb:
        g0 = dv[r]
        g += g0
        for k in range(p):
            acc[k] += g0 * xb[r, k]
        r += 1
    grad[0] += g
    for k in range(p):
        grad[k + 1] += acc[k]
    return total


@kernel(inline=True)
def _block_rows(p):
    return max(4, min(BLOCK, BLOCK_ELEMENTS // max(p, 1)))


@kernel(inline=True)
def _glm_rows(
    theta, X, y, weights, offset, logy, start, stop, lcode, a, hcode, lam, need_value, grad
):
    """Rows ``start:stop`` of X in blocks: overwrite ``grad`` with ``sum w l'(eta) (1, x)``
    and return ``sum w l(eta)`` (0.0 unless ``need_value``)."""
    p = X.shape[1]
    has_w = weights.size > 0
    has_off = offset.size > 0
    rows = _block_rows(p)
    has_ly = logy.size > 0
    eta = np.empty(2 * rows)  # eta, then the row values of _poisson_log_rows
    dv = np.empty(rows)
    for k in range(p + 1):
        grad[k] = 0.0
    total = 0.0
    for b0 in range(start, stop, rows):
        b1 = min(stop, b0 + rows)
        wb = weights[b0:b1] if has_w else weights
        ob = offset[b0:b1] if has_off else offset
        lyb = logy[b0:b1] if has_ly else logy
        total += _glm_block(
            theta, X[b0:b1], y[b0:b1], wb, ob, lyb, lcode, a, hcode, lam, need_value, eta, dv, grad
        )
    return total


@kernel(inline=True)
def _glm_chunk(
    theta, X, y, weights, offset, logy, c, lcode, a, hcode, lam, need_value, parts, totals
):
    n = X.shape[0]
    s = c * CHUNK
    e = min(n, s + CHUNK)
    totals[c] = _glm_rows(
        theta, X, y, weights, offset, logy, s, e, lcode, a, hcode, lam, need_value, parts[c]
    )


@kernel(parallel=True)
def _glm_chunks_parallel(
    theta, X, y, weights, offset, logy, lcode, a, hcode, lam, need_value, parts, totals
):
    for c in prange(totals.size):
        _glm_chunk(
            theta, X, y, weights, offset, logy, c, lcode, a, hcode, lam, need_value, parts, totals
        )


@kernel
def _glm_chunks_serial(
    theta, X, y, weights, offset, logy, lcode, a, hcode, lam, need_value, parts, totals
):
    for c in range(totals.size):
        _glm_chunk(
            theta, X, y, weights, offset, logy, c, lcode, a, hcode, lam, need_value, parts, totals
        )


@kernel
def _reduce_chunks(parts, totals, grad_out):
    """Add the chunk results in chunk order: the fixed order that makes them thread-free."""
    total = 0.0
    grad_out[:] = 0.0
    for c in range(totals.size):
        total += totals[c]
        for k in range(grad_out.size):
            grad_out[k] += parts[c, k]
    return total


def region_threads(kind: str, n_chunks: int, *arrays, repeated: bool | None = None) -> int:
    """Threads to run ``n_chunks`` fixed chunks on; 1 means serially.  ``arrays``: the input
    arrays, X first; ``kind``: ``"loss"``, ``"newton"`` or ``"eta"``; ``repeated``: whether
    the caller runs such regions many times in a row (a fit's evaluations: the default for
    ``"loss"`` and ``"newton"``) or once (a prediction, a fit's final evaluation: the
    default for ``"eta"``), which needs more work to repay waking sleeping workers.

    The thread policy of :mod:`simbench._threads`: at most Numba's current thread count, at
    least two chunks per thread (and, while the workers are asleep, enough of X per thread to
    repay waking them), and no more threads than CPUs free of other work, so that a region
    never waits for a time slice.  Serial and parallel runs give bit-identical results, so
    the choice changes only the speed.  A small problem therefore never compiles the
    parallel variants (the costliest kernels to compile): they are compiled, once per
    machine with Numba's cache, by the first call large enough to run them.
    """
    threads = get_num_threads()
    if threads < 2:
        return 1
    X = arrays[0]
    elements = X.shape[0] * (X.shape[1] + 1)
    if repeated is None:
        repeated = kind != "eta"
    return _threads.region_threads(n_chunks, threads, elements, repeated)


def use_threads(kind: str, n_chunks: int, *arrays) -> bool:
    """Whether to run the chunks in parallel (:func:`region_threads` above 1).  A caller that
    then runs the parallel variant itself runs it on Numba's current thread count."""
    return region_threads(kind, n_chunks, *arrays) > 1


def _run_chunks(threads: int, parallel, serial, *args):
    """Run ``parallel(*args)`` on ``threads`` threads, or ``serial(*args)`` if 1."""
    if threads < 2:
        return serial(*args)
    before = get_num_threads()
    if threads >= before:
        out = parallel(*args)
    else:
        set_num_threads(threads)  # thread-local: only this caller's regions
        try:
            out = parallel(*args)
        finally:
            set_num_threads(before)
    _threads.parallel_used(threads)
    return out


def glm_loss_grad(
    theta,
    X,
    y,
    weights,
    offset,
    lcode,
    a,
    hcode,
    lam,
    grad_out,
    need_value=True,
    logy=None,
    repeated=True,
):
    """Full-data ``sum w l`` and its gradient for a network without hidden layers.

    Fixed chunks of ``CHUNK`` rows, reduced serially inside and added in chunk order, so the
    result is the same whether the chunks run in parallel or not and whatever the thread
    count.  ``grad_out`` (size p + 1) is overwritten.  With ``need_value`` False only the
    gradient is computed (the returned loss is 0.0).  ``logy`` (:func:`poisson_log_y`, for
    the Poisson-log pair only) lets the value be computed without a logarithm per row.
    ``repeated`` False says the call is a one-off (a fit's final evaluation), not one of a
    fit's many (:func:`region_threads`).
    """
    if logy is None:
        logy = _EMPTY
    n, p = X.shape
    nch = max(1, -(-n // CHUNK))
    parts = np.empty((nch, p + 1))
    totals = np.empty(nch)
    _run_chunks(
        region_threads("loss", nch, X, y, weights, offset, repeated=repeated),
        _glm_chunks_parallel,
        _glm_chunks_serial,
        theta, X, y, weights, offset, logy, lcode, a, hcode, lam, need_value, parts, totals,
    )  # fmt: skip
    return _reduce_chunks(parts, totals, grad_out)


def poisson_log_y(lcode: int, hcode: int, y: np.ndarray) -> np.ndarray:
    """``log y`` (0 where ``y = 0``, nan where ``y < 0``) for the Poisson-log pair, whose
    full-data value :func:`glm_loss_grad` then evaluates without a logarithm per row; an
    empty array for every other pair."""
    if fused_pair(lcode, hcode) != PAIR_POISSON_LOG:
        return _EMPTY
    out = np.empty(y.shape[0])
    log_y_or_zero(readonly(y), out)  # one compiled kind for every caller
    return out


@kernel(parallel=True)
def _glm_eta_parallel(theta, X, offset, out):
    has_off = offset.size > 0
    for i in prange(X.shape[0]):
        e = row_eta(theta, X, i)
        out[i] = e + offset[i] if has_off else e


@kernel
def _glm_eta_serial(theta, X, offset, out):
    has_off = offset.size > 0
    for i in range(X.shape[0]):
        e = row_eta(theta, X, i)
        out[i] = e + offset[i] if has_off else e


def glm_eta(theta, X, offset, out):
    """``out = theta[0] + X theta[1:] (+ offset)``; rows are independent, so any split is exact."""
    threads = region_threads("eta", X.shape[0] // CHUNK, X, offset)
    _run_chunks(threads, _glm_eta_parallel, _glm_eta_serial, theta, X, offset, out)


@kernel(inline=True)
def _glm_newton_rows(theta, X, y, weights, offset, start, stop, lcode, a, hcode, lam, kind, g, H):
    """Rows ``start:stop``: overwrite ``g`` with the gradient and the lower triangle of ``H``
    with ``sum w l'' (1, x)(1, x)^T``; return ``sum w l``."""
    p = X.shape[1]
    has_w = weights.size > 0
    has_off = offset.size > 0
    g[:] = 0.0
    H[:, :] = 0.0
    total = 0.0
    for i in range(start, stop):
        w = weights[i] if has_w else 1.0
        if w == 0.0:
            continue
        eta = row_eta(theta, X, i)
        if has_off:
            eta += offset[i]
        v, d1, d2 = loss_eval(lcode, a, 1.0, hcode, lam, y[i], eta, kind)
        total += w * v
        gi = w * d1
        hi = w * d2
        g[0] += gi
        H[0, 0] += hi
        for j in range(p):
            xj = X[i, j]
            g[j + 1] += gi * xj
            H[j + 1, 0] += hi * xj
            hx = hi * xj
            for k in range(j + 1):
                H[j + 1, k + 1] += hx * X[i, k]
    return total


@kernel(inline=True)
def _newton_chunk(
    theta, X, y, weights, offset, c, size, lcode, a, hcode, lam, kind, gs, Hs, totals
):
    n = X.shape[0]
    s = c * size
    e = min(n, s + size)
    totals[c] = _glm_newton_rows(
        theta, X, y, weights, offset, s, e, lcode, a, hcode, lam, kind, gs[c], Hs[c]
    )


@kernel(parallel=True)
def _newton_chunks_parallel(
    theta, X, y, weights, offset, size, lcode, a, hcode, lam, kind, gs, Hs, totals
):
    for c in prange(totals.size):
        _newton_chunk(
            theta, X, y, weights, offset, c, size, lcode, a, hcode, lam, kind, gs, Hs, totals
        )


@kernel
def _newton_chunks_serial(
    theta, X, y, weights, offset, size, lcode, a, hcode, lam, kind, gs, Hs, totals
):
    for c in range(totals.size):
        _newton_chunk(
            theta, X, y, weights, offset, c, size, lcode, a, hcode, lam, kind, gs, Hs, totals
        )


@kernel
def _reduce_newton(gs, Hs, totals, g_out, H_out):
    q = g_out.size
    total = 0.0
    g_out[:] = 0.0
    H_out[:, :] = 0.0
    for c in range(totals.size):
        total += totals[c]
        for j in range(q):
            g_out[j] += gs[c, j]
            for k in range(j + 1):
                H_out[j, k] += Hs[c, j, k]
    for j in range(q):
        for k in range(j):
            H_out[k, j] = H_out[j, k]
    return total


def glm_newton_terms(theta, X, y, weights, offset, lcode, a, hcode, lam, kind, g_out, H_out):
    """Loss, gradient and Hessian ``X~^T diag(w l'') X~`` of a network without hidden layers.

    ``kind`` is ``HESS_OBSERVED`` or ``HESS_EXPECTED``.  At most 16 chunks (their number and
    size depend on n only), reduced in order; ``H_out`` is returned symmetric.
    """
    n, p = X.shape
    nch = max(1, min(16, -(-n // CHUNK)))
    size = max(1, -(-n // nch))
    gs = np.empty((nch, p + 1))
    Hs = np.empty((nch, p + 1, p + 1))
    totals = np.empty(nch)
    _run_chunks(
        region_threads("newton", nch, X, y, weights, offset),
        _newton_chunks_parallel,
        _newton_chunks_serial,
        theta, X, y, weights, offset, size, lcode, a, hcode, lam, kind, gs, Hs, totals,
    )  # fmt: skip
    return _reduce_newton(gs, Hs, totals, g_out, H_out)


# ---- networks with hidden layers ------------------------------------------------------------


@kernel
def _mlp_forward(theta, sizes, offs, acts, xb, hbuf, dbuf, zbuf, mask, keep_inv, eta):
    """Forward pass of a batch of ``nb`` rows.

    Hidden layer ``l`` stores its activations ``f(Z_l)`` and derivatives ``f'(Z_l)`` as
    (nb x h_l) blocks, layer after layer, in ``hbuf`` and ``dbuf``; ``zbuf`` (at least
    nb x max(h)) takes the products ``H W^T`` first, so that the activation writes to other
    memory than it reads (in place, the compiler could not vectorise it).  ``eta`` gets the
    output unit's linear predictor (without offset).  ``mask`` (nb x sum(h), uint8) applies
    inverted dropout when it is not empty."""
    nb = xb.shape[0]
    nh = sizes.size - 2
    prev = xb
    col = 0
    for l in range(nh):
        fi = sizes[l]
        fo = sizes[l + 1]
        o = offs[l]
        b = theta[o : o + fo]
        W = theta[o + fo : offs[l + 1]].reshape((fo, fi))
        z = zbuf[: nb * fo].reshape((nb, fo))
        h = hbuf[col * nb : (col + fo) * nb].reshape((nb, fo))
        d = dbuf[col * nb : (col + fo) * nb].reshape((nb, fo))
        np.dot(prev, W.T, z)
        act_layer(acts[l], z, b, h, d)
        if mask.size > 0:
            for i in range(nb):
                for j in range(fo):
                    m = keep_inv if mask[i, col + j] != 0 else 0.0
                    h[i, j] *= m
                    d[i, j] *= m
        prev = h
        col += fo
    o = offs[nh]
    w = theta[o + 1 : offs[nh + 1]]
    np.dot(prev, w, eta)
    b0 = theta[o]
    for i in range(nb):
        eta[i] += b0


@kernel(inline=True)
def _mlp_backward(theta, sizes, offs, xb, hbuf, dbuf, gout, scratch, grad):
    """Backward pass of a batch given ``gout = d loss / d eta`` per row; overwrites ``grad``.

    ``dbuf`` holds ``f'`` on entry and is overwritten with the deltas."""
    nb = xb.shape[0]
    nh = sizes.size - 2
    # column start of every hidden layer's block
    cols = np.zeros(nh + 1, np.int64)
    for l in range(nh):
        cols[l + 1] = cols[l] + sizes[l + 1]
    # output unit
    o = offs[nh]
    fi = sizes[nh]
    s = 0.0
    for i in range(nb):
        s += gout[i]
    grad[o] = s
    if nh == 0:
        prev_out = xb
    else:
        c = cols[nh - 1]
        prev_out = hbuf[c * nb : (c + fi) * nb].reshape((nb, fi))
    np.dot(gout, prev_out, grad[o + 1 : offs[nh + 1]])
    if nh == 0:
        return
    w = theta[o + 1 : offs[nh + 1]]
    c = cols[nh - 1]
    delta = dbuf[c * nb : (c + fi) * nb].reshape((nb, fi))
    for i in range(nb):
        gi = gout[i]
        for j in range(fi):
            delta[i, j] *= gi * w[j]
    # hidden layers, last to first
    for l in range(nh - 1, -1, -1):
        fi = sizes[l]
        fo = sizes[l + 1]
        o = offs[l]
        c = cols[l]
        delta = dbuf[c * nb : (c + fo) * nb].reshape((nb, fo))
        gb = grad[o : o + fo]
        gb[:] = 0.0
        for i in range(nb):
            for j in range(fo):
                gb[j] += delta[i, j]
        if l == 0:
            prev = xb
        else:
            cp = cols[l - 1]
            prev = hbuf[cp * nb : (cp + fi) * nb].reshape((nb, fi))
        gW = grad[o + fo : offs[l + 1]].reshape((fo, fi))
        np.dot(delta.T, prev, gW)
        if l > 0:
            W = theta[o + fo : offs[l + 1]].reshape((fo, fi))
            tmp = scratch[: nb * fi].reshape((nb, fi))
            np.dot(delta, W, tmp)
            cp = cols[l - 1]
            dprev = dbuf[cp * nb : (cp + fi) * nb].reshape((nb, fi))
            for i in range(nb):
                for j in range(fi):
                    dprev[i, j] *= tmp[i, j]


@kernel
def mlp_batch(
    theta,
    sizes,
    offs,
    acts,
    hcode,
    lam,
    lcode,
    a,
    xb,
    yb,
    wb,
    ob,
    mask,
    keep_inv,
    gscale,
    need_value,
    grad,
    hbuf,
    dbuf,
    scratch,
    eta,
    gout,
):
    """Loss ``sum w l`` of a batch (0.0 unless ``need_value``) and its gradient times
    ``gscale``, written into ``grad``."""
    _mlp_forward(theta, sizes, offs, acts, xb, hbuf, dbuf, scratch, mask, keep_inv, eta)
    nb = eta.size
    # no log y: an empty slice of yb, read-only as the GLM passes' log y is, so that both
    # use one compiled output_loss
    total = output_loss(need_value, lcode, a, hcode, lam, yb, eta, wb, ob, gout, yb[:0], eta[:0])
    for i in range(nb):
        gout[i] *= gscale
    _mlp_backward(theta, sizes, offs, xb, hbuf, dbuf, gout, scratch, grad)
    return total


@kernel
def mlp_loss_grad(
    theta,
    sizes,
    offs,
    acts,
    hcode,
    lam,
    lcode,
    a,
    X,
    y,
    weights,
    offset,
    mask,
    keep_inv,
    grad_out,
):
    """Full-data ``sum w l`` and its gradient for a network with hidden layers.

    Fixed chunks of ``CHUNK`` rows, each a batched forward/backward pass through BLAS, added
    in chunk order.  ``mask`` (n x sum(h) uint8, or empty) applies inverted dropout.
    """
    n = X.shape[0]
    nh = sizes.size - 2
    width = hidden_offsets(sizes)[nh]
    cmax = min(n, CHUNK)
    hbuf = np.empty(cmax * width)
    dbuf = np.empty(cmax * width)
    scratch = np.empty(cmax * max_hidden(sizes))
    eta = np.empty(cmax)
    gout = np.empty(cmax)
    part = np.empty(grad_out.size)
    no_mask = np.empty((0, 0), np.uint8)
    has_w = weights.size > 0
    has_off = offset.size > 0
    grad_out[:] = 0.0
    total = 0.0
    for s in range(0, n, CHUNK):
        e = min(n, s + CHUNK)
        nb = e - s
        wb = weights[s:e] if has_w else weights
        ob = offset[s:e] if has_off else offset
        mb = mask[s:e] if mask.size > 0 else no_mask
        total += mlp_batch(
            theta,
            sizes,
            offs,
            acts,
            hcode,
            lam,
            lcode,
            a,
            X[s:e],
            y[s:e],
            wb,
            ob,
            mb,
            keep_inv,
            1.0,
            True,
            part,
            hbuf[: nb * width],
            dbuf[: nb * width],
            scratch,
            eta[:nb],
            gout[:nb],
        )
        for k in range(part.size):
            grad_out[k] += part[k]
    return total


@kernel
def mlp_eta(theta, sizes, offs, acts, X, offset, out):
    """``out = eta(X) (+ offset)`` for a network with hidden layers (no dropout)."""
    n = X.shape[0]
    nh = sizes.size - 2
    width = hidden_offsets(sizes)[nh]
    cmax = min(n, CHUNK)
    hbuf = np.empty(cmax * width)
    dbuf = np.empty(cmax * width)
    zbuf = np.empty(cmax * max_hidden(sizes))
    no_mask = np.empty((0, 0), np.uint8)
    has_off = offset.size > 0
    for s in range(0, n, CHUNK):
        e = min(n, s + CHUNK)
        nb = e - s
        _mlp_forward(
            theta,
            sizes,
            offs,
            acts,
            X[s:e],
            hbuf[: nb * width],
            dbuf[: nb * width],
            zbuf,
            no_mask,
            1.0,
            out[s:e],
        )
        if has_off:
            for i in range(s, e):
                out[i] += offset[i]
