"""Loss kernels: the value, dℓ/dη and d²ℓ/dη² of a loss seen through an output activation.

Design
------
Every loss is a function of the output unit's linear predictor η: the output activation
(inverse link, a ``LINK_*`` code) gives μ = h(η), and the loss compares y with μ.  All
derivatives are with respect to η, because that is what a network's backward pass and the
IRLS/Newton steps need.

Family negative log-likelihoods (loss codes 0..7, equal to the family codes) are kept in
deviance form, ℓ(y, η) = d(y, μ) / (2φ): zero at μ = y, the normalising constant of the
log-likelihood left out.  Because every unit deviance is d(y, μ) = 2 ∫_μ^y (y − t)/V(t) dt,
∂d/∂μ = −2 (y − μ)/V(μ) for all families, and the chain rule gives::

    dℓ/dη        = −(y − μ) h′ / (φ V)
    d²ℓ/dη²      = [h′²/V + (y − μ)(h′² V′/V² − h″/V)] / φ      (observed)
    E_y d²ℓ/dη²  = h′² / (φ V)                                  (expected, Fisher)

Losses with no family are functions L(y, μ) (``LOSS_*`` codes): squared error (y − μ)²/2,
and the margin losses of t = 2y − 1 ∈ {−1, 1}: hinge max(0, 1 − tμ), squared hinge
max(0, 1 − tμ)², logistic log(1 + e^{−tμ}) and perceptron max(0, −tμ).  For them
dℓ/dη = L_μ h′, observed d²ℓ/dη² = L_μμ h′² + L_μ h″ and the "expected" kind is the
Gauss–Newton term L_μμ h′².  They take no dispersion (``phi`` is ignored).  At the kink of
hinge and perceptron (and of the squared hinge's second derivative) the subgradient 0 is used:
the branch tests are strict inequalities.

Fused paths.  Four canonical pairs have a closed form in η that is both cheaper and more
accurate than composing h with the deviance; ``loss_eval`` and ``loss_grad_hess`` take them
whenever the codes match (Bernoulli and binomial share the logit path: per unit weight their
losses are the same function of a proportion y)::

    Poisson–log        ℓ = y (q − 1 − log q)/φ, q = e^η/y  (e^η/φ at y = 0);  ℓ′ = (e^η − y)/φ
    Bernoulli–logit    ℓ = [log(1 + e^η) − yη + y log y + (1−y) log(1−y)]/φ;  ℓ′ = (σ(η) − y)/φ
    Gaussian–identity  ℓ = (y − η)²/(2φ);                                      ℓ′ = (η − y)/φ
    Gamma–log          ℓ = (q − 1 − log q)/φ, q = y e^{−η};                    ℓ′ = (1 − q)/φ

In the q forms q − 1 is exact and log q is good to an ulp, so the loss keeps its digits near
its minimum (q = 1), where the textbook e^η − yη + y log y − y cancels; where e^η or q would
leave the float range they switch to the log-space form, so Poisson–log at η = −1000 and
Gamma–log at η = 1000 (or wherever y e^{−η} is finite) stay finite.  ``log(1 + e^η)`` is
max(η, 0) + log1p(e^{−|η|}), so the Bernoulli–logit loss at η = −1000, y = 1 is 1000.
Each fused row costs two transcendental calls (exp, and log or log1p).

Binary CDF links.  Bernoulli/binomial through probit, cloglog, loglog or cauchit is not
canonical, but composing h with the deviance fails once μ rounds to 0 or 1 (cloglog at
η = 10, y = 0: the loss e^10 comes out inf; probit below η = −38: h′ and V underflow and the
derivatives are nan).  These pairs are fused too: with r0 = h′/μ, r1 = h′/(1−μ) and the
curvatures s0 = r0 (r0 − h″/h′), s1 = r1 (r1 + h″/h′) of −log μ and −log(1−μ)::

    ℓ = [y (log y − log μ) + (1−y)(log(1−y) − log(1−μ))]/φ;   ℓ′ = (−y r0 + (1−y) r1)/φ
    observed ℓ″ = (y s0 + (1−y) s1)/φ;                        expected r0 r1/φ = h′²/(φ μ(1−μ))

each link supplying its logs, ratios and curvatures in η-space: probit from Φ(−η) = 1 − Φ(η)
and, below η = −4, the inverse Mills ratio as a continued fraction (log Φ = log φ − log m);
cloglog from log(1−μ) = −e^η, r1 = s1 = e^η and series in e^η where the closed forms cancel;
loglog as cloglog at −η with the roles of μ and 1 − μ swapped; cauchit from
F(η) = atan2(1, −η)/π, which is 1/2 + atan(η)/π without the cancellation.  Near its minimum a
proportion's loss is a difference of O(1) logs (as in Bernoulli–logit): absolute accuracy.

The generic path (h, h′, h″ from the link kernels, then V, V′ and d from the family kernels)
serves every other pair.  It is exact in exact arithmetic but inherits the cancellation of
composing h with d at extreme η (e.g. 1 − σ(η) for large η), so the fused paths are the
stable ones; ``loss_grad_hess_generic`` always takes the generic path, for testing.

Arrays.  "No weights" and "no offset" are size-0 arrays (meaning 1 and 0), and a size-0
``hess_out`` skips the Hessian.  Rows with weight exactly 0 contribute nothing (their
gradient and Hessian entries are 0) even where their loss is not finite, so a zero weight
always means "row absent".  Totals are summed serially in row order.
"""

