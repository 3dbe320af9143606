"""Whole studies side by side: ``simbench run`` against a hand-written statsmodels + PyTorch loop.

Usage::

    python scripts/bench_study.py                          # both studies, 3 repetitions each
    python scripts/bench_study.py --study quickstart       # the bundled quickstart sweep only
    python scripts/bench_study.py --study small --replicates 20 --repeat 1   # a quick check

Needs the ``peers`` extra (statsmodels, PyTorch).  Two studies:

* ``quickstart``: ``scenarios/quickstart.toml`` as shipped (Poisson-log, Bernoulli-logit,
  Gamma-log; n = 1000, p = 5, n_test = 5000; seven configurations; 3 replicates: 63 cells).
* ``small``: small cells, the sweep :data:`SMALL_SWEEP` written to a temporary directory
  (Poisson-log and Bernoulli-logit; n = 200, p = 3, n_test = 2000; ``irls`` and ``newton``
  without hidden layers; 500 replicates by default, ``--replicates`` to shrink it: 2000 cells).

Each side is a whole process on one core (``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to 1; the peer also calls
``torch.set_num_threads(1)``):

* simbench: ``python -m simbench run SWEEP --jobs 1 --out DIR``, a fresh ``DIR`` every time;
  run once untimed first, so Numba's cache is warm.
* the peer: this script with ``--peer SWEEP``: the loop a statistician writes by hand.  It
  reads the same sweep file and takes the same data seeds (``expand_cells``), draws the same
  data with ``simbench.simulate(scenario, data_seed)``, fits the reference GLM once per
  (scenario, replicate) with statsmodels (IRLS, relative deviance change 1e-14, as simbench's
  reference), trains every configuration from the same initial weights (drawn from the cell's
  init seed as simbench draws them) with the same epochs and stopping rules, and computes
  ``coef_err_truth``, ``coef_err_mle``, ``coef_z_mle`` (with statsmodels' Fisher information
  at the MLE) and ``excess_deviance``; the rows go to a Parquet file.  As simbench keeps
  compilation out of ``fit_seconds``, the first use of each network structure in the peer
  process is a two-epoch fit off the clock (PyTorch's first autograd and optimiser calls
  take up to seconds); both warm-ups count in the study time.  Per configuration:

  - ``irls``: statsmodels ``GLM.fit`` (IRLS), stopped at a relative deviance change of 1e-10
    (``fit_glm``'s default), at most ``epochs`` iterations;
  - ``newton``: Newton's method in PyTorch float64, gradient and observed Hessian in closed
    form (``torch.autograd.functional.hessian`` for pairs without one), Cholesky solve with
    the expected Hessian and then a growing ridge as fallbacks, Armijo step-halving;
  - ``lbfgs``: ``torch.optim.LBFGS`` (history 10, strong-Wolfe line search), one iteration per
    ``step`` so that the stopping rules are checked after every iteration as simbench does;
    torch's own tolerances are off; a non-finite loss is a barrier, as in simbench;
  - ``adam`` (and the other first-order methods): ``torch.optim.Adam`` / ``SGD`` on the full
    data; the MLP is ``nn.Sequential(Linear, Tanh, ..., Linear)`` in float64;
  - every loop stops as simbench's (``simbench.fit.optimizers``) do: gradient
    norm of the mean loss <= ``tol``, relative change of the loss over an iteration <=
    ``ftol``, a non-finite loss (diverged), or ``epochs`` iterations.  The loss is the same
    number as simbench's (half the unit deviance, mean over the rows), so the relative rule
    means the same thing;
  - coefficients: a network's own for no hidden layer and the matched output activation,
    otherwise the GLM projection (statsmodels IRLS of the predictions on the test covariates).

  simbench computes more per cell than the peer (all 16 metric columns, among them a
  calibration GLM and the AUC, and the reference's sandwich covariance) and writes its store
  with checksums and a manifest: the comparison is, if anything, tilted towards the peer.

Reported (medians over ``--repeat`` alternating repetitions simbench, peer, simbench, ...):
the whole process (start-up and imports included), the study inside the process (simbench:
the run's ``elapsed_seconds`` in the manifest; the peer: from after its imports to its
written file), the fits alone (the sum of ``fit_seconds`` against the sum of the peer's
per-fit timings), per configuration the mean fit time of each side and, from the last
repetition, how far apart the two sides' coefficients are (max over cells and coefficients
of |beta_simbench - beta_peer| / se, with se the reference fit's standard errors), followed
by Markdown tables for the README.

With each repetition a third process (this script with ``--groups SWEEP``, one core) times
what simbench does per group before any cell, as the run's worker does it: the data
(``simulate``, the call the peer makes too) and the reference fit.  From these the report
gives Amdahl's bound on the study's ratio: the peer's study over simbench's data and
reference fits alone (were every cell free), and over those plus simbench's fits.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.toml"
THREAD_VARIABLES = (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)
# one core for every process this script starts (and for itself, before numpy is imported)
for _name in THREAD_VARIABLES:
    os.environ[_name] = "1"

SMALL_SWEEP = """\
# Small cells: many quick fits, where the per-cell work around the fit decides the speed.
[sweep]
name = "small_cells"
replicates = {replicates}
seed = 2026

