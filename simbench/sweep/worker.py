"""The group function: one (scenario, replicate), every configuration on the same data.

:func:`run_group` is what the runner calls (``simbench.sweep.worker:run_group``) in a worker
process, once per :class:`~simbench.sweep.cells.GroupTask`:

1. simulate the data once from ``task.data_seed`` (common random numbers: every
   configuration of the group sees the identical sample);
2. fit the reference GLM once by IRLS, to a tolerance tighter than ``fit_glm``'s default
   (see :func:`_reference`).  If it fails (separation, non-convergence, or an exception)
   every row records that in ``mle_status`` (and ``mle_error``) and the metrics against the
   MLE are NaN; the configurations are still trained;
3. for each cell, in order: rebuild the configuration, check it applies to the scenario
   (otherwise a ``skipped`` row with the reason), compile what it needs outside the clock
   (``compile_seconds``), train it on the clock (``fit_seconds``), and compute the metrics
   of :mod:`simbench.metrics`.  The row is yielded (and passed to ``emit``) as soon as it
   exists, so a later crash or hang loses only the cell in flight.

Statuses: ``ok`` (trained; ``converged`` says whether the optimiser met its tolerance),
``diverged`` (non-finite loss; metrics are computed where the predictions are finite and
are NaN otherwise), ``skipped`` (the configuration does not apply, e.g. a hinge loss on
Poisson data), ``error`` (anything raised while training or evaluating the cell: the
exception type and message are in ``error``).  A cell never raises out of this function.

Determinism: the same task gives bit-identical values in every column except the timing
ones (``fit_seconds``, ``compile_seconds``, ``started_at``, ``worker``): the data, the
initialisation and every reduction depend only on the seeds in the task.

Compile-time accounting
-----------------------
Numba compiles a kernel at its first call with a given signature, so whichever fit came
first in a process would otherwise carry the compile time in ``fit_seconds``.  Before timing
a cell, :func:`warm_up` trains the same configuration (with a two-epoch budget) on a tiny
sample of the group's data, at most once per process for each (network structure, family,
link); its wall time is the cell's ``compile_seconds`` (0 when that structure was already
warm, a few milliseconds of tiny-fit time otherwise included).  With Numba's on-disk cache
a warm-up in a fresh process mostly loads compiled code, so ``compile_seconds`` then
measures loading rather than compiling.  ``run_group.prepare(task)`` (called by the
executors before each task, outside its timeout) does the same warm-ups for the task's own
structures on its own data, and once per process runs the data, reference-fit and metric
kernels, so a first cell is neither charged nor timed out for compiling, and a sweep loads
only the compiled code it uses.  ``run_group.warmup()`` warms a fixed set of common
structures instead (for callers without tasks, e.g. measuring compile time).

Runner interface
----------------
``run_group`` is a generator function, the streaming form the runner prefers: each row is
handed over as soon as its cell finishes, and the executor times each cell separately.
``list(run_group(task))`` gives all rows at once.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from simbench import metrics
from simbench._link_only import compile_for_linking
from simbench.errors import ValidationError
from simbench.kernels.losses import loss_eval
from simbench.kernels.metrics import gram_with_intercept as _gram_kernel
from simbench.sweep.claims import run_shared
from simbench.sweep.status import error_text
from simbench.sweep.store import utcnow

__all__ = ["clear_warm_cache", "run_group", "warm_up"]

# per-process record of warmed (structure, family, link) keys
_WARM: set[tuple] = set()
_WARM_ROWS = 64
_WARM_EPOCHS = 2
_REFERENCE_TOL = 1e-14


def _structure_key(config, family, link) -> tuple:
    """What decides which compiled kernels a training run needs.

    Learning rates, epoch counts and seeds change no kernel signature; the optimizer, the
    layer structure, the losses/activations and the training options that switch code paths
    (mini-batches, dropout, early stopping, L2) may.  Erring towards more keys only costs an
    extra millisecond-scale warm-up.
    """
    return (*_structure(config), family, link)


def _structure(config) -> tuple:
    return (
        config.optimizer,
        tuple(config.hidden or ()),
        tuple(config.activation or ()),
        str(config.output),
        str(config.loss),
        config.batch_size is None,
        bool(config.dropout),
        bool(config.early_stopping),
        bool(config.l2),
    )


class _Config:
    """A cell's configuration as the worker uses it: validated once per process."""

    __slots__ = ("config", "plain", "resolved", "structure")

    def __init__(self, plain: dict, config) -> None:
        self.plain = plain
        self.config = config
        self.structure = _structure(config)
        self.resolved: dict[tuple, tuple] = {}  # (family, link) -> (output, loss, reason)

    def resolve(self, family, link) -> tuple:
        """``(output, loss, reason)``: what the configuration fits on this family and link,
        and why it does not apply (None when it does; the data's own check comes apart)."""
        key = (family, link)
        hit = self.resolved.get(key)
        if hit is None:
            try:
                output, loss = self.config.resolve(family, link)
                reason = loss.why_not(family) if hasattr(loss, "why_not") else None
            except ValidationError as exc:
                output, loss, reason = None, None, str(exc)
            hit = self.resolved[key] = (output, loss, reason)
        return hit


