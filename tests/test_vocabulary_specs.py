"""One row per vocabulary entry: the specs are the only source of names, codes, defaults and
domains.

* every domain prints what it checks: its texts, read back by a small interpreter written
  here, agree with :meth:`Domain.contains` on the boundary values of every domain of every
  entry (the ends, their neighbouring floats, the excluded points, non-finite numbers);
* the Python checks agree with the kernels' own domain checks on the same values;
* every default and domain that families, losses and scenarios use is the one in the spec
  (the same default everywhere, the same values refused everywhere);
* one parser reads ``name(param)``: every spelling is accepted alike by families, losses,
  links and scenarios, and no other module of the package compiles a call-form pattern.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest

from simbench import activations, families, links, losses
from simbench._domains import Domain, Parameter
from simbench._registry import parse_call
from simbench.data import Scenario
from simbench.errors import UnknownNameError, ValidationError
from simbench.kernels import codes
from simbench.kernels import families as KF
from simbench.kernels import links as KL

# ---- an interpreter for the printed domains ---------------------------------------------------

_NUMBER = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?|-?inf"
_REL = r"(<=|>=|<|>|!=)"


def _compare(x: float, op: str, a: float) -> bool:
    return {"<": x < a, "<=": x <= a, ">": x > a, ">=": x >= a, "!=": x != a}[op]


def _holds(text: str, x: float) -> bool:
    """Whether ``x`` satisfies ``text``, a domain as the vocabulary prints it."""
    # a note in words, in parentheses, says nothing to check
    text = re.sub(r" \([^()]*[A-Za-z][^()]*\)$", "", text)
    if not math.isfinite(x):
        return False  # every printed domain is of finite numbers
    if text in ("a finite real number", "a finite number") or text.startswith("any finite "):
        return True
    text = re.sub(r"^an integer ", "", text)
    if text == "a non-negative integer count":
        return x >= 0 and x == math.floor(x)
    if m := re.fullmatch(
        rf"(?:\w+ in )?\{{((?:{_NUMBER})(?:, (?:{_NUMBER}))*)(, \.\.\.)?\}}", text
    ):
        items = [float(v) for v in m.group(1).split(", ")]
        if m.group(2):  # {a, a+1, a+2, ...}
            return x >= items[0] and x == math.floor(x)
        return x in items
    if m := re.fullmatch(rf"((?:{_NUMBER})(?:, (?:{_NUMBER}))*) or ({_NUMBER})", text):
        return x in [float(v) for v in m.group(1).split(", ")] + [float(m.group(2))]
    if m := re.fullmatch(rf"in ([\[(])({_NUMBER}), ({_NUMBER})([\])])", text):
        lo, hi = float(m.group(2)), float(m.group(3))
        return (x >= lo if m.group(1) == "[" else x > lo) and (
            x <= hi if m.group(4) == "]" else x < hi
        )
    text = re.sub(r"^a (?:finite )?number (?:\w+ )?(?:with )?", "", text)
    if m := re.fullmatch(rf"({_NUMBER}) {_REL} \w+ {_REL} ({_NUMBER})", text):
        flip = {"<": ">", "<=": ">="}  # "a < x" is "x > a"
        low, high = float(m.group(1)), float(m.group(4))
        return _compare(x, flip[m.group(2)], low) and _compare(x, m.group(3), high)
    conditions = text.split(" and ")
    ok = True
    for cond in conditions:
        m = re.fullmatch(rf"(?:\w+ )?{_REL} ({_NUMBER})", cond)
        assert m is not None, f"the test cannot read the domain {text!r}"
        ok &= _compare(x, m.group(1), float(m.group(2)))
    return ok


def _boundary_values(domain: Domain) -> list[float]:
    points = {0.0, -0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -1.0, 3.0, 1e300, -1e300}
    points |= {math.inf, -math.inf, math.nan}
    for end in (domain.low, domain.high, *domain.values, *domain.excluded):
        if math.isfinite(end):
            points |= {end, math.nextafter(end, math.inf), math.nextafter(end, -math.inf)}
            points |= {end + 0.5, end - 0.5, end + 1.0}
    return sorted(points, key=lambda v: (math.isnan(v), v))


def _every_domain() -> list[tuple[str, Domain, str]]:
    """(label, domain, variable) of every domain an entry holds, and the ones it derives."""
    out = []
    for f in families.SPECS:
        out += [
            (f"{f.name}.y_support", f.y_support, "y"),
            (f"{f.name}.y_deviance", f.y_deviance, "y"),
            (f"{f.name}.mu_domain", f.mu_domain, "mu"),
            (f"{f.name}.closed mu_domain", f.mu_domain.closure(), "mu"),
        ]
        if f.parameter is not None:
            out.append((f"{f.name}.{f.parameter.name}", f.parameter.domain, f.parameter.symbol))
    for lk in links.SPECS:
        out += [
            (f"{lk.name}.mu_domain", lk.mu_domain, "mu"),
            (f"{lk.name}.eta", lk.eta_domain, "eta"),
        ]
        if lk.positive_mu_domain is not None:
            out.append((f"{lk.name}.positive mu", lk.positive_mu_domain, "mu"))
        if lk.positive_eta_domain is not None:
            out.append((f"{lk.name}.positive eta", lk.positive_eta_domain, "eta"))
        if lk.parameter is not None:
            out.append((f"{lk.name}.{lk.parameter.name}", lk.parameter.domain, "lambda"))
    for lo in losses.SPECS:
        out.append((f"{lo.name}.y_domain", lo.y_domain, "y"))
    out.append(("dispersion", families.DISPERSION.domain, "phi"))
    # shapes no entry uses today, so that the texts of every shape are read back
    out += [
        ("upper half-line", Domain(high=1.0, high_closed=True), "x"),
        ("three values", Domain(values=(-1.0, 0.0, 2.0)), "x"),
        ("integers from 2", Domain(2.0, low_closed=True, integer=True), "k"),
        ("half-open", Domain(-2.0, 3.0, high_closed=True), "t"),
    ]
    return out


DOMAINS = _every_domain()


@pytest.mark.parametrize(("label", "domain", "var"), DOMAINS, ids=[d[0] for d in DOMAINS])
def test_every_printed_domain_is_what_the_check_enforces(label, domain, var):
    texts = [
        domain.text(var),
        domain.words(),
        domain.words(var),
        domain.accepted(var),
    ]
    for x in _boundary_values(domain):
        expected = bool(domain.contains(x))
        assert (x in domain) is expected
        for text in texts:
            assert _holds(text, x) is expected, (label, text, x, expected)
    # the array form keeps shapes, and the boundary values of a bounded domain are decided
    grid = np.array(_boundary_values(domain)).reshape(-1, 1)
    assert domain.contains(grid).shape == grid.shape


def test_the_interpreter_can_fail():
    # a text that says something else is caught: the test above cannot pass by accident
    assert _holds("y > 0", 0.0) is False and _holds("y >= 0", 0.0) is True
    assert _holds("0 < mu < 1", 1.0) is False and _holds("0 <= mu <= 1", 1.0) is True
    assert _holds("a non-negative integer count", 1.5) is False
    assert _holds("in [0, 1]", 1.0) and not _holds("in (0, 1)", 1.0)
    assert _holds("a number with 1 < power < 2", 2.0) is False
    assert _holds("mu != 0", 0.0) is False and _holds("any finite mu", math.nan) is False


def test_domain_texts_on_known_entries():
    # the messages' wording, as the families, links and losses print it
    assert families.get("poisson").y_support == "a non-negative integer count"
    assert families.get("bernoulli").y_support == "0 or 1"
    assert families.get("gamma").mu_domain == "a finite number mu > 0"
    assert families.get("binomial").mu_domain == "0 < mu < 1"
    assert families.POWER.accepted == "a number p with 1 < p < 2"
    assert families.ALPHA.accepted == "a finite number alpha > 0"
    assert links.get("inverse").mu_domain == "mu != 0"
    assert links.get("power(0.3)").mu_domain == "mu >= 0"
    assert links.get("power(-0.3)").mu_domain == "mu > 0"
    assert links.get("power(-0.3)").eta_domain == "eta > 0"
    assert links.get("identity").mu_domain == "any finite mu"
    assert losses.get("hinge").y_domain == "y in {0, 1}"
    assert losses.get("gamma").y_domain == "y > 0"


def test_subsets():
    pos, nonneg, unit = Domain(0.0), Domain(0.0, low_closed=True), Domain(0.0, 1.0, True, True)
    counts = Domain(0.0, low_closed=True, integer=True)
    binary = Domain(values=(0.0, 1.0))
    assert pos.issubset(nonneg) and not nonneg.issubset(pos)
    assert counts.issubset(nonneg) and not counts.issubset(pos) and not counts.issubset(unit)
    assert binary.issubset(unit) and not unit.issubset(binary) and not binary.issubset(pos)
    assert not nonneg.issubset(counts) and unit.issubset(Domain())
    assert not Domain().issubset(Domain(excluded=(0.0,))) and pos.issubset(Domain(excluded=(0.0,)))
    assert not Domain(0.0, 1.0, high_closed=True).issubset(Domain(0.0, 1.0))


# ---- the Python checks against the kernels' checks ------------------------------------------


def _grid(*domains: Domain) -> np.ndarray:
    values = set()
    for d in domains:
        values |= set(_boundary_values(d))
    return np.array(sorted(values, key=lambda v: (math.isnan(v), v)))


@pytest.mark.parametrize("spec", families.SPECS, ids=[f.name for f in families.SPECS])
def test_family_domains_are_the_kernels(spec):
    fam = families.get(spec.name)
    x = _grid(spec.y_support, spec.y_deviance, spec.mu_domain)
    param = float(fam.param)
    kernel = {
        "y_support": [KF.fam_y_valid(spec.code, param, v) for v in x],
        "y_deviance": [KF.fam_y_deviance_valid(spec.code, param, v) for v in x],
        "mu_domain": [KF.fam_mu_valid(spec.code, param, v) for v in x],
    }
    for field, expected in kernel.items():
        assert getattr(spec, field).contains(x).tolist() == expected, (spec.name, field)
    assert fam.y_valid(x).tolist() == kernel["y_support"]
    assert fam.y_valid(x, support=False).tolist() == kernel["y_deviance"]
    assert fam.mu_valid(x).tolist() == kernel["mu_domain"]


LINK_CASES = [
    (spec, lam)
    for spec in links.SPECS
    for lam in ((0.3, -0.3, 2.0, -1.5) if spec.parameter is not None else (None,))
]


@pytest.mark.parametrize(
    ("spec", "lam"), LINK_CASES, ids=[f"{s.name}-{lam}" for s, lam in LINK_CASES]
)
def test_link_domains_are_the_kernels(spec, lam):
    link = links.get(spec.name, power=lam) if lam is not None else links.get(spec.name)
    assert link.entry is spec
    x = _grid(spec.mu_domain, spec.eta_domain, Domain(-1.0, 1.0))
    param = float(link.param)
    mu_k = [KL.link_mu_valid(spec.code, param, v) for v in x]
    eta_k = [KL.link_eta_valid(spec.code, param, v) for v in x]
    assert link.mu_valid(x).tolist() == mu_k
    assert link.eta_valid(x).tolist() == eta_k
    assert [_holds(link.mu_domain, v) for v in x] == mu_k
    assert [_holds(link.eta_domain, v) for v in x] == eta_k


@pytest.mark.parametrize("spec", losses.SPECS, ids=[lo.name for lo in losses.SPECS])
def test_loss_check_is_its_printed_domain(spec):
    loss = losses.get(spec.name)
    x = _grid(spec.y_domain, Domain(0.0, 1.0))
    for v in x:
        accepted = _holds(loss.y_domain, float(v))
        if accepted:
            loss.check_y([v])
        else:
            with pytest.raises(ValidationError, match=re.escape(f"needs {loss.y_domain}")):
                loss.check_y([v])


@pytest.mark.parametrize("spec", families.SPECS, ids=[f.name for f in families.SPECS])
def test_family_messages_print_the_domain_that_refused(spec):
    fam = families.get(spec.name)
    for support, domain in ((True, spec.y_support), (False, spec.y_deviance)):
        for v in _grid(domain):
            if domain.contains(v):
                fam.check_y([v], support=support)
                continue
            with pytest.raises(ValidationError) as err:
                fam.check_y([v], support=support)
            assert f"y must be {domain.words()}; got" in str(err.value)
    closed = spec.mu_domain.closure()
    y = 0.5 if spec.is_binary else 1.0
    for v in _grid(closed):
        if closed.contains(v):
            fam.unit_deviance(y, v)
        else:
            with pytest.raises(
                ValidationError, match=re.escape(f"mu must be {closed.words('mu')}")
            ):
                fam.unit_deviance(y, v)


# ---- the tables themselves ------------------------------------------------------------------


def test_spec_tables_are_consistent():
    prefixes = {
        families.SPECS: "FAMILY_",
        links.SPECS: "LINK_",
        activations.SPECS: "ACT_",
    }
    for specs, prefix in prefixes.items():
        assert len({s.name for s in specs}) == len(specs)
        for s in specs:
            assert s.code == getattr(codes, prefix + s.name.upper()), s.name
    for module in (families, links, losses, activations):
        registry, specs = module.REGISTRY, module.SPECS
        assert registry.names() == module.names() == [s.name for s in specs]
        assert module.descriptions() == {s.name: s.description for s in specs}
        for s in specs:
            assert registry.get(s.name).entry is s
            assert registry.aliases_of(s.name) == sorted(s.aliases)
    link_names = set(links.names())
    for f in families.SPECS:
        assert set(f.links) <= link_names and f.default_link in f.links
        assert f.canonical_link is None or f.canonical_link in f.links
        assert f.y_support.issubset(f.y_deviance)
        assert f.is_binary == f.mu_domain.issubset(Domain(0.0, 1.0, True, True))
    for lo in losses.SPECS:
        if lo.family is None:
            assert lo.code >= codes.LOSS_SQUARED_ERROR and lo.parameter is None
        else:
            assert lo.code == lo.family.code and lo.y_domain is lo.family.y_deviance
            assert lo.parameter is lo.family.parameter
            assert losses.get(lo.name).family.entry is lo.family
    # the links whose h is a distribution function, and those used on a half-line of eta
    assert [lk.name for lk in links.SPECS if lk.cdf] == [
        "logit",
        "probit",
        "cloglog",
        "loglog",
        "cauchit",
    ]
    assert [lk.name for lk in links.SPECS if lk.eta_domain != Domain()] == [
        "inverse",
        "inverse_squared",
        "sqrt",
        "power",
    ]
    # a named power link stands for its exponent
    for lk in links.SPECS:
        if lk.exponent is not None:
            assert links.get("power", power=lk.exponent) is links.get(lk.name)
            assert links.get(lk.name).power_exponent == lk.exponent


# ---- one source for defaults and parameter domains -------------------------------------------


@pytest.mark.parametrize("parameter", families.PARAMETERS, ids=lambda p: p.name)
def test_every_module_uses_the_specs_default(parameter):
    owner = next(f for f in families.SPECS if f.parameter is parameter)
    assert getattr(families, f"DEFAULT_{parameter.name.upper()}") == parameter.default
    assert families.get(owner.name).param == parameter.default
    assert losses.get(owner.name).param == parameter.default
    assert losses.for_family(owner.name).param == parameter.default
    assert f"default {parameter.default:g}" in families.descriptions()[owner.name]
    for f in families.SPECS:  # a scenario holds the default whatever its family
        scenario = Scenario(family=f.name)
        assert getattr(scenario, parameter.name) == parameter.default
        assert scenario.to_dict()[parameter.name] == parameter.default
        assert scenario.get_family().param == (
            parameter.default if f is owner else families.get(f.name).param
        )
    other = next(x for x in (0.5, 1.25, 3.0) if x in parameter.domain)
    assert getattr(Scenario(family=f"{owner.name}({other})"), parameter.name) == other
    # grids over the parameter of another family collapse to the default
    assert getattr(Scenario(family="poisson", **{parameter.name: other}), parameter.name) == (
        parameter.default
    )
    assert Scenario().dispersion == families.DISPERSION.default
    assert Scenario(family="poisson", dispersion=3.0).dispersion == families.DISPERSION.default


@pytest.mark.parametrize("parameter", families.PARAMETERS, ids=lambda p: p.name)
def test_every_module_refuses_what_the_domain_refuses(parameter):
    owner = next(f for f in families.SPECS if f.parameter is parameter)
    for x in _boundary_values(parameter.domain):
        ok = bool(parameter.domain.contains(x))
        assert (parameter.value(x) is not None) is ok
        given = {parameter.name: x}
        for make in (families.get, losses.get, lambda name, **kw: Scenario(family=name, **kw)):
            if ok:
                make(owner.name, **given)
                continue
            with pytest.raises(ValidationError) as err:
                make(owner.name, **given)
            text = str(err.value)
            assert parameter.name in text
            assert parameter.accepted in text or parameter.domain.accepted(parameter.name) in text


def test_a_changed_default_reaches_the_scenario(monkeypatch):
    """data.py holds no copy: a default changed in the spec is the scenario's default."""
    changed = dataclasses.replace(families.POWER, default=1.7)
    tweedie = dataclasses.replace(families.entry("tweedie"), parameter=changed)
    monkeypatch.setattr(families, "PARAMETERS", (families.ALPHA, changed))
    monkeypatch.setitem(families._SPEC, "tweedie", tweedie)
    assert Scenario(family="tweedie").power == 1.7
    assert Scenario(family="poisson").power == 1.7
    assert Scenario(family="tweedie").get_family().param == 1.7