[[scenarios]]
family = ["poisson", "bernoulli"]
n = 200
n_test = 2000
p = 3

[[configs]]
name = "glm-irls"
hidden = []
optimizer = "irls"

[[configs]]
name = "glm-newton"
hidden = []
optimizer = "newton"
epochs = 100
"""

# configurations whose two fits minimise the same objective to a tight tolerance: their
# coefficients should agree to far below a standard error
EXPECT_AGREEMENT = ("irls", "newton", "lbfgs")


# =====================================================================================
# the peer: a hand-written statsmodels + PyTorch loop
# =====================================================================================


class _Monitor:
    """simbench's stopping rules (simbench.fit.optimizers), without the history."""

    def __init__(self, tol: float, ftol: float) -> None:
        self.tol, self.ftol = tol, ftol
        self.last_f: float | None = None
        self.epoch = 0

    def observe(self, epoch: int, f: float, gnorm: float, moved: bool = True) -> str | None:
        self.epoch = epoch
        if not (math.isfinite(f) and math.isfinite(gnorm)):
            return "diverged"
        previous, self.last_f = self.last_f, f
        if gnorm <= self.tol:
            return "converged"
        if (
            self.ftol > 0.0
            and moved
            and previous is not None
            and abs(previous - f) <= self.ftol * max(abs(previous), abs(f))
        ):
            return "converged"
        return None


def _peer_tools():
    """Everything the peer needs, imported inside the peer process only."""
    import numpy as np
    import statsmodels.api as sm
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    torch.set_default_dtype(torch.float64)

    # ---- output activations, losses (half the unit deviance, as simbench), families ------

    def inverse_link(name):
        return {
            "log": torch.exp,
            "logit": torch.sigmoid,
            "softplus": F.softplus,
            "identity": lambda e: e,
        }[name]

    def loss_terms(family, link, output, loss, y):
        """``(mean loss of eta, closed-form (l', l''_observed, l''_expected) or None)``."""
        y = torch.as_tensor(y)
        if loss == "squared_error":
            h = inverse_link(output)
            return (lambda eta: 0.5 * torch.mean((y - h(eta)) ** 2)), None
        matched = output == link
        if family == "poisson":
            # y log y - y, 0 at y = 0: the loss is d(y, mu) / 2, zero at mu = y
            c = torch.where(y > 0, y * torch.log(torch.where(y > 0, y, 1.0)), 0.0) - y
            if matched and link == "log":

                def f(eta):
                    return torch.mean(torch.exp(eta) - y * eta + c)

                def terms(eta):
                    mu = torch.exp(eta)
                    return mu - y, mu, mu

                return f, terms
            h = inverse_link(output)
            return (lambda eta: torch.mean(h(eta) - y * torch.log(h(eta)) + c)), None
        if family == "bernoulli":
            if matched and link == "logit":

                def f(eta):  # log(1 + e^eta) - y eta, stable
                    return F.binary_cross_entropy_with_logits(eta, y)

                def terms(eta):
                    mu = torch.sigmoid(eta)
                    w = mu * (1.0 - mu)
                    return mu - y, w, w

                return f, terms
            h = inverse_link(output)
            one = y == 1.0

            def f(eta):
                mu = h(eta)
                # each row's own term only, so that no 0 * nan reaches the gradient
                return -torch.mean(
                    torch.where(one, torch.log(torch.where(one, mu, 0.5)), 0.0)
                    + torch.where(one, 0.0, torch.log1p(-torch.where(one, 0.5, mu)))
                )

            return f, None
        if family == "gamma":
            logy = torch.log(y)
            if matched and link == "log":

                def f(eta):
                    return torch.mean(y * torch.exp(-eta) - 1.0 - logy + eta)

                def terms(eta):
                    q = y * torch.exp(-eta)
                    return 1.0 - q, q, torch.ones_like(q)

                return f, terms
            h = inverse_link(output)

            def f(eta):
                mu = h(eta)
                return torch.mean(y / mu - 1.0 - logy + torch.log(mu))

            return f, None
        raise SystemExit(f"peer: no loss for family {family!r}, loss {loss!r}")

    def sm_family(family, link):
        links = sm.families.links
        if (family, link) == ("poisson", "log"):
            return sm.families.Poisson(links.Log())
        if (family, link) == ("bernoulli", "logit"):
            return sm.families.Binomial(links.Logit())
        if (family, link) == ("gamma", "log"):
            return sm.families.Gamma(links.Log())
        raise SystemExit(f"peer: family {family!r} with link {link!r} is not covered")

    def mu_valid(family, mu):
        if not np.all(np.isfinite(mu)):
            return False
        if family == "bernoulli":
            return bool(np.all((mu > 0) & (mu < 1)))
        return bool(np.all(mu > 0))

    def g(name, ybar):
        """The output activation's inverse at the mean response (simbench's output bias)."""
        with np.errstate(all="ignore"):
            value = {
                "log": np.log(ybar),
                "logit": np.log(ybar / (1.0 - ybar)),
                "softplus": np.log(np.expm1(ybar)),
                "identity": ybar,
            }[name]
        return float(value) if np.isfinite(value) else 0.0

    def initial_weights(sizes, init_seed):
        """simbench's glorot initialisation from the cell's init seed: the same numbers."""
        # the stream simbench.fit.network.train draws its weights from
        rng = np.random.default_rng(np.random.SeedSequence(int(init_seed)).spawn(4)[1])
        layers = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            W = rng.uniform(-limit, limit, fan_in * fan_out).reshape(fan_out, fan_in)
            layers.append((np.zeros(fan_out), W))
        return layers

    return np, sm, torch, inverse_link, loss_terms, sm_family, mu_valid, g, initial_weights


