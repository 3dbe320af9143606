"""Whole training runs of the first-order methods in compiled code.

The ``*_epochs`` kernels (one per path, :func:`first_order_block` picks it) run epochs of
gd, sgd, momentum, Nesterov or Adam (full batch or mini-batches, with dropout) and
everything between them that the stopping rules need: the full objective and its gradient
norm after every epoch, the relative change of the objective, the validation loss and
patience of early stopping, the divergence check and the recorded history.
:func:`newton_run` does the same for Newton's method with its line search, whole.  They
return to Python only when a stopping rule fires, when the epochs of the block are done, or
when the random draws handed to them run out; the Python side (:mod:`simbench.fit.optimizers`)
draws the next block's permutation words and dropout masks and carries on.  So an epoch of a
small problem costs its arithmetic, not a round trip through the interpreter.

Records.  A network bound to its data is a :class:`Net` (layout, output and loss codes,
arrays, the weight scale and the penalty); the optimiser and its stopping rules are a
:class:`Steps`.  Both are named tuples, which Numba passes as one argument each.  The loop's
mutable state lives in arrays (:class:`State`), with the scalar part in two small vectors
indexed by the ``I_*`` and ``F_*`` constants below, so a block can stop anywhere and the
next one continue exactly where it left off.

Randomness comes in as arrays, drawn by the caller from seeded Generators: 32-bit halves of
the bit generator's raw words for :func:`simbench.kernels.minibatch.shuffle`, a fixed number
per epoch, and one dropout keep-mask per epoch.  When an epoch's shuffle needs more draws
than it was given (more rejections than the margin allows; rare), the block stops with
``STOP_NEED_DRAWS`` before the epoch's step; the caller finishes that shuffle from the same
stream and resumes with the epoch marked as shuffled.

The sums are those of the full-data and mini-batch kernels (fixed chunks, fixed order), the
gradient norm is :func:`norm2` (a plain sum of squares in index order) and the distance to a
tracked coefficient vector is :func:`coef_distance`, so a run gives the same numbers, bit
for bit, whatever the block sizes and the thread count.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from simbench._jit import kernel
from simbench.kernels.codes import HESS_EXPECTED, HESS_OBSERVED
from simbench.kernels.linalg import cholesky_solve, scaled_cholesky
from simbench.kernels.minibatch import (
    _all_finite,
    _minibatch_epoch,
    add_penalty,
    opt_step,
    shuffle,
)
from simbench.kernels.network import (
    _glm_chunks_parallel,
    _glm_chunks_serial,
    _newton_chunks_parallel,
    _newton_chunks_serial,
    _reduce_chunks,
    _reduce_newton,
    mlp_loss_grad,
)

__all__ = [
    "PARALLEL",
    "SERIAL",
    "STOP_CONVERGED",
    "STOP_DIVERGED",
    "STOP_EARLY",
    "STOP_NEED_DRAWS",
    "STOP_NONE",
    "STOP_NO_DECREASE",
    "Net",
    "State",
    "Steps",
    "coef_distance",
    "first_order_block",
    "glm_batch_epochs",
    "glm_epochs",
    "mlp_batch_epochs",
    "mlp_epochs",
    "newton_run",
    "newton_terms",
    "norm2",
    "objective",
]

# The kernels' last argument, ``threads``: the full-data evaluations of a network without
# hidden layers run serially with SERIAL (None, which compiles only the serial chunks: see
# objective) and on Numba's threads with PARALLEL.
SERIAL = None
PARALLEL = True

# Why a block returned.
STOP_NONE = 0  # the block's epochs (or the epoch budget) are done; no rule fired
STOP_CONVERGED = 1  # gradient norm <= tol, or relative change of F <= ftol
STOP_EARLY = 2  # early stopping: patience epochs without a better validation loss
STOP_DIVERGED = 3  # a non-finite loss or gradient
STOP_NEED_DRAWS = 4  # an epoch's shuffle ran out of draws (see the module notes)

# Integer state (State.ints).
I_EPOCH = 0  # the last epoch observed (0: the starting point)
I_T = 1  # optimiser steps taken (Adam's bias correction)
I_BEST_EPOCH = 2  # epoch of the best validation loss (-1: none yet)
I_WAIT = 3  # epochs since the best validation loss
I_HAS_GOOD = 4  # 1 once a finite epoch has been observed (last_good is set)
I_BAD_EPOCH = 5  # the epoch that diverged (-1: none)
I_RECORDED = 6  # history entries written by the last block
I_PENDING = 7  # 1: the next epoch's permutation is already shuffled
I_SHUFFLE_AT = 8  # with STOP_NEED_DRAWS: the position the shuffle reached
I_MASKS_USED = 9  # epochs of the block's masks used by the last block
I_OBSERVED = 10  # 1 once the starting point has been observed
I_DIRECTION = 11  # Newton: how the last direction was solved (a DIR_* code)
N_INTS = 12

# Float state (State.floats).
F_LAST = 0  # the objective at the last finite epoch (nan: none yet)
F_BEST_VAL = 1  # the best validation loss (inf: none yet)
N_FLOATS = 2


class Net(NamedTuple):
    """A network bound to its training (or validation) data.

    ``sizes``, ``offs``, ``acts``: layout (see :mod:`simbench.kernels.network`); ``hcode``,
    ``lam``: output activation; ``lcode``, ``a``: loss; ``X``, ``y``, ``weights``,
    ``offset``, ``logy`` (empty when absent); ``wscale = 1 / sum w``; ``penal``: the L2
    coefficient of every parameter (0 for biases).
    """

    sizes: np.ndarray
    offs: np.ndarray
    acts: np.ndarray
    hcode: int
    lam: float
    lcode: int
    a: float
    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    logy: np.ndarray
    wscale: float
    penal: np.ndarray


class Steps(NamedTuple):
    """A first-order optimiser and its stopping rules.

    ``kind``: an ``OPT_*`` code of :mod:`simbench.kernels.minibatch`; ``batch_size``: rows
    per step (0: the full data); ``keep_inv = 1 / (1 - dropout)``, ``dropout``: whether masks
    are applied; ``epochs``: the epoch budget; ``tol``, ``ftol``, ``patience``: the stopping
    rules of :mod:`simbench.fit.optimizers`.  (Whether full-data evaluations run on Numba's
    threads is the kernels' last argument, ``threads``: see :func:`objective`.)
    """

    kind: int
    lr: float
    momentum: float
    beta1: float
    beta2: float
    eps: float
    batch_size: int
    keep_inv: float
    dropout: bool
    epochs: int
    tol: float
    ftol: float
    patience: int


class State(NamedTuple):
    """The mutable state of a run: parameters, gradient, moments, permutation, the last
    finite and the best-validation parameters, the scalar state and the history buffers
    (``h_val`` and ``h_dist`` are used when there is a validation set / a tracked vector)."""

    theta: np.ndarray
    grad: np.ndarray
    m: np.ndarray
    v: np.ndarray
    perm: np.ndarray
    last_good: np.ndarray
    best_theta: np.ndarray
    ints: np.ndarray
    floats: np.ndarray
    h_loss: np.ndarray
    h_gnorm: np.ndarray
    h_val: np.ndarray
    h_dist: np.ndarray


@kernel(inline=True)
def _copy(src, dst):
    """``dst[:] = src`` for vectors of one length, as a loop: the slice assignment compiles
    NumPy's broadcasting checks and their error messages (seconds of compile time)."""
    for k in range(src.size):
        dst[k] = src[k]


@kernel
def norm2(x):
    """``||x||_2`` as ``sqrt(sum x_k^2)``, summed in index order (the same on every machine)."""
    s = 0.0
    for k in range(x.size):
        s += x[k] * x[k]
    return math.sqrt(s)


@kernel
def coef_distance(theta, sizes, offs, beta_ref, info):
    """Distance from the coefficients of ``theta`` to ``beta_ref``: ``||d||_2``, or
    ``sqrt(max(0, d' M d))`` when ``info`` (``M``) is not empty, summed in index order.

    The coefficients are ``theta`` itself without hidden layers, else the end-to-end
    ``[intercept, slopes]`` of a network whose activations are all the identity
    (``c <- W c + b``, ``A <- W A`` layer by layer).
    """
    q = beta_ref.size
    p = sizes[0]
    nl = sizes.size - 1
    d = np.empty(q)
    if nl == 1:
        for k in range(q):
            d[k] = theta[k] - beta_ref[k]
    else:
        A = np.eye(p)
        c = np.zeros(p)
        for l in range(nl):
            fi = sizes[l]
            fo = sizes[l + 1]
            o = offs[l]
            A2 = np.zeros((fo, p))
            c2 = np.empty(fo)
            for r in range(fo):
                s = theta[o + r]
                for j in range(fi):
                    wrj = theta[o + fo + r * fi + j]
                    s += wrj * c[j]
                    for k in range(p):
                        A2[r, k] += wrj * A[j, k]
                c2[r] = s
            A = A2
            c = c2
        d[0] = c[0] - beta_ref[0]
        for k in range(p):
            d[k + 1] = A[0, k] - beta_ref[k + 1]
    s = 0.0
    if info.size == 0:
        for k in range(q):
            s += d[k] * d[k]
        return math.sqrt(s)
    for j in range(q):
        r = 0.0
        for k in range(q):
            r += info[j, k] * d[k]
        s += d[j] * r
    return math.sqrt(max(0.0, s))


@kernel(inline=True)
def objective(net, theta, grad, mask, keep_inv, threads, parts, totals, glm):
    """``F(theta) = sum w l / sum w + penalty``; its gradient into ``grad``.

    With ``glm`` (a network without hidden layers) the fixed chunks of
    :func:`simbench.kernels.network.glm_loss_grad` (``parts`` and ``totals`` are its work
    space: serially when ``threads`` is None, else on Numba's threads); otherwise
    ``mlp_loss_grad`` with the dropout ``mask`` (empty: none).  Inlined: a caller passing
    ``glm`` as a constant compiles only its own branch, and one whose ``threads`` argument is
    None (:data:`SERIAL`) never compiles the parallel chunks (Numba prunes a branch on
    ``is None`` of an argument typed None before typing it): the parallel variant, the
    costliest kernel to compile, is compiled only by a process that runs it.
    """
    if glm:
        if threads is None:
            _glm_chunks_serial(
                theta, net.X, net.y, net.weights, net.offset, net.logy, net.lcode, net.a,
                net.hcode, net.lam, True, parts, totals,
            )  # fmt: skip
        else:
            _glm_chunks_parallel(
                theta, net.X, net.y, net.weights, net.offset, net.logy, net.lcode, net.a,
                net.hcode, net.lam, True, parts, totals,
            )  # fmt: skip
        total = _reduce_chunks(parts, totals, grad)
    else:
        total = mlp_loss_grad(
            theta, net.sizes, net.offs, net.acts, net.hcode, net.lam, net.lcode, net.a,
            net.X, net.y, net.weights, net.offset, mask, keep_inv, grad,
        )  # fmt: skip
    for k in range(grad.size):
        grad[k] *= net.wscale
    return total * net.wscale + add_penalty(theta, net.penal, grad)


@kernel(inline=True)
def _validation_loss(val, theta, grad, parts, totals, no_mask, glm):
    """The mean validation loss without the penalty (the early-stopping criterion)."""
    f = objective(val, theta, grad, no_mask, 1.0, None, parts, totals, glm)
    s = 0.0
    for k in range(theta.size):
        s += val.penal[k] * theta[k] * theta[k]
    return f - 0.5 * s


@kernel(inline=True)
def _observe(st, steps, val, has_val, epoch, f, gnorm, track_ref, info, net, vwork, no_mask, glm):
    """Record epoch ``epoch`` in the history and apply the stopping rules; return a
    ``STOP_*`` code (see :class:`simbench.fit.optimizers.Monitor`, whose rules these are)."""
    ints = st.ints
    fl = st.floats
    r = ints[I_RECORDED]
    ints[I_RECORDED] = r + 1
    ints[I_EPOCH] = epoch
    st.h_loss[r] = f
    st.h_gnorm[r] = gnorm
    if track_ref is not None:
        st.h_dist[r] = coef_distance(st.theta, net.sizes, net.offs, track_ref, info)
    if not (math.isfinite(f) and math.isfinite(gnorm)):
        if has_val:
            st.h_val[r] = math.nan
        ints[I_BAD_EPOCH] = epoch
        return STOP_DIVERGED
    theta = st.theta
    moved = ints[I_HAS_GOOD] == 0
    if not moved:
        for k in range(theta.size):
            if theta[k] != st.last_good[k]:
                moved = True
                break
    _copy(theta, st.last_good)
    ints[I_HAS_GOOD] = 1
    previous = fl[F_LAST]
    fl[F_LAST] = f
    if has_val:
        vgrad, vparts, vtotals = vwork
        vl = _validation_loss(val, theta, vgrad, vparts, vtotals, no_mask, glm)
        st.h_val[r] = vl
        if vl < fl[F_BEST_VAL]:
            fl[F_BEST_VAL] = vl
            _copy(theta, st.best_theta)
            ints[I_BEST_EPOCH] = epoch
            ints[I_WAIT] = 0
        else:
            ints[I_WAIT] += 1
            if ints[I_WAIT] >= steps.patience:
                return STOP_EARLY
    if gnorm <= steps.tol:
        return STOP_CONVERGED
    if (
        steps.ftol > 0.0
        and moved
        and not math.isnan(previous)
        and abs(previous - f) <= steps.ftol * max(abs(previous), abs(f))
    ):
        return STOP_CONVERGED
    return STOP_NONE


@kernel
def _step_failed(st, epoch, has_val, tracking):
    """A step of ``epoch`` met a non-finite loss or gradient: record it as diverged."""
    r = st.ints[I_RECORDED]
    st.ints[I_RECORDED] = r + 1
    st.h_loss[r] = math.nan
    st.h_gnorm[r] = math.nan
    if has_val:
        st.h_val[r] = math.nan
    if tracking:
        st.h_dist[r] = math.nan
    st.ints[I_EPOCH] = epoch
    st.ints[I_BAD_EPOCH] = epoch
    return STOP_DIVERGED


@kernel
def _glm_batches(net, steps, st, mask, t):
    """An epoch of mini-batches of a network without hidden layers: ``(t, ok)`` of
    :func:`simbench.kernels.minibatch.minibatch_epoch`, compiling only its blocks."""
    return _batches(True, net, steps, st, mask, t)


@kernel
def _mlp_batches(net, steps, st, mask, t):
    """An epoch of mini-batches of a network with hidden layers (see :func:`_glm_batches`)."""
    return _batches(False, net, steps, st, mask, t)


@kernel(inline=True)
def _batches(glm, net, steps, st, mask, t):
    """The epoch's arguments taken from the records, for the two kernels above."""
    _, t, ok = _minibatch_epoch(
        glm, st.theta, net.sizes, net.offs, net.acts, net.hcode, net.lam, net.lcode, net.a,
        net.penal, net.X, net.y, net.weights, net.offset, st.perm, steps.batch_size, mask,
        steps.keep_inv, net.wscale, steps.kind, steps.lr, steps.momentum, steps.beta1,
        steps.beta2, steps.eps, st.m, st.v, t, False,
    )  # fmt: skip
    return t, ok


@kernel(inline=True)
def _first_order(
    glm, batches, net, val, steps, st, masks, draws, draws_per_epoch, n_epochs, track_ref, info,
    threads,
):  # fmt: skip
    """Run at most ``n_epochs`` epochs of ``steps`` on ``net``, continuing the run in ``st``.

    The body of the ``*_epochs`` kernels below, inlined into each with its own constants
    ``glm`` (no hidden layers) and ``batches`` (mini-batches), so each compiles only its
    path: a sweep of networks without hidden layers never compiles the MLP passes, a
    full-batch one never the mini-batch epoch.

    Parameters
    ----------
    net, val : Net
        The training data and the validation data (``val.X`` with no rows: no early
        stopping).
    steps : Steps
    st : State
        Continued in place; the history of this block goes to the first
        ``st.ints[I_RECORDED]`` entries of the ``h_*`` buffers (at least ``n_epochs + 1``
        each: the starting point is observed first when it has not been).
    masks : uint8 array (n_epochs, n, sum(h))
        Dropout keep-masks, one per epoch (shape ``(0, 0, 0)`` without dropout).
    draws : uint32 array
        ``draws_per_epoch`` 32-bit draws for the shuffle of each epoch of mini-batches,
        epoch after epoch (an epoch marked ``I_PENDING`` takes none).
    track_ref : None or array
        A coefficient vector whose distance is recorded, or None: then the distance is not
        compiled at all (Numba prunes the branch on ``is None`` of an argument typed None),
        so a run that records no distance, as a sweep without histories, never compiles
        it.
    info : array
        The matrix of that distance (empty: Euclidean).
    threads : None or bool
        :data:`SERIAL` or :data:`PARALLEL` (see :func:`objective`).

    Returns
    -------
    int
        A ``STOP_*`` code.  ``st.ints[I_MASKS_USED]`` says how many epochs of ``masks`` were
        used; with ``STOP_NEED_DRAWS``, ``st.ints[I_SHUFFLE_AT]`` is where the shuffle of the
        next epoch stopped.
    """
    theta = st.theta
    grad = st.grad
    ints = st.ints
    n = net.X.shape[0]
    q = theta.size
    has_val = val.X.shape[0] > 0
    tracking = track_ref is not None
    no_mask = np.empty((0, 0), np.uint8)
    nch = max(1, -(-n // 2048))
    parts = np.empty((nch, q))
    totals = np.empty(nch)
    nv = val.X.shape[0]
    vch = max(1, -(-nv // 2048))
    vwork = (np.empty(q), np.empty((vch, q)), np.empty(vch))
    ints[I_RECORDED] = 0
    ints[I_MASKS_USED] = 0
    # the starting point is observed first when it has not been; every point after a step
    # is observed too, at the same single place in the loop: each inlined copy of the
    # objective and the stopping rules costs the compiler seconds
    look = ints[I_OBSERVED] == 0
    ints[I_OBSERVED] = 1
    epoch = 0 if look else ints[I_EPOCH]
    used = 0
    w = 0
    while True:
        if look:
            f = objective(net, theta, grad, no_mask, 1.0, threads, parts, totals, glm)
            why = _observe(
                st, steps, val, has_val, epoch, f, norm2(grad), track_ref, info, net, vwork,
                no_mask, glm,
            )  # fmt: skip
            if why != STOP_NONE:
                return why
        look = True
        if not (used < n_epochs and epoch < steps.epochs):
            return STOP_NONE
        if batches:
            if ints[I_PENDING] == 0:
                at = shuffle(st.perm, draws[w : w + draws_per_epoch], n - 1)
                w += draws_per_epoch
                if at > 0:
                    ints[I_SHUFFLE_AT] = at
                    return STOP_NEED_DRAWS
        ints[I_PENDING] = 0
        epoch += 1
        mask = masks[used] if steps.dropout else no_mask
        used += 1
        ints[I_MASKS_USED] = used
        if batches:
            if glm:
                t, ok = _glm_batches(net, steps, st, mask, ints[I_T])
            else:
                t, ok = _mlp_batches(net, steps, st, mask, ints[I_T])
            ints[I_T] = t
            if not ok:
                return _step_failed(st, epoch, has_val, tracking)
        else:
            if steps.dropout:
                objective(net, theta, grad, mask, steps.keep_inv, threads, parts, totals, glm)
            if not _all_finite(grad):
                return _step_failed(st, epoch, has_val, tracking)
            ints[I_T] += 1
            opt_step(
                steps.kind, theta, grad, st.m, st.v, ints[I_T], steps.lr, steps.momentum,
                steps.beta1, steps.beta2, steps.eps,
            )  # fmt: skip


@kernel
def glm_epochs(
    net, val, steps, st, masks, draws, draws_per_epoch, n_epochs, track_ref, info, threads
):
    """Full-batch epochs of a network without hidden layers (see :func:`_first_order`)."""
    return _first_order(
        True, False, net, val, steps, st, masks, draws, draws_per_epoch, n_epochs, track_ref,
        info, threads,
    )  # fmt: skip


@kernel
def glm_batch_epochs(
    net, val, steps, st, masks, draws, draws_per_epoch, n_epochs, track_ref, info, threads
):
    """Mini-batch epochs of a network without hidden layers (see :func:`_first_order`)."""
    return _first_order(
        True, True, net, val, steps, st, masks, draws, draws_per_epoch, n_epochs, track_ref,
        info, threads,
    )  # fmt: skip


@kernel
def mlp_epochs(
    net, val, steps, st, masks, draws, draws_per_epoch, n_epochs, track_ref, info, threads
):
    """Full-batch epochs of a network with hidden layers (see :func:`_first_order`)."""
    return _first_order(
        False, False, net, val, steps, st, masks, draws, draws_per_epoch, n_epochs, track_ref,
        info, threads,
    )  # fmt: skip


@kernel
def mlp_batch_epochs(
    net, val, steps, st, masks, draws, draws_per_epoch, n_epochs, track_ref, info, threads
):
    """Mini-batch epochs of a network with hidden layers (see :func:`_first_order`)."""
    return _first_order(
        False, True, net, val, steps, st, masks, draws, draws_per_epoch, n_epochs, track_ref,
        info, threads,
    )  # fmt: skip


def first_order_block(glm: bool, batches: bool):
    """The compiled epochs for a network with (``glm`` False) or without hidden layers, by
    mini-batches or on the full data: one of the four ``*_epochs`` kernels, all with the
    arguments and result documented at :func:`_first_order`."""
    if glm:
        return glm_batch_epochs if batches else glm_epochs
    return mlp_batch_epochs if batches else mlp_epochs


# Newton: a step that finds no decrease of F along the direction ends the run (not a
# stopping rule of the monitor; the caller says so in its message).
STOP_NO_DECREASE = 5
# Armijo's sufficient-decrease constant of the step-halving line search, and its halvings.
ARMIJO = 1e-4
MAX_HALVINGS = 60
# What the Newton direction was solved with (the last one, in State.ints[I_DIRECTION]).
DIR_OBSERVED = 0
DIR_EXPECTED = 1
DIR_DAMPED = 2
DIR_GRADIENT = 3


@kernel
def newton_terms(net, theta, kind, threads, g, H, gs, Hs, totals):
    """``F(theta)``, its gradient into ``g`` and Hessian into ``H`` (``kind``: observed or
    expected ``l''``) for a network without hidden layers: the fixed chunks of
    :func:`simbench.kernels.network.glm_newton_terms` (``gs``, ``Hs``, ``totals`` their work
    space), scaled by ``1 / sum w``, plus the penalty."""
    n = net.X.shape[0]
    size = max(1, -(-n // totals.size))
    if threads is None:  # pruned before typing when None (see objective)
        _newton_chunks_serial(
            theta, net.X, net.y, net.weights, net.offset, size, net.lcode, net.a, net.hcode,
            net.lam, kind, gs, Hs, totals,
        )  # fmt: skip
    else:
        _newton_chunks_parallel(
            theta, net.X, net.y, net.weights, net.offset, size, net.lcode, net.a, net.hcode,
            net.lam, kind, gs, Hs, totals,
        )  # fmt: skip
    total = _reduce_newton(gs, Hs, totals, g, H)
    q = g.size
    for j in range(q):
        g[j] *= net.wscale
        for k in range(q):
            H[j, k] *= net.wscale
    for j in range(q):
        H[j, j] += net.penal[j]
    return total * net.wscale + add_penalty(theta, net.penal, g)


@kernel
def _descent(M, g, L, dsc, d):
    """``d = -M^-1 g`` by the scaled Cholesky factorisation; False if ``M`` is not
    (numerically) positive definite or not finite."""
    for j in range(M.shape[0]):
        for k in range(M.shape[0]):
            if not math.isfinite(M[j, k]):
                return False
    if scaled_cholesky(M, L, dsc, 0.0) >= 0:
        return False
    cholesky_solve(L, dsc, g, d)
    for k in range(d.size):
        d[k] = -d[k]
    return True


@kernel
def newton_run(net, val, steps, st, track_ref, info, threads):
    """Newton's method with step halving on ``net`` (no hidden layers), continuing ``st``.

    The direction solves ``H d = -g`` by Cholesky with the observed Hessian; if that is not
    positive definite, with the expected (Fisher) one; then with the expected one plus a
    ridge growing tenfold from ``1e-10 max(1, max diag)`` (Levenberg damping), 30 times at
    most; else ``d = -g``.  The step ``alpha d`` halves from ``alpha = 1`` until
    ``F(theta + alpha d) <= F + ARMIJO alpha g'd + 1e-15 |F|`` (the slack lets a step
    through at the floating-point floor, where ``F`` cannot decrease measurably; ``ftol``
    then ends the run); ``STOP_NO_DECREASE`` when none of ``MAX_HALVINGS`` steps does.
    Every iteration is observed as an epoch (:func:`_first_order`'s rules; ``track_ref``
    and ``info`` as there).
    """
    theta = st.theta
    g = st.grad
    ints = st.ints
    q = theta.size
    n = net.X.shape[0]
    has_val = val.X.shape[0] > 0
    no_mask = np.empty((0, 0), np.uint8)
    nch = max(1, min(16, -(-n // 2048)))
    gs = np.empty((nch, q))
    Hs = np.empty((nch, q, q))
    totals = np.empty(nch)
    H = np.empty((q, q))
    He = np.empty((q, q))
    ge = np.empty(q)
    L = np.zeros((q, q))
    dsc = np.empty(q)
    d = np.empty(q)
    trial = np.empty(q)
    vgrad = np.empty(q)
    lch = max(1, -(-n // 2048))
    parts = np.empty((lch, q))
    ltotals = np.empty(lch)
    nv = val.X.shape[0]
    vch = max(1, -(-nv // 2048))
    vwork = (np.empty(q), np.empty((vch, q)), np.empty(vch))
    ints[I_RECORDED] = 0
    # the kinds as run-time values: literal constants would compile newton_terms twice
    observed = np.int64(HESS_OBSERVED)
    expected = np.int64(HESS_EXPECTED)
    epoch = 0
    while True:
        # the starting point, then every accepted step's, observed at this one place (an
        # inlined copy of the stopping rules costs the compiler seconds)
        f = newton_terms(net, theta, observed, threads, g, H, gs, Hs, totals)
        why = _observe(
            st, steps, val, has_val, epoch, f, norm2(g), track_ref, info, net, vwork, no_mask,
            True,
        )  # fmt: skip
        if why != STOP_NONE or epoch >= steps.epochs:
            return why
        epoch += 1
        how = DIR_OBSERVED
        if not _descent(H, g, L, dsc, d):
            how = DIR_EXPECTED
            newton_terms(net, theta, expected, threads, ge, He, gs, Hs, totals)
            if not _descent(He, g, L, dsc, d):
                how = DIR_DAMPED
                scale = 1.0
                for j in range(q):
                    scale = max(scale, abs(He[j, j]))
                ridge = 1e-10 * scale
                found = False
                for _ in range(30):
                    for j in range(q):
                        He[j, j] += ridge
                    found = _descent(He, g, L, dsc, d)
                    for j in range(q):
                        He[j, j] -= ridge
                    if found:
                        break
                    ridge *= 10.0
                if not found:
                    how = DIR_GRADIENT
                    for k in range(q):
                        d[k] = -g[k]
        ints[I_DIRECTION] = how
        slope = 0.0
        for k in range(q):
            slope += g[k] * d[k]
        alpha = 1.0
        accepted = False
        ft = math.nan
        for _ in range(MAX_HALVINGS):
            for k in range(q):
                trial[k] = theta[k] + alpha * d[k]
            ft = objective(net, trial, vgrad, no_mask, 1.0, threads, parts, ltotals, True)
            if math.isfinite(ft) and ft <= f + ARMIJO * alpha * slope + 1e-15 * abs(f):
                accepted = True
                break
            alpha *= 0.5
        if not accepted:
            return STOP_NO_DECREASE
        _copy(trial, theta)
