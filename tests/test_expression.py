"""The predictor expression language: generated expressions evaluate as NumPy does and
print back to themselves; hostile text is refused, by the parser and by ``simbench
validate`` / ``run`` (exit 2), with nothing executed and nothing written."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbench import expression as E
from simbench.cli import main
from simbench.errors import ValidationError
from simbench.expression import parse_expression

P = 4
X = np.random.default_rng(11).normal(size=(64, P)) * 1.5

# the reference: an independent table of what each name means in NumPy
REF_FUNCTIONS = {
    "abs": (np.abs, 1),
    "sign": (np.sign, 1),
    "sin": (np.sin, 1),
    "cos": (np.cos, 1),
    "tanh": (np.tanh, 1),
    "exp": (np.exp, 1),
    "log": (np.log, 1),
    "sqrt": (np.sqrt, 1),
    "min": (np.minimum, 2),
    "max": (np.maximum, 2),
}
REF_OPS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide, "**": np.power}


def test_the_whitelist_is_the_documented_one():
    assert list(E.FUNCTIONS) == list(REF_FUNCTIONS)
    for name, (ufunc, least) in REF_FUNCTIONS.items():
        assert E.FUNCTIONS[name].ufunc is ufunc and E.FUNCTIONS[name].min_args == least


# ---- generated expressions: (kind, ...) tuples, rendered fully parenthesised -----------------

numbers = st.one_of(
    st.integers(0, 50).map(float),
    st.floats(0.0, 20.0, allow_nan=False, allow_infinity=False),
    st.sampled_from([1e-3, 2.5e-7, 0.1, 1e6]),
)
leaves = st.one_of(
    numbers.map(lambda v: ("num", v)),
    st.integers(1, P).map(lambda j: ("var", j)),
)


def _extend(children):
    unary = st.tuples(st.just("neg"), children)
    binary = st.tuples(st.just("bin"), st.sampled_from(["+", "-", "*", "/"]), children, children)
    power = st.tuples(
        st.just("bin"),
        st.just("**"),
        children,
        st.one_of(st.integers(0, 3).map(lambda v: ("num", float(v))), children),
    )
    one = st.tuples(
        st.just("call"),
        st.sampled_from(["abs", "sign", "sin", "cos", "tanh", "exp", "log", "sqrt"]),
        st.lists(children, min_size=1, max_size=1).map(tuple),
    )
    many = st.tuples(
        st.just("call"),
        st.sampled_from(["min", "max"]),
        st.lists(children, min_size=2, max_size=3).map(tuple),
    )
    return st.one_of(unary, binary, power, one, many)


trees = st.recursive(leaves, _extend, max_leaves=12)


def render(t, spaces: bool) -> str:
    sp = " " if spaces else ""
    kind = t[0]
    if kind == "num":
        return repr(t[1])
    if kind == "var":
        return f"x{t[1]}"
    if kind == "neg":
        return f"-({render(t[1], spaces)})"
    if kind == "bin":
        return f"({render(t[2], spaces)}){sp}{t[1]}{sp}({render(t[3], spaces)})"
    return f"{t[1]}({f',{sp}'.join(render(a, spaces) for a in t[2])})"


def reference(t, X):
    kind = t[0]
    if kind == "num":
        return np.float64(t[1])
    if kind == "var":
        return X[:, t[1] - 1]
    if kind == "neg":
        return np.negative(reference(t[1], X))
    if kind == "bin":
        return REF_OPS[t[1]](reference(t[2], X), reference(t[3], X))
    fn = REF_FUNCTIONS[t[1]][0]
    values = [reference(a, X) for a in t[2]]
    out = values[0] if len(values) == 1 else fn(values[0], values[1])
    if len(values) == 1:
        return fn(out)
    for v in values[2:]:
        out = fn(out, v)
    return out


def has_variables(t) -> bool:
    if t[0] == "var":
        return True
    if t[0] == "num":
        return False
    return any(
        has_variables(c) for c in (t[1:2] if t[0] == "neg" else t[2:4] if t[0] == "bin" else t[2])
    )


def refused_constant(t) -> bool:
    """Whether a part without variables is not finite, or is an exponent beyond the bound."""
    kids = (t[1],) if t[0] == "neg" else t[2:4] if t[0] == "bin" else t[2] if t[0] == "call" else ()
    if any(refused_constant(k) for k in kids):
        return True
    with np.errstate(all="ignore"):
        if t[0] == "bin" and t[1] == "**" and not has_variables(t[3]):
            if abs(reference(t[3], X)) > E.MAX_EXPONENT:
                return True
        return not has_variables(t) and not np.isfinite(reference(t, X))


@given(trees, st.booleans())
def test_generated_expressions_evaluate_as_numpy_and_print_back(tree, spaces):
    text = render(tree, spaces)
    if refused_constant(tree):
        with pytest.raises(ValidationError, match=r"constant part|exponent"):
            parse_expression(text, P)
        return
    expr = parse_expression(text, P)
    with np.errstate(all="ignore"):
        want = np.broadcast_to(reference(tree, X), (X.shape[0],))
    got = expr.evaluate(X)
    assert got.shape == (X.shape[0],) and got.dtype == np.float64
    np.testing.assert_array_equal(got, want)  # bit for bit (NaN where NumPy gives NaN)
    # the canonical text parses back to the same tree and text
    again = parse_expression(expr.text, P)
    assert again.root == expr.root and again.text == expr.text and again == expr
    np.testing.assert_array_equal(again.evaluate(X), got)
    used = {j for j in range(1, P + 1) if f"x{j}" in text}
    assert set(expr.variables) == used


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("x1*x2 + sin(2*x3) + x4**2", "x1 * x2 + sin(2 * x3) + x4 ** 2"),
        ("-x1**2", "-x1 ** 2"),
        ("(-x1)**2", "(-x1) ** 2"),
        ("x1 - (x2 - x3)", "x1 - (x2 - x3)"),
        ("(x1 - x2) - x3", "x1 - x2 - x3"),
        ("x1 ** x2 ** x3", "x1 ** x2 ** x3"),
        ("(x1 ** x2) ** x3", "(x1 ** x2) ** x3"),
        ("x1/(x2*x3)", "x1 / (x2 * x3)"),
        ("x1 ** -2", "x1 ** (-2)"),
        ("+x1", "x1"),
        ("max( x1,x2 , 0.50 )", "max(x1, x2, 0.5)"),
        ("1e-3 * x1", "0.001 * x1"),
        ("2.0*x1", "2 * x1"),
    ],
)
def test_canonical_text(text, canonical):
    expr = parse_expression(text, P)
    assert expr.text == canonical == str(expr)
    assert parse_expression(canonical, P).root == expr.root


def test_values_and_domains():
    x = np.array([[4.0, -1.0], [0.0, 2.0]])
    np.testing.assert_array_equal(parse_expression("sqrt(x1) + min(x2, 0)").evaluate(x), [1, 0])
    np.testing.assert_array_equal(parse_expression("3").evaluate(x), [3.0, 3.0])
    out = parse_expression("log(x2) + 1 / x1").evaluate(x)
    assert np.isnan(out[0]) and out[1] == np.inf  # IEEE, no exception
    assert parse_expression("x1 * x3").variables == (1, 3)
    with pytest.raises(ValidationError, match="needs at least 3 columns"):
        parse_expression("x1 * x3").evaluate(x)


# ---- hostile and invalid text -----------------------------------------------------------------

HOSTILE = [
    ("__import__('os').system('touch {marker}')", "calling"),
    ("open('{marker}', 'w')", "calling"),
    ("eval('1')", "calling"),
    ("exec('import os')", "calling"),
    ("compile('1', 'f', 'eval')", "calling"),
    ("globals()", "calling"),
    ("x1.__class__", "attribute access 'x1.__class__'"),
    ("().__class__.__bases__[0].__subclasses__()", "calling"),
    ("sin.__globals__", "attribute access"),
    ("x1[0]", "subscripting 'x1[0]'"),
    ("[x1 for x1 in (1, 2)]", "comprehension"),
    ("(x for x in x1)", "generator"),
    ("lambda: 1", "the lambda"),
    ("x1 if x2 else x3", "the conditional"),
    ("x1 < x2", "the comparison"),
    ("x1 and x2", "boolean operation"),
    ("'abc'", "the string"),
    ("b'abc'", "the bytes"),
    ("f'{x1}'", "f-string"),
    ("sin(x=1)", "keyword argument"),
    ("max(*x1)", "starred"),
    ("(x1 := 2)", "assignment expression"),
    ("import os", "not a valid expression"),
    ("x1; x2", "not a valid expression"),
    ("x1 # comment", "comment"),
    ("x1 % 2", "operator '%'"),
    ("x1 // 2", "operator '//'"),
    ("x1 @ x2", "operator '@'"),
    ("~x1", "operator '~'"),
    ("True + x1", "constant 'True'"),
    ("None", "constant 'None'"),
    ("1j * x1", "constant '1j'"),
    ("pi * x1", "name 'pi'"),
    ("sine(x1)", "did you mean 'sin'"),
    ("x1(2)", "calling 'x1(2)'"),
    ("sin", "must be called"),
    ("log(x1, 2)", "log takes one argument"),
    ("min(x1)", "min takes 2 or more arguments"),
    ("x0 + x1", "'x0' is not a variable"),
    ("x01", "'x01' is not a variable"),
    ("x9", "x9 is beyond p = 4"),
    ("x5 * x7 + x1", "x5, x7 are beyond p = 4"),
    ("2 ** 1000", "exponent 1000"),
    ("x1 ** -100", "exponent -100"),
    ("10 ** 10 ** 10", "exponent"),
    ("1e300 * x1", "too large"),
    ("9" * 30, "too large"),
    ("9" * 5000, "characters long"),
    ("x1+" * 600 + "x1", "nests more than"),
    ("-" * 1500 + "x1", "nests more than"),
    ("(" * 300 + "x1" + ")" * 300, "parentheses nest more than"),
    ("x1**" * 400 + "x1", "nests more than"),
    ("x\uff11", "FULLWIDTH DIGIT ONE"),  # 'x１': NFKC would make it x1
    ("\u0445" + "1", "CYRILLIC SMALL LETTER HA"),  # 'х1'
    ("x1 + \u200bx2", "ZERO WIDTH SPACE"),
    ("x1\x00", "control character"),
    ("", "empty"),
    ("   ", "empty"),
]


@pytest.mark.parametrize(("text", "why"), HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_is_refused_and_never_run(text, why, tmp_path):
    marker = tmp_path / "PWNED"
    text = text.replace("{marker}", str(marker))
    with pytest.raises(ValidationError) as err:
        parse_expression(text, P)
    message = str(err.value)
    assert message.startswith("scenario key 'predictor'")
    assert why in message, message
    assert not marker.exists()


@pytest.mark.parametrize("value", [None, 3, ["x1"], {"x": 1}])
def test_non_strings_are_refused(value):
    with pytest.raises(ValidationError, match='must be "linear" or an expression'):
        parse_expression(value, P)


def test_the_module_calls_nothing_that_runs_text():
    # the parser only builds a syntax tree: no eval, exec, compile or import in the module
    source = Path(E.__file__).read_text()
    calls = [node.func for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)]
    builtins = {f.id for f in calls if isinstance(f, ast.Name)}
    methods = {(getattr(f.value, "id", ""), f.attr) for f in calls if isinstance(f, ast.Attribute)}
    assert not builtins & {"eval", "exec", "compile", "__import__", "getattr", "setattr"}
    assert not {attr for _, attr in methods} & {"import_module", "system", "literal_eval"}
    assert ("ast", "parse") in methods  # the one entry into Python's parser


# ---- the command line: exit 2, the file, block, key and piece named, nothing written -------

SWEEP = """\
[sweep]
name = "hostile"
replicates = 1
seed = 1

