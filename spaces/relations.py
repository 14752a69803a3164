"""Relations between parameters: ``k <= n_experts``, ``d_model % n_heads == 0``.

A space file states them two ways::

    params:
      n_experts: {type: int, low: 2, high: 16}
      k: {type: int, low: 1, high: n_experts}     # a bound that names another parameter
    relations: ["d_model % n_heads == 0"]          # any comparison over parameters

A bound that names a parameter becomes the relation ``k <= n_experts`` (``low: x``: ``k >= x``).
Every searcher honours them (:class:`~gatesearch.spaces.space.Space`): a configuration that breaks
one is never proposed. Where a relation bounds one parameter by the others (``k <= n_experts``,
``lr >= 2 * min_lr``), Optuna's define-by-run narrows that parameter's range once the others are
chosen; any other relation is checked on the whole configuration, and a configuration that breaks
it is drawn again (Nevergrad is told it was infeasible, Optuna's samplers see it pruned).

A relation is a Python expression over parameter names, numbers and strings with ``+ - * / // % **``,
comparisons, ``and``/``or``/``not`` and ``min``/``max``/``abs``; it is parsed here into an AST that
nothing else can run (no attribute, subscript, call of anything else, or name that is not a
parameter). A relation naming a parameter that is inactive in a configuration (its ``when:`` does not
hold) is not checked there.
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass, field
from typing import Any, Mapping

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_CMP = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Eq: operator.eq,
        ast.NotEq: operator.ne}
_FUNCS = {"min": min, "max": max, "abs": abs}
#: the bound a comparison puts on its left side (x <= e: x's high), flipped when x is on the right
_SIDE = {ast.Lt: ("high", True), ast.LtE: ("high", False), ast.Gt: ("low", True), ast.GtE: ("low", False)}
_FLIP = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}


class RelationError(ValueError):
    """A relation that cannot be read (the message says what and how to write it)."""


def _check(node: ast.AST, known: set[str]) -> set[str]:
    """The parameter names ``node`` reads; RelationError on anything outside the small language."""
    if isinstance(node, ast.Expression):
        return _check(node.body, known)
    if isinstance(node, ast.Name):
        if node.id not in known:
            raise RelationError(f"{node.id!r} is not a parameter of this space")
        return {node.id}
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool)):
            raise RelationError(f"constant {node.value!r} is not a number, text or bool")
        return set()
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        return _check(node.left, known) | _check(node.right, known)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        return _check(node.operand, known)
    if isinstance(node, ast.BoolOp):
        return set().union(*(_check(v, known) for v in node.values))
    if isinstance(node, ast.Compare) and all(type(o) in _CMP for o in node.ops):
        return set().union(_check(node.left, known), *(_check(c, known) for c in node.comparators))
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
            and not node.keywords and node.args):
        return set().union(*(_check(a, known) for a in node.args))
    raise RelationError(f"{ast.unparse(node)!r} is not allowed: use parameter names, numbers, + - * / // % **, "
                        f"comparisons, and/or/not, min/max/abs")


def _eval(node: ast.AST, values: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, values)
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values), _eval(node.right, values)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > 64:
            raise ValueError("exponent over 64")  # 10 ** 10 ** 10 would never finish
        return _BIN[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, values)
        return -v if isinstance(node.op, ast.USub) else (+v if isinstance(node.op, ast.UAdd) else not v)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, values) for v in node.values)
        return any(_eval(v, values) for v in node.values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, values)
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        return _FUNCS[node.func.id](*(_eval(a, values) for a in node.args))
    raise RelationError(f"cannot evaluate {ast.unparse(node)!r}")  # pragma: no cover - _check rejects it first


@dataclass(frozen=True)
class Relation:
    """One relation (see the module). ``text``: as written; ``names``: the parameters it reads."""

    text: str
    names: tuple[str, ...] = ()
    _tree: ast.Expression | None = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, text: str, known: set[str] | tuple[str, ...]) -> "Relation":
        """Parse ``text`` over the parameter names ``known``; RelationError says what is wrong."""
        if not isinstance(text, str) or not text.strip():
            raise RelationError(f"expected a comparison such as 'k <= n_experts', got {text!r}")
        if len(text) > 500:
            raise RelationError("longer than 500 characters")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as e:
            raise RelationError(f"not an expression ({e.msg}): write e.g. 'k <= n_experts'") from None
        names = _check(tree, set(known))
        if not names:
            raise RelationError("names no parameter")
        if not isinstance(tree.body, (ast.Compare, ast.BoolOp)) and not (
                isinstance(tree.body, ast.UnaryOp) and isinstance(tree.body.op, ast.Not)):
            raise RelationError("is not a comparison: write e.g. 'k <= n_experts' or 'd_model % n_heads == 0'")
        return cls(text.strip(), tuple(sorted(names)), tree)

    def __reduce__(self):  # pickles as its text and names (the AST is rebuilt)
        return (_rebuild, (self.text, self.names))

    def holds(self, values: Mapping[str, Any]) -> bool:
        """Whether the relation holds for ``values`` (True when one of its names is not there:
        an inactive parameter)."""
        if any(n not in values for n in self.names):
            return True
        try:
            return bool(_eval(self._tree, values))
        except (ArithmeticError, TypeError, ValueError):  # 1/0, a number compared with text
            return False

    def bounds_on(self, name: str, values: Mapping[str, Any]) -> tuple[float | None, float | None, bool, bool]:
        """The range the relation allows ``name`` given the other ``values``: (low, high,
        low strict, high strict), None where unbounded; (None, None, ...) when the relation is not
        a single comparison with ``name`` alone on one side, or when another name is missing."""
        body = self._tree.body
        free = (None, None, False, False)
        if not isinstance(body, ast.Compare) or len(body.ops) != 1 or type(body.ops[0]) not in _SIDE:
            return free
        op, left, right = type(body.ops[0]), body.left, body.comparators[0]
        if isinstance(right, ast.Name) and right.id == name and not (isinstance(left, ast.Name) and left.id == name):
            op, left, right = _FLIP[op], right, left
        if not (isinstance(left, ast.Name) and left.id == name) or name in _check(right, set(self.names)):
            return free
        if any(n not in values for n in self.names if n != name):
            return free
        try:
            bound = _eval(right, values)
        except (ArithmeticError, TypeError, ValueError):
            return free
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
            return free
        side, strict = _SIDE[op]
        return (bound, None, strict, False) if side == "low" else (None, bound, False, strict)

    @property
    def bounded(self) -> str | None:
        """The parameter this relation bounds by the others: a single comparison with a name alone
        on one side (the left one when both sides are a name: ``k <= n_experts`` bounds ``k``)."""
        body = self._tree.body
        if not isinstance(body, ast.Compare) or len(body.ops) != 1 or type(body.ops[0]) not in _SIDE:
            return None
        for mine, other in ((body.left, body.comparators[0]), (body.comparators[0], body.left)):
            if isinstance(mine, ast.Name) and mine.id not in _check(other, set(self.names)):
                return mine.id
        return None

    def is_at_most(self, a: str, b: str) -> bool:
        """Whether the relation says ``a <= b`` (or ``a < b``) and nothing else."""
        body = self._tree.body
        if not isinstance(body, ast.Compare) or len(body.ops) != 1:
            return False
        left, right, op = body.left, body.comparators[0], type(body.ops[0])
        names = (getattr(left, "id", None), getattr(right, "id", None))
        return (names == (a, b) and op in (ast.Lt, ast.LtE)) or (names == (b, a) and op in (ast.Gt, ast.GtE))


def _rebuild(text: str, names: tuple[str, ...]) -> Relation:
    return Relation.parse(text, names)


def narrowed(low: float, high: float, relations: tuple[Relation, ...], name: str, values: Mapping[str, Any],
             integer: bool) -> tuple[float, float]:
    """``[low, high]`` narrowed by every relation that bounds ``name`` given ``values`` (an
    integer's strict bound moves by 1; a float's to the next representable number)."""
    for r in relations:
        lo, hi, lo_strict, hi_strict = r.bounds_on(name, values)
        if lo is not None:
            lo = (math.floor(lo) + 1 if lo_strict or lo != math.floor(lo) else int(lo)) if integer else (
                math.nextafter(lo, math.inf) if lo_strict else lo)
            low = max(low, lo)
        if hi is not None:
            hi = (math.ceil(hi) - 1 if hi_strict or hi != math.ceil(hi) else int(hi)) if integer else (
                math.nextafter(hi, -math.inf) if hi_strict else hi)
            high = min(high, hi)
    return low, high
