"""Arithmetic expressions in the covariates, read from sweep files as data.

The scenario key ``predictor`` may hold an expression such as
``"x1*x2 + sin(2*x3) + x4**2"``: the true predictor as a function of the covariates
``x1 .. xp``.  Sweep files are data, so the text is never executed, compiled or passed to
``eval``.  It is parsed by Python's own parser (:func:`ast.parse` in ``"eval"`` mode, which
only builds a syntax tree) and the tree is copied, node by node, into the small tree of this
module through a whitelist; anything the whitelist does not name is refused with a
:class:`~simbench.errors.ValidationError` that quotes the offending piece.  The copied tree
is evaluated with NumPy ufuncs in float64.

The language
------------
==================  ===========================================================================
numbers             decimal literals, e.g. ``2``, ``0.5``, ``1e-3`` (magnitude at most
                    :data:`MAX_CONSTANT`); no booleans, strings or complex numbers
variables           ``x1`` .. ``xp`` (``x`` followed by the column number, no leading zero)
operators           ``+ - * / **``, unary ``-`` (and ``+``), parentheses
functions           :data:`FUNCTIONS`: ``abs sign sin cos tanh exp log sqrt`` of one argument,
                    ``min max`` of two or more (element-wise)
==================  ===========================================================================

Evaluation follows IEEE arithmetic (``log`` of a negative number is NaN, ``1/0`` is
infinite); whoever uses the values decides whether non-finite ones are acceptable
(:mod:`simbench.truth` refuses them).

Bounds
------
Hostile text can neither hang nor exhaust the stack: the text is at most
:data:`MAX_LENGTH` characters of printable ASCII (so look-alike letters such as a Cyrillic
``х`` or a full-width ``１``, which Python's parser would silently normalise, are refused
before parsing), parentheses nest at most :data:`MAX_DEPTH` deep, the tree has at most
:data:`MAX_NODES` nodes and :data:`MAX_DEPTH` levels, constants are at most
:data:`MAX_CONSTANT` and constant exponents at most :data:`MAX_EXPONENT` in magnitude.  The
parser's own failures on pathological input (``SyntaxError``, ``RecursionError``,
``MemoryError``) become validation errors.  No arithmetic is done on Python integers, so no
constant can grow without bound.

Canonical text
--------------
``str(expression)`` prints the tree with single spaces around binary operators and only the
parentheses the tree needs (every parenthesis that changes the grouping is kept, so the
printed text parses back to the same tree and evaluates to the same bits): ``"x1*x2 +
sin(2*x3)"`` prints as ``"x1 * x2 + sin(2 * x3)"``.  Scenarios store this text, so two
spellings of one expression are one scenario.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ._registry import closest
from .errors import ValidationError

__all__ = [
    "FUNCTIONS",
    "MAX_CONSTANT",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_NODES",
    "Binary",
    "Call",
    "Expression",
    "Function",
    "Negate",
    "Node",
    "Number",
    "Variable",
    "parse_expression",
]

MAX_LENGTH = 2000  # characters of expression text
MAX_DEPTH = 100  # levels of the tree (and of parentheses)
MAX_NODES = 1000  # nodes of the tree
MAX_CONSTANT = 1e12  # largest magnitude of a numeric literal
MAX_EXPONENT = 64.0  # largest magnitude of a literal exponent (x ** 2, x ** -0.5)


@dataclass(frozen=True)
class Function:
    """A function the language may call: its name, NumPy ufunc and number of arguments
    (``max_args`` None: any number from ``min_args`` up, reduced left to right)."""

    name: str
    ufunc: Callable
    min_args: int
    max_args: int | None

    def arity_text(self) -> str:
        if self.max_args is None:
            return f"{self.min_args} or more arguments"
        return "one argument" if self.min_args == 1 else f"{self.min_args} arguments"


#: The functions an expression may call: the one list the parser, the evaluator, the
#: error messages and the documentation read.
FUNCTIONS: Mapping[str, Function] = MappingProxyType(
    {
        f.name: f
        for f in (
            Function("abs", np.absolute, 1, 1),
            Function("sign", np.sign, 1, 1),
            Function("sin", np.sin, 1, 1),
            Function("cos", np.cos, 1, 1),
            Function("tanh", np.tanh, 1, 1),
            Function("exp", np.exp, 1, 1),
            Function("log", np.log, 1, 1),
            Function("sqrt", np.sqrt, 1, 1),
            Function("min", np.minimum, 2, None),
            Function("max", np.maximum, 2, None),
        )
    }
)

# binary operators: symbol, ufunc, precedence (higher binds tighter)
_BINARY: Mapping[str, tuple[Callable, int]] = MappingProxyType(
    {
        "+": (np.add, 1),
        "-": (np.subtract, 1),
        "*": (np.multiply, 2),
        "/": (np.true_divide, 2),
        "**": (np.power, 4),
    }
)
_AST_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_PREC_NEG, _PREC_POW, _PREC_ATOM = 3, 4, 5

_VARIABLE_RE = re.compile(r"^x([1-9][0-9]*)$")
_NO_ROWS = np.empty((0, 0))  # evaluates a part without variables to a scalar

# printable ASCII and ordinary white space: everything else is refused before parsing
_ALLOWED_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) | frozenset("\t\n\r")


def _number_text(value: float) -> str:
    """Shortest round-tripping text of a float, without a trailing ``.0``."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


