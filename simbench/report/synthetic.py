"""Synthetic results tables: realistic rows without simulating or training anything.

For the reporting tests and for trying ``simbench table / report / compare`` without
running a sweep.  The rows follow the result-row contract (identity, ``s_*``, ``c_*``,
status, metrics, timings, coefficient lists) and their numbers follow the asymptotics of
SCIENCE.md, so tables and figures look like real ones:

* ``β_MLE ~ N(β*, diag(crb_var))`` with ``crb_var_j = c_j / n``; the Wald standard errors
  scatter a little around ``√crb_var``, so the intervals cover about 95%;
* a configuration's ``β̂ = β* + shrink (β_MLE − β*) + bias + noise · √crb_var · z``: the
  matched network (``"glm-as-nn"``) has ``shrink = 1``, no bias and ``noise ≈ 0``, so it
  *is* the MLE; others lose efficiency or are biased;
* ``excess_deviance = Σ_j (β̂_j − β*_j)² / (n crb_var_j)``, so for the MLE
  ``n · excess_deviance ~ χ²_{p+1}`` exactly as the theory says;
* ``fit_seconds`` is log-normal around ``speed · n / 1000`` seconds.

Nothing here is used by the reporting code itself.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simbench.metrics import METRIC_COLUMNS

__all__ = ["DEFAULT_CONFIGS", "synthetic_results", "write_results"]

#: name -> (behaviour, config parameters); behaviour keys: shrink, bias, noise, speed,
#: fail (probability of a diverged cell), balance (mean, sd), epochs
DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    "glm-as-nn": {
        "behaviour": {"shrink": 1.0, "bias": 0.0, "noise": 1e-7, "speed": 0.02, "fail": 0.0},
        "params": {"hidden": [], "optimizer": "lbfgs", "lr": 1.0, "epochs": 200},
    },
    "mlp": {
        "behaviour": {"shrink": 1.0, "bias": 0.02, "noise": 0.6, "speed": 0.2, "fail": 0.0},
        "params": {"hidden": [16], "optimizer": "adam", "lr": 0.01, "epochs": 300},
    },
    "early-stop": {
        "behaviour": {
            "shrink": 0.8,
            "bias": 0.0,
            "noise": 0.2,
            "speed": 0.05,
            "fail": 0.0,
            "balance": (-0.03, 0.01),
        },
        "params": {"hidden": [], "optimizer": "gd", "lr": 0.1, "epochs": 40},
    },
}

_BETA = (0.5, 0.4, -0.3, 0.2, -0.1, 0.05, 0.3, -0.2)
_CONFIG_DEFAULTS = {
    "activation": [],
    "output": "matched",
    "loss": "matched",
    "batch_size": None,
    "dropout": 0.0,
    "l2": 0.0,
    "early_stopping": False,
}


def _digest(obj: Any, n: int = 12) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def synthetic_results(
    families: Sequence[str] = ("poisson", "bernoulli"),
    ns: Sequence[int] = (250, 1000, 4000),
    configs: Mapping[str, Mapping[str, Any]] | None = None,
    replicates: int = 10,
    p: int = 3,
    seed: int = 0,
    record_history: bool = True,
    sweep_name: str = "synthetic",
):
    """A results DataFrame shaped like :func:`simbench.load`'s, with realistic numbers.

    Parameters
    ----------
    families : sequence of str
        Scenario families (binary ones get an AUC).
    ns : sequence of int
        Training sample sizes (crossed with ``families``).
    configs : mapping, optional
        ``name -> {"behaviour": {...}, "params": {...}}``; default :data:`DEFAULT_CONFIGS`.
        Behaviour keys: ``shrink``, ``bias``, ``noise`` (sd in units of the MLE's),
        ``speed`` (seconds per 1000 observations), ``fail`` (probability that a cell
        diverges), ``balance`` ((mean, sd)), ``epochs``.
    replicates : int
    p : int
        Number of slopes (``p + 1`` coefficients).
    seed : int
        Everything is a deterministic function of the seed.
    record_history : bool
        Add ``history_dist`` (distance to the MLE in SE units per epoch).
    sweep_name : str

    Returns
    -------
    pandas.DataFrame
        ``df.attrs["manifest"]`` holds a manifest like a results directory's.
    """
    import pandas as pd

    configs = DEFAULT_CONFIGS if configs is None else configs
    rng = np.random.default_rng(seed)
    k = p + 1
    beta = np.array(_BETA[:k], dtype=float)
    rows = []
    scenarios = [(fam, int(n)) for fam in families for n in ns]
    for si, (fam, n) in enumerate(scenarios):
        binary = fam in ("bernoulli", "binomial")
        s = {
            "family": fam,
            "link": "logit" if binary else "log",
            "n": n,
            "n_test": 20000,
            "p": p,
            "design": "gaussian",
            "signal": 0.5,
            "mean": 2.0,
            "dispersion": 1.0,
            "beta": None,
        }
        sid = _digest(s)
        c_info = np.linspace(1.0, 1.6, k) * (4.0 if binary else 0.5)
        b_true = beta.copy()
        if binary:
            b_true[0] = 0.0
        for r in range(replicates):
            crb = c_info / n * (1.0 + 0.03 * rng.standard_normal(k))
            sd = np.sqrt(crb)
            b_mle = b_true + sd * rng.standard_normal(k)
            se_model = sd * (1.0 + 0.05 * rng.standard_normal(k))
            se_sand = sd * (1.0 + 0.10 * rng.standard_normal(k))
            data_seed = int(rng.integers(2**62))
            for ci, (name, spec) in enumerate(configs.items()):
                beh = dict(spec.get("behaviour", {}))
                c = {"name": name, **_CONFIG_DEFAULTS, **dict(spec.get("params", {}))}
                cid = _digest(c)
                row: dict[str, Any] = {
                    "cell_id": _digest([sid, cid, r, seed], 16),
                    "scenario_id": sid,
                    "config_id": cid,
                    "config_label": name,
                    "replicate": r,
                    "scenario_index": si,
                    "config_index": ci,
                    "data_seed": data_seed,
                    "init_seed": int(rng.integers(2**62)),
                    "sweep_name": sweep_name,
                    "sweep_seed": seed,
                    "run_id": "synthetic-run",
                }
                row.update({f"s_{key}": v for key, v in s.items()})
                row.update({f"c_{key}": v for key, v in c.items()})
                row.update(_cell(rng, beh, n, b_true, b_mle, sd, binary, record_history))
                row.update(
                    beta_true=b_true.tolist(),
                    beta_mle=b_mle.tolist(),
                    mle_se=se_model.tolist(),
                    mle_se_sandwich=se_sand.tolist(),
                    crb_var=crb.tolist(),
                    mle_status="ok",
                )
                rows.append(row)
    df = pd.DataFrame.from_records(rows)
    df.attrs["manifest"] = _manifest(sweep_name, len(df), replicates)
    return df


def _cell(rng, beh, n, b_true, b_mle, sd, binary, record_history) -> dict[str, Any]:
    k = b_true.size
    if rng.random() < float(beh.get("fail", 0.0)):
        return {
            "status": "diverged",
            "error": "non-finite training loss at epoch 3",
            "fit_seconds": float(beh.get("speed", 0.05)) * n / 1000.0,
            "compile_seconds": 0.0,
            "epochs_run": 3,
            "converged": False,
            "beta_hat": [],
            **dict.fromkeys(_METRICS, float("nan")),
        }
    shrink = float(beh.get("shrink", 1.0))
    noise = float(beh.get("noise", 0.0))
    bias = float(beh.get("bias", 0.0))
    b_hat = b_true + shrink * (b_mle - b_true) + bias + noise * sd * rng.standard_normal(k)
    if shrink != 1.0:
        b_hat = b_hat - (1.0 - shrink) * 0.3 * b_true
    err = b_hat - b_true
    info = 1.0 / (n * sd**2)
    z_mle = float(np.sqrt(np.sum((b_hat - b_mle) ** 2 / sd**2)))
    bal_mean, bal_sd = beh.get("balance", (0.0, 0.0 if noise < 1e-3 else 0.005))
    epochs = int(beh.get("epochs", 20 if noise < 1e-3 else 120))
    out: dict[str, Any] = {
        "status": "ok",
        "error": None,
        "coef_err_truth": float(np.linalg.norm(err) / np.linalg.norm(b_true)),
        "coef_err_mle": float(np.max(np.abs(b_hat - b_mle))),
        "coef_z_mle": z_mle,
        "coef_z_truth": float(np.sqrt(np.sum(err**2 / sd**2))),
        "coef_cos_truth": float(
            b_hat[1:] @ b_true[1:] / (np.linalg.norm(b_hat[1:]) * np.linalg.norm(b_true[1:]))
        ),
        "excess_deviance": float(np.sum(err**2 * info)),
        "eta_rmse": float(np.sqrt(np.sum(err**2))),
        "mu_rel_err": float(0.8 * np.sqrt(np.sum(err**2))),
        "dev_train": float(1.0 - k / n + 0.02 * rng.standard_normal()),
        "dev_test": float(1.0 + np.sum(err**2 * info)),
        "balance": float(bal_mean + bal_sd * rng.standard_normal()),
        "calib_slope": float(1.0 + 0.1 * rng.standard_normal() * math.sqrt(1000 / n)),
        "calib_intercept": float(0.05 * rng.standard_normal() * math.sqrt(1000 / n)),
        "auc": float(0.72 - 0.5 * np.sum(err**2) + 0.005 * rng.standard_normal())
        if binary
        else float("nan"),
        "auc_oracle": float(0.72 + 0.005 * rng.standard_normal()) if binary else float("nan"),
        "fit_seconds": float(
            float(beh.get("speed", 0.05)) * n / 1000.0 * math.exp(0.1 * rng.standard_normal())
        ),
        "compile_seconds": 0.0,
        "epochs_run": epochs,
        "converged": bool(noise < 1e-3 or rng.random() < 0.9),
        "grad_norm": float(10 ** rng.uniform(-9, -6)),
        "beta_hat": b_hat.tolist(),
    }
    if record_history:
        # distance to the MLE in SE units: geometric decay towards the final distance
        start = 5.0 + rng.random()
        rate = 0.5 if noise < 1e-3 else 0.95
        e = np.arange(1, epochs + 1)
        out["history_dist"] = (z_mle + start * rate**e).tolist()
    return out


# every scalar metric of a real row (balance_max included), plus the optimiser state
_METRICS = (*METRIC_COLUMNS, "grad_norm")


def _provenance(**overrides) -> dict[str, Any]:
    base = {
        "simbench": "0.1.0",
        "numba": "0.68.1",
        "numpy": "2.4.6",
        "python": "3.11.7",
        "platform": "Linux-6.1-x86_64-with-glibc2.36",
        "hostname": "synthetic-host",
        "cpu": "Synthetic CPU @ 3.0GHz",
        "cpu_count": 2,
        "numba_num_threads": 2,
        "git_commit": "0" * 40,
        "git_dirty": False,
    }
    base.update(overrides)
    return base


def _manifest(name: str, n_cells: int, replicates: int, **provenance) -> dict[str, Any]:
    text = (
        f'[sweep]\nname = "{name}"\nreplicates = {replicates}\nseed = 0\n'
        'description = "synthetic results (no simulation): for tests and demos"\n'
    )
    return {
        "format": 1,
        "sweep_name": name,
        "sweep_source": f"{name}.toml",
        "sweep_hash": _digest(text, 64),
        "sweep_text": text,
        "description": "synthetic results (no simulation): for tests and demos",
        "n_cells": n_cells,
        "created_at": "2026-01-01T00:00:00+00:00",
        "runs": [
            {
                "run_id": "synthetic-run",
                "started_at": "2026-01-01T00:00:00+00:00",
                "finished_at": "2026-01-01T00:01:00+00:00",
                "outcome": "finished",
                "provenance": _provenance(**provenance),
            }
        ],
    }


def write_results(df, directory: str | Path, **provenance: Any) -> Path:
    """Store a results DataFrame as a results directory readable by :func:`simbench.load`.

    Uses the store's own writer (atomic Parquet parts plus ``manifest.json``).  The
    manifest is ``df.attrs["manifest"]`` (or a synthetic one); keyword arguments override
    fields of its runs' provenance (e.g. ``cpu="Other CPU"``).
    """
    import pandas as pd

    from ..sweep.store import MANIFEST, ResultStore, atomic_write_bytes

    directory = Path(directory)
    manifest = json.loads(json.dumps(df.attrs.get("manifest") or {}, default=str))
    if not manifest:
        name = str(df["sweep_name"].iloc[0]) if "sweep_name" in df and len(df) else "results"
        manifest = _manifest(name, len(df), int(df.get("replicate", pd.Series([0])).max()) + 1)
    if provenance:
        for run in manifest.get("runs", []):
            run.setdefault("provenance", {}).update(provenance)
    store = ResultStore(directory)
    store.parts.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2, default=str)
    atomic_write_bytes(directory / MANIFEST, text.encode("utf-8"))
    run_id = str(df["run_id"].iloc[0]) if "run_id" in df and len(df) else "synthetic-run"
    writer = store.writer(run_id, flush_rows=max(1, len(df)))
    for record in df.to_dict(orient="records"):
        writer.add({key: _plain(v) for key, v in record.items()})
    writer.flush()
    return directory


def _plain(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v
