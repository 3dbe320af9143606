"""Branch-free elementary functions that vectorise.

LLVM vectorises a loop only if its body has no calls and no unpredictable branches; a libm
``exp`` per element costs several times more than these inlined versions over an array.
They are used where a loop over rows is otherwise memory bound (network activations and
loss derivatives, the Poisson-log and Gamma-log rows of IRLS) and are tested against libm:
Cody-Waite reduction ``x = k ln2 + r``, ``|r| <= ln2 / 2``, the Taylor series of ``expm1``
to degree 13, and ``2^k`` built from its exponent bits.
"""

from __future__ import annotations

import math

import numpy as np

from simbench._jit import kernel

_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10


@kernel
def _expm1_poly(r):
    """``e^r - 1`` for ``|r| <= ln2 / 2`` by its Taylor series to degree 13 (error < 1 ulp)."""
    return r * (
        1.0
        + r
        * (
            0.5
            + r
            * (
                1.6666666666666666e-01
                + r
                * (
                    4.1666666666666664e-02
                    + r
                    * (
                        8.3333333333333332e-03
                        + r
                        * (
                            1.3888888888888889e-03
                            + r
                            * (
                                1.9841269841269841e-04
                                + r
                                * (
                                    2.4801587301587302e-05
                                    + r
                                    * (
                                        2.7557319223985893e-06
                                        + r
                                        * (
                                            2.7557319223985888e-07
                                            + r
                                            * (
                                                2.5052108385441720e-08
                                                + r
                                                * (
                                                    2.0876756987868100e-09
                                                    + r * 1.6059043836821613e-10
                                                )
                                            )
                                        )
                                    )
                                )
                            )
                        )
                    )
                )
            )
        )
    )


@kernel
def _pow2(k):
    """``2^k`` for an integral float ``k`` in [-1022, 1023], built from its exponent bits."""
    bits = np.int64((np.int64(k) + 1023) << 52)
    return bits.view(np.float64)


@kernel(inline=True)
def _expm1_nonneg(x):
    """``e^x - 1`` for ``0 <= x <= 700``, without branches or calls (so loops vectorise)."""
    k = math.floor(x * _INV_LN2 + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    s = _pow2(k)
    return s * _expm1_poly(r) + (s - 1.0)


@kernel(inline=True)
def _exp_nonpos(x):
    """``e^x`` for ``-708 <= x <= 0``, without branches or calls."""
    k = math.floor(x * _INV_LN2 + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    s = _pow2(k)
    return s + s * _expm1_poly(r)


# beyond these e^x overflows to inf, or is below the smallest normal number (returned as 0)
_EXP_MAX = 709.782712893384
_EXP_MIN_NORMAL = -708.3964185322641


@kernel
def exp_fast(x):
    """``e^x`` without calls or unpredictable branches, so loops over it vectorise.

    Cody-Waite reduction ``x = k ln2 + r``, ``|r| <= ln2 / 2``, and ``2^k (1 + expm1(r))``
    with the degree-13 series: within 1 ulp of the correctly rounded value where ``e^x`` is
    a normal number (tested against libm).  Above ``_EXP_MAX`` the result is inf, below
    ``_EXP_MIN_NORMAL`` 0 (the subnormal range, where libm returns at most 2.2e-308), nan
    for nan.
    """
    # k in [-1022, 1024] keeps the bits of 2^k valid; outside, the result is replaced below
    k = min(max(math.floor(x * _INV_LN2 + 0.5), -1022.0), 1024.0)
    # 2^k in two factors, so that k = 1024 (x near _EXP_MAX) does not overflow the bits
    k1 = math.floor(k * 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    e = (_pow2(k1) * (1.0 + _expm1_poly(r))) * _pow2(k - k1)
    e = math.inf if x > _EXP_MAX else e
    return 0.0 if x < _EXP_MIN_NORMAL else e


_SQRT2 = 1.4142135623730951


@kernel
def log1p_unit(t):
    """``log(1 + t)`` for ``0 <= t <= 1`` without calls or unpredictable branches.

    ``u = 1 + t`` rounded, with its rounding error carried as ``(t - (u - 1)) / u``; ``u`` is
    halved above sqrt(2) (exactly), so ``f = u - 1`` (exact) lies in [-0.29, 0.42]; then
    ``log(1 + f) = f - (f^2/2 - s (f^2/2 + R))`` with ``s = f / (2 + f)`` and
    ``R = sum_k 2 s^(2k) / (2k + 1)`` by its Taylor series to ``s^22`` (``s^2 < 0.03``).
    Within 1 ulp of the correctly rounded value on [0, 1] (tested against libm).
    """
    u = 1.0 + t
    c = (t - (u - 1.0)) / u
    big = u > _SQRT2
    m = u * 0.5 if big else u
    k = 1.0 if big else 0.0
    return k * _LN2_HI + (_log1p_reduced(m - 1.0) + (k * _LN2_LO + c))


@kernel
def _log1p_reduced(f):
    """``log(1 + f)`` for ``-0.29 <= f <= 0.42`` (``1 + f`` in [sqrt(1/2), sqrt(2)])."""
    s = f / (2.0 + f)
    z = s * s
    r = z * (
        0.6666666666666666
        + z
        * (
            0.4
            + z
            * (
                0.2857142857142857
                + z
                * (
                    0.2222222222222222
                    + z
                    * (
                        0.18181818181818182
                        + z
                        * (
                            0.15384615384615385
                            + z
                            * (
                                0.13333333333333333
                                + z
                                * (
                                    0.11764705882352941
                                    + z
                                    * (
                                        0.10526315789473684
                                        + z * (0.09523809523809523 + z * 0.08695652173913043)
                                    )
                                )
                            )
                        )
                    )
                )
            )
        )
    )
    hfsq = 0.5 * f * f
    return f - (hfsq - s * (hfsq + r))


@kernel
def log_fast(x):
    """``log x`` for a positive normal ``x`` without calls or unpredictable branches.

    ``x = 2^e m`` from the bits of ``x``, ``m`` in [sqrt(1/2), sqrt(2)), then
    ``e ln2 + log(1 + (m - 1))`` by the series of :func:`log1p_unit`.  Within 1 ulp of the
    correctly rounded value (tested against libm); callers check that ``x`` is positive,
    finite and normal (other inputs give meaningless values, not exceptions).
    """
    bits = np.float64(x).view(np.int64)
    e = (bits >> 52) - 1023
    m = np.int64((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000).view(np.float64)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    k = np.float64(e + 1) if big else np.float64(e)
    return k * _LN2_HI + (_log1p_reduced(m - 1.0) + k * _LN2_LO)


_TINY_NORMAL = 2.2250738585072014e-308
_TWO54 = 18014398509481984.0  # 2^54: scales a subnormal into the normal range
_LN2_54 = 37.42994775023704  # 54 ln 2


@kernel
def log_y_or_zero(y, out):
    """``out = log y`` where ``y > 0``, 0 where ``y = 0``, nan elsewhere (``y < 0`` or nan):
    the per-row constant of the Poisson and Gamma deviances, branch-free (:func:`log_fast`, a
    subnormal ``y`` scaled by 2^54 first) so the loop vectorises."""
    for i in range(y.shape[0]):
        v = y[i]
        small = v < _TINY_NORMAL
        lv = log_fast(v * _TWO54 if small else v) - (_LN2_54 if small else 0.0)
        out[i] = lv if v > 0.0 else (0.0 if v == 0.0 else math.nan)