# per process: validated configurations by config_id (every cell of a sweep that shares a
# configuration shares one), compared with the cell's dict so that an id reused for other
# settings is never trusted
_CONFIGS: dict[str, _Config] = {}


def _config(cell) -> _Config:
    """The validated configuration of a cell (raises its ValidationError)."""
    from simbench.fit.network import NetworkConfig

    plain = cell.config
    key = getattr(cell, "config_id", None)
    hit = _CONFIGS.get(key) if key is not None else None
    if hit is not None and hit.plain == plain:
        return hit
    entry = _Config(dict(plain), NetworkConfig.from_dict(dict(plain)))
    if key is not None:
        _bounded(_CONFIGS)[key] = entry
    return entry


def _bounded(cache):
    """``cache``, emptied first when it has grown past what any sweep needs (a process may
    run many sweeps)."""
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    return cache


_CACHE_LIMIT = 4096


def _known(cell) -> bool:
    """Whether the cell's configuration is the one cached under its id."""
    hit = _CONFIGS.get(getattr(cell, "config_id", None))
    return hit is not None and hit.plain == cell.config


def clear_warm_cache() -> None:
    """Forget which structures this process has warmed up (for tests)."""
    _WARM.clear()
    _WARM_PARTS.clear()
    _PREPARED.clear()


def warm_up(config, family, link, X=None, y=None, weights=None, offset=None) -> float:
    """Compile the kernels ``config`` needs on ``(family, link)``; return the seconds spent.

    Trains a copy of ``config`` limited to two epochs on the first rows (at least 64, and
    more than two mini-batches) of the given sample, or of a small synthetic sample drawn
    from ``family`` when none is given, and predicts with the fit, at most once per process
    per structure key; returns 0.0 when already warm.  Errors of the warm-up are swallowed:
    the timed fit that follows raises them again, where they are recorded.
    """
    return _warm(_structure_key(config, family, link), config, family, link, X, y, weights, offset)


def _warm(key, config, family, link, X=None, y=None, weights=None, offset=None) -> float:
    from simbench.fit.network import NetworkConfig, train

    if key in _WARM:
        return 0.0
    t0 = time.perf_counter()
    try:
        if X is None:
            X, y, weights, offset = _synthetic_sample(family, link)
        # several mini-batches, the last one partial, so every batching path is compiled
        batch = config.batch_size or 0
        m = min(X.shape[0], max(_WARM_ROWS, 2 * batch + 3))
        small = {**config.to_dict(), "epochs": _WARM_EPOCHS}
        # leading-row views keep the dtype, layout and read-only flag of the real arrays:
        # Numba compiles one specialisation per such array type
        off = None if offset is None else offset[:m]
        fit = train(
            X[:m],
            y[:m],
            NetworkConfig.from_dict(small),
            family=family,
            link=link,
            seed=0,
            weights=None if weights is None else weights[:m],
            offset=off,
        )
        fit.predict(X[:m], offset=off)  # every cell predicts, after its fit
    except Exception:  # the timed fit reports it
        pass
    _WARM.add(key)
    return time.perf_counter() - t0


def _synthetic_sample(family, link):
    """A small valid sample for a warm-up without data: constant mean, two covariates."""
    from simbench.data import sample

    n = 512
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 2))
    mu = np.full(n, 0.4 if family.is_binary else 1.5)
    arrays = (X, sample(family, mu, 1.0, rng), np.ones(n), np.zeros(n))
    for a in arrays:  # read-only like a Dataset's arrays: the same Numba specialisation
        a.flags.writeable = False
    return arrays


# ---------------------------------------------------------------------------------------
# rows
# ---------------------------------------------------------------------------------------