from __future__ import annotations

import math
from math import exp, expm1, log, log1p

from simbench._jit import kernel
from simbench.kernels.codes import (
    FAMILY_BERNOULLI,
    FAMILY_BINOMIAL,
    FAMILY_GAMMA,
    FAMILY_GAUSSIAN,
    FAMILY_POISSON,
    HESS_EXPECTED,
    LINK_CAUCHIT,
    LINK_CLOGLOG,
    LINK_IDENTITY,
    LINK_LOG,
    LINK_LOGIT,
    LINK_LOGLOG,
    LINK_PROBIT,
    LOSS_HINGE,
    LOSS_LOGISTIC,
    LOSS_PERCEPTRON,
    LOSS_SQUARED_ERROR,
    LOSS_SQUARED_HINGE,
)
from simbench.kernels.families import fam_unit_deviance, fam_variance, fam_variance_d1
from simbench.kernels.links import _norm_cdf, _norm_pdf, link_h, link_h012
from simbench.kernels.vecmath import exp_fast, log1p_unit

# Fused (loss, output activation) pairs; PAIR_NONE selects the generic path.
PAIR_NONE = 0
PAIR_POISSON_LOG = 1
PAIR_BERNOULLI_LOGIT = 2
PAIR_GAUSSIAN_IDENTITY = 3
PAIR_GAMMA_LOG = 4
# Bernoulli/binomial NLL through a CDF output activation (not canonical, but fused for
# stability: see "Binary CDF links" above); the four codes are consecutive.
PAIR_BERNOULLI_PROBIT = 5
PAIR_BERNOULLI_CLOGLOG = 6
PAIR_BERNOULLI_LOGLOG = 7
PAIR_BERNOULLI_CAUCHIT = 8

# Loss codes below this are family negative log-likelihoods (they equal the family codes).
N_FAMILY_CODES = 20

# Ratios inside (_TINY, _HUGE) are normal floats with room for a product of two of them.
_TINY = 1e-300
_HUGE = 1e300

_INV_PI = 0.3183098861837907  # 1 / pi
_HALF_LOG_2PI = 0.9189385332046727  # log(2 pi) / 2
# Probit lower tail: below eta = -_MILLS_CUT the Laplace continued fraction, truncated after
# _MILLS_DEPTH levels, is accurate to rounding (checked against mpmath: < 1e-16 at 4, N = 40)
_MILLS_CUT = 4.0
_MILLS_DEPTH = 48
# cloglog: below e^eta = _CLL_SERIES the series in t = e^eta (18 terms: < 1e-20 relative)
_CLL_SERIES = 0.5
_CLL_TERMS = 18


