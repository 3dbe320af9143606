"""Network training benchmarks: one epoch, against the machine's memory bandwidth and PyTorch.

Off by default (``--benchmark-disable`` runs each once as a smoke test).  Run and report::

    python scripts/bench_network.py            # runs these, prints the figures and ratios

or ``python -m pytest tests/benchmarks/test_bench_network.py --benchmark-enable
--benchmark-json=out.json`` and ``python scripts/bench_network.py out.json``.

Groups (n = 100 000 rows, float64, Poisson responses; every timed call is one epoch, the
first calls untimed so compilation is never measured):

* ``bandwidth``: a read of a 256 MB array (fixed chunks, all threads): the machine's memory
  bandwidth, measured in the same run.
* ``glm-full-p{10,50}``: the network without hidden layers, full batch: the loss and gradient
  of all rows and one gradient step.  Target at p = 50: bytes of X / time >= 65% of the
  bandwidth, and >= 3x PyTorch.
* ``glm-grad-p{10,50}``: the gradient pass alone (no loss value), i.e. the streaming part of
  the epoch above.
* ``glm-batch256-p{10,50}``: the same network, one epoch of SGD on mini-batches of 256
  (permutation included).  Target: >= 20x PyTorch.
* ``mlp-adam``: MLP 10-32-16-1, tanh hidden units, exp output, Poisson loss, Adam, mini-batches
  of 256 (permutation included).  Target: >= 5x PyTorch.

PyTorch (the ``peers`` extra, CPU, float64, its default thread count) does the same work
with idiomatic code: ``nn.Linear`` layers, ``PoissonNLLLoss(log_input=True)``, ``torch.optim``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from numba import prange

from simbench import links, losses
from simbench._jit import kernel_nocache
from simbench.fit.objective import NO_MASK, Objective, init_params
from simbench.fit.optimizers import row_order, shuffle_rows
from simbench.kernels import minibatch as kmb
from simbench.kernels import network as k

N = 100_000
ROUNDS = 15


@kernel_nocache(parallel=True)  # defined in a test module: nothing worth caching next to it
def _read_all(a, nchunks):
    """Sum of ``a`` in fixed chunks, eight accumulators each: a pure memory stream."""
    size = (a.size + nchunks - 1) // nchunks
    parts = np.zeros(nchunks)
    for c in prange(nchunks):
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        lo = c * size
        hi = min(a.size, lo + size)
        i = lo
        while i + 8 <= hi:
            s0 += a[i]
            s1 += a[i + 1]
            s2 += a[i + 2]
            s3 += a[i + 3]
            s4 += a[i + 4]
            s5 += a[i + 5]
            s6 += a[i + 6]
            s7 += a[i + 7]
            i += 8
        while i < hi:
            s0 += a[i]
            i += 1
        parts[c] = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    return parts.sum()


def _data(p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, p))
    beta = rng.normal(0.0, 0.3 / np.sqrt(p), p)
    y = rng.poisson(np.exp(0.5 + X @ beta)).astype(np.float64)
    return X, y


def _run(benchmark, fn, **info):
    # The data's ``X @ beta`` leaves OpenBLAS's workers spinning for a tenth of a second or
    # so; the thread policy counts them as load (they are: two threads beside one ran 1.3-8 ms
    # where one thread ran 2.3 ms), so a region run meanwhile is serial.  These benchmarks
    # time the kernels' steady state: let the spinning end first.
    time.sleep(0.3)
    fn()  # compile / warm caches, untimed
    benchmark.extra_info.update(info)
    benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="bandwidth")
def test_memory_bandwidth(benchmark):
    a = np.full(32_000_000, 1.5)
    _run(benchmark, lambda: _read_all(a, 256), bytes=a.nbytes)


# ---- (a) the network without hidden layers ------------------------------------------------------


def _glm_objective(p):
    X, y = _data(p)
    return Objective([p, 1], (), links.get("log"), losses.get("poisson"), X, y, None, None)


@pytest.mark.parametrize("p", [10, 50])
def test_glm_full_batch(benchmark, p):
    benchmark.group = f"glm-full-p{p}"
    obj = _glm_objective(p)
    theta = np.zeros(p + 1)
    grad = np.empty(p + 1)
    m = v = np.empty(0)

    def epoch():
        obj.loss_grad(theta, grad)
        kmb.opt_step(kmb.OPT_SGD, theta, grad, m, v, 1, 1e-3, 0.0, 0.0, 0.0, 0.0)

    _run(benchmark, epoch, bytes=obj.X.nbytes, impl="simbench")


@pytest.mark.parametrize("p", [10, 50])
def test_glm_gradient_pass(benchmark, p):
    """The gradient alone over all rows (what a step needs; the epoch above also computes the
    loss value for the history): the pure streaming cost of X."""
    benchmark.group = f"glm-grad-p{p}"
    obj = _glm_objective(p)
    theta = np.zeros(p + 1)
    grad = np.empty(p + 1)
    args = (obj.X, obj.y, obj.weights, obj.offset, obj.lcode, obj.a, obj.hcode, obj.lam)

    def gradient():
        k.glm_loss_grad(theta, *args, grad, need_value=False)

    _run(benchmark, gradient, bytes=obj.X.nbytes, impl="simbench")


@pytest.mark.parametrize("p", [10, 50])
def test_glm_minibatch(benchmark, p):
    benchmark.group = f"glm-batch256-p{p}"
    obj = _glm_objective(p)
    theta = np.zeros(p + 1)
    m, v = np.zeros(p + 1), np.zeros(p + 1)
    rng = np.random.default_rng(1)
    perm = row_order(N)

    def epoch():
        shuffle_rows(perm, rng)  # the permutation as training draws it
        hyper = (1e-3, 0, 0, 0, 0)
        obj.minibatch_epoch(theta, perm, 256, NO_MASK, 1.0, kmb.OPT_SGD, hyper, m, v, 0)

    _run(benchmark, epoch, bytes=obj.X.nbytes, impl="simbench")


# ---- (b) an MLP ------------------------------------------------------------------------------


def test_mlp_adam(benchmark):
    benchmark.group = "mlp-adam"
    X, y = _data(10)
    obj = Objective(
        [10, 32, 16, 1], ("tanh", "tanh"), links.get("log"), losses.get("poisson"), X, y, None, None
    )
    theta = init_params(obj.sizes, "glorot", np.random.default_rng(2))
    q = obj.n_params
    m, v = np.zeros(q), np.zeros(q)
    rng = np.random.default_rng(3)
    state = {"t": 0}
    perm = row_order(N)

    def epoch():
        shuffle_rows(perm, rng)
        state["t"], _ = obj.minibatch_epoch(
            theta,
            perm,
            256,
            NO_MASK,
            1.0,
            kmb.OPT_ADAM,
            (1e-3, 0.9, 0.9, 0.999, 1e-8),
            m,
            v,
            state["t"],
        )

    _run(benchmark, epoch, impl="simbench")


# ---- PyTorch, the same work ---------------------------------------------------------------------


def _torch_setup(p):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    X, y = _data(p)
    return torch, torch.from_numpy(X), torch.from_numpy(y)


@pytest.mark.peers
@pytest.mark.parametrize("p", [10, 50])
def test_glm_full_batch_torch(benchmark, p):
    benchmark.group = f"glm-full-p{p}"
    torch, X, y = _torch_setup(p)
    model = torch.nn.Linear(p, 1, dtype=torch.float64)
    loss_fn = torch.nn.PoissonNLLLoss(log_input=True, full=False)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def epoch():
        opt.zero_grad()
        loss = loss_fn(model(X).squeeze(1), y)
        loss.backward()
        opt.step()

    _run(benchmark, epoch, bytes=X.numel() * 8, impl="torch")


@pytest.mark.peers
@pytest.mark.parametrize("p", [10, 50])
def test_glm_minibatch_torch(benchmark, p):
    benchmark.group = f"glm-batch256-p{p}"
    torch, X, y = _torch_setup(p)
    model = torch.nn.Linear(p, 1, dtype=torch.float64)
    loss_fn = torch.nn.PoissonNLLLoss(log_input=True, full=False)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def epoch():
        perm = torch.randperm(N)
        for s in range(0, N, 256):
            idx = perm[s : s + 256]
            opt.zero_grad()
            loss = loss_fn(model(X[idx]).squeeze(1), y[idx])
            loss.backward()
            opt.step()

    _run(benchmark, epoch, impl="torch")


@pytest.mark.peers
def test_mlp_adam_torch(benchmark):
    benchmark.group = "mlp-adam"
    torch, X, y = _torch_setup(10)
    nn = torch.nn
    model = nn.Sequential(
        nn.Linear(10, 32, dtype=torch.float64),
        nn.Tanh(),
        nn.Linear(32, 16, dtype=torch.float64),
        nn.Tanh(),
        nn.Linear(16, 1, dtype=torch.float64),
    )
    loss_fn = nn.PoissonNLLLoss(log_input=True, full=False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch():
        perm = torch.randperm(N)
        for s in range(0, N, 256):
            idx = perm[s : s + 256]
            opt.zero_grad()
            loss = loss_fn(model(X[idx]).squeeze(1), y[idx])
            loss.backward()
            opt.step()

    _run(benchmark, epoch, impl="torch")