_WORKER_NAME: tuple[int, str] = (-1, "")


def _worker_name() -> str:
    global _WORKER_NAME
    pid = os.getpid()
    if _WORKER_NAME[0] != pid:  # once per process (a forked child has its own pid)
        _WORKER_NAME = (pid, f"{socket.gethostname()}:{pid}")
    return _WORKER_NAME[1]


def _base_row(cell, shared: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "cell_id": cell.cell_id,
        "status": "error",
        "error": None,
        "worker": _worker_name(),
        "started_at": utcnow(),
    }
    row.update(dict.fromkeys(metrics.METRIC_COLUMNS, math.nan))
    row.update(
        fit_seconds=math.nan,
        compile_seconds=math.nan,
        epochs_run=0,
        converged=False,
        grad_norm=math.nan,
        beta_hat=[],
    )
    row.update(shared)
    return row


def _nan_if_not_finite(row: dict[str, Any]) -> None:
    for k in metrics.METRIC_COLUMNS:
        v = row[k]
        if not math.isfinite(v):
            row[k] = math.nan


def _has_coefficients(config) -> bool:
    """Whether training can track coefficients (no hidden layer, or a deep linear network)."""
    return not config.hidden or all(a == "identity" for a in config.activation)


def _reference(data) -> tuple[metrics.Reference, dict[str, Any]]:
    """Fit the reference GLM; return it for the metrics and its shared row columns."""
    from simbench.fit.glm import fit_glm

    args = (data.X, data.y)
    kwargs = dict(family=data.family, link=data.link, weights=data.weights, offset=data.offset)
    try:
        # Fisher scoring converges only linearly for non-canonical links, and at fit_glm's
        # default tolerance the iterate can still be ~1e-5 standard errors from the MLE:
        # as large as the differences coef_z_mle is meant to resolve.  A tight tolerance
        # costs two or three iterations; if rounding keeps it from being met, the default
        # criterion decides.
        fit = fit_glm(*args, **kwargs, tol=_REFERENCE_TOL, max_iter=200)
        if fit.status == "not_converged":
            fit = fit_glm(*args, **kwargs)
    except Exception as exc:
        ref, shared = metrics.reference_columns(data, None, status="error")
        shared["mle_error"] = error_text(exc)
        return ref, shared
    ref, shared = metrics.reference_columns(data, fit)
    shared["mle_error"] = None if fit.status == "ok" else (fit.message or fit.status)
    return ref, shared


def _response_problem(loss, data, checked: dict) -> str | None:
    """Why ``loss`` cannot be fitted to the group's responses, or None; ``checked`` holds
    the answers for the group's data (its cells share the responses)."""
    if loss not in checked:
        try:
            loss.check_y(data.y)
            checked[loss] = None
        except ValidationError as exc:
            checked[loss] = str(exc)
    return checked[loss]


def _run_cell(cell, data, reference, shared, record_history: bool, checked=None) -> dict[str, Any]:
    from simbench.fit.network import train

    row = _base_row(cell, shared)
    try:
        entry = _config(cell)
    except Exception as exc:
        row["error"] = error_text(exc)
        return row
    config = entry.config
    family, link = data.family, data.link
    output, loss, reason = entry.resolve(family, link)
    if reason is None:
        reason = _response_problem(loss, data, {} if checked is None else checked)
    if reason is not None:
        row.update(status="skipped", error=reason)
        return row

    try:
        row["compile_seconds"] = _warm(
            (*entry.structure, family, link),
            config,
            family,
            link,
            data.X,
            data.y,
            data.weights,
            data.offset,
        )
        kwargs: dict[str, Any] = {}
        track = record_history and reference.coef is not None and _has_coefficients(config)
        if track:
            # distance to the MLE per epoch, in standard-error units
            kwargs["track_beta"] = reference.coef
            kwargs["track_information"] = reference.fisher_information
        t0 = time.perf_counter()
        fit = train(
            data.X,
            data.y,
            config,
            family=family,
            link=link,
            seed=cell.init_seed,
            weights=data.weights,
            offset=data.offset,
            **kwargs,
        )
        row["fit_seconds"] = time.perf_counter() - t0
        row["epochs_run"] = int(fit.epochs_run)
        row["converged"] = bool(fit.converged)
        row["grad_norm"] = float(fit.grad_norm)
        diverged = fit.status == "diverged"

        with np.errstate(all="ignore"):
            mu_train = np.asarray(fit.predict(data.X, offset=data.offset), dtype=np.float64)
            mu_test = np.asarray(
                fit.predict(data.X_test, offset=data.offset_test), dtype=np.float64
            )
        margin = bool(loss.binary_only)
        coef = getattr(fit, "coef", None)
        # the network's own coefficients are the GLM's only when they live on the scale of
        # the scenario's link (or, for a margin loss, of the score); otherwise project
        if coef is not None and not (margin or output == link):
            coef = None
        with np.errstate(all="ignore"):
            row.update(
                metrics.cell_metrics(
                    data, mu_train, mu_test, coef=coef, margin=margin, reference=reference
                )
            )
        if record_history:
            dist = fit.history.get("dist_beta") if track else None
            row["history_dist"] = [] if dist is None else [float(v) for v in dist]
        if diverged:
            _nan_if_not_finite(row)
            row.update(status="diverged", error=fit.message or "non-finite loss")
        else:
            row["status"] = "ok"
            if not fit.converged and fit.message:
                row["error"] = fit.message
    except Exception as exc:
        row.update(dict.fromkeys(metrics.METRIC_COLUMNS, math.nan))
        row.update(status="error", error=error_text(exc), beta_hat=[])
    return row


