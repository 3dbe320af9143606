"""The true coefficients of a scenario (see :mod:`simbench.data`'s notes for the rule).

The slopes are a fixed direction scaled to the population standard deviation ``signal`` of
the linear predictor; the intercept gives the population mean response ``mean`` (exactly
for the log and identity links, numerically over an exact representation of the design
for the others).  The whole population must give valid means: every point of a bounded
design, +-``TAIL_Z`` sd of the Gaussian part of an unbounded one.  Everything here depends
on the scenario alone, never on a data seed, and is computed without BLAS (bit for bit the
same on every machine and thread count).

A true predictor that is not linear (the scenario key ``predictor``) is a
:class:`TruePredictor`, built by :func:`true_predictor` from the moments of the expression
on the scenario's fixed population sample (:func:`simbench.data.population_sample`); the
rule is in :mod:`simbench.data`'s notes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from . import families, links
from .design import UNIFORM_HALF_WIDTH, population_sample
from .errors import ValidationError
from .kernels import codes

if TYPE_CHECKING:
    from .data import Scenario
    from .expression import Expression

TAIL_Z = 6.0  # an unbounded design must be in the domain within +-TAIL_Z sd
_GL_NODES = 48  # Gauss-Legendre nodes for the Gaussian part on [-TAIL_Z, TAIL_Z]
_MAX_ENUMERATED = 10  # binary columns enumerated exactly (2^10 atoms), beyond: Monte Carlo
_MC_SIZE = 1 << 16
_MC_SIZE_MIXED = 1 << 12
_MC_SEED = 20260101  # fixed: the truth must not depend on the data seed


def _direction(p: int) -> np.ndarray:
    j = np.arange(1, p + 1, dtype=np.float64)
    return np.where(j % 2 == 1, 1.0, -1.0) / np.sqrt(j)


def _design_moments(s: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Population mean vector and covariance matrix of the covariates."""
    p = s.p
    if s.design == "columns":
        cols = s.column_list
        return np.array([c.mean() for c in cols]), np.diag([c.variance() for c in cols])
    if s.design == "categorical":
        q = 1.0 / s.levels
        return np.full(p, q), np.diag(np.full(p, q)) - q * q
    if s.design == "correlated":
        if s.correlation == "equi":
            cov = np.full((p, p), s.rho)
            np.fill_diagonal(cov, 1.0)
        else:
            j = np.arange(p)
            cov = s.rho ** np.abs(j[:, None] - j[None, :]).astype(np.float64)
        return np.zeros(p), cov
    return np.zeros(p), np.eye(p)