# ---- one parser for name(param) --------------------------------------------------------------

SPELLINGS = [
    ("tweedie(1.3)", ("tweedie", "1.3")),
    ("Tweedie( 1.3 )", ("Tweedie", "1.3")),
    ("  tweedie ( 1.3 )  ", ("tweedie", "1.3")),
    ("TWEEDIE(13e-1)", ("TWEEDIE", "13e-1")),
    ("negative-binomial(0.5)", ("negative-binomial", "0.5")),
    ("negative_binomial(.5)", ("negative_binomial", ".5")),
    ("NB( 0.5 )", ("NB", "0.5")),
    ("nb2(5e-1)", ("nb2", "5e-1")),
    ("inverse gaussian(2)", ("inverse gaussian", "2")),
    ("power(-2)", ("power", "-2")),
    ("power()", ("power", "")),
    ("power( x )", ("power", "x")),
    ("poisson", ("poisson", None)),
    ("3(1)", ("3(1)", None)),
    ("(1.3)", ("(1.3)", None)),
]


@pytest.mark.parametrize(("text", "parts"), SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_parse_call(text, parts):
    assert parse_call(text) == parts


@pytest.mark.parametrize(
    "text", ["tweedie(1.3)", "Tweedie( 1.3 )", "  tweedie ( 1.3 )  ", "TWEEDIE(13e-1)"]
)
def test_every_spelling_means_the_same_everywhere(text):
    assert families.get(text) == families.get("tweedie", power=1.3)
    assert losses.get(text) == losses.get("tweedie", power=1.3)
    scenario = Scenario(family=text)
    assert (scenario.family, scenario.power) == ("tweedie", 1.3)


@pytest.mark.parametrize("text", ["NB( 0.5 )", "negative-binomial(0.5)", "nb2(5e-1)", "negbin(.5)"])
def test_every_alias_spelling_means_the_same_everywhere(text):
    assert families.get(text) == families.get("negative_binomial", alpha=0.5)
    if parse_call(text)[0] in losses.REGISTRY:  # "negbin" is an alias of the family only
        assert losses.get(text) == losses.get("negative_binomial", alpha=0.5)
    scenario = Scenario(family=text)
    assert (scenario.family, scenario.alpha) == ("negative_binomial", 0.5)


@pytest.mark.parametrize("text", ["power(0.3)", "Power( 0.3 )", " POWER (3e-1) "])
def test_power_link_spellings(text):
    assert links.get(text) == links.get("power", power=0.3)
    assert links.get(text).spec == "power(0.3)"
    assert links.get(links.get(text).spec) == links.get(text)
    assert Scenario(family="gamma", link=text).link == "power(0.3)"


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: families.get("poisson(2)"), "takes no parameter"),
        (lambda: losses.get("hinge(2)"), "takes no parameter"),
        (lambda: links.get("log(2)"), "takes no parameter"),
        (lambda: links.get("power()"), "must be a finite real number"),
        (lambda: families.get("tweedie()"), "must be a number p with 1 < p < 2"),
        (lambda: losses.get("tweedie(x)"), "need a number p with 1 < p < 2"),
        (lambda: Scenario(family="tweedie(x)"), "optionally with its parameter"),
        (lambda: Scenario(family="poisson(2)"), "'poisson' without a parameter"),
        (lambda: families.get("tweedie(1.3)", power=1.4), "different power=1.4"),
        (lambda: losses.get("nb(0.5)", alpha=0.6), "different alpha=0.6"),
        (lambda: links.get("power(2)", power=3.0), "different power=3.0"),
    ],
)
def test_call_form_errors(call, fragment):
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        call()