def run_group(task, emit: Callable[[dict], None] | None = None) -> Iterator[dict[str, Any]]:
    """Run every cell of a group on one simulated dataset; yield one row per cell, in order.

    Parameters
    ----------
    task : GroupTask
        ``scenario`` (canonical dict), ``data_seed``, ``cells`` (``cell_id``, ``config``,
        ``init_seed``) and ``record_history`` (or ``options["record_history"]``).
    emit : callable, optional
        Called with each row as soon as it is complete (in addition to yielding it).

    Yields
    ------
    dict
        ``cell_id``, ``status``, ``error``, the metric columns of
        :data:`simbench.metrics.METRIC_COLUMNS`, ``fit_seconds``, ``compile_seconds``,
        ``epochs_run``, ``converged``, ``grad_norm``, the list columns ``beta_hat``,
        ``beta_mle``, ``beta_true``, ``mle_se``, ``mle_se_sandwich``, ``crb_var``
        (and ``history_dist`` when histories are recorded), ``mle_status``, ``mle_error``,
        ``worker``, ``started_at``.  ``list(run_group(task))`` gives all rows.

    Notes
    -----
    Failures of the data simulation or the reference fit's bookkeeping are failures of
    every cell: each gets an ``error`` row.
    """
    from simbench.data import simulate

    record_history = bool(
        getattr(task, "record_history", False)
        or (getattr(task, "options", None) or {}).get("record_history", False)
    )
    try:
        data = simulate(_scenario(task.scenario), task.data_seed)
        reference, shared = _reference(data)
    except Exception as exc:
        for cell in task.cells:
            row = _base_row(cell, {})
            row["error"] = f"simulating the data: {error_text(exc)}"
            if emit is not None:
                emit(row)
            yield row
        return
    checked: dict = {}
    for cell in task.cells:
        row = _run_cell(cell, data, reference, shared, record_history, checked)
        if emit is not None:
            emit(row)
        yield row


# structures compiled once per worker process before any task (see _process_warmup)
_PROCESS_WARM_CONFIGS = (
    {"hidden": [], "optimizer": "irls"},
    {"hidden": [], "optimizer": "newton"},
    {"hidden": [], "optimizer": "lbfgs"},
    {"hidden": [], "optimizer": "gd"},
    {"hidden": [], "optimizer": "adam"},
    {"hidden": [2], "activation": "tanh", "optimizer": "adam"},
    {"hidden": [2], "activation": "relu", "optimizer": "adam", "batch_size": 16, "dropout": 0.1},
    {"hidden": [2], "activation": "relu", "optimizer": "lbfgs", "early_stopping": True},
)