def peer_main(sweep: str, out: str) -> int:
    """Run every cell of ``sweep`` with statsmodels and PyTorch; rows to ``out`` (Parquet)."""
    t_start = time.perf_counter()
    warnings.simplefilter("ignore")  # statsmodels' convergence and domain warnings
    np, sm, torch, inverse_link, loss_terms, sm_family, mu_valid, g, initial_weights = _peer_tools()
    import pandas as pd

    from simbench import simulate
    from simbench.sweep.cells import expand_cells
    from simbench.sweep.spec import load_sweep

    t_study = time.perf_counter()
    spec = load_sweep(sweep)
    groups: dict[tuple[int, int], list] = {}
    for cell in expand_cells(spec):
        groups.setdefault((cell.scenario_index, cell.replicate), []).append(cell)
    timers = dict.fromkeys(("simulate", "reference", "warmup", "fits", "metrics"), 0.0)
    warm: set[tuple] = set()
    rows = []

    def check_covered(cfg):
        """The peer covers the sweeps of this benchmark, not every configuration."""
        plain = {"batch_size": None, "dropout": 0.0, "l2": 0.0, "early_stopping": False}
        for key, value in {**plain, "init": "glorot"}.items():
            if cfg.get(key, value) != value:
                raise SystemExit(f"peer: {key} = {cfg[key]!r} is not covered")
        if cfg["output"] not in ("matched", "log", "logit", "softplus", "identity"):
            raise SystemExit(f"peer: output {cfg['output']!r} is not covered")
        if cfg["loss"] not in ("matched", "squared_error"):
            raise SystemExit(f"peer: loss {cfg['loss']!r} is not covered")
        if any(a not in ("tanh", "relu") for a in cfg["activation"]):
            raise SystemExit(f"peer: activation {cfg['activation']!r} is not covered")

    def train(cfg, family, link, X, y, init_seed):
        """One configuration on one data set: (coefficients or None, predict(X), epochs,
        why it stopped).  Everything here is on the clock."""
        hidden = list(cfg["hidden"])
        output = link if cfg["output"] == "matched" else cfg["output"]
        loss = cfg["loss"]
        opt = cfg["optimizer"]
        if opt == "irls":
            fit = sm.GLM(y, X, family=sm_family(family, link)).fit(
                maxiter=cfg["epochs"], atol=1e-11, rtol=1e-10
            )
            beta = np.asarray(fit.params)
            why = "converged" if fit.converged else None
            return beta, None, int(fit.fit_history["iteration"]), why

        Xt = torch.from_numpy(X)  # [1, x]: the intercept column first
        f_eta, terms = loss_terms(family, link, output, loss, y)
        layers = initial_weights([X.shape[1] - 1, *hidden, 1], init_seed)
        bias = g(output, float(np.mean(y)))
        monitor = _Monitor(cfg["tol"], cfg["ftol"])

        if not hidden:
            b, W = layers[0]
            theta = torch.tensor(np.concatenate([[bias], W[0]]), requires_grad=True)

            def objective(t):
                return f_eta(Xt @ t)

            with torch.no_grad():  # simbench's valid start: halve the slopes until finite
                for _ in range(60):
                    if math.isfinite(float(objective(theta))):
                        break
                    theta[1:] *= 0.5
            params = [theta]
        else:
            acts = cfg["activation"]
            mods = []
            for i, width in enumerate(hidden):
                mods.append(torch.nn.Linear(([X.shape[1] - 1, *hidden])[i], width))
                mods.append({"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[acts[i]]())
            mods.append(torch.nn.Linear(hidden[-1], 1))
            model = torch.nn.Sequential(*mods)
            with torch.no_grad():
                for (b, W), lin in zip(layers, model[::2], strict=True):
                    lin.weight.copy_(torch.from_numpy(W))
                    lin.bias.copy_(torch.from_numpy(b))
                model[-1].bias.fill_(bias)
            Xf = Xt[:, 1:]

            def objective(_):
                return f_eta(model(Xf).squeeze(-1))

            params = list(model.parameters())
            theta = None

        def loss_grad():
            for p_ in params:
                p_.grad = None
            f = objective(theta)
            f.backward()
            gn = math.sqrt(sum(float(torch.sum(p_.grad * p_.grad)) for p_ in params))
            return float(f), gn

        reason, epoch = None, 0
        if opt == "newton":
            with torch.no_grad():
                theta = theta.detach()
                n = Xt.shape[0]

                def newton_terms(t):
                    if terms is None:  # no closed form: autograd
                        with torch.enable_grad():
                            tt = t.clone().requires_grad_(True)
                            f = objective(tt)
                            (grad,) = torch.autograd.grad(f, tt)
                            H = torch.autograd.functional.hessian(objective, t)
                        return float(f), grad, H, H
                    eta = Xt @ t
                    d1, d2, d2e = terms(eta)
                    return (
                        float(f_eta(eta)),
                        Xt.T @ d1 / n,
                        (Xt.T * d2) @ Xt / n,
                        (Xt.T * d2e) @ Xt / n,
                    )

                f, grad, H, He = newton_terms(theta)
                reason = monitor.observe(0, f, float(torch.linalg.vector_norm(grad)))
                while reason is None and epoch < cfg["epochs"]:
                    epoch += 1
                    L, info = torch.linalg.cholesky_ex(H)
                    if int(info) != 0:  # the expected Hessian, then a growing ridge
                        L, info = torch.linalg.cholesky_ex(He)
                        ridge = 1e-10 * max(1.0, float(torch.max(torch.abs(torch.diag(He)))))
                        while int(info) != 0 and ridge < 1e30:
                            L, info = torch.linalg.cholesky_ex(
                                He + ridge * torch.eye(len(grad), dtype=He.dtype)
                            )
                            ridge *= 10.0
                    step = -torch.cholesky_solve(grad[:, None], L)[:, 0]
                    slope = float(grad @ step)
                    alpha, accepted = 1.0, False
                    for _ in range(60):
                        trial = theta + alpha * step
                        ft = float(objective(trial))
                        if math.isfinite(ft) and ft <= f + 1e-4 * alpha * slope + 1e-15 * abs(f):
                            accepted = True
                            break
                        alpha *= 0.5
                    if not accepted:
                        break
                    theta = trial
                    f, grad, H, He = newton_terms(theta)
                    reason = monitor.observe(epoch, f, float(torch.linalg.vector_norm(grad)))
        elif opt == "lbfgs":
            optimizer = torch.optim.LBFGS(
                params,
                lr=1.0,
                max_iter=1,
                max_eval=25,
                tolerance_grad=0.0,
                tolerance_change=0.0,
                history_size=10,
                line_search_fn="strong_wolfe",
            )
            memo: dict = {"barrier": -math.inf}  # the largest barrier value so far

            def evaluate():
                x = theta.detach()
                if "x" in memo and torch.equal(memo["x"], x):
                    return memo["f"], memo["g"]
                theta.grad = None
                with torch.enable_grad():
                    fx = objective(theta)
                    fx.backward()
                memo.update(x=x.clone(), f=float(fx), g=theta.grad.detach().clone())
                return memo["f"], memo["g"]

            def closure():
                fx, gx = evaluate()
                if not (math.isfinite(fx) and bool(torch.isfinite(gx).all())):
                    # outside the domain: a value far above any seen, as simbench does
                    theta.grad = torch.zeros_like(gx)
                    seen = memo["barrier"] > -math.inf
                    return torch.tensor(memo["barrier"] if seen else math.inf)
                memo["barrier"] = max(memo["barrier"], fx + 1e6 * (1.0 + abs(fx)))
                theta.grad = gx.clone()
                return torch.tensor(fx)

            fx, gx = evaluate()
            reason = monitor.observe(0, fx, float(torch.linalg.vector_norm(gx)))
            while reason is None and epoch < cfg["epochs"]:
                before = theta.detach().clone()
                optimizer.step(closure)
                if torch.equal(before, theta.detach()):
                    break  # no step possible: the line search ended it
                epoch += 1
                fx, gx = evaluate()
                reason = monitor.observe(epoch, fx, float(torch.linalg.vector_norm(gx)))
        else:  # first-order methods on the full data
            if opt == "adam":
                optimizer = torch.optim.Adam(
                    params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"]
                )
            elif opt in ("gd", "sgd"):
                optimizer = torch.optim.SGD(params, lr=cfg["lr"])
            elif opt in ("momentum", "nesterov"):
                optimizer = torch.optim.SGD(
                    params, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=opt == "nesterov"
                )
            else:
                raise SystemExit(f"peer: optimizer {opt!r} is not covered")
            f, gn = loss_grad()
            reason = monitor.observe(0, f, gn)
            while reason is None and epoch < cfg["epochs"]:
                epoch += 1
                optimizer.step()
                f, gn = loss_grad()
                reason = monitor.observe(epoch, f, gn)

        if hidden:
            model.eval()

            def predict(Xnew):
                with torch.no_grad():
                    eta = model(torch.from_numpy(Xnew[:, 1:])).squeeze(-1)
                    return inverse_link(output)(eta).numpy()

            return None, predict, epoch, reason
        beta = theta.detach().numpy().copy()

        def predict(Xnew):
            with torch.no_grad():
                return inverse_link(output)(torch.from_numpy(Xnew @ beta)).numpy()

        coef = beta if output == link else None
        return coef, predict, epoch, reason

    for (si, r), cells in sorted(groups.items()):
        scenario = spec.scenarios[si]
        t0 = time.perf_counter()
        data = simulate(scenario.canonical, cells[0].data_seed)
        family, link = data.family.name, data.link.name
        X = sm.add_constant(np.array(data.X), has_constant="add")
        X_test = sm.add_constant(np.array(data.X_test), has_constant="add")
        y, mu_test, beta_true, phi = np.array(data.y), np.array(data.mu_test), data.beta, data.phi
        t1 = time.perf_counter()
        fam = sm_family(family, link)
        ref = sm.GLM(y, X, family=fam).fit(maxiter=200, atol=0.0, rtol=1e-14)
        beta_mle = np.asarray(ref.params)
        info = np.linalg.inv(np.asarray(ref.cov_params()))  # X~' W X~ / phi at the MLE
        t2 = time.perf_counter()
        timers["simulate"] += t1 - t0
        timers["reference"] += t2 - t1
        for cell in sorted(cells, key=lambda c: c.config_index):
            if cell.skip_reason is not None:  # does not apply (simbench: a skipped row)
                continue
            entry = spec.configs[cell.config_index]
            cfg = entry.canonical
            check_covered(cfg)
            key = (family, link, *(str(cfg[k]) for k in ("optimizer", "hidden", "activation",
                                                          "output", "loss")))  # fmt: skip
            if key not in warm:
                # first use of a structure in this process: off the clock, as simbench's
                # warm_up (two epochs on the first 64 rows; PyTorch's first autograd and
                # optimiser calls cost up to seconds)
                tw = time.perf_counter()
                try:
                    train({**cfg, "epochs": 2}, family, link, X[:64], y[:64], cell.init_seed)
                except Exception:  # the timed fit reports it
                    pass
                warm.add(key)
                timers["warmup"] += time.perf_counter() - tw
            row = {
                "scenario_index": si,
                "config_index": cell.config_index,
                "replicate": r,
                "c_name": cfg.get("name") or entry.label,
                "c_optimizer": cfg["optimizer"],
                "s_family": family,
            }
            t3 = time.perf_counter()
            try:
                coef, predict, epochs, why = train(cfg, family, link, X, y, cell.init_seed)
            except Exception as exc:  # a row, not a crash, as in simbench
                rows.append({**row, "status": "error", "error": f"{type(exc).__name__}: {exc}"})
                continue
            t4 = time.perf_counter()
            row.update(
                status="diverged" if why == "diverged" else "ok",
                fit_seconds=t4 - t3,
                epochs_run=epochs,
                converged=why == "converged",
            )
            if predict is None:  # IRLS: a GLM's prediction
                mu_hat = fam.fitted(X_test @ coef)
            else:
                mu_hat = predict(X_test)
            ok = mu_valid(family, mu_hat)
            beta_hat = coef
            if beta_hat is None and ok:  # the GLM projection of the network
                proj = sm.GLM(mu_hat, X_test, family=fam).fit(maxiter=100, atol=1e-11, rtol=1e-10)
                beta_hat = np.asarray(proj.params) if proj.converged else None
            nan = float("nan")
            if beta_hat is not None and np.all(np.isfinite(beta_hat)):
                d = beta_hat - beta_mle
                row.update(
                    beta_hat=beta_hat.tolist(),
                    coef_err_truth=float(np.linalg.norm(beta_hat - beta_true))
                    / float(np.linalg.norm(beta_true)),
                    coef_err_mle=float(np.max(np.abs(d))),
                    coef_z_mle=math.sqrt(max(0.0, float(d @ info @ d))),
                )
            else:
                row.update(beta_hat=[], coef_err_truth=nan, coef_err_mle=nan, coef_z_mle=nan)
            row["excess_deviance"] = (
                float(fam.deviance(mu_test, mu_hat)) / (phi * mu_hat.size) if ok else nan
            )
            rows.append(row)
            timers["fits"] += t4 - t3
            timers["metrics"] += time.perf_counter() - t4
    t5 = time.perf_counter()
    pd.DataFrame(rows).to_parquet(out)
    t_end = time.perf_counter()
    summary = {
        "imports": t_study - t_start,
        "study": t_end - t_study,
        "write": t_end - t5,
        "cells": len(rows),
        **timers,
    }
    Path(out).with_suffix(".json").write_text(json.dumps(summary))
    return 0


def groups_main(sweep: str) -> int:
    """Time what simbench does per group before any cell: the data and the reference fit.

    ``simulate`` (the same call as the peer's) and the reference fit of the run's worker,
    for every (scenario, replicate) of ``sweep``, one core, after one untimed group (its
    kernels load from Numba's cache); prints ``{"simulate": s, "reference": s}`` as JSON.
    """
    from simbench import simulate
    from simbench.sweep import worker
    from simbench.sweep.cells import expand_cells, group_tasks
    from simbench.sweep.spec import load_sweep

    spec = load_sweep(sweep)
    tasks = group_tasks(spec, expand_cells(spec))
    worker._reference(simulate(worker._scenario(tasks[0].scenario), tasks[0].data_seed))
    t_sim = t_ref = 0.0
    for task in tasks:
        t0 = time.perf_counter()
        data = simulate(worker._scenario(task.scenario), task.data_seed)
        t1 = time.perf_counter()
        worker._reference(data)
        t_sim += t1 - t0
        t_ref += time.perf_counter() - t1
    print(json.dumps({"simulate": t_sim, "reference": t_ref}))
    return 0


# =====================================================================================
# the driver
# =====================================================================================


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({name: "1" for name in THREAD_VARIABLES})
    return env


def _run(cmd: list[str], ok_codes=(0,)) -> tuple[float, str]:
    """Run ``cmd`` on one core; return its wall time and what it printed."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in ok_codes:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"{' '.join(cmd[:4])} ... exited with {proc.returncode}")
    return wall, proc.stdout


def run_simbench(sweep: Path, out: Path) -> dict:
    # exit code 3: some cells failed (e.g. separation); their rows exist and are compared
    wall, _ = _run([sys.executable, "-m", "simbench", "run", str(sweep), "--jobs", "1",
                    "--out", str(out)], ok_codes=(0, 3))  # fmt: skip
    import simbench

    manifest = json.loads((out / "manifest.json").read_text())
    rows = simbench.load(out)
    return {"wall": wall, "study": float(manifest["runs"][-1]["elapsed_seconds"]), "rows": rows}


def run_peer(sweep: Path, out: Path) -> dict:
    wall, _ = _run([sys.executable, str(Path(__file__).resolve()), "--peer", str(sweep),
                    "--peer-out", str(out)])  # fmt: skip
    import pandas as pd

    summary = json.loads(out.with_suffix(".json").read_text())
    return {"wall": wall, "study": summary["study"], "summary": summary,
            "rows": pd.read_parquet(out)}  # fmt: skip


def run_groups(sweep: Path) -> dict:
    _, printed = _run([sys.executable, str(Path(__file__).resolve()), "--groups", str(sweep)])
    return json.loads(printed.splitlines()[-1])


def _fit_totals(rows) -> dict[str, tuple[int, float]]:
    ok = rows[rows["fit_seconds"].notna()]
    return {
        name: (len(part), float(part["fit_seconds"].sum()))
        for name, part in ok.groupby("c_name", sort=False)
    }


def _agreement(sb, peer):
    """Per configuration: max over cells and coefficients of |b_sb - b_peer| / se."""
    import numpy as np

    keys = ["scenario_index", "config_index", "replicate"]
    both = sb.merge(peer, on=keys, suffixes=("", "_peer"))
    out = {}
    for name, part in both.groupby("c_name", sort=False):
        worst, compared = 0.0, 0
        for b1, b2, se in zip(part["beta_hat"], part["beta_hat_peer"], part["mle_se"],
                              strict=True):  # fmt: skip
            b1, b2, se = (np.asarray(v, dtype=float) for v in (b1, b2, se))
            if b1.size == 0 or b2.size == 0 or b1.size != b2.size or se.size != b1.size:
                continue
            compared += 1
            worst = max(worst, float(np.max(np.abs(b1 - b2) / se)))
        out[name] = {
            "compared": compared,
            "max_se": worst if compared else math.nan,
            "optimizer": part["c_optimizer"].iloc[0],
            "z_sb": float(part["coef_z_mle"].median()),
            "z_peer": float(part["coef_z_mle_peer"].median()),
            "ed_sb": float(part["excess_deviance"].median()),
            "ed_peer": float(part["excess_deviance_peer"].median()),
            "epochs_sb": float(part["epochs_run"].median()),
            "epochs_peer": float(part["epochs_run_peer"].median()),
        }
    return out


def _seconds(t: float) -> str:
    return f"{t:.2f} s" if t < 100 else f"{t:.0f} s"


def _ratio(a: float, b: float) -> str:
    return f"{b / a:.1f}x" if a > 0 else "-"


def _fmt_se(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return "0" if x == 0 else f"{x:.1e}"


def _sources_stamp() -> float:
    """The latest modification time of simbench's sources (an edit invalidates Numba's cache
    for the kernels of that file: the next run compiles them again, on the clock)."""
    return max(p.stat().st_mtime for p in (ROOT / "simbench").rglob("*.py"))


def bench_study(label: str, sweep: Path, work: Path, repeat: int) -> list[str]:
    """Run one study ``repeat`` times on each side; return its Markdown rows."""
    print(f"\n## {label}: {sweep.name}", flush=True)
    stamp = _sources_stamp()
    work = work / label.replace(" ", "_")
    work.mkdir()
    # untimed: Numba's on-disk cache for exactly these kernels, the OS's file cache for both
    run_simbench(sweep, work / "sb-warm")
    run_peer(sweep, work / "peer-warm.parquet")
    sb_runs, peer_runs, group_runs = [], [], []
    for k in range(repeat):
        sb_runs.append(run_simbench(sweep, work / f"sb-{k}"))
        peer_runs.append(run_peer(sweep, work / f"peer-{k}.parquet"))
        group_runs.append(run_groups(sweep))
        print(
            f"  repetition {k + 1}/{repeat}: simbench {sb_runs[-1]['wall']:.2f} s "
            f"(study {sb_runs[-1]['study']:.2f} s), peer {peer_runs[-1]['wall']:.2f} s "
            f"(study {peer_runs[-1]['study']:.2f} s)",
            flush=True,
        )
    if _sources_stamp() != stamp:
        print(
            "WARNING: simbench's sources changed during this study; simbench's timings may "
            "include recompiling kernels"
        )
    med = statistics.median
    cells = len(sb_runs[-1]["rows"])
    sb_fit = [_fit_totals(run["rows"]) for run in sb_runs]
    peer_fit = [_fit_totals(run["rows"]) for run in peer_runs]
    whole = (med(r["wall"] for r in sb_runs), med(r["wall"] for r in peer_runs))
    study = (med(r["study"] for r in sb_runs), med(r["study"] for r in peer_runs))
    fits = (
        med(sum(t for _, t in f.values()) for f in sb_fit),
        med(sum(t for _, t in f.values()) for f in peer_fit),
    )
    summ = peer_runs[-1]["summary"]
    print(f"cells: {cells} (simbench ok: {int((sb_runs[-1]['rows']['status'] == 'ok').sum())})")
    print(f"{'':34s} {'simbench':>10s} {'peer':>10s} {'ratio':>7s}")
    for what, (a, b) in (
        ("whole process (start-up included)", whole),
        ("study in process", study),
        ("the fits alone", fits),
    ):
        print(f"{what:34s} {a:9.2f}s {b:9.2f}s {_ratio(a, b):>7s}")
    last = sb_runs[-1]
    in_cells = float(last["rows"]["cell_seconds"].sum())
    print(
        f"simbench: {cells / study[0]:.0f} cells/s in process, {cells / whole[0]:.0f} cells/s "
        f"whole process; last repetition: start-up and imports {last['wall'] - last['study']:.2f}"
        f" s, cells {in_cells:.2f} s (fits {sum(t for _, t in sb_fit[-1].values()):.2f} s), "
        f"outside the cells (planning, kernel warm-up, store) {last['study'] - in_cells:.2f} s"
    )
    print(
        f"peer, last repetition: imports {summ['imports']:.2f} s, simulate "
        f"{summ['simulate']:.2f} s, reference fits {summ['reference']:.2f} s, warm-up "
        f"{summ['warmup']:.2f} s, fits "
        f"{summ['fits']:.2f} s, predictions and metrics {summ['metrics']:.2f} s, "
        f"write {summ['write']:.2f} s"
    )

    # Amdahl's bound: what simbench does per group before any cell, timed alone
    data_t = med(g["simulate"] for g in group_runs)
    ref_t = med(g["reference"] for g in group_runs)
    print(
        f"simbench per group, timed alone: data {data_t:.2f} s (the peer's own call), "
        f"reference fits {ref_t:.2f} s; were the rest of every cell free, the study in "
        f"process would be at most {_ratio(data_t + ref_t, study[1])} the peer's speed, "
        f"and with its fits as they are {_ratio(data_t + ref_t + fits[0], study[1])}"
    )

    agree = _agreement(sb_runs[-1]["rows"], peer_runs[-1]["rows"])
    header = (
        "| configuration | cells | simbench ms/fit | peer ms/fit | ratio | epochs (sb / peer) "
        "| max \\|Δβ\\| / se | median coef_z_mle (sb / peer) |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in sb_fit[-1]:
        n = sb_fit[-1][name][0]
        a = med(f[name][1] for f in sb_fit) / n
        b = med(f.get(name, (n, math.nan))[1] for f in peer_fit) / n
        ag = agree.get(name, {})
        mark = "" if ag.get("optimizer") in EXPECT_AGREEMENT else " †"
        lines.append(
            f"| {name} | {n} | {a * 1e3:.2f} | {b * 1e3:.2f} | {_ratio(a, b)} | "
            f"{ag.get('epochs_sb', math.nan):.0f} / {ag.get('epochs_peer', math.nan):.0f} | "
            f"{_fmt_se(ag.get('max_se', math.nan))}{mark} | "
            f"{_fmt_se(ag.get('z_sb', math.nan))} / {_fmt_se(ag.get('z_peer', math.nan))} |"
        )
    print("\nper configuration (fit times: medians over repetitions of the per-configuration sums;")
    print("coefficients: last repetition; se = the reference fit's standard errors):\n")
    print("\n".join(lines))
    if any(a.get("optimizer") not in EXPECT_AGREEMENT for a in agree.values()):
        print(
            "\n† not expected to agree to a tolerance: a fixed number of first-order steps "
            "(the same start and update rule on both sides, so equal up to rounding as it "
            "grows over the epochs)"
        )
    return [
        f"| {label} ({cells} cells), whole process | {_seconds(whole[0])} | "
        f"{_seconds(whole[1])} | {_ratio(*whole)} |",
        f"| {label}, study in process | {_seconds(study[0])} ({cells / study[0]:.0f} cells/s) "
        f"| {_seconds(study[1])} | {_ratio(*study)} |",
        f"| {label}, the fits alone | {_seconds(fits[0])} | {_seconds(fits[1])} | "
        f"{_ratio(*fits)} |",
    ]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", choices=("quickstart", "small", "both"), default="both")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions per side (default 3)")
    ap.add_argument(
        "--replicates", type=int, default=500, help="replicates of the small study (default 500)"
    )
    ap.add_argument("--peer", metavar="SWEEP", help=argparse.SUPPRESS)
    ap.add_argument("--peer-out", metavar="FILE", help=argparse.SUPPRESS)
    ap.add_argument("--groups", metavar="SWEEP", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.peer:
        return peer_main(args.peer, args.peer_out)
    if args.groups:
        return groups_main(args.groups)
    if args.repeat < 1 or args.replicates < 1:
        ap.error("--repeat and --replicates must be at least 1")

    import numba
    import statsmodels
    import torch

    print(
        f"simbench vs a hand-written statsmodels {statsmodels.__version__} + PyTorch "
        f"{torch.__version__} loop; one core each; {args.repeat} alternating repetitions "
        f"(numba {numba.__version__}, {os.cpu_count()} CPUs)"
    )
    table = [
        "| study | simbench | hand-written statsmodels + PyTorch | ratio |",
        "|---|---|---|---|",
    ]
    work = Path(tempfile.mkdtemp(prefix="bench_study-"))
    try:
        if args.study in ("quickstart", "both"):
            table += bench_study("quickstart", QUICKSTART, work, args.repeat)
        if args.study in ("small", "both"):
            sweep = work / "small_cells.toml"
            sweep.write_text(SMALL_SWEEP.format(replicates=args.replicates))
            table += bench_study("small cells", sweep, work, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nMarkdown (medians; ratio = the peer's time over simbench's):\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