[[scenarios]]
family = "poisson"
n = 100
p = 4

[[scenarios]]
family = "poisson"
n = 100
p = 4
predictor = {predictor}

[[configs]]
hidden = []
optimizer = "irls"
"""

CLI_CASES = [
    ("__import__('os').system('touch {marker}')", "calling"),
    ("x1.__class__.__mro__", "attribute access"),
    ("x7 * x1", "x7 is beyond p = 4"),
    ("x\uff11 * x2", "FULLWIDTH DIGIT ONE"),
    ("\u0445" + "1 + x2", "CYRILLIC SMALL LETTER HA"),
    ("(" * 150 + "x1" + ")" * 150, "nest more than"),
    ("x1 + " * 3000 + "x1", "characters long"),
    ("2 ** 10 ** 10", "exponent"),
]


def _sweep_file(tmp_path, text: str) -> Path:
    path = tmp_path / "hostile.toml"
    path.write_text(SWEEP.replace("{predictor}", json.dumps(text, ensure_ascii=False)))
    return path


@pytest.mark.parametrize(("text", "why"), CLI_CASES, ids=range(len(CLI_CASES)))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_cli_exit_2_naming_file_block_key_and_piece(
    tmp_path, monkeypatch, capsys, command, text, why
):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    path = _sweep_file(tmp_path, text.replace("{marker}", str(marker)))
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(
        [command, str(path), "--out", str(tmp_path / "out")][: 2 if command == "validate" else 4]
    )
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "hostile.toml" in err and "[[scenarios]] #2" in err and "'predictor'" in err
    assert why in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("__import__('os').system('touch {marker}')", "__import__"),
        ("x\uff11 + x2", "FULLWIDTH DIGIT ONE"),
        ("-" * 1500 + "x1", "nests more than"),
    ],
    ids=["import", "lookalike", "nesting"],
)
def test_python_m_simbench_validate_refuses_in_a_fresh_process(tmp_path, text, why):
    marker = tmp_path / "PWNED"
    path = _sweep_file(tmp_path, text.replace("{marker}", str(marker)))
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "simbench", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "hostile.toml" in proc.stderr and "[[scenarios]] #2" in proc.stderr
    assert "'predictor'" in proc.stderr and why in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.toml"]