# --------------------------------------------------------------------------- the tree


class Node:
    """A node of an expression tree (immutable; equal when structurally equal)."""

    __slots__ = ()
    precedence = _PREC_ATOM

    def evaluate(self, X: np.ndarray):
        """The node's values on the rows of ``X``: an array, or a float64 scalar for a
        constant sub-expression."""
        raise NotImplementedError

    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(frozen=True)
class Number(Node):
    """A numeric literal (finite, ``|value| <= MAX_CONSTANT``)."""

    value: float

    def evaluate(self, X):
        return np.float64(self.value)

    def __str__(self) -> str:
        return _number_text(self.value)


@dataclass(frozen=True)
class Variable(Node):
    """The covariate ``x<index>`` (1-based: column ``index - 1`` of ``X``)."""

    index: int

    def evaluate(self, X):
        return X[:, self.index - 1]

    def __str__(self) -> str:
        return f"x{self.index}"


@dataclass(frozen=True)
class Negate(Node):
    """Unary minus."""

    operand: Node
    precedence = _PREC_NEG

    def evaluate(self, X):
        return np.negative(self.operand.evaluate(X))

    def children(self):
        return (self.operand,)

    def __str__(self) -> str:
        inner = str(self.operand)
        if self.operand.precedence < _PREC_NEG:
            inner = f"({inner})"
        return f"-{inner}"


@dataclass(frozen=True)
class Binary(Node):
    """``left <op> right`` for ``op`` in ``+ - * / **``."""

    op: str
    left: Node
    right: Node

    @property
    def precedence(self) -> int:  # type: ignore[override]
        return _BINARY[self.op][1]

    def evaluate(self, X):
        return _BINARY[self.op][0](self.left.evaluate(X), self.right.evaluate(X))

    def children(self):
        return (self.left, self.right)

    def __str__(self) -> str:
        prec = self.precedence
        left, right = str(self.left), str(self.right)
        if self.op == "**":
            # right-associative, and binds tighter than a unary minus on its left
            if self.left.precedence <= prec:
                left = f"({left})"
            if self.right.precedence < prec:
                right = f"({right})"
        else:
            # left-associative: a right operand of the same precedence keeps its
            # parentheses, so the printed text groups as the tree does
            if self.left.precedence < prec:
                left = f"({left})"
            if self.right.precedence <= prec:
                right = f"({right})"
        return f"{left} {self.op} {right}"


@dataclass(frozen=True)
class Call(Node):
    """A call of one of :data:`FUNCTIONS`."""

    name: str
    args: tuple[Node, ...]

    def evaluate(self, X):
        ufunc = FUNCTIONS[self.name].ufunc
        values = [a.evaluate(X) for a in self.args]
        out = ufunc(*values[:2]) if len(values) > 1 else ufunc(values[0])
        for v in values[2:]:
            out = ufunc(out, v)
        return out

    def children(self):
        return self.args

    def __str__(self) -> str:
        return f"{self.name}({', '.join(str(a) for a in self.args)})"


# --------------------------------------------------------------------------- expression


