"""Integer codes the kernels dispatch on.

Kernels never see Python objects: a link, family, loss or activation reaches them as a small
integer code (and, where the object has one, a float parameter).  The vocabulary modules
(``simbench.links``, ``simbench.families``, ...) own the names; this module owns the numbers.
Codes are part of no public contract and may be renumbered; names are stable.
"""

from __future__ import annotations

# ---- links (and output activations) ---------------------------------------------------
# A link g maps the mean mu to eta; its inverse h = g^-1 is a network's output activation.
# RELU and SOFTPLUS are output activations that are not links of any family in the usual
# sense; they share the code space so an output activation is always one integer.
LINK_IDENTITY = 0
LINK_LOG = 1  # h = exp
LINK_LOGIT = 2  # h = sigmoid
LINK_PROBIT = 3
LINK_CLOGLOG = 4
LINK_LOGLOG = 5
LINK_CAUCHIT = 6
LINK_INVERSE = 7  # power -1
LINK_INVERSE_SQUARED = 8  # power -2
LINK_SQRT = 9  # power 1/2
LINK_POWER = 10  # power lambda (parameter), lambda != 0
LINK_RELU = 11  # output activation max(0, eta); g undefined
LINK_SOFTPLUS = 12  # output activation log(1 + e^eta); g(mu) = log(expm1(mu))

# ---- families ---------------------------------------------------------------------------
FAMILY_GAUSSIAN = 0
FAMILY_BERNOULLI = 1
FAMILY_BINOMIAL = 2  # y is a proportion, prior weights carry the trials
FAMILY_POISSON = 3
FAMILY_GAMMA = 4
FAMILY_INVERSE_GAUSSIAN = 5
FAMILY_NEGATIVE_BINOMIAL = 6  # NB2, parameter alpha: V = mu + alpha mu^2
FAMILY_TWEEDIE = 7  # parameter p in (1, 2): V = mu^p

# ---- losses -------------------------------------------------------------------------------
# Codes 0..7 are the family negative log-likelihoods, equal to the family codes, so a
# family NLL loss code IS its family code.  The rest are losses of (y, mu) with no family.
LOSS_SQUARED_ERROR = 20  # (y - mu)^2 / 2
LOSS_HINGE = 21  # max(0, 1 - t mu), t = 2y - 1
LOSS_SQUARED_HINGE = 22  # max(0, 1 - t mu)^2
LOSS_LOGISTIC = 23  # log(1 + exp(-t mu))
LOSS_PERCEPTRON = 24  # max(0, -t mu)

# ---- hidden activations -------------------------------------------------------------------
ACT_IDENTITY = 0
ACT_RELU = 1
ACT_TANH = 2
ACT_SIGMOID = 3
ACT_SOFTPLUS = 4

# ---- Hessian kinds for loss kernels --------------------------------------------------------
HESS_OBSERVED = 0  # d2 loss / d eta2 at the observed y
HESS_EXPECTED = 1  # Fisher: E_y[d2 loss / d eta2]; Gauss-Newton for losses with no family
