"""Reference training loop of the first-order methods: one epoch per Python iteration.

This is the loop simbench ran before its first-order methods moved into compiled code
(:func:`simbench.kernels.training.first_order_block`), kept as the reference those are
tested against: every epoch draws its dropout mask and permutation from the Generators,
takes its steps through :class:`simbench.fit.objective.Objective`, evaluates the full
objective and hands it to :class:`simbench.fit.optimizers.Monitor`, whose stopping rules
(tolerance, relative change, patience, divergence) are written in plain Python.

:func:`train_reference` is :func:`simbench.train` with this loop in place of the compiled
one, for networks trained by gd, sgd, momentum, Nesterov or Adam.  :func:`newton` is
Newton's method as it ran in Python, its directions solved by LAPACK's Cholesky (through
scipy): the compiled one solves them by its own, so the two agree to rounding.
"""

from __future__ import annotations

import math
from unittest import mock

import numpy as np

from simbench.fit import network as fit_network
from simbench.fit import optimizers as opt
from simbench.fit.objective import NO_MASK
from simbench.kernels import minibatch as k
from simbench.kernels.training import ARMIJO, MAX_HALVINGS, norm2


def dropout_mask(rng, n, width, rate):
    """Keep-masks (1 = kept) for ``n`` rows of ``width`` hidden units."""
    keep = rng.random((n, width), dtype=np.float32) >= np.float32(rate)
    return keep.view(np.uint8)


def first_order(obj, theta, cfg, monitor, shuffle_rng, dropout_rng):
    """Train ``theta`` in place, one epoch per iteration; return the monitor's outcome."""
    q = obj.n_params
    grad = np.empty(q)
    m = np.zeros(q)
    v = np.zeros(q)
    t = 0
    kind = opt._STEP_CODES[cfg.optimizer]
    hyper = (cfg.lr, cfg.momentum, cfg.beta1, cfg.beta2, cfg.eps)
    full = cfg.batch_size is None or cfg.batch_size >= obj.n
    rate = cfg.dropout
    keep_inv = 1.0 / (1.0 - rate)
    if not full:
        perm = opt.row_order(obj.n)
    f = obj.loss_grad(theta, grad)
    reason = monitor.observe(0, theta, f, norm2(grad))
    epoch = 0
    while reason is None and epoch < cfg.epochs:
        epoch += 1
        mask = dropout_mask(dropout_rng, obj.n, obj.hidden_width, rate) if rate else NO_MASK
        if full:
            if rate:
                obj.loss_grad(theta, grad, mask, keep_inv)
            if not np.isfinite(grad).all():
                reason = monitor.step_failed(epoch)
                break
            t += 1
            k.opt_step(kind, theta, grad, m, v, t, *hyper)
        else:
            opt.shuffle_rows(perm, shuffle_rng)
            t, ok = obj.minibatch_epoch(
                theta, perm, cfg.batch_size, mask, keep_inv, kind, hyper, m, v, t
            )
            if not ok:
                reason = monitor.step_failed(epoch)
                break
        f = obj.loss_grad(theta, grad)
        reason = monitor.observe(epoch, theta, f, norm2(grad))
    return monitor.finish(theta, reason)


def newton_direction(obj, theta, g, H):
    """Solve ``H d = -g`` by Cholesky: observed Hessian, else the expected (Fisher) one, else
    the expected one with a growing ridge (Levenberg damping)."""
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    def solve(M):
        try:
            return -cho_solve(cho_factor(M, lower=True, check_finite=True), g)
        except (LinAlgError, ValueError):
            return None

    d = solve(H)
    if d is not None:
        return d, "observed"
    _, _, He = obj.newton_terms(theta, expected=True)
    d = solve(He)
    if d is not None:
        return d, "expected"
    scale = max(1.0, float(np.max(np.abs(np.diag(He)))))
    ridge = 1e-10 * scale
    eye = np.eye(len(g))
    for _ in range(30):
        d = solve(He + ridge * eye)
        if d is not None:
            return d, "damped"
        ridge *= 10.0
    return -g, "gradient"


def newton(obj, theta, cfg, monitor):
    f, g, H = obj.newton_terms(theta, expected=False)
    reason = monitor.observe(0, theta, f, norm2(g))
    epoch = 0
    note = ""
    while reason is None and epoch < cfg.epochs:
        epoch += 1
        d, _kind = newton_direction(obj, theta, g, H)
        slope = float(g @ d)
        alpha = 1.0
        accepted = False
        for _ in range(MAX_HALVINGS):
            trial = theta + alpha * d
            ft = obj.value(trial)
            # the |f| * 1e-15 slack lets a step through at the floating-point floor, where
            # F cannot decrease measurably; ftol then ends the loop
            if math.isfinite(ft) and ft <= f + ARMIJO * alpha * slope + 1e-15 * abs(f):
                accepted = True
                break
            alpha *= 0.5
        if not accepted:
            note = " (no decrease along the Newton direction)"
            break
        theta[:] = trial
        f, g, H = obj.newton_terms(theta, expected=False)
        reason = monitor.observe(epoch, theta, f, norm2(g))
    return monitor.finish(theta, reason, note)


def train_reference(*args, **kwargs):
    """:func:`simbench.train` with the reference loops of the first-order methods and
    Newton's method."""
    with (
        mock.patch.object(opt, "_first_order", first_order),
        mock.patch.object(opt, "_newton", newton),
    ):
        return fit_network.train(*args, **kwargs)
