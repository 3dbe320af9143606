"""Reference training loop of the first-order methods: one epoch per Python iteration.

This is the loop simbench ran before its first-order methods moved into compiled code
(:func:`simbench.kernels.training.first_order_block`), kept as the reference those are
tested against: every epoch draws its dropout mask and permutation from the Generators,
takes its steps through :class:`simbench.fit.objective.Objective`, evaluates the full
objective and hands it to :class:`simbench.fit.optimizers.Monitor`, whose stopping rules
(tolerance, relative change, patience, divergence) are written in plain Python.

:func:`train_reference` is :func:`simbench.train` with this loop in place of the compiled
one, for networks trained by gd, sgd, momentum, Nesterov or Adam.
"""

from __future__ import annotations

from unittest import mock

import numpy as np

from simbench.fit import network as fit_network
from simbench.fit import optimizers as opt
from simbench.fit.objective import NO_MASK
from simbench.kernels import minibatch as k
from simbench.kernels.training import norm2


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


def train_reference(*args, **kwargs):
    """:func:`simbench.train` with the reference loop for the first-order methods."""
    with mock.patch.object(opt, "_first_order", first_order):
        return fit_network.train(*args, **kwargs)
