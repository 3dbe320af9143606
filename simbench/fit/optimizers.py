"""Training loops: first-order methods, L-BFGS and Newton, with one stopping policy.

Every loop evaluates the full objective ``F`` (mean loss plus penalty, see
:mod:`simbench.fit.objective`) and its gradient at the start and after every epoch (an
iteration for full-batch methods) and hands them to a :class:`Monitor`, which

* records the history (``loss``, ``grad_norm``, and ``val_loss`` / ``dist_beta`` when asked);
* stops with status ``diverged`` at the first non-finite loss or gradient, restoring the last
  parameters whose loss was finite (a sweep gets a row, never an exception);
* declares convergence when ``||grad F|| <= tol`` or when the relative change of ``F`` over an
  epoch is at most ``ftol``;
* runs early stopping: the mean validation loss after every epoch, ``patience`` epochs
  without a strict improvement stop training, and the best parameters are restored (also
  when the epochs run out).

For mini-batch methods the per-epoch evaluation is an extra full pass, so the history and
the stopping rules see the true objective rather than a noisy running average of batch
losses.  All randomness (permutations, dropout masks) is drawn here from Generators that
the caller seeds; the kernels get arrays.

The first-order methods run in compiled code (:mod:`simbench.kernels.training`),
the rules above included, many epochs per call: Python only draws the next block's
permutation words and dropout masks and collects the history.  L-BFGS (scipy's L-BFGS-B)
and Newton call the :class:`Monitor` here once per iteration.  Both sides measure the
gradient norm with :func:`~simbench.kernels.training.norm2` and the distance to a tracked
vector with :func:`~simbench.kernels.training.coef_distance`.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from simbench.fit.objective import Objective
from simbench.kernels import minibatch as k
from simbench.kernels import network as knet
from simbench.kernels import training as kt

__all__ = ["Monitor", "Outcome", "row_order", "run", "shuffle_rows"]

_STEP_CODES = {
    "gd": k.OPT_SGD,
    "sgd": k.OPT_SGD,
    "momentum": k.OPT_MOMENTUM,
    "nesterov": k.OPT_NESTEROV,
    "adam": k.OPT_ADAM,
}
_EMPTY_MATRIX = np.empty((0, 0))


@dataclass
class Outcome:
    """What a training loop ends with."""

    theta: np.ndarray
    epochs_run: int
    converged: bool
    status: str  # "ok" | "diverged" | "not_converged"
    message: str
    best_epoch: int | None


class Monitor:
    """History, divergence, convergence and early stopping, shared by all loops.

    Parameters
    ----------
    config : NetworkConfig
    validation : Objective or None
        The held-out rows, when early stopping is on.
    layout : (sizes, offs) or None
        The network's layout, for the coefficients of ``dist_beta``
        (:func:`simbench.kernels.training.coef_distance`).
    track_beta : ndarray or None
        Reference coefficients; the history then has ``dist_beta`` per epoch.
    track_information : ndarray or None
        A positive definite matrix ``M``: the distance is ``sqrt(d' M d)`` (e.g. the Fisher
        information, for standard-error units) instead of ``||d||_2``.
    """

    def __init__(
        self, config, validation=None, layout=None, track_beta=None, track_information=None
    ):
        self.config = config
        self.validation = validation
        self.layout = layout
        self.track_beta = track_beta
        self.track_information = (
            _EMPTY_MATRIX
            if track_information is None
            else np.ascontiguousarray(track_information, dtype=np.float64)
        )
        self.history: dict[str, list[float]] = {"loss": [], "grad_norm": []}
        if validation is not None:
            self.history["val_loss"] = []
        if track_beta is not None:
            self.history["dist_beta"] = []
        self.last_f: float | None = None
        self.last_good: np.ndarray | None = None
        self.best_val = math.inf
        self.best_theta: np.ndarray | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.epoch = 0
        self.bad_epoch: int | None = None

    def observe(self, epoch: int, theta: np.ndarray, f: float, gnorm: float) -> str | None:
        """Record epoch ``epoch``; return why to stop (``"diverged"``, ``"converged"``,
        ``"early_stopping"``) or None."""
        cfg = self.config
        self.epoch = epoch
        self.history["loss"].append(float(f))
        self.history["grad_norm"].append(float(gnorm))
        if self.track_beta is not None:
            self.history["dist_beta"].append(self._distance(theta))
        if not (math.isfinite(f) and math.isfinite(gnorm)):
            if self.validation is not None:
                self.history["val_loss"].append(math.nan)
            self.bad_epoch = epoch
            return "diverged"
        # a loop that returns the same parameters has stalled: that is not convergence
        moved = self.last_good is None or not np.array_equal(theta, self.last_good)
        self.last_good = theta.copy()
        previous, self.last_f = self.last_f, f
        if self.validation is not None:
            val = self.validation.mean_loss(theta)
            self.history["val_loss"].append(float(val))
            if val < self.best_val:
                self.best_val, self.best_theta, self.best_epoch = val, theta.copy(), epoch
                self.wait = 0
            else:
                self.wait += 1
                if self.wait >= cfg.patience:
                    return "early_stopping"
        if gnorm <= cfg.tol:
            return "converged"
        if (
            cfg.ftol > 0.0
            and moved
            and previous is not None
            and abs(previous - f) <= cfg.ftol * max(abs(previous), abs(f))
        ):
            return "converged"
        return None

    def step_failed(self, epoch: int) -> str:
        """A step of epoch ``epoch`` met a non-finite loss or gradient: record it as diverged."""
        for key in self.history:
            self.history[key].append(math.nan)
        self.epoch = self.bad_epoch = epoch
        return "diverged"

    def _distance(self, theta: np.ndarray) -> float:
        if self.layout is None:
            return math.nan
        sizes, offs = self.layout
        return float(kt.coef_distance(theta, sizes, offs, self.track_beta, self.track_information))

    def finish(self, theta: np.ndarray, reason: str | None, note: str = "") -> Outcome:
        """The outcome for a loop that stopped for ``reason`` (None: the epochs ran out)."""
        cfg = self.config
        epochs = self.epoch
        if reason == "diverged":
            good = self.last_good if self.last_good is not None else theta
            msg = f"non-finite loss or gradient at epoch {self.bad_epoch}"
            if self.last_good is not None:
                msg += "; parameters of the last finite epoch kept"
            return Outcome(good.copy(), epochs, False, "diverged", msg + note, None)
        if reason == "early_stopping":
            msg = (
                f"early stopping at epoch {epochs}: no better validation loss for "
                f"{cfg.patience} epochs; restored epoch {self.best_epoch}"
            )
            best = self.best_theta if self.best_theta is not None else theta
            return Outcome(best.copy(), epochs, True, "ok", msg, self.best_epoch)
        best = None
        if self.validation is not None and self.best_theta is not None:
            best = self.best_epoch
            theta = self.best_theta
            note += f"; restored the best validation epoch {best}"
        if reason == "converged":
            return Outcome(theta.copy(), epochs, True, "ok", "converged" + note, best)
        gnorm = self.history["grad_norm"][-1]
        msg = f"not converged after {epochs} epochs (gradient norm {gnorm:.3g})"
        return Outcome(theta.copy(), epochs, False, "not_converged", msg + note, best)


def run(obj: Objective, theta: np.ndarray, config, monitor: Monitor, make_rngs) -> Outcome:
    """Train ``theta`` (modified in place) with ``config.optimizer``.

    ``make_rngs()`` gives ``(shuffle, dropout)``: Generators for the epoch permutations and
    the dropout masks, which only the first-order methods draw (and so make).
    """
    if config.optimizer == "lbfgs":
        return _lbfgs(obj, theta, config, monitor)
    if config.optimizer == "newton":
        return _newton(obj, theta, config, monitor)
    return _first_order(obj, theta, config, monitor, *make_rngs())


def row_order(n: int) -> np.ndarray:
    """The rows ``0 .. n - 1`` in order, as the array :func:`shuffle_rows` permutes: 32-bit
    indices where they suffice (half the memory traffic of an epoch's reads of the order,
    measurably faster), 64-bit beyond."""
    return np.arange(n, dtype=_index_dtype(n))


def _index_dtype(n: int) -> type:
    return np.int32 if n <= np.iinfo(np.int32).max + 1 else np.int64


# Draws per shuffle beyond a draw per position and the expected rejections: rarely, more
# rejections than that leave positions for another round of draws (tests lower it to force
# that path).
SHUFFLE_MARGIN = 16


def _shuffle_words(i: int) -> int:
    """Raw 64-bit words for a shuffle from position ``i`` down: a 32-bit draw per position,
    plus the expected rejections (below ``i^2 / 2^33``) and the margin; at least one."""
    need = i + (i * i >> 33) + SHUFFLE_MARGIN
    return max(1, (need + 1) // 2)


def shuffle_rows(perm: np.ndarray, rng: np.random.Generator, start: int | None = None) -> None:
    """Shuffle ``perm`` in place, every permutation equally likely, with draws from ``rng``.

    The draws are the raw 64-bit words of the bit generator, each split into two 32-bit
    integers (low half first) for :func:`simbench.kernels.minibatch.shuffle`: half the words
    that one uniform double per position would take, the costliest part of a shuffle.
    ``start`` continues a shuffle that stopped at that position (default: a whole one).
    """
    if perm.size > 2**32:
        raise ValueError(f"can shuffle at most 2^32 rows, got {perm.size}")
    i = perm.size - 1 if start is None else start
    while i > 0:
        words = rng.bit_generator.random_raw(_shuffle_words(i))
        i = k.shuffle(perm, _halves(words), i)


def _halves(words: np.ndarray) -> np.ndarray:
    """The 32-bit halves of 64-bit words, low half first, on any byte order."""
    if sys.byteorder == "little":
        return words.view(np.uint32)
    out = np.empty(2 * words.size, dtype=np.uint32)
    out[0::2] = words & 0xFFFFFFFF
    out[1::2] = words >> 32
    return out


# Epochs per call of the compiled loop: at most _BLOCK_EPOCHS (the history buffers), and as
# many as keep the block's random draws and dropout masks within _BLOCK_BYTES.
_BLOCK_EPOCHS = 1 << 14
_BLOCK_BYTES = 8 << 20
_NO_MASKS = np.empty((0, 0, 0), dtype=np.uint8)
_NO_DRAWS = np.empty(0, dtype=np.uint32)
_REASONS = {
    kt.STOP_NONE: None,
    kt.STOP_CONVERGED: "converged",
    kt.STOP_EARLY: "early_stopping",
    kt.STOP_DIVERGED: "diverged",
}


def _first_order(obj, theta, cfg, monitor, shuffle_rng, dropout_rng) -> Outcome:
    """gd, sgd, momentum, Nesterov and Adam: blocks of epochs in compiled code.

    Each block gets its epochs' random draws up front: the dropout masks, one
    ``(n, sum h)`` array per epoch from ``dropout_rng`` (one draw of all of them gives the
    same numbers as one draw per epoch), and the permutation words, a fixed number per
    epoch from ``shuffle_rng``.  A shuffle that needs more words than that (see
    :data:`SHUFFLE_MARGIN`) stops the block; the generator is then put back where the
    epoch's own draws end and the shuffle finished from there, so the stream of draws is
    the one an epoch-by-epoch loop would use.  Leftover draws of a block that stopped early
    are never needed: the run is over.
    """
    n = obj.n
    full = cfg.batch_size is None or cfg.batch_size >= n
    rate = cfg.dropout
    width = obj.hidden_width
    steps = _steps(cfg, obj, 0 if full else int(cfg.batch_size))
    val = monitor.validation
    track = monitor.track_beta
    st = _new_state(theta, monitor, min(cfg.epochs, _BLOCK_EPOCHS) + 1, row_order(0 if full else n))
    words = 0 if full else _shuffle_words(n - 1)
    per_epoch = (n * width if rate else 0) + 8 * words
    block = max(1, min(_BLOCK_EPOCHS, _BLOCK_BYTES // max(1, per_epoch)))
    vnet = obj.empty_net() if val is None else val.net
    bits = shuffle_rng.bit_generator
    hist = monitor.history
    epochs = kt.first_order_block(obj.n_hidden == 0, not full)
    code = kt.STOP_NONE
    while code == kt.STOP_NONE:
        left = cfg.epochs - int(st.ints[kt.I_EPOCH])
        if left <= 0 and st.ints[kt.I_OBSERVED]:
            break
        todo = min(left, block)
        masks = _NO_MASKS
        if rate and todo > 0:
            keep = dropout_rng.random((todo, n, width), dtype=np.float32) >= np.float32(rate)
            masks = keep.view(np.uint8)
        done = 0
        while True:
            pending = int(st.ints[kt.I_PENDING])
            draws = _NO_DRAWS
            if not full and todo - done - pending > 0:
                at_start = bits.state
                draws = _halves(bits.random_raw((todo - done - pending) * words))
            code = _on_threads(
                obj.region_threads(), epochs, obj.net, vnet, steps, st,
                masks[done:] if rate else masks, draws, 2 * words, todo - done, track,
                monitor.track_information,
            )  # fmt: skip
            _collect(hist, st)
            used = int(st.ints[kt.I_MASKS_USED])
            done += used
            if code != kt.STOP_NEED_DRAWS:
                break
            # the block's draws ran out inside the shuffle of the next epoch: put the
            # generator where that epoch's own words end and finish the shuffle from there
            bits.state = at_start
            bits.random_raw((used - pending + 1) * words)
            shuffle_rows(st.perm, shuffle_rng, start=int(st.ints[kt.I_SHUFFLE_AT]))
            st.ints[kt.I_PENDING] = 1
        if code == kt.STOP_NONE and done < todo:
            break  # the epoch budget ended inside the block
    return _finish(monitor, st, theta, _REASONS[code])


def _on_threads(threads: int, run, *args):
    """``run(*args, kt.PARALLEL)`` on ``threads`` threads, the count chosen by the thread
    policy for this call, or ``run(*args, kt.SERIAL)`` if 1 (a process that never runs the
    parallel variant never compiles it)."""
    if threads < 2:
        return run(*args, kt.SERIAL)
    return knet._run_chunks(threads, run, run, *args, kt.PARALLEL)


def _steps(cfg, obj, batch_size: int) -> kt.Steps:
    """The optimiser record of ``cfg`` (``kind`` is unused by Newton)."""
    rate = cfg.dropout
    return kt.Steps(
        kind=_STEP_CODES.get(cfg.optimizer, k.OPT_SGD),
        lr=float(cfg.lr or 0.0),
        momentum=float(cfg.momentum),
        beta1=float(cfg.beta1),
        beta2=float(cfg.beta2),
        eps=float(cfg.eps),
        batch_size=batch_size,
        keep_inv=1.0 / (1.0 - rate),
        dropout=bool(rate),
        epochs=int(cfg.epochs),
        tol=float(cfg.tol),
        ftol=float(cfg.ftol),
        patience=int(cfg.patience),
    )


def _new_state(theta, monitor, capacity: int, perm: np.ndarray):
    """A compiled run's state at its start, with history buffers of ``capacity`` entries."""
    q = theta.size
    st = kt.State(
        theta=theta,
        grad=np.empty(q),
        m=np.zeros(q),
        v=np.zeros(q),
        perm=perm,
        last_good=np.empty(q),
        best_theta=np.empty(q),
        ints=np.zeros(kt.N_INTS, dtype=np.int64),
        floats=np.array([math.nan, math.inf]),
        h_loss=np.empty(capacity),
        h_gnorm=np.empty(capacity),
        h_val=np.empty(capacity if monitor.validation is not None else 0),
        h_dist=np.empty(capacity if monitor.track_beta is not None else 0),
    )
    st.ints[kt.I_BEST_EPOCH] = -1
    st.ints[kt.I_BAD_EPOCH] = -1
    return st


