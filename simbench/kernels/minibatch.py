"""Mini-batch training in compiled code: optimiser steps, batches and whole epochs.

``opt_step`` applies one first-order update (``OPT_*`` codes below); ``minibatch_epoch``
runs a whole epoch of mini-batch steps in compiled code, so a step costs microseconds rather
than a Python round trip.  Batches of an MLP are gathered (``_gather_rows``) into
contiguous buffers for the BLAS passes of :mod:`simbench.kernels.network`.  A batch of a
network without hidden layers (``_glm_gather_block``) reads its randomly ordered rows in
place, each row's cache lines requested ``PREFETCH_ROWS`` rows ahead (the order is known),
and goes by chunks of ``CHUNK_ROWS`` rows: the chunk's ``eta``, its loss derivatives in one
loop, and its gradient terms while its rows are still in L1.

There is no randomness here: permutations (``shuffle`` turns 32-bit random integers into
one) and dropout masks come in as arrays.
"""

from __future__ import annotations

import math

import numpy as np

from simbench._jit import kernel, prefetch_row
from simbench.kernels.losses import PAIR_POISSON_LOG, fused_pair
from simbench.kernels.network import (
    hidden_offsets,
    loss_d1,
    max_hidden,
    mlp_batch,
    output_loss,
    row_eta,
)
from simbench.kernels.vecmath import exp_fast

# First-order update rules of opt_step.
OPT_SGD = 0
OPT_MOMENTUM = 1
OPT_NESTEROV = 2
OPT_ADAM = 3


@kernel
def opt_step(kind, theta, grad, m, v, t, lr, momentum, beta1, beta2, eps):
    """One first-order update of ``theta`` in place; ``t`` is the 1-based step number.

    SGD ``theta -= lr g``; momentum ``m = mu m + g, theta -= lr m``; Nesterov
    ``m = mu m + g, theta -= lr (g + mu m)``; Adam with bias-corrected moments
    ``theta -= lr m_hat / (sqrt(v_hat) + eps)``.
    """
    q = theta.size
    if kind == OPT_SGD:
        for k in range(q):
            theta[k] -= lr * grad[k]
    elif kind == OPT_MOMENTUM:
        for k in range(q):
            m[k] = momentum * m[k] + grad[k]
            theta[k] -= lr * m[k]
    elif kind == OPT_NESTEROV:
        for k in range(q):
            m[k] = momentum * m[k] + grad[k]
            theta[k] -= lr * (grad[k] + momentum * m[k])
    else:
        c1 = 1.0 / (1.0 - beta1**t)
        c2 = 1.0 / (1.0 - beta2**t)
        for k in range(q):
            gk = grad[k]
            m[k] = beta1 * m[k] + (1.0 - beta1) * gk
            v[k] = beta2 * v[k] + (1.0 - beta2) * gk * gk
            theta[k] -= lr * (m[k] * c1) / (math.sqrt(v[k] * c2) + eps)


@kernel
def add_penalty(theta, penal, grad):
    """``grad += penal * theta``; return ``sum penal theta^2 / 2`` (L2 on the weights)."""
    s = 0.0
    for k in range(theta.size):
        pk = penal[k]
        if pk != 0.0:
            s += pk * theta[k] * theta[k]
            grad[k] += pk * theta[k]
    return 0.5 * s


@kernel
def _all_finite(x):
    for k in range(x.size):
        if not math.isfinite(x[k]):
            return False
    return True


# Rows ahead of the current one whose cache lines a mini-batch pass requests: enough to cover
# the memory latency (measured best at 24-32 rows of 10-50 columns; 8 was 1.5x slower and 64
# 5% slower).
PREFETCH_ROWS = 32


@kernel(inline=True)
def _gather_rows(X, y, weights, offset, perm, s, e, xb, yb, wb, ob):
    """Rows ``perm[s:e]`` of the data into the batch buffers (rows ahead prefetched)."""
    p = X.shape[1]
    n = X.shape[0]
    for r in range(e - s):
        if s + r + PREFETCH_ROWS < n:
            prefetch_row(X, perm[s + r + PREFETCH_ROWS])
        i = perm[s + r]
        for k in range(p):
            xb[r, k] = X[i, k]
        yb[r] = y[i]
        if weights.size > 0:
            wb[r] = weights[i]
        if offset.size > 0:
            ob[r] = offset[i]


# Rows per chunk of a mini-batch of a network without hidden layers: eta, derivatives and
# gradient terms of one chunk before the next, so the gradient re-reads the chunk's rows from
# L1 (a whole batch of 256 rows of 50 columns spills to L2) and the memory keeps working on
# the prefetched rows meanwhile.  Measured at p = 50: 32 rows 9% faster per epoch than whole
# batches, 16 and 64 in between.  A multiple of 4, the gradient's group of rows, so the
# gradient sums in the same order whatever the chunk size.
CHUNK_ROWS = 32


