"""Train a neural configuration: :func:`train` and its result :class:`NetworkFit`.

A network with no hidden layer, the inverse link as output activation and the family's
negative log-likelihood as loss is the GLM; :func:`train` fits that network and every
variation a :class:`~simbench.fit.config.NetworkConfig` can express (hidden layers and
activations, other outputs and losses, optimisers, weight decay, dropout, early stopping).

Seeding.  ``seed`` feeds a :class:`numpy.random.SeedSequence` whose four children draw,
independently, the validation split, the initial weights, the epoch permutations and the
dropout masks.  So two configurations that differ only in the optimiser start from the same
weights, and the same seed gives bit-identical results (whatever the thread count: every
reduction in the kernels has a fixed order).

Initial output bias.  Whatever ``init``, the output unit's bias starts at ``g(ybar)`` (the
null model's linear predictor, less the mean offset; for relu ``g`` is its right inverse) when
that is finite and the loss is a family NLL or squared error; margin losses start at 0.
If the loss at the drawn weights is not finite (an inverse-link output meeting a negative
linear predictor, say), the weights are halved until it is — at worst down to the null
model — so a valid start is found without a random retry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simbench._threads import fit_threads, scipy_blas
from simbench._validation import (
    check_seed,
    child_generator,
    real_matrix,
    real_vector,
    seed_sequence,
)
from simbench.errors import ValidationError
from simbench.fit.config import NetworkConfig
from simbench.fit.objective import EMPTY, Objective, init_params, layer_offsets, predict_eta
from simbench.fit.optimizers import Monitor, run

__all__ = ["NetworkConfig", "NetworkFit", "train", "warmup"]


@dataclass(frozen=True, eq=False)
class NetworkFit:
    """A trained network.

    Attributes
    ----------
    config : NetworkConfig
        What was trained.
    params : ndarray
        The flat parameter vector; per layer the bias, then the weights row-major (see
        :mod:`simbench.kernels.network`).  Without hidden layers it is ``[intercept, slopes]``.
    sizes : tuple of int
        ``(p, h_1, ..., h_L, 1)``.
    activations : tuple of str
        Hidden activations, one per hidden layer.
    output : Link
        The output activation (its inverse link); also available as ``link``.
    loss : Loss
        The loss minimised.
    family : Family or None
        The family of the data, when given.
    coef : ndarray or None
        ``[intercept, x_1 .. x_p]``, in the order of ``fit_glm``: the parameters of a network
        without hidden layers, the end-to-end product of a deep linear network (identity
        activations everywhere); None otherwise.
    history : dict of list
        Per epoch (entry 0 is the initial point): ``loss`` (the objective: mean loss plus
        penalty), ``grad_norm`` (its gradient's Euclidean norm), ``val_loss`` with early
        stopping, ``dist_beta`` when a reference ``track_beta`` was given.
    epochs_run : int
        Epochs (iterations of full-batch methods) performed.
    converged : bool
        A stopping rule was met (gradient norm, relative loss change, early stopping, or the
        IRLS criterion).
    grad_norm, loss_value : float
        Gradient norm and objective of the returned parameters on the training rows.
    status : str
        ``"ok"``, ``"not_converged"`` or ``"diverged"``.
    message : str
        Why training stopped.
    best_epoch : int or None
        The epoch whose parameters were restored by early stopping.
    """

    config: NetworkConfig
    params: np.ndarray
    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    output: object
    loss: object
    family: object
    coef: np.ndarray | None
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs_run: int = 0
    converged: bool = False
    grad_norm: float = math.nan
    loss_value: float = math.nan
    status: str = "ok"
    message: str = ""
    best_epoch: int | None = None

    @property
    def link(self):
        """The output activation as a link (alias of :attr:`output`)."""
        return self.output

    def predict_eta(self, X, offset=None) -> np.ndarray:
        """The output unit's linear predictor ``eta(X)`` (plus ``offset``), no dropout."""
        X = real_matrix(X, columns=self.sizes[0])
        off = _as_vector(offset, X.shape[0], "offset")
        return predict_eta(self.sizes, self.activations, self.params, X, off)

    def predict(self, X, offset=None) -> np.ndarray:
        """The predicted mean ``mu = h(eta(X))``."""
        from simbench.kernels.links import link_h_arr

        eta = self.predict_eta(X, offset)
        mu = np.empty_like(eta)
        link_h_arr(self.output.code, float(self.output.param), eta, mu)
        return mu

    def __repr__(self) -> str:
        return (
            f"NetworkFit({self.config.name!r}, status={self.status!r}, "
            f"converged={self.converged}, epochs_run={self.epochs_run}, "
            f"loss={self.loss_value:.6g}, grad_norm={self.grad_norm:.3g})"
        )


# ---- input checks ---------------------------------------------------------------------------


def _as_vector(v, n: int, what: str) -> np.ndarray | None:
    return None if v is None else real_vector(v, n, what)


# ---- coefficients ---------------------------------------------------------------------------


def _end_to_end(sizes, theta) -> np.ndarray:
    """``[intercept, slopes]`` of a network whose activations are all the identity."""
    sizes = np.asarray(sizes, dtype=np.int64)
    offs = layer_offsets(sizes)
    p = int(sizes[0])
    A = np.eye(p)
    c = np.zeros(p)
    for l in range(len(sizes) - 1):
        fi, fo = int(sizes[l]), int(sizes[l + 1])
        o = int(offs[l])
        b = theta[o : o + fo]
        W = theta[o + fo : o + fo + fo * fi].reshape(fo, fi)
        c = W @ c + b
        A = W @ A
    return np.concatenate([c, A[0]])


def _coef_function(config: NetworkConfig, sizes):
    if not config.hidden:
        return lambda theta: theta.copy()
    if all(a == "identity" for a in config.activation):
        return lambda theta: _end_to_end(sizes, theta)
    return None


# ---- initialisation ---------------------------------------------------------------------------


def _output_bias(output, loss, y, weights, offset) -> float:
    if loss.binary_only:
        return 0.0
    w = np.ones_like(y) if weights is None else weights
    ybar = float(np.sum(w * y) / np.sum(w))
    with np.errstate(all="ignore"):
        b = float(output.g(np.array([ybar]))[0])
    if not math.isfinite(b):
        return 0.0
    if offset is not None:
        b -= float(np.sum(w * offset) / np.sum(w))
    return b


def _valid_start(obj: Objective, theta: np.ndarray, bias_index: int) -> None:
    """Halve the weights (not the output bias) until the loss is finite, in place."""
    scale = np.ones_like(theta)
    scale[bias_index] = 0.0
    for _ in range(60):
        if math.isfinite(obj.value(theta)):
            return
        theta -= 0.5 * scale * theta
    theta *= 1.0 - scale


# ---- training -------------------------------------------------------------------------------


def _streams(seed):
    """``stream(k)``: the generator of train's ``k``-th stream (0 the validation split, 1 the
    initial weights, 2 the epoch permutations, 3 the dropout masks), the ``k``-th of the
    seed's four children.  For an integer seed each is built when first needed (spawning
    costs more than a small fit's arithmetic, and 'irls' needs none); a caller's SeedSequence
    spawns its four, so that it advances, as NumPy's own consumers advance it.  The seed is
    checked at once."""
    check_seed(seed)
    if isinstance(seed, np.random.SeedSequence):
        children = seed.spawn(4)
        return lambda k: np.random.default_rng(children[k])
    root: list[np.random.SeedSequence] = []

    def stream(k: int) -> np.random.Generator:
        if not root:
            root.append(seed_sequence(seed))
        return child_generator(root[0], k)

    return stream


@fit_threads()
def train(
    X,
    y,
    config,
    family=None,
    link=None,
    seed=0,
    weights=None,
    offset=None,
    track_beta=None,
    track_information=None,
) -> NetworkFit:
    """Train a neural configuration on ``(X, y)``.

    Parameters
    ----------
    X : array (n, p)
        Covariates, without an intercept column.
    y : array (n,)
        Responses (binomial: proportions, with the trials as ``weights``).
    config : NetworkConfig or dict
        The configuration (a dict is validated by :meth:`NetworkConfig.from_dict`).
    family : Family or str, optional
        The data's family; needed for ``"matched"`` output or loss.
    link : Link or str, optional
        The data's link (default: the family's default link); the matched output is its
        inverse.
    seed : int
        Seeds the validation split, the initial weights, the epoch permutations and the
        dropout masks (independent streams, see the module notes).
    weights : array (n,), optional
        Prior weights ``w_i >= 0``; the objective is ``sum w l / sum w`` (+ penalty).
    offset : array (n,), optional
        Added to the output unit's linear predictor.
    track_beta : array (p + 1,), optional
        Reference coefficients ``[intercept, slopes]`` (e.g. the MLE): the history gets the
        distance of :attr:`NetworkFit.coef` to it at every epoch.  Needs a network with
        coefficients (no hidden layers, or a deep linear one).
    track_information : array (p + 1, p + 1), optional
        With ``track_beta``: measure the distance as ``sqrt(d' M d)`` (with the Fisher
        information, in standard-error units).

    Returns
    -------
    NetworkFit

    Raises
    ------
    ValidationError
        Bad inputs or a configuration that cannot apply to this data (e.g. hinge loss on
        counts).  Training problems (a non-finite loss) are not raised: the fit comes back
        with ``status == "diverged"``.

    Notes
    -----
    The objective is the mean loss plus ``l2 / 2 * ||W||^2``; see
    :mod:`simbench.fit.optimizers` for the stopping rules and
    :mod:`simbench.fit.objective` for the initialisers.  With ``refit_output`` the output
    layer (or only its bias) is refitted after training by IRLS as a GLM of the last hidden
    layer's outputs, with the data's family and the output activation's link, on every row
    (``_refit_output``); the history is training's, and a refit that gives no valid estimate
    keeps the trained layer and marks the fit not converged.  During the call BLAS runs on one
    thread and Numba's parallel evaluations on the threads the machine has free
    (:mod:`simbench._threads`); the results do not depend on either.
    """
    from simbench import families

    cfg = NetworkConfig.from_dict(config) if isinstance(config, dict) else config
    if not isinstance(cfg, NetworkConfig):
        raise ValidationError(
            f"config must be a NetworkConfig or a dict; got {type(config).__name__}"
        )
    fam = families.get(family) if isinstance(family, str) else family
    output, loss = cfg.resolve(fam, link)
    if cfg.refit_output and fam is None:
        raise ValidationError(
            f"refit_output = {cfg.refit_output!r} refits the output as a GLM of the data's "
            "family: give family"
        )
    X = real_matrix(X)
    n, p = X.shape
    if n < 1:
        raise ValidationError("X has no rows")
    y = real_vector(loss.check_y(y), n, "y")
    if cfg.refit_output:
        fam.check_y(y, support=False)
    w = _as_vector(weights, n, "weights")
    if w is not None and (np.any(w < 0) or not np.sum(w) > 0):
        raise ValidationError("weights must be >= 0 with a positive sum")
    off = _as_vector(offset, n, "offset")
    sizes = (p, *cfg.hidden, 1)
    coef_fn = _coef_function(cfg, sizes)
    beta_ref = None
    if track_beta is not None:
        if coef_fn is None:
            raise ValidationError(
                "track_beta needs a network with coefficients: no hidden layers, or identity "
                "activations throughout"
            )
        beta_ref = _as_vector(track_beta, p + 1, "track_beta")
    info = None
    if track_information is not None:
        info = np.asarray(track_information, dtype=np.float64)
        if info.shape != (p + 1, p + 1):
            raise ValidationError(f"track_information must be {(p + 1, p + 1)}; got {info.shape}")
    if cfg.hidden or cfg.optimizer == "lbfgs":
        scipy_blas()  # L-BFGS-B, np.dot in the kernels and the refit's QR call it
    stream = _streams(seed)
    if cfg.optimizer == "irls":
        return _train_irls(X, y, w, off, cfg, fam, output, loss, sizes, beta_ref, info)

    # validation split for early stopping
    val_obj = None
    Xt, yt, wt, ot = X, y, w, off
    if cfg.early_stopping:
        n_val = round(cfg.validation_fraction * n)
        if n_val < 1 or n_val >= n:
            raise ValidationError(
                f"validation_fraction = {cfg.validation_fraction} leaves {n_val} of {n} rows "
                "for validation; early stopping needs at least one row on each side"
            )
        order = stream(0).permutation(n)
        val_idx = np.sort(order[:n_val])
        tr_idx = np.sort(order[n_val:])

        def take(a, idx):
            return None if a is None else np.ascontiguousarray(a[idx])

        val_obj = Objective(
            sizes,
            cfg.activation,
            output,
            loss,
            take(X, val_idx),
            take(y, val_idx),
            take(w, val_idx),
            take(off, val_idx),
        )
        Xt, yt, wt, ot = take(X, tr_idx), take(y, tr_idx), take(w, tr_idx), take(off, tr_idx)
        if wt is not None and not np.sum(wt) > 0:
            raise ValidationError("the training split has no positive weight")

    obj = Objective(sizes, cfg.activation, output, loss, Xt, yt, wt, ot, l2=cfg.l2)
    theta = init_params(obj.sizes, cfg.init, stream(1))
    bias_index = obj.output_bias_index()
    theta[bias_index] = _output_bias(output, loss, yt, wt, ot)
    _valid_start(obj, theta, bias_index)

    layout = None if coef_fn is None else (obj.sizes, obj.offs)
    monitor = Monitor(cfg, val_obj, layout, beta_ref, info)
    outcome = run(obj, theta, cfg, monitor, lambda: (stream(2), stream(3)))
    params, status, message = outcome.theta, outcome.status, outcome.message
    converged = outcome.converged
    if cfg.refit_output and status != "diverged":
        params, failure, note = _refit_output(cfg, fam, output, sizes, params, X, y, w, off)
        message = f"{message}; {note}" if message else note
        if failure:
            status, converged = "not_converged", False

    grad = np.empty(obj.n_params)
    final = obj.loss_grad(params, grad, repeated=False)  # a one-off evaluation
    return NetworkFit(
        config=cfg,
        params=params,
        sizes=sizes,
        activations=cfg.activation,
        output=output,
        loss=loss,
        family=fam,
        coef=None if coef_fn is None else coef_fn(params),
        history=monitor.history,
        epochs_run=outcome.epochs_run,
        converged=converged,
        grad_norm=float(np.linalg.norm(grad)),
        loss_value=float(final),
        status=status,
        message=message,
        best_epoch=outcome.best_epoch,
    )


def _last_hidden(sizes, activations, theta, X) -> np.ndarray:
    """The last hidden layer's outputs (n x h_L) exactly as the forward pass computes them:
    column j is the output unit's linear predictor with the output weights set to the j-th
    unit vector and its bias to 0 (every other term is an exact zero)."""
    n_hidden = len(sizes) - 2
    o = int(layer_offsets(np.asarray(sizes, dtype=np.int64))[n_hidden])
    width = int(sizes[n_hidden])
    probe = theta.copy()
    probe[o : o + 1 + width] = 0.0
    H = np.empty((X.shape[0], width))
    for j in range(width):
        probe[o + 1 + j] = 1.0
        H[:, j] = predict_eta(sizes, activations, probe, X, None)
        probe[o + 1 + j] = 0.0
    return H


def _refit_output(cfg, fam, output, sizes, theta, X, y, w, off):
    """``refit_output``: the output layer (or its bias) refitted by IRLS as a GLM of the last
    hidden layer's outputs (the covariates themselves without hidden layers), with the data's
    family, the output activation's link, the prior weights and the offset, on every row given
    to :func:`train` (the validation split of early stopping included).  For a canonical link
    the refitted network then balances, ``sum w mu_hat = sum w y``, as the GLM does.  No
    penalty applies to the refit.

    Returns ``(params, failure, note)``: the refitted parameters, or the trained ones with
    ``failure`` True and the reason in ``note`` when IRLS gives no valid estimate.
    """
    from simbench.fit.glm import fit_glm

    n_hidden = len(sizes) - 2
    o = int(layer_offsets(np.asarray(sizes, dtype=np.int64))[n_hidden])
    width = int(sizes[n_hidden])
    what = "the output layer" if cfg.refit_output == "glm" else "the output bias"
    keep = None
    if cfg.refit_output == "glm":
        H = X if n_hidden == 0 else _last_hidden(sizes, cfg.activation, theta, X)
        keep = _independent_columns(H)
        H = H[:, keep]
        fit_off = off
    else:
        H = np.empty((X.shape[0], 0))
        probe = theta.copy()
        probe[o] = 0.0
        fit_off = predict_eta(sizes, cfg.activation, probe, X, off)
    try:
        glm = fit_glm(H, y, family=fam, link=output, weights=w, offset=fit_off)
    except ValidationError as err:
        return theta, True, f"refit of {what} failed ({err}); the trained one is kept"
    coef = np.asarray(glm.coef, dtype=np.float64)
    if glm.status != "ok" or not np.isfinite(coef).all():
        reason = glm.message or glm.status
        return theta, True, f"refit of {what} failed ({reason}); the trained one is kept"
    out = theta.copy()
    out[o] = coef[0]
    note = f"{what} refitted by IRLS ({glm.iterations} iterations)"
    if keep is not None:
        out[o + 1 : o + 1 + width] = 0.0
        out[o + 1 + keep] = coef[1:]
        if keep.size < width:
            note += f"; {width - keep.size} of {width} inputs aliased, their weights 0"
    return out, False, note


# a column whose part outside the span of the constant and the columns chosen before it is
# below this share of its own norm is aliased (numerically a combination of those)
_ALIAS_TOL = 1e-7


def _independent_columns(H) -> np.ndarray:
    """Indices of a largest set of columns of ``H`` that, with a constant, are linearly
    independent: hidden units that saturate, die or duplicate one another alias, and the
    GLM then has no unique estimate (its fitted means are unique; R's ``glm`` reports such
    coefficients as NA).  Pivoted QR of the centred columns, each scaled to unit norm."""
    import scipy.linalg

    if H.shape[1] == 0:
        return np.arange(0)
    C = H - H.mean(axis=0)
    scale = np.linalg.norm(H, axis=0)
    scale[scale == 0.0] = 1.0
    C /= scale
    _, R, piv = scipy.linalg.qr(C, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    rank = int(np.count_nonzero(diag > _ALIAS_TOL))
    return np.sort(piv[:rank])


_GLM_STATUS = {"ok": "ok", "not_converged": "not_converged", "domain_error": "diverged"}


def _train_irls(X, y, w, off, cfg, fam, output, loss, sizes, beta_ref, info) -> NetworkFit:
    """The 'irls' optimiser: the reference GLM fit, returned as a network."""
    from simbench.fit.glm import DEFAULT_TOL, coefficient_names, fit_checked, resolve

    # X, y, the weights and the offset are checked as fit_glm checks them; the response
    # against the family's domain is left to do
    fam, link = resolve(fam, output)
    fam.check_y(y, support=False)
    glm = fit_checked(
        X, y, EMPTY if w is None else w, EMPTY if off is None else off, fam, link, 1,
        coefficient_names(X.shape[1]), DEFAULT_TOL, cfg.epochs,
    )  # fmt: skip
    theta = np.ascontiguousarray(glm.coef, dtype=np.float64)
    obj = Objective(sizes, (), output, loss, X, y, w, off)
    grad = np.empty(obj.n_params)
    final = obj.loss_grad(theta, grad, repeated=False)  # a one-off evaluation
    gnorm = float(np.linalg.norm(grad))
    history = {"loss": [float(final)], "grad_norm": [gnorm]}
    if beta_ref is not None:
        d = theta - beta_ref
        dist = (
            math.sqrt(max(0.0, float(d @ info @ d)))
            if info is not None
            else float(np.linalg.norm(d))
        )
        history["dist_beta"] = [dist]
    status = _GLM_STATUS.get(glm.status, "not_converged")
    if not np.isfinite(theta).all() or not math.isfinite(final):
        status = "diverged"
    return NetworkFit(
        config=cfg,
        params=theta,
        sizes=sizes,
        activations=(),
        output=output,
        loss=loss,
        family=fam,
        coef=theta.copy(),
        history=history,
        epochs_run=int(glm.iterations),
        converged=bool(glm.converged),
        grad_norm=gnorm,
        loss_value=float(final),
        status=status,
        message=f"IRLS: {glm.status}" + (f" ({glm.message})" if glm.message else ""),
    )


def warmup() -> float:
    """Compile (or load from the cache) every training kernel on a tiny problem; return the
    seconds it took.  Sweep runners call this before timing fits."""
    import time

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = rng.poisson(1.0, 64).astype(np.float64)
    w = np.ones(64)
    small = {"epochs": 2, "tol": 0.0, "ftol": 0.0}
    for cfg in (
        {"hidden": [], "optimizer": "lbfgs"},
        {"hidden": [], "optimizer": "newton"},
        {"hidden": [], "optimizer": "adam", "batch_size": 16},
        {"hidden": [2], "optimizer": "gd", "dropout": 0.5},
        {"hidden": [2], "optimizer": "adam", "batch_size": 16, "activation": "tanh"},
    ):
        fit = train(X, y, {**cfg, **small}, family="poisson", weights=w, offset=0.0 * w)
        fit.predict(X)
    return time.perf_counter() - start