def _process_warmup() -> None:
    """Compile (or load from Numba's cache) the kernels of the common structures.

    ``run_group.warmup()``: for callers that warm a process without a task at hand (the
    executors call :func:`_prepare` before each task instead, which compiles only what the
    task uses).  A small simulated group goes through the reference fit, :func:`warm_up`
    of a fixed set of network structures on two families, and every metric.
    """
    from simbench.data import Scenario, simulate
    from simbench.fit.network import NetworkConfig

    for family in ("poisson", "bernoulli"):
        scenario = Scenario.from_dict({"family": family, "n": 200, "n_test": 200, "p": 2})
        data = simulate(scenario, 0)
        reference, _ = _reference(data)
        for d in _PROCESS_WARM_CONFIGS:
            config = NetworkConfig.from_dict(d)
            warm_up(config, data.family, data.link, data.X, data.y, data.weights, data.offset)
        metrics.cell_metrics(data, data.mu, data.mu_test, reference=reference)
    y = np.array([0.0, 1.0, 1.0, 0.0])
    s = np.array([0.1, 0.4, 0.4, 0.2])
    metrics.linear_projection(np.ones((4, 1)), s)
    _gram_kernel(np.ones((4, 1)), s, np.empty((2, 2)))
    metrics.auc(s, y)


def _needs_projection(config, output, loss, link) -> bool:
    """Whether a configuration's coefficients are its GLM projection (as in _run_cell)."""
    if bool(loss.binary_only):  # a margin loss: a least-squares projection, no kernel
        return False
    return not _has_coefficients(config) or output != link


def _warm_part(part: str, data) -> None:
    """Run one group of the non-training kernels once, on a dataset's own arrays and with
    predictions in fresh arrays, as a cell has them (Numba compiles one specialisation
    per array type): the reference fit ("reference"), the metrics of a network's own
    coefficients ("metrics"), the AUC of binary families ("auc") and the GLM projection
    ("projection").  The metrics are computed against a stand-in for the reference fit
    (the truth, with identity information matrices: arrays of the types a fit gives), so
    that they need not wait for the reference fit's code: from an empty cache the two are
    some 9 and 4 s of compiling, which two workers can share.

    "core" is the family, link and loss code for one observation (``loss_eval``, whose
    arguments are scalars, so that a call from here compiles what every fit and metric
    calls): every other unit needs it, and workers starting together would each compile
    it at the same moment.  Offered first (:func:`_compile_rank`), it is compiled by one
    worker while another begins the next unit, which needs it only after a while (a
    structure with hidden layers compiles its forward pass first), and then loads it from
    the cache.  It is compiled as the kernels' calls compile it, for linking into them
    (:func:`simbench._link_only.compile_for_linking`): nothing calls it from Python."""
    if part == "core":
        from numba import types

        # the types the kernels pass: ints and floats (lcode, a, phi, hcode, lam, y, eta,
        # hess_kind)
        i, f = types.int64, types.float64
        compile_for_linking(loss_eval, i, f, f, i, f, f, f, i)
        return
    mu, mu_test = np.array(data.mu), np.array(data.mu_test)
    if part == "reference":
        _reference(data)
    elif part == "metrics":
        q = data.beta.size
        stand_in = metrics.Reference(
            status="ok", coef=np.array(data.beta), fisher_information=np.eye(q),
            fisher_truth=np.eye(q),
        )  # fmt: skip
        metrics.cell_metrics(data, mu, mu_test, coef=np.array(data.beta), reference=stand_in)
    elif part == "auc":
        metrics.auc(mu_test, data.y_test, data.weights_test)
        metrics.auc(data.mu_test, data.y_test, data.weights_test)
    elif part == "projection":
        metrics.glm_projection(
            data.X_test, mu_test, data.family, data.link, data.weights_test, data.offset_test
        )


# the parts of _warm_part already run in this process
_WARM_PARTS: set[str] = set()
# the family parts (:func:`_family_parts`) of every scenario of the sweep the fork server
# read (:func:`_preload_sweep`), planned with each task: they compile the same code on any
# task's data (the AUC's kernel takes the same arrays whatever the family), and a worker
# left waiting for another's unit then compiles one a later task needs, instead of a worker
# compiling it alone at the end
_SWEEP_PARTS: set[str] = set()
# tasks (scenario, configuration ids) that _prepare found ready: every group of a sweep
# that shares a scenario looks the same (and a cell whose settings differ from those cached
# under its id is not ready, see _config)
_PREPARED: set[tuple] = set()


