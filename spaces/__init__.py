"""Search spaces: one declarative type, YAML files, compilation to Optuna. Imports nothing of ours."""

from spaces.params import Categorical, Condition, Fixed, Float, Int, Param
from spaces.space import Space
from spaces.space_file import SpaceError, SpaceFile, load_space_file, parse_space_file
from spaces.to_nevergrad import decode, to_parametrization
from spaces.to_optuna import suggest

__all__ = ["Categorical", "Condition", "Fixed", "Float", "Int", "Param", "Space", "SpaceError", "SpaceFile",
           "load_space_file", "parse_space_file", "suggest", "to_parametrization", "decode"]