@kernel
def fused_pair(lcode, hcode):
    """The ``PAIR_*`` code of the fused path for (loss, output activation), or ``PAIR_NONE``."""
    if hcode == LINK_LOG:
        if lcode == FAMILY_POISSON:
            return PAIR_POISSON_LOG
        if lcode == FAMILY_GAMMA:
            return PAIR_GAMMA_LOG
    elif hcode == LINK_IDENTITY:
        if lcode == FAMILY_GAUSSIAN:
            return PAIR_GAUSSIAN_IDENTITY
    elif lcode == FAMILY_BERNOULLI or lcode == FAMILY_BINOMIAL:
        if hcode == LINK_LOGIT:
            return PAIR_BERNOULLI_LOGIT
        if hcode == LINK_PROBIT:
            return PAIR_BERNOULLI_PROBIT
        if hcode == LINK_CLOGLOG:
            return PAIR_BERNOULLI_CLOGLOG
        if hcode == LINK_LOGLOG:
            return PAIR_BERNOULLI_LOGLOG
        if hcode == LINK_CAUCHIT:
            return PAIR_BERNOULLI_CAUCHIT
    return PAIR_NONE


@kernel
def is_cdf_pair(pair):
    """True for the Bernoulli/binomial pairs with a probit, cloglog, loglog or cauchit output."""
    return pair >= PAIR_BERNOULLI_PROBIT and pair <= PAIR_BERNOULLI_CAUCHIT


# ---- fused scalar kernels: (value, d1, d2) per unit weight ---------------------------------


@kernel
def _poisson_log_value(y, eta, phi):
    return _poisson_log(y, eta, phi)[0]


@kernel
def _poisson_log(y, eta, phi):
    mu = exp(eta)
    if y > 0.0:
        q = mu / y
        if q > _TINY and q < _HUGE and mu > _TINY:
            # y (q - 1 - log q): q - 1 is exact and log q has a relative error of an ulp,
            # so near the minimum the loss is accurate to a few ulp / |log q|
            value = y * ((q - 1.0) - log(q))
        else:
            # mu or mu / y at the edge of the float range: far from the minimum, no cancellation
            value = (mu - y) - y * (eta - log(y))
    elif y == 0.0:
        value = mu
    else:  # y < 0 or nan: no Poisson deviance
        value = math.nan
    return value / phi, (mu - y) / phi, mu / phi


@kernel(inline=True)
def _xlogx_pair(y):
    # y log y + (1 - y) log(1 - y): zero at y in {0, 1}, where the logs are -inf
    if 0.0 < y < 1.0:
        return y * log(y) + (1.0 - y) * log1p(-y)
    return 0.0


@kernel
def _bernoulli_logit_value(y, eta, phi):
    return _bernoulli_logit(y, eta, phi)[0]


@kernel
def _bernoulli_logit(y, eta, phi):
    e = exp(-abs(eta))
    t = e / (1.0 + e)  # sigma(-|eta|), the smaller of sigma(eta) and 1 - sigma(eta)
    # log(1 + e^eta) - y eta = max(eta, 0) - y eta + log1p(e^-|eta|): nothing overflows, and
    # at y = 1, eta > 0 the first two terms cancel exactly
    value = max(eta, 0.0) - y * eta + log1p(e)
    # mu - y, written for eta > 0 as (1 - y) - (1 - mu): exact at y = 1 where mu rounds to 1.
    # Both sides are computed so the choice is a select, not an unpredictable branch.
    d1 = (1.0 - y) - t if eta > 0.0 else t - y
    # sigma (1 - sigma) = t (1 - t) = e / (1 + e)^2
    d2 = t / (1.0 + e)
    return (value + _xlogx_pair(y)) / phi, d1 / phi, d2 / phi


@kernel
def _gaussian_identity_value(y, eta, phi):
    return _gaussian_identity(y, eta, phi)[0]


@kernel
def _gaussian_identity(y, eta, phi):
    r = eta - y
    return 0.5 * r * r / phi, r / phi, 1.0 / phi


