"""The objective contract and its registry.

An objective turns one flat configuration (what a searcher proposes) into a trained
model and its metrics. It declares the metrics it optimises (name + direction, from
:mod:`objectives.metrics`), a :class:`ParamSchema` of the keys it accepts, and
defaults for every key a space does not set.
"""

from __future__ import annotations

import importlib
import os
import threading
from abc import ABC, abstractmethod
from typing import Any, Callable, Mapping

from gatesearch._hints import did_you_mean
from gatesearch._registry import Registry
from gatesearch.objectives.metrics import Metric, Report
from gatesearch.objectives.schema import ParamSchema


#: resolved configurations an objective remembers (per process)
RESOLVED_KEPT = 512
_MEMO_LOCK = threading.Lock()


class Resolved(dict):
    """A configuration :meth:`Objective.resolve` validated (``owner``: that objective's id):
    resolving it again returns it as it is."""

    owner: int = 0


def _config_key(config: Mapping[str, Any]) -> str | None:
    """A canonical key of a configuration of plain values (None: not one, do not remember it)."""
    import json

    try:
        return json.dumps(dict(config), sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        return None


class Objective(ABC):
    """Train-and-evaluate one configuration."""

    name: str
    #: the optimised metrics (the Pareto axes), in order
    objectives: tuple[Metric, ...]
    schema: ParamSchema
    defaults: Mapping[str, Any]
    #: configuration keys that say what a trial was, shown (in this order) in front tables,
    #: figures and artifacts; the first one labels points in the front figure
    front_columns: tuple[str, ...] = ()
    #: reported metrics shown next to the objectives in front tables (e.g. test accuracy)
    summary_metrics: tuple[str, ...] = ()
    #: every metric a trial reports besides the objectives (names of
    #: :mod:`~gatesearch.objectives.metrics`; ``"prefix*"`` for a family such as ``exit_fraction_*``):
    #: what a space file's ``constraints:`` may bound. Empty: not declared (any name is accepted,
    #: and a trial that does not report a bounded metric is infeasible)
    reports: tuple[str, ...] = ()
    #: whether :meth:`run` takes ``restore=``/``save=`` (per-epoch checkpoints, see
    #: :mod:`~gatesearch.objectives.checkpoint`); the search checkpoints trials of such objectives
    checkpoints: bool = False

    def resolve(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``config``, validated against the schema.

        Resolved once per configuration and process: the result is remembered (the last
        :data:`RESOLVED_KEPT` configurations), so the driver's deduplication, MLflow sink and
        progress display share one resolution of a trial's configuration, and a worker's
        ``run(resolved)`` does not validate it again. Treat the result as read-only."""
        if isinstance(config, Resolved) and config.owner == id(self):
            return config
        key = _config_key(config)
        memo = self.__dict__.setdefault("_resolved", {})
        if key is not None and key in memo:
            return memo[key]
        full = Resolved({**self.defaults, **config})
        self.schema.validate(full)
        self.check(full)
        full.owner = id(self)
        if key is not None:
            with _MEMO_LOCK:  # the driver's sink and progress resolve from other threads too
                while len(memo) >= RESOLVED_KEPT:
                    memo.pop(next(iter(memo)))
                memo[key] = full
        return full

    def check(self, config: Mapping[str, Any]) -> None:
        """Extra cross-field checks on a resolved configuration (override as needed)."""

    def derived(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters implied by ``config`` worth logging (e.g. COMET tree depth)."""
        return {}

    def active(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The keys of a resolved ``config`` that have an effect for this configuration (what a
        trial's run logs as parameters). Default: all of them."""
        return dict(config)

    def run_label(self, config: Mapping[str, Any]) -> str:
        """A few words saying what a trial is, for its run name (e.g. ``comet n8 k2``); the
        search appends ``#<trial number>``. Default: the :meth:`summary` values."""
        return " ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in self.summary(config).values())

    def why_inert(self, key: str) -> str:
        """Why ``key`` can have no effect (used when a space sets a key that no configuration of
        it reads); objectives override this to name the component that reads it."""
        return "no configuration of this space reads it"

    def summary(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The :attr:`front_columns` of a resolved ``config`` (with :meth:`derived` values),
        omitting those without effect for it."""
        values = {**self.active(config), **self.derived(config)}
        return {c: values[c] for c in self.front_columns if c in values}

    @abstractmethod
    def run(self, config: Mapping[str, Any], *, report: Report | None = None, device: str = "cpu") -> dict[str, float]:
        """Train and evaluate; call ``report`` once per epoch; return final metrics.

        Objectives with :attr:`checkpoints` also take ``restore`` (a training state to continue
        from: the epochs it covers are not trained or reported again) and ``save`` (called with the
        training state after each epoch, before ``report``)."""


class DatasetObjective(Objective):
    """An objective trained on one data set, loaded once per split seed and kept in memory
    (every trial an actor runs reuses it)."""

    def __init__(self, name: str, load: Callable[[int], Any]):
        self.name, self._load = name, load
        self._cache: dict[int, Any] = {}

    def data(self, seed: int):
        """The data set split with ``seed`` (loaded on first use)."""
        if seed not in self._cache:
            self._cache[seed] = self._load(seed)
        return self._cache[seed]


class DataLoader:
    """``seed -> Dataset`` by the name of a data set in :data:`gatesearch.objectives.data.DATASETS`,
    imported when first called (registering objectives, and checking a space, need no PyTorch)."""

    def __init__(self, name: str, **kwargs: Any):
        self.name, self.kwargs = name, kwargs

    def __call__(self, seed: int):
        datasets = importlib.import_module("gatesearch.objectives.data").DATASETS
        return datasets.lookup(self.name)(seed=seed, **self.kwargs)


OBJECTIVES: Registry[Objective] = Registry("objective", "or give your own as 'package.module:attr'")


def register_objective(objective: Objective) -> Objective:
    """Add ``objective`` to the registry under its ``name``; another under a taken name is an error."""
    return OBJECTIVES.register(objective.name, objective)


def get_objective(name: str) -> Objective:
    """Look up a registered objective, with a did-you-mean on typos.

    ``"package.module:attr"`` names a user objective outside this package: the module is
    imported (on the driver and on every Ray worker, so it must be importable there: an
    installed package or a PYTHONPATH entry) and ``attr`` must be an :class:`Objective`
    instance or a class constructible without arguments. It is registered under that name.
    """
    if name not in OBJECTIVES and ":" in name:
        OBJECTIVES[name] = _import_objective(name)
    return OBJECTIVES.lookup(name)


class UserImportError(ValueError):
    """A user's ``package.module:attr`` (or ``plugins:`` module) that cannot be loaded: ``message``
    says what went wrong and where, ``fix`` what to do (a space file's check shows them at its
    ``objective:`` or ``plugins:`` line)."""

    def __init__(self, message: str, fix: str):
        super().__init__(f"{message}; {fix}")
        self.message, self.fix = message, fix


def import_attribute(path: str, what: str = "objective") -> Any:
    """``package.module:attr`` imported. Errors say whose the problem is: a module that is not
    importable (how to make it so), one that raises while importing (any exception: the module,
    the exception and the user's file:line, not ours), or a missing attribute (the module's file
    and a did-you-mean over its objectives, then its callables).

    Raises:
        UserImportError: one of the above.
    """
    module, _, attr = path.partition(":")
    if not module or not attr or module.startswith("."):
        raise UserImportError(f"{what} {path!r}: not a 'package.module:name'", "e.g. mypkg.objectives:MyObjective")
    mod = import_user_module(module, f"{what} {path!r}")
    if not hasattr(mod, attr):
        objectives = _objectives_defined_in(mod)
        callables = [n for n, v in vars(mod).items() if not n.startswith("_") and callable(v)]
        raise UserImportError(f"{what} {path!r}: module {module!r} ({getattr(mod, '__file__', '?')}) has no attribute "
                              f"{attr!r}{did_you_mean(attr, objectives) or did_you_mean(attr, callables)}",
                              f"name one of its objectives ({', '.join(objectives)})" if objectives
                              else f"name an objective or function defined in {module!r}")
    return getattr(mod, attr)


def import_user_module(module: str, label: str) -> Any:
    """The user's ``module`` imported. Errors start with ``label`` (e.g. ``objective 'pkg.mod:Obj'``)
    and say whose the problem is: a module that is not importable (how to make it so), or one that
    raises while importing (any exception: the module, the exception and the user's file:line).

    Raises:
        UserImportError: one of the above.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise UserImportError(f"{label}: no module named {e.name!r}",
                                  "make it importable (pip install it, or add its folder to PYTHONPATH; "
                                  "`gatesearch run` adds the space file's folder and the working directory)") from None
        raise user_code_raised(f"{label}: importing module {module!r}", e, module,
                               f"pip install {e.name!r} (your module imports it), or fix that import" if e.name
                               else "") from None
    except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's module raised (SystemExit: argparse at import)
        raise user_code_raised(f"{label}: importing module {module!r}", e, module) from None


def user_code_raised(doing: str, e: BaseException, module: str, fix: str = "") -> UserImportError:
    """``<doing> raised T: message (at file:line)``: an exception of the user's code, located
    in the user's file (:func:`_user_frame`), never a request to report it to us."""
    where = _user_frame(e, module)
    text = e.msg if isinstance(e, SyntaxError) and e.msg else str(e)
    first = (text.strip().splitlines() or [""])[0][:500]
    return UserImportError(f"{doing} raised {type(e).__name__}" + (f": {first}" if first else "")
                           + (f" (at {where})" if where else ""),
                           (fix or f"fix {where or module}: an error in your code, not in gatesearch")
                           + f"; the full traceback: {_python()} -c 'import {module}'"
                           + (f" in {os.path.dirname(where.rsplit(':', 1)[0])}" if where else ""))


def _python() -> str:
    """The interpreter that runs gatesearch (the one with its dependencies), for commands we print."""
    import sys

    return sys.executable or "python"


def _user_frame(e: BaseException, module: str) -> str:
    """``file:line`` where ``e`` was raised in the user's code: a syntax error's own location,
    else the traceback's last frame outside the import machinery, gatesearch, the standard
    library and installed packages (an error in a library the user called is located at the
    user's call); failing that (a user package installed into site-packages), its last frame
    in the user's top-level package; '' when there is none."""
    import sysconfig

    if isinstance(e, SyntaxError) and e.filename and e.lineno:
        return f"{e.filename}:{e.lineno}"
    frames = []  # (file, line, module name)
    tb = e.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno, str(tb.tb_frame.f_globals.get("__name__", ""))))
        tb = tb.tb_next
    frames = [f for f in frames if not f[0].startswith("<")]  # <frozen importlib._bootstrap>
    library = tuple(os.path.realpath(p) + os.sep
                    for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")})
    top = module.split(".")[0]
    user = [f for f in frames if f[2].split(".")[0] != "gatesearch" and not os.path.realpath(f[0]).startswith(library)]
    user = user or [f for f in frames if f[2].split(".")[0] == top]
    return f"{user[-1][0]}:{user[-1][1]}" if user else ""


def _objectives_defined_in(mod: Any) -> list[str]:
    """Names of ``mod``'s Objective instances and of the Objective subclasses it defines."""
    return [n for n, v in vars(mod).items() if isinstance(v, Objective) or (
        isinstance(v, type) and issubclass(v, Objective) and v.__module__ == mod.__name__)]


def _import_objective(name: str) -> Objective:
    """The objective ``package.module:attr`` (an :class:`Objective` instance, or a subclass
    constructed without arguments); errors as :func:`import_attribute`'s."""
    obj = import_attribute(name)
    module, _, attr = name.partition(":")
    if isinstance(obj, type) and issubclass(obj, Objective):
        try:
            obj = obj()
        except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's constructor
            raise user_code_raised(f"objective {name!r}: {attr}()", e, module) from None
    if not isinstance(obj, Objective):
        if callable(obj):
            raise UserImportError(f"objective {name!r} is a function, and the space file does not say what it "
                                  f"optimises", "add e.g. `metrics: {accuracy: max, macs_per_sample: min}` (the "
                                  "names it reports, and which way is better), or make it an objectives.Objective")
        raise ValueError(f"objective {name!r}: {attr!r} is a {type(obj).__name__}, not an objectives.Objective "
                         f"or a training function")
    return obj


def checkpoints_trials(objective) -> bool:
    """Whether trials of ``objective`` are checkpointed: it says so, and its ``run`` (perhaps
    overridden by a subclass) takes ``restore`` and ``save``."""
    import inspect

    if not getattr(objective, "checkpoints", False):
        return False
    params = inspect.signature(objective.run).parameters
    return ("restore" in params and "save" in params) or any(p.kind == p.VAR_KEYWORD for p in params.values())