@dataclass(frozen=True, eq=False)
class Expression:
    """A parsed expression: the tree, its canonical text and the variables it uses.

    Equal expressions (same canonical text) compare and hash equal.

    Attributes
    ----------
    root : Node
    text : str
        Canonical text (``str(expression)``); parses back to the same tree.
    variables : tuple of int
        The covariate numbers used, sorted (``(1, 3)`` for ``x1 * x3``).
    """

    root: Node
    text: str
    variables: tuple[int, ...]

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    @property
    def max_variable(self) -> int:
        """The largest covariate number used (0 when none is)."""
        return max(self.variables, default=0)

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        """Values on the rows of ``X`` (shape ``(n, p)``, ``p >= max_variable``).

        Returns a new float64 array of shape ``(n,)``.  Floating-point exceptions are
        silent: a value outside a function's domain is NaN, an overflow infinite.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] < self.max_variable:
            raise ValidationError(
                f"expression {self.text!r} uses x{self.max_variable}, but X has shape "
                f"{X.shape}; it needs at least {self.max_variable} columns"
            )
        with np.errstate(all="ignore"):
            values = self.root.evaluate(X)
        return np.array(np.broadcast_to(values, (X.shape[0],)), dtype=np.float64)


# --------------------------------------------------------------------------- parsing


def _accepted(p: int | None) -> str:
    variables = "x1 .. xp" if p is None else ("x1" if p == 1 else f"x1 .. x{p}")
    return (
        f"accepted: numbers, the variables {variables}, + - * / ** and unary minus, "
        f"parentheses, and the functions {', '.join(FUNCTIONS)}"
    )


class _Refusal(Exception):
    """Internal: a piece of the text that is not accepted (becomes a ValidationError)."""


def _char_name(ch: str) -> str:
    return unicodedata.name(ch, f"U+{ord(ch):04X}")


def _check_characters(text: str) -> None:
    for i, ch in enumerate(text):
        if ch not in _ALLOWED_CHARS:
            if ord(ch) > 127:
                what = f"the non-ASCII character {ch!r} ({_char_name(ch)}, U+{ord(ch):04X})"
            else:
                what = f"the control character {ch!r}"
            raise _Refusal(
                f"{what} at position {i + 1} is not allowed (expressions are ASCII text: "
                f"look-alike letters and digits from other scripts are not x or 0-9)"
            )


def _check_nesting(text: str) -> None:
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refusal(f"parentheses nest more than {MAX_DEPTH} deep")
        elif ch == ")":
            depth -= 1


class _Converter:
    """Copies a Python syntax tree into this module's tree, through the whitelist."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.nodes = 0
        self.variables: set[int] = set()
        self.constants: dict[int, np.float64] = {}  # id(node) -> value of a constant part

    def constant(self, node: Node, source: ast.AST) -> Node:
        """Record the value of a part without variables; refuse one that is not finite."""
        kids = node.children()
        if isinstance(node, Variable) or not all(id(k) in self.constants for k in kids):
            return node
        if isinstance(node, Number):
            value = np.float64(node.value)
        else:
            with np.errstate(all="ignore"):
                value = np.float64(node.evaluate(_NO_ROWS))
        if not np.isfinite(value):
            raise _Refusal(
                f"the constant part {self.piece(source)} is not finite ({float(value)!r})"
            )
        self.constants[id(node)] = value
        return node

    def piece(self, node: ast.AST) -> str:
        segment = ast.get_source_segment(self.text, node) or ast.dump(node)[:60]
        segment = " ".join(segment.split())
        return repr(segment if len(segment) <= 60 else segment[:57] + "...")

    def refuse(self, what: str, node: ast.AST) -> _Refusal:
        return _Refusal(f"{what} {self.piece(node)} is not allowed")

    def convert(self, node: ast.AST, depth: int) -> Node:
        return self.constant(self.convert_node(node, depth), node)

    def convert_node(self, node: ast.AST, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise _Refusal(f"the expression nests more than {MAX_DEPTH} levels deep")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Refusal(f"the expression has more than {MAX_NODES} parts")
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return Negate(self.convert(node.operand, depth + 1))
            if isinstance(node.op, ast.UAdd):
                return self.convert(node.operand, depth + 1)
            raise self.refuse(f"the operator {_op_text(node.op)!r} in", node)
        if isinstance(node, ast.BinOp):
            op = _AST_BINARY.get(type(node.op))
            if op is None:
                raise self.refuse(f"the operator {_op_text(node.op)!r} in", node)
            left = self.convert(node.left, depth + 1)
            right = self.convert(node.right, depth + 1)
            if op == "**":
                self.check_exponent(right, node)
            return Binary(op, left, right)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise self.refuse(_construct_name(node), node)

    def number(self, node: ast.Constant) -> Number:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = {str: "the string", bytes: "the bytes"}.get(type(value), "the constant")
            raise self.refuse(kind, node)
        if not (abs(value) <= MAX_CONSTANT):  # also catches inf/nan from 1e999
            raise _Refusal(
                f"the number {self.piece(node)} is too large (at most {MAX_CONSTANT:g} in "
                f"magnitude)"
            )
        return Number(float(value))

    def name(self, node: ast.Name) -> Variable:
        match = _VARIABLE_RE.match(node.id)
        if match is not None:
            index = int(match.group(1))
            self.variables.add(index)
            return Variable(index)
        if node.id in FUNCTIONS:
            raise _Refusal(f"the function {node.id!r} must be called, as in {node.id}(x1)")
        text = f"the name {node.id!r} is not allowed"
        guess = closest(node.id, list(FUNCTIONS))
        if re.match(r"^[xX]_?0*[0-9]+$", node.id):
            text = f"the name {node.id!r} is not a variable (variables are x1, x2, ...)"
        elif guess is not None:
            text += f"; did you mean {guess!r}?"
        raise _Refusal(text)

    def call(self, node: ast.Call, depth: int) -> Call:
        func = node.func
        if not isinstance(func, ast.Name) or func.id not in FUNCTIONS:
            what = "calling"
            if isinstance(func, ast.Name):
                guess = closest(func.id, list(FUNCTIONS))
                if guess is not None and not _VARIABLE_RE.match(func.id):
                    raise _Refusal(
                        f"calling {self.piece(node)} is not allowed; did you mean {guess!r}?"
                    )
            raise self.refuse(what, node)
        if node.keywords:
            raise self.refuse("a keyword argument in", node)
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.refuse("a starred argument in", node)
        fn = FUNCTIONS[func.id]
        count = len(node.args)
        if count < fn.min_args or (fn.max_args is not None and count > fn.max_args):
            raise _Refusal(f"{func.id} takes {fn.arity_text()}, got {count} in {self.piece(node)}")
        args = tuple(self.convert(a, depth + 1) for a in node.args)
        return Call(func.id, args)

    def check_exponent(self, right: Node, node: ast.AST) -> None:
        value = self.constants.get(id(right))
        if value is not None and abs(value) > MAX_EXPONENT:
            raise _Refusal(
                f"the exponent {_number_text(value)} in {self.piece(node)} is too large "
                f"(at most {MAX_EXPONENT:g} in magnitude)"
            )


def _op_text(op: ast.AST) -> str:
    return {
        ast.Mod: "%",
        ast.FloorDiv: "//",
        ast.MatMult: "@",
        ast.LShift: "<<",
        ast.RShift: ">>",
        ast.BitAnd: "&",
        ast.BitOr: "|",
        ast.BitXor: "^",
        ast.Invert: "~",
        ast.Not: "not",
    }.get(type(op), type(op).__name__)


_CONSTRUCTS = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripting",
    ast.Compare: "the comparison",
    ast.BoolOp: "the boolean operation",
    ast.IfExp: "the conditional",
    ast.Lambda: "the lambda",
    ast.ListComp: "the comprehension",
    ast.SetComp: "the comprehension",
    ast.DictComp: "the comprehension",
    ast.GeneratorExp: "the generator",
    ast.Starred: "the starred expression",
    ast.JoinedStr: "the f-string",
    ast.NamedExpr: "the assignment expression",
    ast.List: "the list",
    ast.Tuple: "the tuple",
    ast.Set: "the set",
    ast.Dict: "the dictionary",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "the slice",
}