def _prepare(task) -> None:
    """Compile what a task needs, before its clock starts (the runner's ``prepare`` hook).

    The executors call this before each task, outside its timeout.  It runs, once per
    process, the data, reference-fit and metric kernels the task's cells will use
    (:func:`_warm_part`), and, for every structure of the task's configurations not yet
    warm on the scenario's family and link, :func:`warm_up` on the task's own data, as its
    first cell would.  A task that needs nothing new costs a few dictionary look-ups, so a
    sweep loads only the compiled code it uses.  Workers that start together divide the
    compiling between them (:func:`simbench.sweep.claims.run_shared`): each unit is compiled
    by one and loaded from Numba's cache by the others.  Errors are left for the task to
    report.
    """
    plan = _plan(task)
    if plan is not None:
        memo, units = plan
        run_shared(units)
        _bounded(_PREPARED).add(memo)


# the parts of _warm_part that every task needs
_TASK_PARTS = frozenset({"core", "reference", "metrics"})


def _family_parts(family) -> set[str]:
    """The parts of :func:`_warm_part` a task needs for its family, beyond
    :data:`_TASK_PARTS`: the AUC of a binary family."""
    return {"auc"} if family.is_binary else set()


def _plan(task) -> tuple[tuple, list] | None:
    """What :func:`_prepare` runs for ``task``: ``(memo, units)``, each unit a
    ``(claim key, function)`` in the order of compiling, or None when nothing is left to
    warm (or when the task cannot be read: it reports that itself).  Simulates the task's
    data when there is something to warm on it."""
    from simbench.data import simulate

    try:
        memo = (_scenario_key(task.scenario), tuple(c.config_id for c in task.cells))
        if memo in _PREPARED and all(_known(c) for c in task.cells):
            return None
        scenario = _scenario(task.scenario)
        family, link = scenario.get_family(), scenario.get_link()
    except Exception:  # the task reports it
        return None
    parts = {*_TASK_PARTS, *_family_parts(family), *_SWEEP_PARTS}
    cold = []
    for cell in task.cells:
        try:
            entry = _config(cell)
        except Exception:
            continue
        output, loss, reason = entry.resolve(family, link)
        if reason is not None:
            continue
        if _needs_projection(entry.config, output, loss, link):
            parts.add("projection")
        key = (*entry.structure, family, link)
        if key not in _WARM:
            cold.append((key, entry))
    parts -= _WARM_PARTS
    if not parts and not cold:  # warmed for other tasks: this one is ready too
        _bounded(_PREPARED).add(memo)
        return None
    try:
        data = simulate(scenario, task.data_seed)
    except Exception:
        return None

    def warm_part(part):
        _WARM_PARTS.add(part)
        with contextlib.suppress(Exception), np.errstate(all="ignore"):
            _warm_part(part, data)

    def warm_structure(key, entry):
        _warm(key, entry.config, family, link, data.X, data.y, data.weights, data.offset)

    # workers starting together share the compiling: each claims units the others have not;
    # a structure compiles the same code on every family and link, so it is claimed without
    # them.  The longest units first (networks with hidden layers, then the reference fit
    # and metrics), so that no worker is left waiting for one long unit at the end.
    units = [(key[:-2], functools.partial(warm_structure, key, entry)) for key, entry in cold]
    units += [(("part", part), functools.partial(warm_part, part)) for part in sorted(parts)]
    units.sort(key=_compile_rank)
    return memo, units


# rows of the training and reference samples on which the fork server loads a sweep's code:
# the kernels are the same at any size, and a large scenario would only delay the workers
_PRELOAD_ROWS = 1000


