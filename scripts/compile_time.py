"""Measure the time to compile every simbench kernel (cold) and to load them from the cache.

Runs the same warm-up twice in fresh processes that share an empty Numba cache directory:
the first process compiles and writes the cache, the second loads it.  The warm-up calls
every link, activation, family and loss kernel (scalar and array), the one-pass loss
kernels for every loss x output activation, ``fit_glm`` for every family with its default
link, each network/optimiser path, the metric kernels, and (on two threads or more) the
multi-threaded variants of the full-data passes, which only large problems run::

    python scripts/compile_time.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

WARM = r"""
import time, numpy as np
t0 = time.perf_counter()
import simbench
from simbench import activations, families, links, losses
from simbench.sweep.worker import run_group
x = np.linspace(0.1, 0.9, 64)
for link in links.REGISTRY:
    link.h(x); link.h1(x); link.h2(x)
    if link.invertible:
        link.g(x)
for act in activations.REGISTRY:
    act.f(x); act.d(x)
for fam in families.REGISTRY:
    y = np.clip(x, 0.05, 0.95)
    fam.variance(y); fam.unit_deviance(y, y); fam.deviance(y, y)
y01 = (x > 0.5).astype(float)
for loss in losses.REGISTRY:
    for link in (links.get("log"), links.get("logit"), links.get("identity"), links.get("probit")):
        try:
            loss.grad_hess(y01 if loss.binary_only else x, x, link)
        except Exception:
            pass
rng = np.random.default_rng(0)
X = rng.standard_normal((200, 3))
for name in families.names():
    fam = families.get(name)
    d = simbench.simulate({"family": name, "n": 200, "p": 3, "signal": 0.2, "mean": 0.5,
                           "design": "uniform"}, seed=1)
    simbench.fit_glm(d.X, d.y, family=fam, link=fam.default_link, weights=d.weights)
run_group.warmup()
# the multi-threaded variants, which a process on one thread (a sweep's worker) or a small
# problem never runs and so never compiles: the policy is told to choose two threads
import numba
from simbench import _threads
from simbench.sweep.worker import clear_warm_cache
if numba.config.NUMBA_NUM_THREADS >= 2:
    numba.set_num_threads(2)
    _threads.region_threads = lambda n_chunks, threads, elements, repeated=True: 2
    _threads.free_cpus = lambda now=None: 2
    clear_warm_cache()
    run_group.warmup()
    d = simbench.simulate({"family": "poisson", "n": 300, "p": 3}, seed=1)
    simbench.train(d.X, d.y, {"hidden": [], "optimizer": "newton"}, family="poisson").predict(d.X)
print(f"{time.perf_counter() - t0:.1f}")
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        times = []
        for label in ("cold (compile and write the cache)", "from the cache"):
            out = subprocess.run(
                [sys.executable, "-c", WARM], env=env, capture_output=True, text=True, check=True
            )
            times.append(float(out.stdout.strip().splitlines()[-1]))
            print(f"{label:<36} {times[-1]:7.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