@kernel
def _gamma_log_value(y, eta, phi):
    return _gamma_log(y, eta, phi, HESS_EXPECTED)[0]


@kernel
def _gamma_log(y, eta, phi, hess_kind):
    e = exp(-eta)
    q = y * e  # y / mu
    if q > _TINY and q < _HUGE and e > _TINY and e < _HUGE:
        value = (q - 1.0) - log(q)  # as accurate as q itself near the minimum q = 1
        d1 = 1.0 - q
    else:
        # e^-eta or y e^-eta leaves the float range where y e^-eta = exp(log y - eta) need not
        r = log(y) - eta
        q = exp(r)
        em = expm1(r)
        value = em - r
        d1 = -em
    d2 = 1.0 if hess_kind == HESS_EXPECTED else q
    return value / phi, d1 / phi, d2 / phi


# ---- rows given per-row constants (vectorisable; IRLS passes and full-data network values)


@kernel(inline=True)
def poisson_log_row(y, e, ly):
    """``(l, W, f, ok)`` of a Poisson-log row of unit weight given ``ly = log y`` (0 at
    y = 0): the deviance half ``l = (mu - y) - y (eta - log y)``, the weight ``W = mu``, the
    score factor ``f = y - mu`` and whether the mean is positive and finite.  No logarithm
    and no division, so loops over it vectorise; near the optimum ``l`` carries an absolute
    error of a few ulp of ``y (|eta| + |log y|)`` (against ``y |log q|`` for the fused
    kernel's ``y (q - 1 - log q)``)."""
    mu = exp_fast(e)
    d = mu - y
    return d - y * (e - ly), mu, -d, mu > 0.0 and mu < math.inf


@kernel(inline=True)
def gamma_log_row(y, e, ly, newton):
    """``(l, W, f, ok)`` of a Gamma-log row of unit weight given ``ly = log y``, with
    ``q = y e^-eta``: ``l = (q - 1) - (log y - eta)``, ``W = 1`` (observed: ``q``),
    ``f = q - 1`` and whether ``e^-eta`` is positive and finite."""
    em = exp_fast(-e)
    q = y * em
    return (q - 1.0) - (ly - e), q if newton else 1.0, q - 1.0, em > 0.0 and em < math.inf


@kernel(inline=True)  # too large for LLVM to inline: a call per row would not vectorise
def logit_row(y, e, cy):
    """``(l, W, f, ok)`` of a Bernoulli/binomial-logit row of unit weight given
    ``cy = y log y + (1 - y) log(1 - y)``, as :func:`_bernoulli_logit`: ``W = mu (1 - mu)``,
    ``f = y - mu``, ``ok`` while ``W > 0``."""
    ex = exp_fast(-abs(e))
    t = ex / (1.0 + ex)
    v = (max(e, 0.0) - y * e + log1p_unit(ex)) + cy
    W = t / (1.0 + ex)
    return v, W, -((1.0 - y) - t if e > 0.0 else t - y), W > 0.0


# ---- binary CDF links: Bernoulli/binomial NLL in eta-space ----------------------------------
# Each link supplies log mu, log(1 - mu), r0 = h'/mu, r1 = h'/(1 - mu) and the curvatures
# s0 = d2(-log mu)/d eta2 = r0 (r0 - h''/h'), s1 = d2(-log(1 - mu))/d eta2 = r1 (r1 + h''/h'),
# each formed without the mean itself so that nothing rounds to 0 or 1.


