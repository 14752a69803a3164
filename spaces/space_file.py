"""Search-space YAML files: parsing with line numbers and errors that say how to fix.

Format::

    name: digits-moe            # optional, defaults to the file stem
    objective: moe_digits       # a registered objective (or package.module:attr)
    metrics: {accuracy: max}    # only for a plain training function: what it optimises
    plugins: [mygates]          # optional: your modules to import first (e.g. a gate in one file)
    search: {searcher: nsga2, num_samples: 16, max_concurrent: 2, seed: 0}  # checked by search/
    constraints: {macs_per_sample: {max: 20000}}  # optional: bounds that make a trial infeasible
    fixed: {epochs: 8}          # constants passed to every trial
    params:
      gate: {type: categorical, choices: [topk, hash, dselect_k, comet]}
      k: {type: int, low: 1, high: 4}
      gamma: {type: float, low: 0.01, high: 10, log: true, when: {gate: [dselect_k, comet]}}

Only ``yaml.safe_load`` semantics are used (the SafeLoader), and the file is parsed once. A space
file is input from whoever wrote it, so what could make the checks themselves costly is refused at
its line: anchors and aliases (a few hundred bytes of aliases expand exponentially: "billion laughs"),
nesting deeper than :data:`MAX_DEPTH`, a file over :data:`MAX_BYTES`. The ``name:`` becomes a folder
name, so it is a plain name (:data:`NAME`); parameter names become MLflow param keys, so they follow
MLflow's key rule (:func:`mlflow_key_problem`).

A space file is code: ``objective: module:attr`` and ``plugins:`` are imported by ``gatesearch``
(validate, run, resume). Validate and run only space files you would run as a program.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from gatesearch._hints import did_you_mean
from gatesearch.spaces.params import Categorical, Condition, Fixed, Float, Int, Param
from gatesearch.spaces.relations import Relation, RelationError
from gatesearch.spaces.space import Space

TOP_KEYS = ("name", "objective", "metrics", "plugins", "search", "resources", "constraints", "fixed", "params",
            "relations")
METRIC_MODES = ("max", "min")
PARAM_KEYS = {
    "float": ("type", "low", "high", "log", "when"),
    "int": ("type", "low", "high", "log", "when"),
    "categorical": ("type", "choices", "when"),
    "bool": ("type", "when"),
    "fixed": ("type", "value", "when"),
}


#: the largest space file read (a real one is a few kB)
MAX_BYTES = 1_000_000
#: the deepest nesting of mappings and lists (a real file nests 4 deep)
MAX_DEPTH = 32
#: a search name: it names the search's folder and MLflow experiment
NAME = re.compile(r"[^\W_][\w.-]{0,99}")  # letters (any script), digits, '_', '.', '-'; no path, no dot first
#: MLflow's rule for param and metric keys: alphanumerics, underscores, periods, dashes, spaces,
#: slashes and colons (mlflow.utils.validation), and not a path that leaves its folder
_MLFLOW_KEY = re.compile(r"[\w.\- :/]+")


def mlflow_key_problem(name: str) -> str | None:
    """Why MLflow would refuse ``name`` as a param or metric key, or None."""
    if not name or len(name) > 250:
        return "must be 1 to 250 characters"
    if not _MLFLOW_KEY.fullmatch(name):
        bad = sorted({c for c in name if not _MLFLOW_KEY.fullmatch(c)})
        return (f"has characters MLflow does not take in a key ({''.join(bad)!r}); use letters, digits, "
                "'_', '.', '-', ' ', '/' and ':'")
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith("..") or norm.startswith("/"):
        return (f"reads as a path MLflow would resolve to {norm!r} (it refuses a leading '/', '..', '.' parts "
                "and doubled or trailing '/')")
    return None


class SpaceError(ValueError):
    """A bad search-space file: names the file, line, field and the fix."""

    def __init__(self, file: str, line: int | None, field_path: str, message: str, fix: str = ""):
        self.file, self.line, self.field, self.message, self.fix = file, line, field_path, message, fix
        where = f"{file}:{line}" if line else file
        text = f"{where}: {field_path}: {message}" if field_path else f"{where}: {message}"
        super().__init__(text + (f"\n  fix: {fix}" if fix else ""))


class _Refused(Exception):
    def __init__(self, mark, message: str, fix: str):
        super().__init__(message)
        self.mark, self.message, self.fix = mark, message, fix


class _Loader(yaml.SafeLoader):
    """The SafeLoader without anchors and aliases, and with a nesting limit (see the module)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(event.start_mark, f"YAML alias *{event.anchor} is not accepted in a space file",
                           "write the value out where it is used (anchors and aliases are refused: a few of them "
                           "can expand a small file exponentially)")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _Refused(event.start_mark, f"YAML anchor &{anchor} is not accepted in a space file",
                           "remove the anchor and write each value out where it is used (anchors and aliases are "
                           "refused: a few of them can expand a small file exponentially)")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(event.start_mark, f"nested more than {MAX_DEPTH} levels deep",
                               "a space file nests a few levels (params: name: {type: ...}); check the brackets")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _parse_yaml(text: str, file: str) -> tuple[yaml.Node | None, Any]:
    """The composed node tree and the data, from one parse; errors as :class:`SpaceError`."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpaceError(file, None, "", f"the file is larger than {MAX_BYTES:,} bytes",
                         "a space file is a few kB: is this the right file?")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _Refused as e:
        raise SpaceError(file, e.mark.line + 1 if e.mark else None, "", e.message, e.fix) from None
    except RecursionError:
        raise SpaceError(file, None, "", "nested too deeply to read",
                         f"a space file nests a few levels (at most {MAX_DEPTH}); check the brackets") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        raise SpaceError(file, mark.line + 1 if mark else None, "", f"YAML syntax error: {problem}",
                         "check indentation, colons and brackets on that line") from None
    finally:
        loader.dispose()
    return node, data


def _duplicate_key(node: yaml.Node, path: tuple = ()) -> tuple[tuple, int, int] | None:
    """The first key written twice in one mapping: (key path, first line, second line).
    YAML loaders let the later value win silently; a space file must not."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for k, v in node.value:
            key = k.value
            if key in seen:
                return path + (key,), seen[key], k.start_mark.line + 1
            seen[key] = k.start_mark.line + 1
            found = _duplicate_key(v, path + (key,))
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            found = _duplicate_key(v, path + (i,))
            if found:
                return found
    return None


