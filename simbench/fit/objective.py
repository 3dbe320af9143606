"""The training objective of a network: layout, initialisation, loss and gradient.

:class:`Objective` binds a network's shape (layer widths, hidden activations, output
activation, loss) to training data and hands flat parameter vectors to the kernels of
:mod:`simbench.kernels.network`.  The objective minimised by every optimiser is the mean
loss plus the weight penalty::

    F(theta) = sum_i w_i l(y_i, eta_i(theta)) / sum_i w_i  +  l2 / 2 * sum(W^2)

(``w = 1`` without weights; biases are not penalised).  The mean rather than the sum makes
learning rates and tolerances independent of ``n``; the minimiser is the same.
"""

from __future__ import annotations

import math

import numpy as np

from simbench._jit import readonly
from simbench.kernels import codes
from simbench.kernels import minibatch as mb
from simbench.kernels import network as k
from simbench.kernels.training import Net

__all__ = ["EMPTY", "NO_MASK", "Objective", "init_params", "layer_offsets", "predict_eta"]

EMPTY = np.empty(0, dtype=np.float64)
NO_MASK = np.empty((0, 0), dtype=np.uint8)


def _act_codes(names) -> np.ndarray:
    from simbench import activations

    return np.array([activations.get(a).code for a in names], dtype=np.int64)


def layer_offsets(sizes: np.ndarray) -> np.ndarray:
    """Start of each layer's block ``[b_l, W_l]`` in the flat vector; the last entry is the
    parameter count (see :mod:`simbench.kernels.network` for the layout)."""
    offs = np.zeros(len(sizes), dtype=np.int64)
    for l in range(len(sizes) - 1):
        offs[l + 1] = offs[l] + sizes[l + 1] * (sizes[l] + 1)
    return offs


def init_params(sizes: np.ndarray, init: str, rng: np.random.Generator) -> np.ndarray:
    """Initial weights drawn from ``rng``, layer by layer.

    ``glorot``: W ~ U(+-sqrt(6 / (fan_in + fan_out))), b = 0; ``he``: W ~ N(0, 2 / fan_in),
    b = 0; ``uniform``: W, b ~ U(+-1 / sqrt(fan_in)) (PyTorch's default for a linear layer);
    ``zeros``: everything 0.
    """
    offs = layer_offsets(sizes)
    theta = np.zeros(int(offs[-1]))
    if init == "zeros":
        return theta
    for l in range(len(sizes) - 1):
        fan_in, fan_out = int(sizes[l]), int(sizes[l + 1])
        o = int(offs[l])
        nw = fan_in * fan_out
        if init == "glorot":
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            theta[o + fan_out : o + fan_out + nw] = rng.uniform(-limit, limit, nw)
        elif init == "he":
            theta[o + fan_out : o + fan_out + nw] = rng.normal(0.0, math.sqrt(2.0 / fan_in), nw)
        else:
            limit = 1.0 / math.sqrt(fan_in)
            theta[o : o + fan_out + nw] = rng.uniform(-limit, limit, fan_out + nw)
    return theta


