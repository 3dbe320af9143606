"""Hidden-layer activation kernels: ``f(x)`` and ``f'(x)`` for every activation code.

One scalar kernel per quantity dispatching on the integer ``code`` of
:mod:`simbench.kernels.codes`, ``act_fd`` returning both (a forward pass that keeps the
derivative for backpropagation needs both at once), and array loops over 1-D arrays writing
into ``out`` (2-D callers pass ``a.ravel()`` of a contiguous array).

Stable forms: the sigmoid branches on the sign of ``x``; its derivative and that of ``tanh``
are written with ``z = e^{-|x|}`` (``sigma' = z / (1 + z)^2``; ``tanh' = 4 z^2 / (1 + z^2)^2``
for ``|x| >= 1/2``), so they keep full relative accuracy in the tails, where
``sigma (1 - sigma)`` or ``1 - tanh^2`` would round to zero; softplus is ``log(1 + e^x)``
piecewise.  ReLU's derivative at 0 is taken to be 0.
"""

from __future__ import annotations

import math

from simbench._jit import kernel
from simbench.kernels import codes

_IDENTITY = codes.ACT_IDENTITY
_RELU = codes.ACT_RELU
_TANH = codes.ACT_TANH
_SIGMOID = codes.ACT_SIGMOID
_SOFTPLUS = codes.ACT_SOFTPLUS


@kernel
def _sigmoid(x):
    """``1 / (1 + e^-x)`` by the sign of ``x``: nothing overflows."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@kernel
def _sigmoid_d(x):
    """``sigma'(x) = e^{-|x|} / (1 + e^{-|x|})^2``."""
    z = math.exp(-abs(x))
    t = 1.0 + z
    return z / (t * t)


@kernel
def _tanh_d(x):
    """``1 - tanh(x)^2``, as ``4 e^{-2|x|} / (1 + e^{-2|x|})^2`` away from 0 (no cancellation)."""
    if abs(x) < 0.5:
        # here tanh^2 < 0.22, so the subtraction is harmless, and it cannot round above 1
        t = math.tanh(x)
        return 1.0 - t * t
    z = math.exp(-2.0 * abs(x))
    t = 1.0 + z
    return 4.0 * z / (t * t)


@kernel
def _softplus(x):
    """``log(1 + e^x)``, as ``log1p(exp(x))`` up to ``x = 36`` and ``x + e^-x`` beyond (where
    ``e^-x`` is below half an ulp of ``x``, and ``exp`` would overflow from 709 on).

    A composition of monotone functions, so it never decreases from one float to the next;
    ``x + log1p(e^-x)``, the usual form for positive ``x``, adds an increasing and a
    decreasing term and can step down by an ulp."""
    if x > 36.0:
        return x + math.exp(-x)
    return math.log1p(math.exp(x))


@kernel(inline=True)
def act_f(code, x):
    """Activation ``f(x)``."""
    if code == _IDENTITY:
        return x
    elif code == _RELU:
        return x if x > 0.0 else 0.0
    elif code == _TANH:
        return math.tanh(x)
    elif code == _SIGMOID:
        return _sigmoid(x)
    elif code == _SOFTPLUS:
        return _softplus(x)
    return math.nan


@kernel(inline=True)
def act_d(code, x):
    """Derivative ``f'(x)``; ReLU's is 0 at 0."""
    if code == _IDENTITY:
        return 1.0
    elif code == _RELU:
        return 1.0 if x > 0.0 else 0.0
    elif code == _TANH:
        return _tanh_d(x)
    elif code == _SIGMOID:
        return _sigmoid_d(x)
    elif code == _SOFTPLUS:
        return _sigmoid(x)
    return math.nan


@kernel
def act_fd(code, x):
    """``(f(x), f'(x))``."""
    if code == _IDENTITY:
        return x, 1.0
    elif code == _RELU:
        if x > 0.0:
            return x, 1.0
        return 0.0, 0.0
    elif code == _TANH:
        return math.tanh(x), _tanh_d(x)
    elif code == _SIGMOID:
        return _sigmoid(x), _sigmoid_d(x)
    elif code == _SOFTPLUS:
        return _softplus(x), _sigmoid(x)
    return math.nan, math.nan


@kernel
def act_f_arr(code, x, out):
    """``out[i] = f(x[i])`` over a 1-D array."""
    for i in range(x.shape[0]):
        out[i] = act_f(code, x[i])


@kernel
def act_d_arr(code, x, out):
    """``out[i] = f'(x[i])`` over a 1-D array."""
    for i in range(x.shape[0]):
        out[i] = act_d(code, x[i])


@kernel
def act_fd_arr(code, x, f_out, d_out):
    """``f_out[i], d_out[i] = f(x[i]), f'(x[i])`` over a 1-D array."""
    for i in range(x.shape[0]):
        f_out[i], d_out[i] = act_fd(code, x[i])
