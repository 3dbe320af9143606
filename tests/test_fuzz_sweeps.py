"""Hypothesis-mutated versions of the bundled sweeps through ``validate``, ``run --dry-run``
and ``run``: the exit code is always 0, 2 or 3 (never 1: no internal error), a refused file
(2) writes nothing, and nothing is ever written outside ``--out``."""

from __future__ import annotations

import json
import math
import os
import shutil
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = sorted(p for p in (ROOT / "scenarios").glob("*.toml"))
BASES = {p.name: tomllib.loads(p.read_text()) for p in SWEEPS}


# --------------------------------------------------------------------------- a TOML writer


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string: the same escapes
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(doc: dict) -> str:
    lines = []
    for key, value in doc.items():
        if isinstance(value, dict):
            lines.append(f"[{json.dumps(key)}]")
            lines += [f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(b, dict) for b in value):
            for block in value:
                lines.append(f"[[{json.dumps(key)}]]")
                lines += [f"{json.dumps(k)} = {_value(v)}" for k, v in block.items()]
        else:
            lines.insert(0, f"{json.dumps(key)} = {_value(value)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- mutations

ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 10**6, 10**9, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1e-9, 0.5, 0.999, 1.0, 1e18, -0.5]),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "poisson",
            "gamma",
            "inverse",
            "log",
            "canonical",
            "relu",
            "adam",
            "irls",
            "x\n",
            "../up",
            "/abs",
            "power(0.5)",
            "power(x)",
            "a" * 300,
            "x1*x2",
            "nan",
        ]
    ),
    st.lists(st.integers(-3, 40), max_size=4),
    st.lists(st.lists(st.integers(0, 8), max_size=2), max_size=3),
    st.lists(st.sampled_from(["relu", "tanh", 1, None]), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
PLAUSIBLE = st.one_of(
    st.integers(-2, 300),
    st.sampled_from([0.0, 1e-9, 0.01, 0.5, 0.999, 1.0, 2.0, 1e18, -0.5, float("inf")]),
    st.sampled_from(
        [
            "poisson",
            "gamma",
            "bernoulli",
            "tweedie",
            "inverse",
            "log",
            "identity",
            "sqrt",
            "canonical",
            "uniform",
            "binary",
            "relu",
            "tanh",
            "sigmoid",
            "adam",
            "irls",
            "newton",
            "lbfgs",
            "sgd",
            "squared_error",
            "hinge",
            "matched",
            "exp",
            "softplus",
        ]
    ),
    st.booleans(),
    st.sampled_from([[], [4], [4, 4], [[], [3]], ["relu"], [0.1, -0.2, 0.3]]),
)
KEYS = {
    "sweep": ["name", "replicates", "seed", "timeout", "description", "record_history"],
    "scenarios": [
        "family",
        "link",
        "n",
        "n_test",
        "p",
        "design",
        "rho",
        "levels",
        "signal",
        "mean",
        "dispersion",
        "alpha",
        "power",
        "trials",
        "exposure",
        "separable",
        "beta",
        "predictor",
        "nonlinearity",
    ],
    "configs": [
        "name",
        "hidden",
        "activation",
        "output",
        "loss",
        "optimizer",
        "lr",
        "epochs",
        "batch_size",
        "dropout",
        "l2",
        "early_stopping",
        "patience",
        "validation_fraction",
        "init",
        "tol",
        "momentum",
    ],
}
ANY_KEY = sorted({k for keys in KEYS.values() for k in keys} | {"unknown_key"})


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(BASES)))
    doc = json.loads(json.dumps(BASES[name]))  # a deep copy (TOML data is JSON data)
    doc["sweep"]["replicates"] = 1  # keep the runs small unless a mutation says otherwise
    doc["sweep"].pop("timeout", None)
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["set"] * 6 + ["odd", "delete", "drop_block", "top"]))
        where = draw(st.sampled_from(["sweep"] + ["scenarios", "configs"] * 3))
        if kind == "top":
            doc[draw(st.sampled_from(["sweep", "scenarios", "configs", "extra"]))] = draw(ODD)
            continue
        target = doc.get(where)
        if isinstance(target, list) and target and all(isinstance(b, dict) for b in target):
            if kind == "drop_block":
                target.pop(draw(st.integers(0, len(target) - 1)))
                continue
            target = target[draw(st.integers(0, len(target) - 1))]
        if not isinstance(target, dict):
            continue
        key = draw(st.sampled_from(KEYS[where] if kind != "odd" else ANY_KEY))
        if kind == "delete":
            target.pop(key, None)
        else:
            target[key] = draw(ODD if kind == "odd" else PLAUSIBLE)
    table = doc.get("sweep")
    if isinstance(table, dict):
        reps = table.get("replicates")
        if isinstance(reps, int) and not isinstance(reps, bool) and 3 < reps < 10**6:
            table["replicates"] = 3  # any count may be drawn; the runs stay small
    return name, doc


# --------------------------------------------------------------------------- the property


def snapshot(root: Path, skip: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            dirnames[:] = []
            continue
        for f in filenames:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = p.stat().st_size
    return out


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # ok rows for every cell whatever a configuration is named (no hang, crash or exit)
    monkeypatch.setenv("SIMBENCH_GROUP_FN", "fake_groups:calm")
    return tmp_path


@settings(
    max_examples=int(os.environ.get("SIMBENCH_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=mutated())
def test_mutated_bundled_sweeps_never_crash_and_never_write_outside_out(sandbox, capsys, case):
    name, doc = case
    try:
        text = to_toml(doc)
    except TypeError:
        return  # a value TOML cannot hold (None): not a file anyone can write
    work = sandbox / "case"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    sweep = work / name
    sweep.write_text(text)
    out = work / "out"
    before = snapshot(sandbox, out)
    codes = {}
    for command in (["validate"], ["run", "--dry-run"], ["run", "--no-progress"]):
        args = [command[0], str(sweep), *command[1:]]
        if command[0] == "run":
            args += ["--out", str(out)]
        code = main(args)
        captured = capsys.readouterr()
        codes[" ".join(command)] = code
        assert code in (0, 2, 3), (command, code, captured.err[-2000:], text)
        assert "Traceback" not in captured.err, (command, captured.err[-2000:])
        if code == 2:
            assert captured.err.startswith("simbench: error: "), captured.err
        if command == ["run", "--no-progress"] and code == 2:
            assert not out.exists(), "a refused sweep wrote results"
        # nothing outside --out, whatever happened
        assert snapshot(sandbox, out) == before, command
    # the three commands agree on whether the file is acceptable
    assert (
        (codes["validate"] == 2)
        == (codes["run --dry-run"] == 2)
        == (codes["run --no-progress"] == 2)
    ), codes