class Objective:
    """Mean loss plus penalty of one network on one data set, over flat parameter vectors.

    Parameters
    ----------
    sizes : sequence of int
        ``[p, h_1, ..., h_L, 1]``.
    activations : sequence of str
        Canonical hidden activation names, one per hidden layer.
    output : Link
        Output activation (inverse link).
    loss : Loss
        The loss of (y, eta) through ``output``.
    X, y, weights, offset : ndarray
        Training data; ``weights`` and ``offset`` may be None.  Arrays are used as given
        (the caller validates and makes them contiguous float64), through read-only views
        (:func:`simbench._jit.readonly`: one compilation serves users' arrays and data sets).
    l2 : float
        Weight decay on the weights (not the biases).

    Attributes
    ----------
    net : simbench.kernels.training.Net
        The network and its data as one record for the compiled training loop.
    """

    def __init__(self, sizes, activations, output, loss, X, y, weights, offset, l2=0.0):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.offs = layer_offsets(self.sizes)
        self.acts = _act_codes(activations)
        self.n_hidden = len(self.sizes) - 2
        self.hidden_width = int(self.sizes[1:-1].sum())
        self.n_params = int(self.offs[-1])
        self.output = output
        self.loss = loss
        self.hcode, self.lam = int(output.code), float(output.param)
        self.lcode, self.a = int(loss.code), float(loss.param)
        self.X, self.y = readonly(X), readonly(y)
        self.weights = readonly(EMPTY if weights is None else weights)
        self.offset = readonly(EMPTY if offset is None else offset)
        # log y once per data set: the Poisson-log value without a logarithm per row
        logy = k.poisson_log_y(self.lcode, self.hcode, y) if len(sizes) == 2 else EMPTY
        self.logy = readonly(logy)
        self.n = X.shape[0]
        total_w = float(self.weights.sum()) if weights is not None else float(self.n)
        self.wscale = 1.0 / total_w if total_w > 0 else math.inf
        self.penal = np.zeros(self.n_params)
        if l2 > 0.0:
            for l in range(self.n_hidden + 1):
                fan_out = int(self.sizes[l + 1])
                self.penal[int(self.offs[l]) + fan_out : int(self.offs[l + 1])] = l2
        self.net = self._net(self.X, self.y, self.weights, self.offset, self.logy, self.wscale)

    def _net(self, X, y, weights, offset, logy, wscale) -> Net:
        return Net(
            sizes=self.sizes,
            offs=self.offs,
            acts=self.acts,
            hcode=self.hcode,
            lam=self.lam,
            lcode=self.lcode,
            a=self.a,
            X=X,
            y=y,
            weights=weights,
            offset=offset,
            logy=logy,
            wscale=wscale,
            penal=self.penal,
        )

    def empty_net(self) -> Net:
        """This network on no rows, with arrays of the same kinds as :attr:`net`'s (the
        compiled loop's stand-in for an absent validation set)."""
        X = readonly(np.empty((0, self.X.shape[1])))
        e = readonly(np.empty(0))
        return self._net(X, e, e, e, e, 0.0)

    def region_threads(self, kind: str = "loss") -> int:
        """Threads for the full-data evaluations of a compiled run, by the thread policy
        (:func:`simbench.kernels.network.region_threads`): ``"loss"`` for value and gradient,
        ``"newton"`` for Newton's terms; 1 (serial) for networks with hidden layers, whose
        evaluations have no parallel variant."""
        if self.n_hidden:
            return 1
        if kind == "newton":
            nch = max(1, min(16, -(-self.n // k.CHUNK)))
        else:
            nch = max(1, -(-self.n // k.CHUNK))
        return k.region_threads(kind, nch, self.X, self.y, self.weights, self.offset)

    def output_bias_index(self) -> int:
        return int(self.offs[self.n_hidden])

    def loss_grad(self, theta, grad, mask=NO_MASK, keep_inv=1.0, repeated=True) -> float:
        """``F(theta)``; the gradient is written into ``grad``.  ``mask`` (n x sum(h) uint8)
        applies inverted dropout with scale ``keep_inv``.  ``repeated`` False marks a one-off
        evaluation for the thread policy (:func:`simbench.kernels.network.glm_loss_grad`)."""
        if not theta.flags.writeable:
            # the compiled runs evaluate writeable parameter vectors: a read-only one (a
            # fitted GLM's coefficients) would compile the whole evaluation once more
            theta = theta.copy()
        if self.n_hidden == 0:
            total = k.glm_loss_grad(
                theta,
                self.X,
                self.y,
                self.weights,
                self.offset,
                self.lcode,
                self.a,
                self.hcode,
                self.lam,
                grad,
                logy=self.logy,
                repeated=repeated,
            )
        else:
            total = k.mlp_loss_grad(
                theta,
                self.sizes,
                self.offs,
                self.acts,
                self.hcode,
                self.lam,
                self.lcode,
                self.a,
                self.X,
                self.y,
                self.weights,
                self.offset,
                mask,
                keep_inv,
                grad,
            )
        grad *= self.wscale
        return total * self.wscale + mb.add_penalty(theta, self.penal, grad)

    def value(self, theta) -> float:
        """``F(theta)`` alone."""
        return self.loss_grad(theta, np.empty(self.n_params))

    def mean_loss(self, theta) -> float:
        """The mean loss without the penalty (the early-stopping criterion)."""
        grad = np.empty(self.n_params)
        return self.loss_grad(theta, grad) - 0.5 * float(np.sum(self.penal * theta * theta))

    def newton_terms(self, theta, expected: bool):
        """``(F, grad, Hessian)`` of a network without hidden layers; the Hessian is
        ``X~^T diag(w l'') X~ / sum w + diag(penalty)`` with the observed ``l''`` or, if
        ``expected``, the Fisher / Gauss-Newton one."""
        q = self.n_params
        grad = np.empty(q)
        hess = np.empty((q, q))
        kind = codes.HESS_EXPECTED if expected else codes.HESS_OBSERVED
        total = k.glm_newton_terms(
            theta,
            self.X,
            self.y,
            self.weights,
            self.offset,
            self.lcode,
            self.a,
            self.hcode,
            self.lam,
            kind,
            grad,
            hess,
        )
        grad *= self.wscale
        hess *= self.wscale
        hess[np.diag_indices(q)] += self.penal
        return total * self.wscale + mb.add_penalty(theta, self.penal, grad), grad, hess

    def minibatch_epoch(self, theta, perm, batch_size, mask, keep_inv, kind, hyper, m, v, t):
        """One epoch of mini-batch steps (see :func:`simbench.kernels.minibatch.minibatch_epoch`);
        returns ``(t, ok)``."""
        lr, momentum, beta1, beta2, eps = hyper
        _, t, ok = mb.minibatch_epoch(
            theta,
            self.sizes,
            self.offs,
            self.acts,
            self.hcode,
            self.lam,
            self.lcode,
            self.a,
            self.penal,
            self.X,
            self.y,
            self.weights,
            self.offset,
            perm,
            batch_size,
            mask,
            keep_inv,
            self.wscale,
            kind,
            lr,
            momentum,
            beta1,
            beta2,
            eps,
            m,
            v,
            t,
            False,
        )
        return t, ok


def predict_eta(sizes, acts, theta, X, offset) -> np.ndarray:
    """``eta(X)`` (plus offset) of the network with parameters ``theta`` (no dropout)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    out = np.empty(X.shape[0])
    off = EMPTY if offset is None else offset
    if len(sizes) == 2:
        k.glm_eta(readonly(theta), X, off, out)  # one compiled kind for fitted and user vectors
    else:
        k.mlp_eta(theta, sizes, layer_offsets(sizes), _act_codes(acts), X, off, out)
    return out