@kernel
def _cloglog_terms(eta):
    """(log mu, log(1 - mu), r0, r1, s0, s1) for mu = 1 - exp(-t), t = e^eta.

    log(1 - mu) = -t and r1 = s1 = t exactly.  For small t, with E = expm1(t)/t: log mu =
    eta - t + log E, r0 = 1/E and s0 = t N/E^2, N = (t e^t - expm1 t)/t^2, E - 1 and N as series
    in t (the closed forms cancel); for larger t, r0 = t/expm1(t) and s0 = r0 (r0 - 1 + t).
    """
    t = exp(eta)
    if t < _CLL_SERIES:
        # b_j = t^j / (j + 2)!: E - 1 = t sum b_j, N = sum (j + 1) b_j
        b = 0.5
        sb = 0.0
        sn = 0.0
        for j in range(_CLL_TERMS):
            sb += b
            sn += (j + 1) * b
            b *= t / (j + 3)
        em1 = t * sb  # E - 1
        r0 = 1.0 / (1.0 + em1)
        # mu = 1 - e^-t = t E e^-t
        return (eta - t) + log1p(em1), -t, r0, t, t * sn * r0 * r0, t
    lm = log1p(-exp(-t))
    if t == math.inf:
        return lm, -t, 0.0, t, 0.0, t
    em = expm1(t)
    # t e^-t where expm1 overflows (t > 709.78); it underflows to 0 from t ~ 745 on
    r0 = t / em if em < math.inf else t * exp(-t)
    return lm, -t, r0, t, r0 * ((t - 1.0) + r0), t


@kernel
def _probit_half(x):
    """(log Phi(x), m, m (m + x)) with the inverse Mills ratio m = phi(x)/Phi(x).

    m (m + x) is d2(-log Phi)/dx2.  Below x = -_MILLS_CUT, with a = -x, m = a + K where
    K = 1/(a + 2/(a + 3/(a + ...))) (the Laplace continued fraction of the Mills ratio):
    m + x = K carries no cancellation, and log Phi = log phi(x) - log m needs no Phi, which
    underflows from x = -38.
    """
    if x < -_MILLS_CUT:
        a = -x
        d = a
        for k in range(_MILLS_DEPTH, 1, -1):
            d = a + k / d
        cf = 1.0 / d
        m = a + cf
        return -0.5 * a * a - _HALF_LOG_2PI - log(m), m, m * cf
    cdf = _norm_cdf(x)
    m = _norm_pdf(x) / cdf
    # near Phi = 1 the log of the complement is the accurate form
    lcdf = log(cdf) if x <= 0.0 else log1p(-_norm_cdf(-x))
    return lcdf, m, m * (m + x)


@kernel
def _cauchit_half(x):
    """(log F(x), r, r (r - c)) for the Cauchy CDF F, r = F'/F and c = F''/F' = -2x/(1 + x^2).

    F = atan2(1, -x)/pi equals 1/2 + atan(x)/pi without its cancellation for x < 0; for
    x > 0, log F = log1p(-F(-x)).
    """
    f = math.atan2(1.0, -x) * _INV_PI
    lf = log(f) if x <= 0.0 else log1p(-math.atan2(1.0, x) * _INV_PI)
    if abs(x) < 1e150:
        d = 1.0 + x * x
        r = _INV_PI / (d * f)
        c = -2.0 * x / d
    else:  # 1 + x^2 would overflow
        r = _INV_PI / (x * f) / x
        c = -2.0 / x
    return lf, r, r * (r - c)


@kernel(inline=True)
def _cdf_terms(pair, eta):
    """(log mu, log(1 - mu), r0, r1, s0, s1) of a binary CDF pair at eta."""
    if pair == PAIR_BERNOULLI_PROBIT:
        # 1 - Phi(eta) = Phi(-eta), and phi is even: every 1 - mu quantity is the mirror
        l0, r0, s0 = _probit_half(eta)
        l1, r1, s1 = _probit_half(-eta)
        return l0, l1, r0, r1, s0, s1
    if pair == PAIR_BERNOULLI_CAUCHIT:
        l0, r0, s0 = _cauchit_half(eta)
        l1, r1, s1 = _cauchit_half(-eta)
        return l0, l1, r0, r1, s0, s1
    if pair == PAIR_BERNOULLI_CLOGLOG:
        return _cloglog_terms(eta)
    # loglog: mu(eta) = 1 - mu_cloglog(-eta), so the roles of mu and 1 - mu swap
    l1, l0, r1, r0, s1, s0 = _cloglog_terms(-eta)
    return l0, l1, r0, r1, s0, s1


@kernel
def _bernoulli_cdf_value(pair, y, eta, phi):
    return _bernoulli_cdf(pair, y, eta, phi, HESS_EXPECTED)[0]