@kernel(inline=True)
def _glm_gather_block(
    theta, X, y, weights, offset, perm, s, e, lcode, a, hcode, lam, need_value,
    yb, wb, ob, eta, dv, grad,
):  # fmt: skip
    """A mini-batch of a network without hidden layers, rows ``perm[s:e]`` read in place:
    overwrite ``grad`` with ``sum w l'(eta) (1, x)``; return ``sum w l`` (0.0 unless
    ``need_value``).

    The batch goes by chunks of ``CHUNK_ROWS`` rows: ``eta`` row by row, each row's cache
    lines requested ``PREFETCH_ROWS`` rows ahead (across chunk and batch boundaries: the
    order is known), so the latency of the random order is hidden; the chunk's loss
    derivatives in one loop (vectorised for Poisson-log); its gradient terms four rows at a
    time, the rows still in L1.  Only ``y``, the weights and the offsets are copied (the
    buffers need ``min(CHUNK_ROWS, e - s)`` entries).
    """
    n, p = X.shape
    has_w = weights.size > 0
    has_off = offset.size > 0
    poisson_log = fused_pair(lcode, hcode) == PAIR_POISSON_LOG
    acc = np.zeros(p)
    g = 0.0
    total = 0.0
    for c in range(s, e, CHUNK_ROWS):
        nc = min(e - c, CHUNK_ROWS)
        for r in range(nc):
            if c + r + PREFETCH_ROWS < n:
                prefetch_row(X, perm[c + r + PREFETCH_ROWS])
            i = perm[c + r]
            eta[r] = row_eta(theta, X, i)
            yb[r] = y[i]
            if has_w:
                wb[r] = weights[i]
            if has_off:
                ob[r] = offset[i]
        if need_value:
            total += output_loss(
                True, lcode, a, hcode, lam, yb[:nc], eta[:nc],
                wb[:nc] if has_w else wb, ob[:nc] if has_off else ob, dv[:nc], eta[:0], eta[:0],
            )  # fmt: skip
        else:  # output_loss's derivative-only path on unsliced buffers (slices, or an
            # inlined helper, each cost 3-8% of an epoch in reference counting)
            if has_off:
                for r in range(nc):
                    eta[r] += ob[r]
            if poisson_log:  # the common case written out: a call costs more than the loop
                for r in range(nc):
                    dv[r] = exp_fast(eta[r]) - yb[r]
            else:
                loss_d1(lcode, a, hcode, lam, yb, eta, dv, nc)
            if has_w:
                for r in range(nc):
                    w = wb[r]
                    dv[r] = 0.0 if w == 0.0 else w * dv[r]
        r = 0
        while r + 4 <= nc:
            g0 = dv[r]
            g1 = dv[r + 1]
            g2 = dv[r + 2]
            g3 = dv[r + 3]
            x0 = X[perm[c + r]]
            x1 = X[perm[c + r + 1]]
            x2 = X[perm[c + r + 2]]
            x3 = X[perm[c + r + 3]]
            g += (g0 + g1) + (g2 + g3)
            for k in range(p):
                acc[k] += (g0 * x0[k] + g1 * x1[k]) + (g2 * x2[k] + g3 * x3[k])
            r += 4
        while r < nc:
            g0 = dv[r]
            x0 = X[perm[c + r]]
            g += g0
            for k in range(p):
                acc[k] += g0 * x0[k]
            r += 1
    grad[0] = g
    for k in range(p):
        grad[k + 1] = acc[k]
    return total


_LOW32 = np.uint64(0xFFFFFFFF)


@kernel
def shuffle(perm, draws, i):
    """Shuffle ``perm`` in place (Fisher-Yates), from position ``i`` down to 1, with the
    32-bit uniform integers ``draws`` (uint32): position ``k`` swaps with ``j`` uniform on
    ``0 .. k``.

    ``j`` is the high half of ``draw * (k + 1)``, rejected and drawn again when the low half
    falls below ``2^32 mod (k + 1)`` (Lemire's method): exactly uniform, and a rejection
    happens with probability below ``(k + 1) / 2^32``.  Whatever the order ``perm`` starts
    in, every permutation is equally likely.  Needs ``perm.size <= 2^32``.

    Returns the position still to do when the draws run out (0 when the shuffle is done);
    the call that continues it starts at that position with fresh draws.
    """
    nd = draws.size
    w = 0
    while i > 0:
        if w == nd:
            return i
        s = np.uint64(i + 1)
        m = np.uint64(draws[w]) * s
        w += 1
        if m & _LOW32 < s:
            t = (np.uint64(0x100000000) - s) % s
            while m & _LOW32 < t:
                if w == nd:
                    return i
                m = np.uint64(draws[w]) * s
                w += 1
        j = np.int64(m >> np.uint64(32))
        tmp = perm[i]
        perm[i] = perm[j]
        perm[j] = tmp
        i -= 1
    return 0


