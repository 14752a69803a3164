"""Search spaces: one declarative type, YAML files, compilation to Optuna. Imports nothing of ours."""

from gatesearch.spaces.params import Categorical, Condition, Fixed, Float, Int, Param
from gatesearch.spaces.space import Space
from gatesearch.spaces.space_file import (
           SpaceError,
           SpaceFile,
           load_space_file,
           parse_space_file,
)
from gatesearch.spaces.to_nevergrad import decode, to_parametrization
from gatesearch.spaces.to_optuna import suggest

__all__ = ["Categorical", "Condition", "Fixed", "Float", "Int", "Param", "Space", "SpaceError", "SpaceFile",
           "load_space_file", "parse_space_file", "suggest", "to_parametrization", "decode"]