@kernel
def _bernoulli_cdf(pair, y, eta, phi, hess_kind):
    """(value, d1, d2) of the Bernoulli/binomial NLL through a CDF output activation.

    ℓ = y (log y - log mu) + (1 - y) (log(1 - y) - log(1 - mu)),  ℓ′ = -y r0 + (1 - y) r1,
    observed ℓ″ = y s0 + (1 - y) s1, expected h′²/(mu (1 - mu)) = r0 r1.
    """
    l0, l1, r0, r1, s0, s1 = _cdf_terms(pair, eta)
    u = 1.0 - y
    value = 0.0
    d1 = 0.0
    d2 = 0.0
    # a zero coefficient drops its term: -log mu = inf at y = 0 must not give 0 * inf
    if y != 0.0:
        value += y * (log(y) - l0)
        d1 -= y * r0
        d2 += y * s0
    if u != 0.0:
        value += u * (log1p(-y) - l1)
        d1 += u * r1
        d2 += u * s1
    if hess_kind == HESS_EXPECTED:
        # r1 = inf (cloglog past eta = 709.78) meets r0 = 0: the information is 0
        d2 = r0 * r1 if r0 != 0.0 and r1 != 0.0 else 0.0
    return value / phi, d1 / phi, d2 / phi


# ---- losses of (y, mu) with no family --------------------------------------------------------


@kernel
def _plain_value(lcode, y, mu):
    if lcode == LOSS_SQUARED_ERROR:
        r = mu - y
        return 0.5 * r * r
    z = (2.0 * y - 1.0) * mu
    if lcode == LOSS_HINGE:
        return max(0.0, 1.0 - z)
    if lcode == LOSS_SQUARED_HINGE:
        m = max(0.0, 1.0 - z)
        return m * m
    if lcode == LOSS_LOGISTIC:
        if z > 0.0:
            return log1p(exp(-z))
        return log1p(exp(z)) - z
    if lcode == LOSS_PERCEPTRON:
        return max(0.0, -z)
    return float("nan")


@kernel(inline=True)
def _plain_terms(lcode, y, mu):
    """(L, dL/dmu, d2L/dmu2) of a loss with no family."""
    if lcode == LOSS_SQUARED_ERROR:
        r = mu - y
        return 0.5 * r * r, r, 1.0
    t = 2.0 * y - 1.0
    z = t * mu
    if lcode == LOSS_HINGE:
        m = 1.0 - z
        if m > 0.0:
            return m, -t, 0.0
        return 0.0, 0.0, 0.0
    if lcode == LOSS_SQUARED_HINGE:
        m = 1.0 - z
        if m > 0.0:
            return m * m, -2.0 * t * m, 2.0 * t * t
        return 0.0, 0.0, 0.0
    if lcode == LOSS_LOGISTIC:
        # L = log(1 + e^{-z}); s = sigma(-z); s (1 - s) = e / (1 + e)^2 with e = exp(-|z|)
        if z > 0.0:
            e = exp(-z)
            value = log1p(e)
            s = e / (1.0 + e)
        else:
            e = exp(z)
            value = log1p(e) - z
            s = 1.0 / (1.0 + e)
        return value, -t * s, t * t * e / ((1.0 + e) * (1.0 + e))
    if lcode == LOSS_PERCEPTRON:
        if z < 0.0:
            return -z, -t, 0.0
        return 0.0, 0.0, 0.0
    nan = float("nan")
    return nan, nan, nan


# ---- generic and dispatching scalar kernels ------------------------------------------------


@kernel
def loss_value_generic(lcode, a, phi, hcode, lam, y, eta):
    """ℓ(y, η) by the generic path: μ = h(η), then the deviance or loss of (y, μ)."""
    mu = link_h(hcode, lam, eta)
    if lcode < N_FAMILY_CODES:
        return 0.5 * fam_unit_deviance(lcode, a, y, mu) / phi
    return _plain_value(lcode, y, mu)