def _rademacher_atoms(b: np.ndarray, size: int = _MC_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of ``sum_j b_j s_j`` with iid signs ``s_j = +-1``: atoms and weights
    (all ``2^k`` sign patterns, or a fixed sample of ``size`` of them)."""
    k = b.size
    if k <= _MAX_ENUMERATED:
        bits = (np.arange(1 << k)[:, None] >> np.arange(k)[None, :]) & 1
        signs = 2.0 * bits - 1.0
        return rowdot(signs, b), np.full(1 << k, 1.0 / (1 << k))
    rng = np.random.Generator(np.random.PCG64(_MC_SEED))
    signs = 2.0 * rng.integers(0, 2, size=(size, k)) - 1.0
    return rowdot(signs, b), np.full(size, 1.0 / size)


def _quad(cov: np.ndarray, b: np.ndarray) -> float:
    """``b' cov b`` without BLAS, so the truth does not depend on thread counts."""
    return float(np.sum(np.sum(cov * b[None, :], axis=1) * b))


def rowdot(X: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``X @ b`` as a column loop in fixed order (bit-reproducible, no BLAS)."""
    out = np.zeros(X.shape[0])
    for j in range(X.shape[1]):
        out += X[:, j] * b[j]
    return out


def _population(s: Scenario, slopes: np.ndarray):
    """The distribution of ``u = x' beta_x`` as ``u = A + sd Z``, ``Z ~ N(0, 1)``.

    Returns atoms and weights of ``A`` (exact, or a fixed Monte Carlo sample), exact bounds
    ``(a_min, a_max)`` of the support of ``A``, and ``sd`` of the Gaussian part.
    """
    zero = (np.zeros(1), np.ones(1))
    if s.design == "columns":
        return _columns_population(s.column_list, slopes)
    if s.design in ("gaussian", "correlated"):
        _, cov = _design_moments(s)
        return (*zero, 0.0, 0.0, math.sqrt(max(_quad(cov, slopes), 0.0)))
    if s.design == "categorical":
        atoms = np.concatenate([[0.0], slopes])
        w = np.full(atoms.size, 1.0 / atoms.size)
        return atoms, w, float(atoms.min()), float(atoms.max()), 0.0
    if s.design == "binary":
        atoms, w = _rademacher_atoms(slopes)
        bound = float(np.abs(slopes).sum())
        return atoms, w, -bound, bound, 0.0
    if s.design == "mixed":
        pc = (s.p + 1) // 2
        sd = float(np.sqrt(np.sum(slopes[:pc] ** 2)))
        if pc == s.p:
            return (*zero, 0.0, 0.0, sd)
        # fewer Monte Carlo atoms: each is integrated against the Gaussian part
        atoms, w = _rademacher_atoms(slopes[pc:], _MC_SIZE_MIXED)
        bound = float(np.abs(slopes[pc:]).sum())
        return atoms, w, -bound, bound, sd
    # uniform: no closed form for the sum of uniforms worth the trouble; a fixed sample
    rng = np.random.Generator(np.random.PCG64(_MC_SEED))
    U = rng.uniform(-UNIFORM_HALF_WIDTH, UNIFORM_HALF_WIDTH, size=(_MC_SIZE, s.p))
    bound = UNIFORM_HALF_WIDTH * float(np.abs(slopes).sum())
    return rowdot(U, slopes), np.full(_MC_SIZE, 1.0 / _MC_SIZE), -bound, bound, 0.0


def _columns_population(cols, slopes: np.ndarray):
    """``_population`` of a per-column design: the Gaussian columns are the Gaussian part
    (their means shift the atoms); the others are enumerated exactly when they are at most
    ``_MAX_ENUMERATED`` discrete columns, and otherwise a fixed sample."""
    gauss = [j for j, c in enumerate(cols) if c.is_gaussian]
    other = [j for j, c in enumerate(cols) if not c.is_gaussian]
    shift = float(sum(cols[j].mean() * slopes[j] for j in gauss))
    sd = math.sqrt(sum((cols[j].params[1] * slopes[j]) ** 2 for j in gauss))
    if not other:
        return np.array([shift]), np.ones(1), shift, shift, sd
    lo = shift + sum(min(slopes[j] * v for v in cols[j].support()) for j in other)
    hi = shift + sum(max(slopes[j] * v for v in cols[j].support()) for j in other)
    atoms = [cols[j].atoms() for j in other]
    if len(other) <= _MAX_ENUMERATED and all(a is not None for a in atoms):
        values, weights = np.array([shift]), np.ones(1)
        for j, (v, w) in zip(other, atoms, strict=True):
            values = (values[:, None] + slopes[j] * v[None, :]).ravel()
            weights = (weights[:, None] * w[None, :]).ravel()
        return values, weights, lo, hi, sd
    size = _MC_SIZE_MIXED if gauss else _MC_SIZE
    rng = np.random.Generator(np.random.PCG64(_MC_SEED))
    sample = np.column_stack([cols[j].draw(rng, size) for j in other])
    values = shift + rowdot(sample, slopes[other])
    return values, np.full(size, 1.0 / size), lo, hi, sd


def _log_mgf(s: Scenario, slopes: np.ndarray) -> float:
    """``log E[exp(x' beta_x)]`` for the design, exactly."""

    def log_cosh(b):
        a = np.abs(b)
        return float(np.sum(a + np.log1p(np.exp(-2.0 * a)) - math.log(2.0)))

    def log_sinhc(b):  # sum of log(sinh(x) / x), x = sqrt(3) |b|
        x = UNIFORM_HALF_WIDTH * np.abs(b[b != 0.0])
        small, large = x[x < 1.0], x[x >= 1.0]
        return float(
            np.sum(np.log(np.sinh(small) / small))
            + np.sum(large + np.log1p(-np.exp(-2.0 * large)) - math.log(2.0) - np.log(large))
        )

    if s.design in ("gaussian", "correlated"):
        _, cov = _design_moments(s)
        return 0.5 * _quad(cov, slopes)
    if s.design == "columns":
        return float(sum(c.log_mgf(float(b)) for c, b in zip(s.column_list, slopes, strict=True)))
    if s.design == "uniform":
        return log_sinhc(slopes)
    if s.design == "binary":
        return log_cosh(slopes)
    if s.design == "mixed":
        pc = (s.p + 1) // 2
        return 0.5 * float(np.sum(slopes[:pc] ** 2)) + log_cosh(slopes[pc:])
    from scipy import special  # slow to import; only this design and error messages use it

    return float(special.logsumexp(np.concatenate([[0.0], slopes])) - math.log(s.levels))


def _eta_interval(family: families.Family, link: links.Link) -> tuple[float, float]:
    """Open interval of ``eta`` whose mean ``h(eta)`` is valid for the family."""
    c = link.code
    inf = math.inf
    if link.entry.cdf:
        return -inf, inf
    if link.entry.eta_domain != families.REAL:  # used on the positive branch eta > 0
        return 0.0, inf
    if family.is_binary:
        if c == codes.LINK_IDENTITY:
            return 0.0, 1.0
        if c == codes.LINK_LOG:
            return -inf, 0.0
        if c == codes.LINK_SOFTPLUS:
            return -inf, math.log(math.e - 1.0)
        if c == codes.LINK_RELU:
            return 0.0, 1.0
        return -inf, inf
    if family.code == codes.FAMILY_GAUSSIAN:
        return -inf, inf
    if c in (codes.LINK_IDENTITY, codes.LINK_RELU):
        return 0.0, inf
    return -inf, inf


@lru_cache(maxsize=1)
def _gauss_legendre() -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``E[f(Z)]`` for ``Z ~ N(0, 1)`` truncated to +-TAIL_Z."""
    x, w = np.polynomial.legendre.leggauss(_GL_NODES)
    z = TAIL_Z * x
    v = w * np.exp(-0.5 * z * z)
    return z, v / v.sum()


def _mean_response(link: links.Link, b0: float, atoms, weights, sd: float) -> float:
    if sd > 0.0:
        z, v = _gauss_legendre()
        eta = b0 + atoms[:, None] + sd * z[None, :]
        mu = np.asarray(link.h(eta.ravel())).reshape(eta.shape)
        return float(np.sum(weights * np.sum(mu * v[None, :], axis=1)))
    return float(np.sum(weights * np.asarray(link.h(b0 + atoms))))


def _fmt_interval(lo: float, hi: float) -> str:
    return f"({lo:g}, {hi:g})"


def _domain_error(
    s: Scenario, b0, lo, hi, pop, detail: str, what: str = "the linear predictor"
) -> ValidationError:
    from scipy import special

    atoms, weights, _, _, sd = pop
    if b0 is not None:
        if sd > 0.0:
            below = special.ndtr((lo - b0 - atoms) / sd) if lo > -math.inf else 0.0 * atoms
            above = special.ndtr((b0 + atoms - hi) / sd) if hi < math.inf else 0.0 * atoms
        else:
            below = (b0 + atoms <= lo).astype(float)
            above = (b0 + atoms >= hi).astype(float)
        frac = float(np.sum(weights * (below + above)))
        frac_text = f"{frac:.3g}" if frac > 0.0 else "a small fraction (< 1e-5)"
        detail = (
            f"with intercept {b0:.6g} a fraction {frac_text} of the design population has "
            f"eta outside it ({detail})"
        )
    if what != "the linear predictor":
        detail = detail.replace("of the design population", "of a large sample of the design")
    bounded = s.design in ("uniform", "binary", "categorical") or (
        s.design == "columns" and not any(c.is_gaussian for c in s.column_list)
    )
    advice = "" if bounded else "a bounded design (uniform, binary, categorical), "
    last = "or an explicit beta" if what == "the linear predictor" else "or another predictor"
    return ValidationError(
        f"scenario {s.id} (family {s.family!r}, link {s.link!r}, design {s.design!r}) gives "
        f"invalid means: {what} must lie in {_fmt_interval(lo, hi)}, but "
        f"{detail}. Use {advice}a smaller signal, a mean further inside the domain, {last}."
    )


def _span_text(b0: float, a_min: float, a_max: float, sd: float) -> str:
    lo, hi = b0 + a_min - TAIL_Z * sd, b0 + a_max + TAIL_Z * sd
    tail = f", +-{TAIL_Z:g} sd of its Gaussian part" if sd > 0.0 else ""
    return f"eta spans [{lo:.4g}, {hi:.4g}]{tail}"


def _solve_intercept(s, link, lo, hi, pop, what: str = "the linear predictor") -> float:
    """Root of ``E[h(b0 + u)] = mean`` over the intercepts that keep eta in (lo, hi)."""
    atoms, weights, a_min, a_max, sd = pop
    b_lo = lo - (a_min - TAIL_Z * sd)
    b_hi = hi - (a_max + TAIL_Z * sd)
    if not b_lo < b_hi:
        raise _domain_error(
            s,
            None,
            lo,
            hi,
            pop,
            f"{what}'s own spread ({_span_text(0.0, a_min, a_max, sd)}) is "
            f"wider than that interval, whatever the intercept",
            what,
        )

    def f(b0: float) -> float:
        return _mean_response(link, b0, atoms, weights, sd) - s.mean

    # The mean response is monotone in b0 (h is monotone), so the target is reachable iff
    # it lies between the values at the two ends: at a finite end just inside (h may be
    # infinite on the boundary itself), at an infinite end the limit of h.
    def end(b: float, inward: float) -> tuple[float | None, float]:
        if not math.isfinite(b):
            return None, float(link.h(np.array([-inward * 1e300]))[0]) - s.mean
        gap = 1e-9 * max(1.0, abs(b))
        for _ in range(60):
            value = f(b + inward * gap)
            if math.isfinite(value):
                break
            gap *= 2.0
        return b + inward * gap, value

    (left, f_left), (right, f_right) = end(b_lo, 1.0), end(b_hi, -1.0)
    # (a limit may be infinite; a value at a finite end must not be)
    finite_ends = (left is None or math.isfinite(f_left)) and (
        right is None or math.isfinite(f_right)
    )
    if not finite_ends or not f_left * f_right < 0.0:
        if f_left == 0.0 and left is not None:
            return left
        if f_right == 0.0 and right is not None:
            return right
        m_a, m_b = sorted((f_left + s.mean, f_right + s.mean))
        raise _domain_error(
            s,
            None,
            lo,
            hi,
            pop,
            f"the target mean {s.mean:g} is not reachable with every mean valid: the "
            f"population mean response ranges over ({m_a:.4g}, {m_b:.4g}) for the "
            f"admissible intercepts",
            what,
        )
    # an infinite end: walk out from the finite one, doubling the step, until the sign
    # changes (it must: the limit there has the other sign)
    if left is None and right is None:
        f_zero = f(0.0)
        if f_zero == 0.0:
            return 0.0
        if f_zero * f_right < 0.0:
            left, f_left = 0.0, f_zero
        else:
            right, f_right = 0.0, f_zero
    step = 1.0
    while left is None or right is None:
        if step > 1e300:
            raise _domain_error(s, None, lo, hi, pop, "no intercept reaches the target mean", what)
        if right is None:
            b, value = left + step, f(left + step)
            if f_left * value <= 0.0:
                right, f_right = b, value
            else:
                left, f_left = b, value
        else:
            b, value = right - step, f(right - step)
            if f_right * value <= 0.0:
                left, f_left = b, value
            else:
                right, f_right = b, value
        step *= 2.0
    if f_left == 0.0:
        return left
    if f_right == 0.0:
        return right
    from scipy import optimize  # slow to import, and most scenarios never get here

    return float(optimize.brentq(f, left, right, xtol=1e-14, rtol=4 * np.finfo(float).eps))


def linear_slopes(s: Scenario, sd: float) -> np.ndarray:
    """The fixed slope direction (see the module notes) scaled so that the population
    standard deviation of ``x' beta_x`` is ``sd``."""
    _, cov = _design_moments(s)
    d = _direction(s.p)
    return (sd / math.sqrt(_quad(cov, d))) * d


@lru_cache(maxsize=256)
def truth(s: Scenario) -> tuple[np.ndarray, float]:
    """``(beta*, sd of x' beta_x)``: the true coefficients of a scenario, domain-checked."""
    family, link = s.get_family(), s.get_link()
    mean_x, cov = _design_moments(s)
    if s.beta is not None:
        beta = np.array(s.beta, dtype=np.float64)
        slopes = beta[1:]
        b0 = None
    else:
        slopes = linear_slopes(s, s.signal)
        b0 = None
        if family.is_binary:
            # intercept 0 on the built-in designs (centred but for the categorical one); a
            # per-column design is centred by the intercept: E[eta*] = 0
            b0 = 0.0 if s.design != "columns" else 0.0 - float(np.sum(mean_x * slopes))
    sd_u = math.sqrt(max(_quad(cov, slopes), 0.0))
    pop = _population(s, slopes)
    lo, hi = _eta_interval(family, link)
    if s.beta is not None:
        b0 = float(s.beta[0])
    elif b0 is None:
        if link.code == codes.LINK_IDENTITY:
            b0 = s.mean - float(np.sum(mean_x * slopes))
        elif link.code == codes.LINK_LOG:
            if s.mean <= 0.0:
                raise ValidationError(
                    f"scenario key 'mean' must be > 0 with the log link; got {s.mean!r}"
                )
            b0 = math.log(s.mean) - _log_mgf(s, slopes)
        else:
            b0 = _solve_intercept(s, link, lo, hi, pop)
    _, _, a_min, a_max, sd = pop
    if not (b0 + a_min - TAIL_Z * sd > lo and b0 + a_max + TAIL_Z * sd < hi):
        raise _domain_error(s, b0, lo, hi, pop, _span_text(b0, a_min, a_max, sd))
    beta = np.concatenate([[b0], slopes]).astype(np.float64)
    beta.setflags(write=False)
    return beta, sd_u


# ---- a true predictor that need not be linear ----------------------------------------------

_NO_NONLINEAR_PART = 1e-9  # residual variance share below which an expression is linear


@dataclass(frozen=True, eq=False)
class TruePredictor:
    """The true predictor ``eta*(x)`` of a scenario, before any offset.

    Evaluated as ``intercept + x' slopes + scale * f(x)`` with ``f`` the scenario's
    ``predictor`` expression; a GLM truth (``predictor = "linear"``, or ``nonlinearity =
    0``) is ``beta[0] + x' beta[1:]``, computed exactly as it always was.

    Attributes
    ----------
    beta : numpy.ndarray
        ``[intercept, x1 .. xp]``: the true coefficients of a GLM truth; for a non-linear
        one, the linear part of ``eta*``, its population least-squares projection on
        ``(1, x)``.  (The coefficients a GLM converges to, the KL projection, are
        :func:`simbench.metrics.truth_projection`'s.)
    sd : float
        Population standard deviation of ``eta*`` (of ``x' beta_x`` for a GLM truth).
    nonlinear_share : float
        The share of ``Var(eta*)`` that no linear function of ``x`` explains: 0 for a GLM
        truth, ``nonlinearity`` when that key is set, otherwise measured.
    expression : Expression or None
        ``f``; None for a GLM truth.
    intercept, slopes, scale : float, numpy.ndarray or None, float
        The evaluation form (``slopes`` None: no linear term).
    """

    beta: np.ndarray
    sd: float
    nonlinear_share: float
    expression: Expression | None = None
    intercept: float = 0.0
    slopes: np.ndarray | None = None
    scale: float = 0.0

    @property
    def is_linear(self) -> bool:
        """Whether the truth is a GLM (no non-linear term)."""
        return self.expression is None

    def eta(self, X: np.ndarray) -> np.ndarray:
        """``eta*`` on the rows of ``X`` (no offset)."""
        if self.expression is None:
            return self.beta[0] + rowdot(X, self.beta[1:])
        eta = self.scale * self.expression.evaluate(X)
        if self.slopes is not None:
            eta = rowdot(X, self.slopes) + eta
        return self.intercept + eta


def _truth_key(s: Scenario) -> tuple:
    # everything but the sample sizes, which never change the truth
    return tuple(
        (f.name, getattr(s, f.name)) for f in dataclasses.fields(s) if f.name not in ("n", "n_test")
    )


_PREDICTORS: dict[tuple, TruePredictor] = {}
_MAX_CACHED = 256


def true_predictor(s: Scenario) -> TruePredictor:
    """The true predictor of a scenario (computed once per process and scenario).

    Raises
    ------
    ValidationError
        When the expression is not finite on the design, has no variance to scale to
        ``signal``, has no non-linear part to mix in at ``nonlinearity > 0``, or gives
        means outside the family's domain.
    """
    key = _truth_key(s)
    hit = _PREDICTORS.get(key)
    if hit is None:
        if len(_PREDICTORS) >= _MAX_CACHED:
            _PREDICTORS.clear()
        hit = _PREDICTORS[key] = _build_predictor(s)
    return hit


def _linear_fit(X: np.ndarray, f: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares fit of ``f`` on ``(1, x)`` over the sample: ``(c0, c, residual)``.

    Sums in fixed order (no BLAS), so the truth does not depend on thread counts.
    """
    m = np.mean(X, axis=0)
    Xc = np.asfortranarray(X - m)
    fc = f - np.mean(f)
    p = X.shape[1]
    gram = np.empty((p, p))
    rhs = np.empty(p)
    for j in range(p):
        rhs[j] = np.sum(Xc[:, j] * fc)
        for k in range(j + 1):
            gram[j, k] = gram[k, j] = np.sum(Xc[:, j] * Xc[:, k])
    try:
        c = np.linalg.solve(gram, rhs)
    except np.linalg.LinAlgError:
        raise ValidationError(
            "the design's columns are collinear on its population sample; the linear part "
            "of the predictor is not defined"
        ) from None
    c0 = float(np.mean(f)) - float(np.sum(m * c))
    return c0, c, fc - rowdot(Xc, c)


def _predictor_error(s: Scenario, text: str) -> ValidationError:
    return ValidationError(f"scenario key 'predictor' ({s.predictor!r}): {text}")


def _nonlinear_intercept(s, family, link, u, lo, hi) -> float:
    """The intercept that gives the population mean response ``mean`` (binary families:
    centres ``eta*``), over the population sample of ``u = eta* - intercept``."""
    what = "the true predictor"
    if family.is_binary:
        return 0.0 - float(np.mean(u))
    if link.code == codes.LINK_IDENTITY:
        return s.mean - float(np.mean(u))
    if link.code == codes.LINK_LOG:
        if s.mean <= 0.0:
            raise ValidationError(
                f"scenario key 'mean' must be > 0 with the log link; got {s.mean!r}"
            )
        top = float(np.max(u))
        return math.log(s.mean) - (top + math.log(float(np.mean(np.exp(u - top)))))
    pop = (u, np.full(u.size, 1.0 / u.size), float(np.min(u)), float(np.max(u)), 0.0)
    return _solve_intercept(s, link, lo, hi, pop, what)


def _build_predictor(s: Scenario) -> TruePredictor:
    expr = s.expression
    if expr is None or s.nonlinearity == 0.0:
        beta, sd = truth(s)
        return TruePredictor(beta=beta, sd=sd, nonlinear_share=0.0)
    X, _ = population_sample(s)
    f = expr.evaluate(X)
    bad = ~np.isfinite(f)
    if bad.any():
        i = int(np.argmax(bad))
        point = ", ".join(f"x{j + 1}={X[i, j]:.4g}" for j in _expr_columns(expr))
        raise _predictor_error(
            s,
            f"the expression is {f[i]!r} at a point of the design ({point}); it must be "
            f"finite on the whole design (mind log and sqrt of negative values, division "
            f"by zero, overflow of exp and powers)",
        )
    c0, c, resid = _linear_fit(X, f)
    var_f = float(np.mean((f - np.mean(f)) ** 2))
    var_r = float(np.mean(resid * resid))
    share = var_r / var_f if var_f > 0.0 else 0.0
    family, link = s.get_family(), s.get_link()
    lo, hi = _eta_interval(family, link)
    slopes = None
    if s.predictor_scale == "literal":
        scale, u, b0 = 1.0, f, 0.0
        intercept = 0.0
        beta = np.concatenate([[c0], c])
    elif s.nonlinearity is None:
        if var_f == 0.0 and s.signal > 0.0:
            raise _predictor_error(
                s, f"the expression is constant on the design; it cannot have sd {s.signal:g}"
            )
        scale = s.signal / math.sqrt(var_f) if var_f > 0.0 else 0.0
        u = scale * f
        b0 = _nonlinear_intercept(s, family, link, u, lo, hi)
        intercept = b0
        beta = np.concatenate([[b0 + scale * c0], scale * c])
    else:
        lam = s.nonlinearity
        if not share > _NO_NONLINEAR_PART:
            raise _predictor_error(
                s,
                f"the expression is a linear function of x (no part of its variance is "
                f"non-linear), so nonlinearity = {lam:g} has nothing to mix in; use an "
                f"expression with products, powers or other functions of the x",
            )
        lin = linear_slopes(s, s.signal * math.sqrt(1.0 - lam)) + 0.0  # no -0.0 at lambda 1
        scale = s.signal * math.sqrt(lam) / math.sqrt(var_r)
        u = rowdot(X, lin) + scale * resid
        b0 = _nonlinear_intercept(s, family, link, u, lo, hi)
        intercept = b0 - scale * c0
        slopes = lin - scale * c
        beta = np.concatenate([[b0], lin])
        share = lam
    u_min, u_max = float(np.min(u)), float(np.max(u))
    if not (b0 + u_min > lo and b0 + u_max < hi):
        pop = (u, np.full(u.size, 1.0 / u.size), u_min, u_max, 0.0)
        span = _span_text(b0, u_min, u_max, 0.0)
        raise _domain_error(s, b0, lo, hi, pop, span, "the true predictor")
    beta = beta.astype(np.float64)
    beta.setflags(write=False)
    if slopes is not None:
        slopes.setflags(write=False)
    return TruePredictor(
        beta=beta,
        sd=float(np.sqrt(np.mean((u - np.mean(u)) ** 2))),
        nonlinear_share=float(share),
        expression=expr,
        intercept=float(intercept),
        slopes=slopes,
        scale=float(scale),
    )


def _expr_columns(expr: Expression) -> list[int]:
    """0-based columns of ``X`` an expression reads."""
    return [j - 1 for j in expr.variables]