def _index_lines(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every key path (tuple of keys/indices) to its 1-based line."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = path + (k.value,)
            out[key] = k.start_mark.line + 1
            _index_lines(v, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out[path + (i,)] = v.start_mark.line + 1
            _index_lines(v, path + (i,), out)
    return out


def trial_configuration(fixed: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's whole configuration: the space file's ``fixed`` values, then the searched ``params``.
    The one place the two are merged (a name is never both: the space file refuses it)."""
    return {**fixed, **params}


@dataclass(frozen=True)
class SpaceFile:
    """A parsed space file.

    Attributes:
        path: the file (absolute).
        name: search name.
        objective: objective name (validated by ``search``, which knows the registry).
        space: the parameters searched.
        fixed: constants for every trial.
        search: the raw ``search:`` section (validated by ``search``).
        metrics: for a plain training function named by ``objective``: the metrics it
            optimises, name -> ``"max"``/``"min"``, in order (empty for an objective class).
        plugins: dotted names of the user's modules to import, on the driver and on every Ray
            worker, before the space is checked or a trial resolved (e.g. a gate written in one
            file); checked here to be module names, imported by ``search``.
        resources: the raw ``resources:`` (Ray resources per configuration: a table over a
            searched parameter, or ``module:function``), checked by ``search``; None without one.
        constraints: the raw ``constraints:`` (metric -> ``{min, max}``: what makes a trial
            infeasible), checked by ``search`` against the objective's metrics; None without one.
        lines: key path -> line, for errors raised after parsing.
        text: the YAML source (kept so a search can be resumed from its own copy).
    """

    path: str
    name: str
    objective: str
    space: Space
    fixed: Mapping[str, Any]
    search: Mapping[str, Any]
    lines: Mapping[tuple, int] = field(default_factory=dict, repr=False)
    text: str = field(default="", repr=False)
    metrics: Mapping[str, str] = field(default_factory=dict)
    plugins: tuple[str, ...] = ()
    resources: Any = None
    constraints: Any = None

    def error(self, path: tuple, message: str, fix: str = "") -> SpaceError:
        """A :class:`SpaceError` located at key ``path`` (line of its deepest known prefix)."""
        line = None
        for i in range(len(path), -1, -1):
            if path[:i] in self.lines:
                line = self.lines[path[:i]]
                break
        return SpaceError(self.path, line, ".".join(map(str, path)), message, fix)


class _Parser:
    def __init__(self, file: str, lines: dict[tuple, int]):
        self.file, self.lines = file, lines
        self.bounds_from: dict[str, Any] = {}  # parameter -> how a bound naming another one is read

    def err(self, path: tuple, message: str, fix: str = "") -> SpaceError:
        line = next((self.lines[path[:i]] for i in range(len(path), -1, -1) if path[:i] in self.lines), None)
        return SpaceError(self.file, line, ".".join(map(str, path)), message, fix)

    def number(self, path: tuple, v: Any, kind: str) -> Any:
        if isinstance(v, str):  # YAML 1.1 reads 1e-3 (no dot) as a string; accept it
            try:
                v = float(v)
            except ValueError:
                if v.isidentifier() and path[-1] in ("low", "high") and path[-2] in self.bounds_from:
                    return self.bounds_from[path[-2]](path, v, kind)  # another parameter's name
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.err(path, f"expected a number, got {type(v).__name__} {v!r}",
                           "write a plain number, e.g. 0.001 or 1e-3")
        if kind == "int" and not (isinstance(v, int) or float(v).is_integer()):
            raise self.err(path, f"expected an integer, got {v!r}", "use a whole number or type: float")
        return int(v) if kind == "int" else float(v)

    def conditions(self, path: tuple, raw: Any) -> tuple[Condition, ...]:
        if not isinstance(raw, dict) or not raw:
            raise self.err(path, f"expected a mapping parent -> [values], got {raw!r}",
                           "write e.g. when: {gate: [comet, dselect_k]}")
        out = []
        for parent, values in raw.items():
            vals = values if isinstance(values, list) else [values]
            if not vals:
                raise self.err(path + (parent,), "empty list of values", "list the parent values that activate it")
            out.append(Condition(str(parent), tuple(vals)))
        return tuple(out)

    def param(self, name: str, raw: Any) -> Param:
        path = ("params", name)
        if not isinstance(raw, dict):
            return Fixed(raw)  # shorthand: `epochs: 8`
        if "type" not in raw:
            raise self.err(path, "missing field 'type'", f"add type: one of {sorted(PARAM_KEYS)}")
        kind = raw["type"]
        if kind not in PARAM_KEYS:
            raise self.err(path + ("type",), f"unknown type {kind!r}{did_you_mean(kind, PARAM_KEYS)}",
                           f"use one of {sorted(PARAM_KEYS)}")
        for key in raw:
            if key not in PARAM_KEYS[kind]:
                raise self.err(path + (key,), f"unknown key {key!r} for a {kind} parameter{did_you_mean(key, PARAM_KEYS[kind])}",
                               f"allowed keys: {list(PARAM_KEYS[kind])}")
        when = self.conditions(path + ("when",), raw["when"]) if "when" in raw else ()
        try:
            if kind in ("float", "int"):
                for req in ("low", "high"):
                    if req not in raw:
                        raise self.err(path, f"missing field {req!r}", f"add {req}: <number> (bounds are inclusive)")
                low = self.number(path + ("low",), raw["low"], kind)
                high = self.number(path + ("high",), raw["high"], kind)
                log = raw.get("log", False)
                if not isinstance(log, bool):
                    raise self.err(path + ("log",), f"expected true/false, got {log!r}", "write log: true or log: false")
                if low > high:
                    raise self.err(path + ("low",), f"low={low} > high={high}", "swap them or fix the typo")
                if log and (low <= 0 if kind == "float" else low < 1):
                    raise self.err(path + ("low",), f"log scale needs low > 0 (>= 1 for int), got {low}",
                                   "raise low or drop log: true")
                return (Float if kind == "float" else Int)(low, high, log, when)
            if kind == "categorical":
                if "choices" not in raw:
                    raise self.err(path, "missing field 'choices'", "add choices: [a, b, ...]")
                choices = raw["choices"]
                if not isinstance(choices, list) or not choices:
                    raise self.err(path + ("choices",), f"choices must be a non-empty list, got {choices!r}",
                                   "write choices: [a, b] (or use a fixed value)")
                return Categorical(tuple(choices), when)
            if kind == "bool":
                return Categorical((False, True), when)
            if "value" not in raw:
                raise self.err(path, "missing field 'value'", "add value: <constant>")
            return Fixed(raw["value"], when)
        except SpaceError:
            raise
        except ValueError as e:
            raise self.err(path, str(e), "see the parameter types in docs/space-files.md") from None


def parse_space_file(text: str, file: str = "<string>") -> SpaceFile:
    """Parse YAML ``text``; raise :class:`SpaceError` on any problem."""
    node, data = _parse_yaml(text, file)
    dup = _duplicate_key(node) if node is not None else None
    if dup is not None:
        key_path, first, second = dup
        raise SpaceError(file, second, ".".join(map(str, key_path)),
                         f"written twice (lines {first} and {second}); YAML would silently keep the second",
                         "keep one of the two")
    lines = _index_lines(node) if node is not None else {}
    p = _Parser(file, lines)
    if not isinstance(data, dict):
        raise p.err((), "the file must be a YAML mapping with keys objective and params", f"top-level keys: {list(TOP_KEYS)}")
    for key in data:
        if key not in TOP_KEYS:
            raise p.err((key,), f"unknown top-level key{did_you_mean(key, TOP_KEYS)}", f"allowed: {list(TOP_KEYS)}")
    for req in ("objective", "params"):
        if req not in data:
            raise p.err((), f"missing field {req!r}", "add objective: <name> and params: {...}")
    if not isinstance(data["objective"], str):
        raise p.err(("objective",), f"expected a name, got {data['objective']!r}", "e.g. objective: moe_digits")
    raw_params = data["params"] if data["params"] is not None else {}
    if not isinstance(raw_params, dict):
        raise p.err(("params",), f"params must be a mapping name -> parameter, got {raw_params!r}",
                    "see spaces/examples/ (an empty mapping {} runs the fixed configuration once)")
    for n in raw_params:
        _check_key(p, ("params", n), n, "parameter")
    fixed = data.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise p.err(("fixed",), f"expected a mapping, got {fixed!r}", "write fixed: {epochs: 8}")
    params, relations = _params_and_relations(p, {str(n): raw for n, raw in raw_params.items()}, fixed,
                                              data.get("relations"))
    for n in fixed:
        _check_key(p, ("fixed", n), n, "fixed value")
        if n in params:
            raise p.err(("fixed", n), f"{n!r} is both fixed and searched", "keep only one of the two")
    search = data.get("search") or {}
    if not isinstance(search, dict):
        raise p.err(("search",), f"expected a mapping, got {search!r}", "write search: {searcher: tpe, num_samples: 16}")
    try:
        space = Space(params, name=str(data.get("name", "")), relations=relations)
    except ValueError as e:
        msg = str(e)
        pname = msg.split(":", 1)[0]
        raise p.err(("params", pname, "when"), msg.split(":", 1)[1].strip(),
                    "conditions must name an existing categorical parameter and its choices, without cycles") from None
    name = _name(p, data.get("name"), file)
    return SpaceFile(path=file, name=name, objective=data["objective"], space=space, fixed=dict(fixed),
                     search=dict(search), lines=lines, text=text, metrics=_metrics(p, data.get("metrics")),
                     plugins=_plugins(p, data.get("plugins")), resources=data.get("resources"),
                     constraints=data.get("constraints"))


def _params_and_relations(p: _Parser, raw_params: dict[str, Any], fixed: Mapping[str, Any],
                          raw_relations: Any) -> tuple[dict[str, Param], tuple[Relation, ...]]:
    """The parameters (a bound may name another parameter, or a fixed value: ``high: n_experts``)
    and the relations between them (those bounds, and ``relations:``)."""
    params: dict[str, Param] = {}
    relations: list[Relation] = []
    resolving: list[str] = []

    def bound_from(path: tuple, ref: str, kind: str):
        name, side = path[-2], path[-1]
        if ref == name:
            raise p.err(path, f"{name}'s {side} names {name} itself", "write a number, or another parameter's name")
        if ref in fixed and ref not in raw_params:
            return p.number(path, fixed[ref], kind)  # a fixed value: a constant bound
        if ref not in raw_params:
            raise p.err(path, f"expected a number or a parameter's name, got {ref!r}"
                        f"{did_you_mean(ref, [*raw_params, *fixed])}",
                        "write a number, or the name of an int or float parameter (the bound follows its value)")
        other = build(ref, path)
        if not isinstance(other, (Int, Float)):
            raise p.err(path, f"{side}: {ref!r} is a {type(other).__name__.lower()} parameter; a bound can follow an "
                        "int or float parameter only", "write a number, or use relations: for other comparisons")
        relations.append(Relation.parse(f"{name} {'<=' if side == 'high' else '>='} {ref}", raw_params))
        lo, hi = other.bounds()  # the static range: everything the other parameter can reach
        return p.number(path, hi if side == "high" else lo, kind)

    def build(name: str, path: tuple = ()) -> Param:
        if name in params:
            return params[name]
        if name in resolving:
            cycle = " -> ".join(resolving[resolving.index(name):] + [name])
            raise p.err(path or ("params", name), f"bounds that refer to each other in a circle ({cycle})",
                        "let one of them have plain numbers as bounds")
        resolving.append(name)
        params[name] = p.param(name, raw_params[name])
        resolving.pop()
        return params[name]

    p.bounds_from = {n: bound_from for n in raw_params}
    for name in raw_params:
        build(name)
    params = {n: params[n] for n in raw_params}  # the file's order
    if raw_relations is not None:
        if not isinstance(raw_relations, list):
            raise p.err(("relations",), f"expected a list of comparisons, got {type(raw_relations).__name__} "
                        f"{raw_relations!r:.80}", "write e.g. relations: [\"k <= n_experts\", \"d_model % n_heads == 0\"]")
        for i, text in enumerate(raw_relations):
            if not isinstance(text, str):
                raise p.err(("relations", i), f"expected a comparison in quotes, got {text!r:.80}",
                            "write e.g. \"k <= n_experts\" (quoted: YAML reads <, > and : in plain text oddly)")
            try:
                relations.append(Relation.parse(text, set(params)))
            except RelationError as e:
                bad = str(e).split("'", 2)[1] if str(e).startswith("'") and "not a parameter" in str(e) else ""
                hint = (f" ({bad} is fixed: write its value, or move it under params:)" if bad in fixed
                        else did_you_mean(bad, params) if bad else "")
                raise p.err(("relations", i), f"{text!r}: {e}{hint}",
                            "relations compare parameters of params:, e.g. \"k <= n_experts\"") from None
    return params, tuple(relations)


def _check_key(p: _Parser, path: tuple, name: Any, what: str) -> None:
    """A parameter or fixed name is an MLflow param key: refused here, not when the first trial logs."""
    problem = mlflow_key_problem(str(name))
    if problem is not None:
        raise p.err(path, f"{what} name {str(name)!r} {problem}", "rename it, e.g. with letters, digits and '_'")


def _name(p: _Parser, raw: Any, file: str) -> str:
    """``name:`` (default: the file's stem): it names a folder, so a plain name (see :data:`NAME`)."""
    if raw is None or raw == "":
        stem = Path(file).stem
        if NAME.fullmatch(stem):
            return stem
        slug = re.sub(r"[^\w.-]+", "-", stem).strip("-._")[:100] or "search"
        return slug if NAME.fullmatch(slug) else "search"
    name = str(raw)
    if not NAME.fullmatch(name):
        slug = re.sub(r"[^\w.-]+", "-", name).strip("-._")[:100] or "my-search"
        raise p.err(("name",), f"{name!r} is not a plain name: it names the search's folder and MLflow experiment",
                    f"use letters, digits, '.', '_' and '-' (first a letter or digit, at most 100 characters), "
                    f"e.g. name: {slug}")
    return name


def _plugins(p: _Parser, raw: Any) -> tuple[str, ...]:
    """``plugins: [module, ...]``: dotted names of modules to import first (not imported here)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise p.err(("plugins",), f"expected a list of module names, got {type(raw).__name__} {raw!r}",
                    f"write plugins: [{raw}]" if isinstance(raw, str) else "write e.g. plugins: [mygates, mypkg.gates]")
    out = []
    for i, name in enumerate(raw):
        if isinstance(name, str) and name.endswith(".py"):
            raise p.err(("plugins", i), f"{name!r} is a file name, not a module name",
                        f"write {name[:-3].replace('/', '.')} (the name you would import; its folder must be "
                        f"importable: the space file's folder and the working directory are)")
        if not isinstance(name, str) or not all(part.isidentifier() for part in name.split(".")):
            raise p.err(("plugins", i), f"{name!r} is not a module name",
                        "write the dotted name you would import, e.g. mygates or mypkg.gates (no '.py', no path)")
        if name not in out:
            out.append(name)
    return tuple(out)


def _metrics(p: _Parser, raw: Any) -> dict[str, str]:
    """``metrics: {name: max|min, ...}``: what a plain training function optimises, in order."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        raise p.err(("metrics",), f"expected a mapping metric name -> max|min, got {raw!r}",
                    "write e.g. metrics: {accuracy: max, macs_per_sample: min}")
    out = {}
    for name, mode in raw.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise p.err(("metrics", name), f"metric name {name!r} must be an identifier (the key your function "
                        "reports)", "e.g. accuracy, macs_per_sample, val_bpc")
        if mode not in METRIC_MODES:
            raise p.err(("metrics", name), f"direction must be max or min, got {mode!r}"
                        f"{did_you_mean(str(mode), METRIC_MODES)}", f"write {name}: max (higher is better) or "
                        f"{name}: min (lower is better)")
        out[name] = mode
    if len(out) < 2:
        raise p.err(("metrics",), f"a multi-objective search needs at least two metrics, got {list(out)}",
                    "add the compute cost, e.g. macs_per_sample: min (gatesearch.count_macs counts it)")
    return out


def load_space_file(path: str | Path) -> SpaceFile:
    """Read and parse a space file (errors name the absolute path)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise SpaceError(str(path), None, "", "file not found", "pass the path of a YAML space file")
    if path.stat().st_size > MAX_BYTES:
        raise SpaceError(str(path), None, "", f"the file is larger than {MAX_BYTES:,} bytes",
                         "a space file is a few kB: is this the right file?")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SpaceError(str(path), line, "", f"not a UTF-8 text file (byte {e.start}: {raw[e.start:e.start + 1]!r})",
                         "pass a YAML space file saved as UTF-8 text") from None
    if "\x00" in text:
        raise SpaceError(str(path), text[: text.index("\x00")].count("\n") + 1, "", "not a text file (NUL byte)",
                         "pass a YAML space file") from None
    return parse_space_file(text, str(path))