@kernel
def loss_eval_generic(lcode, a, phi, hcode, lam, y, eta, hess_kind):
    """(ℓ, dℓ/dη, d²ℓ/dη²) by the generic path (see the module notes for the formulas)."""
    mu, h1, h2 = link_h012(hcode, lam, eta)
    if lcode < N_FAMILY_CODES:
        v = fam_variance(lcode, a, mu)
        value = 0.5 * fam_unit_deviance(lcode, a, y, mu) / phi
        r = y - mu
        q = h1 / v  # h'/V
        d1 = -r * q / phi
        if hess_kind == HESS_EXPECTED:
            d2 = h1 * q / phi
        else:
            d2 = (h1 * q + r * (q * q * fam_variance_d1(lcode, a, mu) - h2 / v)) / phi
        return value, d1, d2
    value, l1, l2 = _plain_terms(lcode, y, mu)
    if hess_kind == HESS_EXPECTED:
        return value, l1 * h1, l2 * h1 * h1
    return value, l1 * h1, l2 * h1 * h1 + l1 * h2


@kernel
def loss_value(lcode, a, phi, hcode, lam, y, eta):
    """ℓ(y, η) per unit weight: the fused path for canonical pairs, else the generic one.

    Parameters
    ----------
    lcode : int
        Loss code (a ``FAMILY_*`` code for a family NLL, else a ``LOSS_*`` code).
    a : float
        Family parameter (negative binomial α or Tweedie power; 0.0 otherwise).
    phi : float
        Dispersion φ > 0; family NLLs are divided by it, other losses ignore it.
    hcode, lam : int, float
        Output activation (``LINK_*`` code) and its parameter (power λ; 0.0 otherwise).
    y, eta : float
        Response and linear predictor (offset already added).
    """
    pair = fused_pair(lcode, hcode)
    if pair == PAIR_POISSON_LOG:
        return _poisson_log_value(y, eta, phi)
    if pair == PAIR_BERNOULLI_LOGIT:
        return _bernoulli_logit_value(y, eta, phi)
    if pair == PAIR_GAUSSIAN_IDENTITY:
        return _gaussian_identity_value(y, eta, phi)
    if pair == PAIR_GAMMA_LOG:
        return _gamma_log_value(y, eta, phi)
    if is_cdf_pair(pair):
        return _bernoulli_cdf_value(pair, y, eta, phi)
    return loss_value_generic(lcode, a, phi, hcode, lam, y, eta)


@kernel
def loss_eval(lcode, a, phi, hcode, lam, y, eta, hess_kind):
    """(ℓ, dℓ/dη, d²ℓ/dη²) at one observation, per unit weight.

    Family NLLs: ℓ = d(y, μ)/(2φ) with μ = h(η); other losses: L(y, μ).  ``hess_kind`` is
    ``HESS_OBSERVED`` (d²ℓ/dη² at this y) or ``HESS_EXPECTED`` (Fisher h′²/(φV) for family
    NLLs, Gauss–Newton L_μμ h′² otherwise).  Canonical pairs take the fused, stable path.
    Arguments as in :func:`loss_value`.
    """
    return _pair_eval(fused_pair(lcode, hcode), lcode, a, phi, hcode, lam, y, eta, hess_kind)


@kernel(inline=True)
def _pair_eval(pair, lcode, a, phi, hcode, lam, y, eta, hess_kind):
    """:func:`loss_eval` given the pair (``PAIR_NONE``: the generic path)."""
    if pair == PAIR_POISSON_LOG:
        return _poisson_log(y, eta, phi)
    if pair == PAIR_BERNOULLI_LOGIT:
        return _bernoulli_logit(y, eta, phi)
    if pair == PAIR_GAUSSIAN_IDENTITY:
        return _gaussian_identity(y, eta, phi)
    if pair == PAIR_GAMMA_LOG:
        return _gamma_log(y, eta, phi, hess_kind)
    if is_cdf_pair(pair):
        return _bernoulli_cdf(pair, y, eta, phi, hess_kind)
    return loss_eval_generic(lcode, a, phi, hcode, lam, y, eta, hess_kind)


# ---- one-pass array kernels ------------------------------------------------------------------