def _finish(monitor, st, theta, reason, note: str = "") -> Outcome:
    """Hand a compiled run's end state to the monitor and return its outcome."""
    ints = st.ints
    monitor.epoch = int(ints[kt.I_EPOCH])
    if ints[kt.I_BAD_EPOCH] >= 0:
        monitor.bad_epoch = int(ints[kt.I_BAD_EPOCH])
    if ints[kt.I_HAS_GOOD]:
        monitor.last_good = st.last_good
    if ints[kt.I_BEST_EPOCH] >= 0:
        monitor.best_epoch = int(ints[kt.I_BEST_EPOCH])
        monitor.best_theta = st.best_theta
        monitor.best_val = float(st.floats[kt.F_BEST_VAL])
    return monitor.finish(theta, reason, note)


def _collect(hist: dict[str, list[float]], st) -> None:
    """Append the history entries the last block recorded."""
    r = int(st.ints[kt.I_RECORDED])
    hist["loss"].extend(st.h_loss[:r].tolist())
    hist["grad_norm"].extend(st.h_gnorm[:r].tolist())
    if "val_loss" in hist:
        hist["val_loss"].extend(st.h_val[:r].tolist())
    if "dist_beta" in hist:
        hist["dist_beta"].extend(st.h_dist[:r].tolist())


