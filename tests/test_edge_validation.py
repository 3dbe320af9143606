"""The edge of the package: every public function checks arrays and seeds with the same
rules and says so in the same words (simbench._validation), and every sweep-file key is
documented in the README with its default."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from simbench import fit_glm, simulate, train
from simbench._validation import real_matrix, real_vector, seed_sequence
from simbench.data import Scenario
from simbench.errors import ValidationError
from simbench.fit.config import NetworkConfig
from simbench.sampling import sample
from simbench.sweep.spec import REQUIRED_SWEEP_KEYS, SWEEP_KEYS

README = Path(__file__).resolve().parents[1] / "README.md"

rng = np.random.default_rng(0)
X = rng.normal(size=(40, 3))
Y = rng.poisson(1.0, 40).astype(float)


def _message(fn) -> str:
    with pytest.raises(ValidationError) as err:
        fn()
    return str(err.value)


def _glm(x=X, y=Y, **kw):
    return fit_glm(x, y, family="poisson", **kw)


def _net(x=X, y=Y, **kw):
    return train(x, y, {"hidden": [], "optimizer": "newton", "epochs": 2}, family="poisson", **kw)


BAD_X = {
    "a vector": X[:, 0],
    "a 3-D array": X[:, :, None],
    "text": "abc",
    "a NaN": np.where(np.arange(120).reshape(40, 3) == 7, np.nan, X),
}


@pytest.mark.parametrize("case", sorted(BAD_X))
def test_fit_glm_and_train_refuse_a_bad_X_in_the_same_words(case):
    glm, net = _message(lambda: _glm(BAD_X[case])), _message(lambda: _net(BAD_X[case]))
    assert glm == net == _message(lambda: real_matrix(BAD_X[case]))
    assert glm.startswith("X must be ")
    assert "; got " in glm


@pytest.mark.parametrize(
    "what, value",
    [
        ("y", Y[:-1]),
        ("weights", np.ones(39)),
        ("offset", np.ones(41)),
        ("offset", [0.0] * 39 + [np.inf]),
    ],
)
def test_vectors_are_refused_in_the_same_words(what, value):
    kw = {} if what == "y" else {what: value}
    args = {"y": value} if what == "y" else {}
    glm = _message(lambda: _glm(**args, **kw))
    net = _message(lambda: _net(**args, **kw))
    assert glm == net == _message(lambda: real_vector(value, 40, what))
    assert glm.startswith(f"{what} must ") and "; got " in glm


@pytest.mark.parametrize("seed", [-1, 1.5, True, "7", None])
def test_every_seed_is_checked_by_one_rule(seed):
    expected = _message(lambda: seed_sequence(seed))
    assert expected == f"seed must be an integer >= 0 or a SeedSequence; got {seed!r}"
    assert _message(lambda: _net(seed=seed)) == expected
    assert _message(lambda: simulate({"family": "poisson", "n": 10, "p": 2}, seed)) == expected
    if seed is not None:  # sample takes None as "a fresh generator"
        assert _message(lambda: sample("poisson", np.ones(3), rng=seed)) == expected


def test_predictions_check_the_columns_the_model_has():
    glm, net = _glm(), _net()
    wide = np.ones((4, 5))
    assert _message(lambda: glm.predict(wide)) == _message(lambda: net.predict(wide))
    assert "X has 5 columns; the model has 3" in _message(lambda: glm.predict(wide))


# ---- the sweep-file keys in the README ------------------------------------------------------


def _key_table(heading: str) -> dict[str, str]:
    """``key -> default`` of the README table under ``heading``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    rows = {}
    for line in text[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            for key in re.findall(r"`([a-z_0-9]+)`", cells[0]):
                rows[key] = cells[1]
    return rows


def _check(documented: dict[str, str], keys, defaults: dict[str, object]) -> None:
    missing = [k for k in keys if k not in documented]
    assert not missing, f"not documented in the README: {missing}"
    for key in keys:
        default = documented[key]
        assert default, f"{key}: no default in the README"
        value = defaults.get(key, dataclasses.MISSING)
        if isinstance(value, bool):
            assert f"`{str(value).lower()}`" in default, (key, default)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", default)]
            assert float(value) in numbers, (key, value, default)


def test_every_sweep_key_is_documented_with_its_default():
    documented = _key_table("### `[sweep]`")
    _check(documented, SWEEP_KEYS, {"record_history": False})
    for key in REQUIRED_SWEEP_KEYS:
        assert documented[key] == "(required)"


def test_every_scenario_key_is_documented_with_its_default():
    fields = {f.name: f.default for f in dataclasses.fields(Scenario)}
    _check(_key_table("### `[[scenarios]]`"), fields, fields)


def test_every_config_key_is_documented_with_its_default():
    fields = {f.name: f.default for f in dataclasses.fields(NetworkConfig)}
    _check(_key_table("### `[[configs]]`"), NetworkConfig.keys(), fields)


@pytest.mark.parametrize(
    "build, key, value, accepted",
    [
        (lambda v: Scenario.from_dict({"family": "poisson", "n": v}), "n", 0, "an integer >= 1"),
        (lambda v: NetworkConfig.from_dict({"epochs": v}), "epochs", 0, "an integer >= 1"),
        (
            lambda v: Scenario.from_dict({"family": "poisson", "exposure": v}),
            "exposure",
            "yes",
            "true or false",
        ),
        (
            lambda v: NetworkConfig.from_dict({"early_stopping": v}),
            "early_stopping",
            "yes",
            "true or false",
        ),
        (lambda v: NetworkConfig.from_dict({"lr": v}), "lr", -1.0, "a number in (0, inf)"),
    ],
)
def test_scenario_and_config_keys_are_refused_in_one_form(build, key, value, accepted):
    message = _message(lambda: build(value))
    where = "scenario" if "scenario" in message else "network config"
    assert message == f"{where} key {key!r} must be {accepted}; got {value!r}"
