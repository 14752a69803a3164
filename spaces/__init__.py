"""Search spaces: one declarative type, YAML files, compilation to Optuna. Imports nothing of ours."""

from gatesearch.spaces.key import config_key
from gatesearch.spaces.params import Categorical, Condition, Fixed, Float, Int, Param
from gatesearch.spaces.relations import Relation, RelationError
from gatesearch.spaces.space import Infeasible, Space
from gatesearch.spaces.space_file import SpaceError, SpaceFile, load_space_file, parse_space_file, trial_configuration
from gatesearch.spaces.to_optuna import distributions, suggest

__all__ = ["config_key", "trial_configuration", "Categorical", "Condition", "Fixed", "Float", "Int", "Infeasible", "Param", "Relation", "RelationError",
           "Space", "SpaceError", "SpaceFile",
           "load_space_file", "parse_space_file", "suggest", "distributions", "to_parametrization", "decode",
           "encode"]


def __getattr__(name: str):
    """``to_parametrization``/``decode``/``encode`` import Nevergrad (over a second): only when used."""
    if name in ("to_parametrization", "decode", "encode"):
        from gatesearch.spaces import to_nevergrad

        return getattr(to_nevergrad, name)
    raise AttributeError(f"module 'gatesearch.spaces' has no attribute {name!r}")