@kernel
def minibatch_epoch(
    theta,
    sizes,
    offs,
    acts,
    hcode,
    lam,
    lcode,
    a,
    penal,
    X,
    y,
    weights,
    offset,
    perm,
    batch_size,
    mask,
    keep_inv,
    wscale,
    kind,
    lr,
    momentum,
    beta1,
    beta2,
    eps,
    m,
    v,
    t,
    need_value,
):
    """One epoch of mini-batch steps in the order ``perm``; ``theta``, ``m``, ``v`` in place.

    The objective is ``sum w l / W + penalty`` with ``W = 1 / wscale``; a batch of ``B`` of
    the ``n`` rows estimates its gradient without bias by ``(n / B) wscale sum_batch w l'``
    plus the penalty's gradient.  ``mask`` rows follow the batch order (row ``r`` of the
    mask belongs to ``perm[r]``).  A batch whose loss or gradient is not finite stops the
    epoch before its step is applied.  With ``need_value`` False the batch losses are not
    computed (a mini-batch step needs only the gradient; that saves the loss's logarithms)
    and ``loss_sum`` is 0.

    Returns
    -------
    (loss_sum, t, ok)
        ``sum w l`` over the rows visited (each at the parameters of its own step), the step
        counter after the epoch, and False if a non-finite value stopped the epoch.
    """
    return _minibatch_epoch(
        sizes.size == 2, theta, sizes, offs, acts, hcode, lam, lcode, a, penal, X, y, weights,
        offset, perm, batch_size, mask, keep_inv, wscale, kind, lr, momentum, beta1, beta2, eps,
        m, v, t, need_value,
    )  # fmt: skip


@kernel(inline=True)
def _minibatch_epoch(
    glm, theta, sizes, offs, acts, hcode, lam, lcode, a, penal, X, y, weights, offset, perm,
    batch_size, mask, keep_inv, wscale, kind, lr, momentum, beta1, beta2, eps, m, v, t,
    need_value,
):  # fmt: skip
    """The body of :func:`minibatch_epoch`; ``glm`` says the network has no hidden layers.
    Inlined: the compiled epochs (:mod:`simbench.kernels.training`) pass it as a constant,
    so a network without hidden layers never compiles the MLP's batches, nor an MLP the
    gathered GLM blocks.  (Only into kernels of their own, never into an inlined one: Numba
    inlines a kernel into an inlined one before it prunes the branches on the constants,
    so a full-batch epoch would take the whole body in, then drop it.)"""
    n, p = X.shape
    nh = sizes.size - 2
    q = theta.size
    grad = np.empty(q)
    has_w = weights.size > 0
    has_off = offset.size > 0
    bmax = min(n, batch_size)
    width = hidden_offsets(sizes)[nh]
    # an MLP batch's rows are copied (random reads, prefetched ahead) into contiguous arrays
    # that BLAS then reads from cache; a network without hidden layers reads them in place
    bh = bmax if nh > 0 else 0
    xb = np.empty((bh, p))
    yb = np.empty(bmax)
    wb = np.empty(bmax if has_w else 0)
    ob = np.empty(bmax if has_off else 0)
    hbuf = np.empty(bh * width)
    dbuf = np.empty(bh * width)
    scratch = np.empty(bh * max_hidden(sizes))
    eta = np.empty(bmax)
    gout = np.empty(bmax)
    no_mask = np.empty((0, 0), np.uint8)
    loss_sum = 0.0
    for s in range(0, n, batch_size):
        e = min(n, s + batch_size)
        nb = e - s
        gscale = wscale * n / nb
        if glm:
            total = _glm_gather_block(
                theta, X, y, weights, offset, perm, s, e, lcode, a, hcode, lam, need_value,
                yb, wb, ob, eta, gout, grad,
            )  # fmt: skip
            for k in range(q):
                grad[k] *= gscale
        else:
            _gather_rows(X, y, weights, offset, perm, s, e, xb, yb, wb, ob)
            mb = mask[s:e] if mask.size > 0 else no_mask
            total = mlp_batch(
                theta,
                sizes,
                offs,
                acts,
                hcode,
                lam,
                lcode,
                a,
                xb[:nb],
                yb[:nb],
                wb[:nb] if has_w else wb,
                ob[:nb] if has_off else ob,
                mb,
                keep_inv,
                gscale,
                need_value,
                grad,
                hbuf[: nb * width],
                dbuf[: nb * width],
                scratch,
                eta[:nb],
                gout[:nb],
            )
        add_penalty(theta, penal, grad)
        if not (math.isfinite(total) and _all_finite(grad)):
            return loss_sum + total, t, False
        loss_sum += total
        t += 1
        opt_step(kind, theta, grad, m, v, t, lr, momentum, beta1, beta2, eps)
    return loss_sum, t, True