def _lbfgs(obj, theta, cfg, monitor) -> Outcome:
    from scipy.optimize import minimize

    q = obj.n_params
    last: dict[str, object] = {}

    def fun(x):
        g = np.empty(q)
        f = obj.loss_grad(x, g)
        last["x"], last["f"], last["g"] = x.copy(), f, g
        if not (math.isfinite(f) and np.isfinite(g).all()):
            # outside the domain (e.g. an inverse link meeting eta <= 0): scipy's line search
            # gives up on inf or nan, but steps back from a value far above any seen so far
            return last.get("barrier", math.inf), np.zeros(q)
        last["barrier"] = max(last.get("barrier", 0.0), f + 1e6 * (1.0 + abs(f)))
        return f, g

    fun(theta)
    reason = monitor.observe(0, theta, last["f"], kt.norm2(last["g"]))
    if reason is not None:
        return monitor.finish(theta, reason)
    state = {"reason": None, "theta": theta.copy(), "epoch": 0}

    def callback(intermediate_result):
        x = intermediate_result.x
        if "x" in last and np.array_equal(last["x"], x):
            f, g = last["f"], last["g"]
        else:
            g = np.empty(q)
            f = obj.loss_grad(x, g)
        state["epoch"] += 1
        state["theta"] = x.copy()
        why = monitor.observe(state["epoch"], x, f, kt.norm2(g))
        if why is not None:
            state["reason"] = why
            raise StopIteration

    res = minimize(
        fun,
        theta,
        jac=True,
        method="L-BFGS-B",
        callback=callback,
        options={
            "maxiter": cfg.epochs,
            "maxfun": max(15000, 20 * cfg.epochs),
            "gtol": 0.0,
            "ftol": 0.0,
            "maxcor": 10,
        },
    )
    reason = state["reason"]
    note = ""
    if reason is None and state["epoch"] < cfg.epochs:
        # scipy ended on its own (typically a line search that cannot decrease the loss any
        # further in floating point): converged if the gradient is small for this loss scale
        note = f" (L-BFGS-B: {res.message})"
    final = state["theta"]
    theta[:] = final
    return monitor.finish(theta, reason, note)


def _newton(obj, theta, cfg, monitor) -> Outcome:
    """Newton's method with step halving, whole, in compiled code
    (:func:`simbench.kernels.training.newton_run`)."""
    st = _new_state(theta, monitor, cfg.epochs + 1, row_order(0))
    val = monitor.validation
    vnet = obj.empty_net() if val is None else val.net
    code = _on_threads(
        obj.region_threads("newton"), kt.newton_run, obj.net, vnet, _steps(cfg, obj, 0), st,
        monitor.track_beta, monitor.track_information,
    )  # fmt: skip
    _collect(monitor.history, st)
    note = ""
    if code == kt.STOP_NO_DECREASE:
        note = " (no decrease along the Newton direction)"
        code = kt.STOP_NONE
    return _finish(monitor, st, theta, _REASONS[code], note)