def _preload_sweep(path: str) -> None:
    """Load the compiled code a sweep will use, from Numba's cache only; never raise.

    ``run_group.preload_sweep``: the local backend's fork server calls it with the path of
    the sweep file the run reads, before it forks any worker
    (:meth:`~simbench.sweep.backends.local.LocalExecutor.prestart`).  It runs
    :func:`_prepare`'s units for a task of each scenario (replicate 0, every configuration,
    at most :data:`_PRELOAD_ROWS` rows per sample), so that every worker is forked with the
    kernels loaded and marked warm: loaded once, instead of once per worker, each competing
    with the others for the CPUs.

    It compiles nothing (:func:`simbench._jit.cached_only`): a unit that needs a kernel the
    cache does not hold stops at that kernel and stays cold, for the workers to compile and
    share as before, so that a cold start waits for no compiling here.  When a unit stopped
    so, the workers will compile, and Numba's compiler is set up here for them to inherit
    (:func:`simbench._jit.set_up_compiler`; loading alone does not set it up).  Nothing here
    starts a thread (the samples are too small for a parallel region), so forking stays
    safe.

    The sweep is read without its feasibility check, which the run makes and which runs
    kernels: from an empty cache too, the workers then inherit the parts every scenario
    needs (:data:`_SWEEP_PARTS`).
    """
    from simbench._jit import cached_only, set_up_compiler
    from simbench.sweep.spec import default_vocabulary, load_sweep

    try:
        with cached_only() as refused:
            # the run checks the sweep's feasibility (which runs kernels); here it is read
            spec = load_sweep(path, default_vocabulary(check_feasible=False))
            samples = list(_sample_tasks(spec))
            for task in samples:
                with contextlib.suppress(Exception):  # the task reports it
                    _SWEEP_PARTS.update(_family_parts(_scenario(task.scenario).get_family()))
            for task in samples:
                plan = _plan(task)
                if plan is None:
                    continue
                memo, units = plan
                complete = True
                for _, unit in units:
                    warm, warm_parts, before = set(_WARM), set(_WARM_PARTS), len(refused)
                    unit()
                    if len(refused) > before:  # not all cached: the workers warm it
                        _WARM.intersection_update(warm)
                        _WARM_PARTS.intersection_update(warm_parts)
                        complete = False
                if complete:
                    _bounded(_PREPARED).add(memo)
            if refused:  # the workers will compile: they inherit the compiler set up
                set_up_compiler()
    except Exception:  # the run reads and checks the sweep itself, and reports
        pass


def _sample_tasks(spec) -> Iterator:
    """A task (replicate 0, every configuration) of the first scenario of ``spec`` with
    each family and link, with at most :data:`_PRELOAD_ROWS` rows per sample: the units of
    :func:`_prepare` depend on nothing else, and a sweep of many scenarios then costs the
    fork server a few look-ups."""
    import dataclasses

    from simbench.sweep.cells import CellIds, task_of

    ids = CellIds(spec)
    seen: set[tuple] = set()
    for s in spec.scenarios:
        try:
            scenario = _scenario(s.canonical)
            key = (scenario.get_family(), scenario.get_link())
        except Exception:  # the run reports it
            continue
        if key in seen:
            continue
        seen.add(key)
        task = task_of(spec, [ids.cell(s.index, c.index, 0) for c in spec.configs])
        small = dict(task.scenario)
        for name in ("n", "n_test"):
            if isinstance(small.get(name), int):
                small[name] = min(small[name], _PRELOAD_ROWS)
        yield dataclasses.replace(task, scenario=small)


def _compile_rank(unit) -> int:
    """Where a unit of :func:`_prepare` goes in the order of compiling: the code every
    other unit needs first ("core", about 2 s of compiling from an empty cache, see
    :func:`_warm_part`), then the longest first: a structure with hidden layers (about
    10 s), the reference fit (about 9 s), Newton (the observed Hessian, about 6 s), the
    metrics (about 4 s), a first-order method without hidden layers (its compiled epochs,
    about 3 s), the other structures (L-BFGS and IRLS: their code is Newton's and the
    reference fit's, compiled by then), then the other parts (the AUC, about 1 s, and the
    GLM projection, which is the metrics' calibration fit on other data).  The later
    units mostly load what the earlier ones compiled, so none is compiled twice."""
    key = unit[0]
    if key[0] == "part":
        return {"core": -1, "reference": 1, "metrics": 3}.get(key[1], 6)
    if key[1]:  # hidden layers
        return 0
    if key[0] == "newton":
        return 2
    return 5 if key[0] in ("lbfgs", "irls") else 4


# per process: validated scenarios, keyed by the text of their canonical dict
_SCENARIOS: dict[str, tuple[dict, Any]] = {}


def _scenario_key(plain: dict) -> str:
    return repr(sorted(plain.items()))


def _scenario(plain: dict):
    """The validated Scenario of a task, built once per process per scenario."""
    from simbench.data import Scenario

    key = _scenario_key(plain)
    hit = _SCENARIOS.get(key)
    if hit is None:
        hit = _bounded(_SCENARIOS)[key] = (plain, Scenario.from_dict(dict(plain)))
    return hit[1]


run_group.warmup = _process_warmup  # type: ignore[attr-defined]
run_group.prepare = _prepare  # type: ignore[attr-defined]
# imported by the local backend's fork server before it forks the workers
run_group.preload = ("simbench.sweep.worker_init",)  # type: ignore[attr-defined]
# called there after the imports, with the sweep file the run reads
run_group.preload_sweep = _preload_sweep  # type: ignore[attr-defined]