def test_unknown_names_in_the_call_form_are_unknown_names():
    with pytest.raises(UnknownNameError, match="did you mean 'tweedie'"):
        families.get("tweedy(1.5)")
    with pytest.raises(UnknownNameError, match="did you mean 'power'"):
        links.get("powr(2)")


def test_no_other_module_reads_the_call_form():
    """The one parser is ``_registry.parse_call``: no other module of the package compiles a
    pattern for ``name(argument)``.  Column entries (``"uniform(-2, 2) * 5"``: several
    arguments and a repeat count) have a grammar of their own."""
    root = Path(__file__).resolve().parents[1] / "simbench"
    own_grammar = {"columns.py"}
    found = []
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in re.findall(r"re\.compile\(\s*r?\"([^\"]*)\"", text):
            if r"\(" in pattern and r"\)" in pattern:
                found.append((path.relative_to(root).as_posix(), pattern))
    readers = {p for p, _ in found if p not in own_grammar}
    assert readers == {"_registry.py"}, found


def test_parameter_value_reads_numbers_only():
    p = Parameter("alpha", "alpha", Domain(0.0), 1.0)
    assert p.value("0.5") == 0.5 and p.value(2) == 2.0
    assert p.value(True) is None and p.value(None) is None and p.value("x") is None
    assert p.value(0.0) is None and p.value(math.inf) is None
    lam = links.POWER
    assert lam.value(-0.0) == 0.0 and math.copysign(1.0, lam.value(-0.0)) == 1.0


@pytest.mark.parametrize("link", [3, 1.5, None, ["log"]])
def test_a_link_that_is_no_name_is_bad_input(link):
    with pytest.raises(ValidationError, match=rf"'link'.*{type(link).__name__}"):
        Scenario(family="poisson", link=link)
    assert Scenario(family="gamma", link=links.get("power(0.3)")).link == "power(0.3)"