def _construct_name(node: ast.AST) -> str:
    return _CONSTRUCTS.get(type(node), f"the construct {type(node).__name__}")


def parse_expression(text: object, p: int | None = None, *, key: str = "predictor") -> Expression:
    """Parse the text of an expression in ``x1 .. xp`` (see the module notes).

    Parameters
    ----------
    text : str
        The expression, e.g. ``"x1*x2 + sin(2*x3)"``.
    p : int, optional
        Number of covariates: a variable beyond ``x<p>`` is refused, naming it.
    key : str
        The scenario key named in error messages.

    Returns
    -------
    Expression

    Raises
    ------
    ValidationError
        For anything outside the language, naming the key, the offending piece and what
        is accepted.  Nothing in the text is ever executed.
    """
    prefix = f"scenario key {key!r}"
    if not isinstance(text, str):
        raise ValidationError(
            f'{prefix} must be "linear" or an expression in x1 .. xp (a string); got {text!r}'
        )
    try:
        if len(text) > MAX_LENGTH:
            raise _Refusal(f"the expression is {len(text)} characters long (at most {MAX_LENGTH})")
        _check_characters(text)
        if not text.strip():
            raise _Refusal("the expression is empty")
        _check_nesting(text)
        if "#" in text:
            raise _Refusal(f"a comment ('#' at position {text.index('#') + 1}) is not allowed")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            where = f" at position {exc.offset}" if exc.offset else ""
            raise _Refusal(f"not a valid expression ({exc.msg}{where})") from None
        except (RecursionError, MemoryError, ValueError, OverflowError):
            raise _Refusal("the expression is too deeply nested or too complex to read") from None
        converter = _Converter(text.strip())
        root = converter.convert(tree.body, 1)
    except _Refusal as exc:
        raise ValidationError(f"{prefix}: {exc}; {_accepted(p)}; got {_shorten(text)}") from None
    variables = tuple(sorted(converter.variables))
    if p is not None and variables and variables[-1] > p:
        beyond = ", ".join(f"x{j}" for j in variables if j > p)
        raise ValidationError(
            f"{prefix}: the variable{'s' if ',' in beyond else ''} {beyond} "
            f"{'are' if ',' in beyond else 'is'} beyond p = {p} (the design has "
            f"{'x1' if p == 1 else f'x1 .. x{p}'}); got {_shorten(text)}"
        )
    return Expression(root=root, text=str(root), variables=variables)


def _shorten(text: str) -> str:
    return repr(text if len(text) <= 200 else text[:197] + "...")