@kernel
def _lgh_rows(
    pair, lcode, a, phi, hcode, lam, hess_kind, y, eta, weights, offset, grad_out, hess_out
):
    """The loop of :func:`loss_grad_hess` for one pair (``PAIR_NONE``: the generic path).

    Each iteration reads y, eta (+ offset) and weights once and writes the gradient (and
    Hessian) of row i.  The branches on the pair and on has_w / has_off / has_h are loop
    invariant, so LLVM unswitches them: every pair runs its own loop.  Without a Hessian to
    write, the cheaper expected kind is used (the observed one costs V' in the generic path).
    """
    has_w = weights.size > 0
    has_off = offset.size > 0
    has_h = hess_out.size > 0
    kind = hess_kind if has_h else HESS_EXPECTED
    total = 0.0
    for i in range(y.size):
        w = weights[i] if has_w else 1.0
        e = eta[i] + offset[i] if has_off else eta[i]
        if w == 0.0:
            grad_out[i] = 0.0
            if has_h:
                hess_out[i] = 0.0
            continue
        v, d1, d2 = _pair_eval(pair, lcode, a, phi, hcode, lam, y[i], e, kind)
        total += w * v
        grad_out[i] = w * d1
        if has_h:
            hess_out[i] = w * d2
    return total


@kernel
def loss_grad_hess_generic(
    lcode, a, phi, hcode, lam, hess_kind, y, eta, weights, offset, grad_out, hess_out
):
    """:func:`loss_grad_hess` by the generic path for every pair (the fused paths' reference)."""
    return _lgh_rows(
        PAIR_NONE, lcode, a, phi, hcode, lam, hess_kind, y, eta, weights, offset, grad_out,
        hess_out,
    )  # fmt: skip


@kernel(inline=True)
def loss_grad_hess(
    lcode, a, phi, hcode, lam, hess_kind, y, eta, weights, offset, grad_out, hess_out
):
    """One pass: total weighted loss, per-row weighted gradient and Hessian in η.

    With η_i = eta[i] + offset[i] and w_i = weights[i] (size-0 arrays mean 0 and 1)::

        total       = Σ_i w_i ℓ(y_i, η_i)
        grad_out[i] = w_i dℓ/dη (y_i, η_i)
        hess_out[i] = w_i d²ℓ/dη² (y_i, η_i)     (observed or expected per hess_kind)

    ``hess_out`` of size 0 skips the Hessian.  The dispatch on (loss, activation) happens
    once, before the row loop; fused pairs run their own loop.

    Returns
    -------
    float
        The total loss Σ w ℓ.
    """
    return _lgh_rows(
        fused_pair(lcode, hcode), lcode, a, phi, hcode, lam, hess_kind, y, eta, weights,
        offset, grad_out, hess_out,
    )  # fmt: skip


@kernel
def loss_sum(lcode, a, phi, hcode, lam, y, eta, weights, offset):
    """Σ_i w_i ℓ(y_i, eta[i] + offset[i]), value only (zero-weight rows skipped)."""
    pair = fused_pair(lcode, hcode)
    has_w = weights.size > 0
    has_off = offset.size > 0
    total = 0.0
    for i in range(y.size):
        w = weights[i] if has_w else 1.0
        if w == 0.0:
            continue
        e = eta[i] + offset[i] if has_off else eta[i]
        # loop-invariant branch on pair: unswitched by the compiler
        if pair == PAIR_POISSON_LOG:
            v = _poisson_log_value(y[i], e, phi)
        elif pair == PAIR_BERNOULLI_LOGIT:
            v = _bernoulli_logit_value(y[i], e, phi)
        elif pair == PAIR_GAUSSIAN_IDENTITY:
            v = _gaussian_identity_value(y[i], e, phi)
        elif pair == PAIR_GAMMA_LOG:
            v = _gamma_log_value(y[i], e, phi)
        elif is_cdf_pair(pair):
            v = _bernoulli_cdf_value(pair, y[i], e, phi)
        else:
            v = loss_value_generic(lcode, a, phi, hcode, lam, y[i], e)
        total += w * v
    return total
