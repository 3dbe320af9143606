"""The iteration of :func:`simbench.fit.glm.fit_glm`: Fisher scoring / Newton with
step-halving over compiled passes (:mod:`simbench.kernels.irls`), with chord steps and
subsampled early passes on larger problems.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# outcomes of fisher_scoring
CONVERGED = "converged"
MAX_ITER = "max_iter"
RANK_DEFICIENT = "rank_deficient"
NO_START = "no_start"  # neither the first IRLS step nor the null model gives valid means
STALLED = "stalled"  # step-halving could not lower the deviance away from an optimum
SINGULAR = "singular"  # the information lost rank during the iterations
NONFINITE = "nonfinite"  # X'WX not finite at the start


@dataclass
class Iterate:
    """State of the Fisher-scoring loop (internal)."""

    outcome: str
    iterations: int
    deviance: float
    decrement: float
    column: int
    beta: np.ndarray
    eta: np.ndarray
    A: np.ndarray
    g: np.ndarray
    history: np.ndarray
    ybar: float


def fisher_scoring(
    k, X, icpt, fcode, fpar, lcode, lpar, y, w, off, tol, max_iter, disp_rows, newton
) -> Iterate:
    """Fisher scoring with step-halving (see :mod:`simbench.kernels.irls`).

    Each kernel call is one pass over the rows; the loop runs a handful of times.  The first
    step is the weighted regression from the starting means; if it leaves the domain, the
    intercept-only model (all-zero coefficients without intercept) is the starting point and
    the segment towards the first step is halved until the deviance drops.

    With ``newton`` (non-canonical links, where the observed and expected information
    differ) the iteration switches to Newton-Raphson once a full Fisher step is shorter than
    one standard error (with chord steps: about three): Fisher scoring converges only
    linearly there, at a rate that can approach 1 (a Gamma-identity fit to 60 points needs
    160 Fisher steps and 8 Newton steps).  Where the observed information is not positive
    definite it returns to Fisher scoring.

    Pass kinds (the ``stride`` of :func:`simbench.kernels.irls.irls_pass`), for problems
    large enough (``k.CHORD_MIN_COLUMNS``, ``k.CHORD_MIN_WORK``): far from the optimum ``A``
    is estimated from a subsample of the rows (stride > 1); near it (a decrement below
    ``k.CHORD_DECREMENT`` dispersions) one pass takes all rows and its factor serves the
    chord steps (stride 0, score only) that follow while each shrinks the decrement at
    least ``k.CHORD_CONTRACTION``-fold.  See :func:`simbench.fit.glm.fit_glm`'s notes.

    Convergence: the relative deviance change ``|D_k - D_{k-1}| <= tol (|D_k| + 0.1)`` and
    the Newton decrement in dispersion units ``g'A^-1 g / phi~ <= tol^2``, i.e. the next step
    is shorter than ``tol`` standard errors (``phi~ = (|D| + 0.1) / disp_rows`` for families
    with a dispersion, else 1).  Where rounding stops the decrement from falling further
    (it no longer halves from one iterate to the next) ``<= tol`` suffices.
    """
    n, p = X.shape
    q = p + icpt
    L = np.zeros((q, q))
    dsc = np.empty(q)
    history = np.empty(max_iter + 1)
    bordered = np.empty((q + 1, q + 1))
    work = np.empty((k.n_blocks(n), q + 1, q + 1))
    # A, g and the direction delta of the current point; only accepted passes write them
    A, g, delta = np.empty((q, q)), np.empty(q), np.empty(q)
    eta, eta_t = np.empty(n), np.empty(n)  # current point, trial point
    ly = k.row_constants(fcode, lcode, y)  # once per fit: no logarithm per row and pass
    nan_beta = np.full(q, math.nan)
    mode = k.MODE_FISHER

    def result(outcome, beta, it=0, dev=math.nan, dec=math.nan, column=-1):
        return Iterate(outcome, it, dev, dec, column, beta, eta, A, g, history[:it].copy(), ybar)

    def trial(b, mode_, dev_max, eta_out, stride=1):
        dev_, col, dec_ = k.irls_pass(
            X, icpt, b, mode_, fcode, fpar, lcode, lpar, y, w, off, dev_max, k.RANK_TOL,
            eta_out, A, g, delta, L, dsc, bordered, work, stride, ly,
        )  # fmt: skip
        return float(dev_), int(col), float(dec_)

    def reevaluate(mode_):
        """A pass over all rows at the current point: its exact A and direction."""
        nonlocal eta, eta_t
        _, col, dec_ = trial(beta, mode_, math.inf, eta_t)
        eta, eta_t = eta_t, eta
        return col, dec_

    def back_to_fisher():
        """Leave Newton's method for good: the expected A and Fisher direction at this point."""
        nonlocal mode, newton, column, dec, fresh
        mode = k.MODE_FISHER
        newton = False
        column, dec = reevaluate(mode)
        fresh = True

    ybar = float(k.irls_start_eta(fcode, fpar, lcode, lpar, y, w, eta))
    if not math.isfinite(ybar):
        return result(NO_START, nan_beta)
    # with few columns the cross-product costs little next to the rest of a pass, and full
    # Newton steps, converging quadratically, need fewer passes than chord steps
    chords = q >= k.CHORD_MIN_COLUMNS and n * q * q >= k.CHORD_MIN_WORK
    # and then, for many rows per coefficient, A from a subsample of the rows until the
    # iteration is near the optimum
    sub = max(1, min(k.SUBSAMPLE_MAX_STRIDE, n // (k.SUBSAMPLE_ROWS_PER_COEF * q))) if chords else 1
    stride = sub  # of the last pass with a factor

    _, column, _ = trial(nan_beta, k.MODE_START, math.inf, eta, stride=sub)
    if column >= 0 and sub > 1:
        # singular on the subsample (a rare level, say): the rank is decided on all rows,
        # and the iteration takes all rows from here on
        _, column, _ = trial(nan_beta, k.MODE_START, math.inf, eta)
        stride = sub = 1
    if not (np.isfinite(A).all() and np.isfinite(g).all()):
        return result(NONFINITE, nan_beta)
    if column >= 0:
        return result(RANK_DEFICIENT, nan_beta, column=column)
    # a subsample's A can be regular where that of all rows is (numerically) singular: then
    # the first pass over all rows decides the rank
    rank_checked = stride == 1
    first = delta.copy()  # the regression step from the starting means: beta_1 itself

    beta = first
    dev, column, dec = trial(beta, mode, math.inf, eta_t, stride=sub)
    stride = sub
    if column == -2:
        stride = 1
        beta = np.zeros(q)
        if icpt:
            beta[0] = float(k.link_g(lcode, lpar, ybar))
        dev, column, dec = trial(beta, mode, math.inf, eta_t)
        if column == -2:
            return result(NO_START, nan_beta)
        eta, eta_t = eta_t, eta
        t = 0.5
        for _ in range(k.MAX_HALVINGS):
            cand = beta + t * (first - beta)
            dev_c, col_c, dec_c = trial(cand, mode, dev, eta_t)
            if col_c != -2:
                beta, dev, column, dec = cand, dev_c, col_c, dec_c
                eta, eta_t = eta_t, eta
                break
            t *= 0.5
    else:
        eta, eta_t = eta_t, eta
    history[0] = dev
    it = 1
    dev_prev = math.inf
    dec_prev = math.inf
    fresh = True  # whether the current point's direction comes from a pass with a factor
    refresh = False  # a chord step was halved: its factor is stale, the next pass is full
    while True:
        if column >= 0 and stride == 1 and not rank_checked and mode != k.MODE_NEWTON:
            return result(RANK_DEFICIENT, nan_beta, it, column=column)
        if column < 0 and stride == 1:
            rank_checked = True
        if column >= 0:
            if stride > 1:
                # singular on the subsample (say a rare level missing from it): all rows,
                # from here on
                column, dec = reevaluate(mode)
                stride = sub = 1
                fresh, refresh = True, False
                continue
            if mode == k.MODE_NEWTON:
                # observed information not positive definite here
                back_to_fisher()
                continue
            return result(SINGULAR, beta, it, dev, math.nan, column)
        scale = abs(dev) + 0.1
        phi = scale / disp_rows if disp_rows > 0 else 1.0
        # after a chord step, whose convergence is linear rather than quadratic, the decrement
        # must fall further (k.CHORD_POLISH), so that the fit ends as close to the optimum as
        # a last Newton step would have brought it (canonical links balance to rounding)
        target = tol * tol * phi * (1.0 if fresh else k.CHORD_POLISH)
        if abs(dev - dev_prev) <= tol * scale and (
            dec <= target or (dec <= tol * phi and dec > 0.5 * dec_prev)
        ):
            return result(CONVERGED, beta, it, dev, dec)
        if it >= max_iter:
            return result(MAX_ITER, beta, it, dev, dec)
        if newton and mode == k.MODE_FISHER and dec <= (k.CHORD_DECREMENT if chords else 1.0) * phi:
            # within a standard error of the optimum (with chord steps: within the reach of
            # their factor, which should then be the observed information): from the next
            # point on, the passes accumulate the observed information (this direction is
            # still Fisher's), and chord steps wait for its factor
            mode = k.MODE_NEWTON
            refresh = True
        # Far from the optimum, A from a subsample of the rows will do (the steps are
        # Newton-like whatever its sampling error); near it, the exact A, whose factor the
        # chord steps then reuse: passes that accumulate only the score (O(q) per row, not
        # O(q^2)), as long as the last one contracted well.
        near = chords and dec <= k.CHORD_DECREMENT * phi
        use_chord = (
            near
            and stride == 1
            and not refresh
            and (fresh or dec <= k.CHORD_CONTRACTION * dec_prev)
        )
        pass_stride = 0 if use_chord else (1 if near else sub)
        step = delta.copy()
        t = 1.0
        for _ in range(k.MAX_HALVINGS + 1):
            cand = beta + t * step
            dev_c, col_c, dec_c = trial(
                cand, mode, dev + k.DEV_SLACK * scale, eta_t, stride=pass_stride
            )
            if col_c != -2:
                break
            t *= 0.5
        else:
            # at the rounding floor of the deviance the predicted gain is negligible
            if dec <= tol * phi:
                return result(CONVERGED, beta, it, dev, dec)
            if not fresh or stride > 1:
                # the direction came from a stale or a subsampled factor: the exact A at
                # this point, whose direction the next trial takes (all rows from here on)
                column, dec = reevaluate(mode)
                stride = sub = 1
                fresh = refresh = True
                continue
            if mode == k.MODE_NEWTON:
                back_to_fisher()
                continue
            return result(STALLED, beta, it, dev, dec)
        beta = cand
        eta, eta_t = eta_t, eta
        dev_prev, dev = dev, dev_c
        column, dec_prev, dec = col_c, dec, dec_c
        if use_chord:
            fresh = False
            refresh = t != 1.0
        else:
            stride = pass_stride
            fresh = True
            refresh = False
        history[it] = dev
        it += 1
