"""Reference network: forward pass, objective and backpropagation in plain NumPy.

Same flat layout as :mod:`simbench.kernels.network` (per layer the bias, then the weights
row-major), written layer by layer with whole-array operations and no buffers, so it can be
read against the formulas.  The loss and activations come from the reference modules.
"""

from __future__ import annotations

import numpy as np

from reference import activations as ref_act
from reference import losses as ref_loss


def layer_offsets(sizes):
    offs = [0]
    for l in range(len(sizes) - 1):
        offs.append(offs[-1] + sizes[l + 1] * (sizes[l] + 1))
    return offs


def unpack(theta, sizes):
    """``[(b_0, W_0), ..., (b_L, W_L)]`` as views of ``theta``."""
    offs = layer_offsets(sizes)
    layers = []
    for l in range(len(sizes) - 1):
        fi, fo = sizes[l], sizes[l + 1]
        o = offs[l]
        layers.append((theta[o : o + fo], theta[o + fo : offs[l + 1]].reshape(fo, fi)))
    return layers


def forward(theta, sizes, acts, X, masks=None, keep_inv=1.0):
    """``eta`` (without offset) and the per-layer inputs / derivatives for backprop.

    ``masks`` is a list of 0/1 arrays, one (n x h_l) per hidden layer (inverted dropout)."""
    layers = unpack(theta, sizes)
    H = X
    inputs, derivs = [], []
    for l, (b, W) in enumerate(layers[:-1]):
        inputs.append(H)
        Z = H @ W.T + b
        A, D = ref_act.f(acts[l], Z), ref_act.d(acts[l], Z)
        if masks is not None:
            A = A * masks[l] * keep_inv
            D = D * masks[l] * keep_inv
        derivs.append(D)
        H = A
    inputs.append(H)
    b, W = layers[-1]
    return (H @ W.T + b)[:, 0], inputs, derivs


def objective(
    theta,
    sizes,
    acts,
    hcode,
    lam,
    lcode,
    a,
    X,
    y,
    weights=None,
    offset=None,
    l2=0.0,
    masks=None,
    keep_inv=1.0,
):
    """``sum w l / sum w + l2/2 * sum W^2`` and its gradient (backpropagation)."""
    eta, inputs, derivs = forward(theta, sizes, acts, X, masks, keep_inv)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    if offset is not None:
        eta = eta + offset
    value, d1, _ = ref_loss.loss(lcode, a, 1.0, hcode, lam, y, eta)
    wsum = w.sum()
    F = float(np.sum(w * value)) / wsum
    delta = (w * d1 / wsum)[:, None]
    layers = unpack(theta, sizes)
    grads = []
    for l in range(len(layers) - 1, -1, -1):
        _b, W = layers[l]
        gW = delta.T @ inputs[l]
        gb = delta.sum(axis=0)
        grads.append((gb, gW))
        if l > 0:
            delta = (delta @ W) * derivs[l - 1]
    grad = np.concatenate([np.concatenate([gb, gW.ravel()]) for gb, gW in reversed(grads)])
    for _b, W in layers:
        F += 0.5 * l2 * float(np.sum(W * W))
    pen = np.concatenate([np.concatenate([np.zeros_like(b), W.ravel()]) for b, W in layers])
    return F, grad + l2 * pen


def end_to_end(theta, sizes):
    """``[intercept, slopes]`` of a network with identity activations, by pushing the unit
    vectors through it."""
    p = sizes[0]
    acts = ["identity"] * (len(sizes) - 2)
    zero = forward(theta, sizes, acts, np.zeros((1, p)))[0][0]
    slopes = forward(theta, sizes, acts, np.eye(p))[0] - zero
    return np.concatenate([[zero], slopes])
