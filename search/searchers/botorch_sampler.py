"""The BoTorch searcher's sampler: optuna-integration's ``BoTorchSampler`` that hands its parameter
transform to the candidates function, so a candidate that rounds to a configuration already run or
running is passed over for the next-best restart (:func:`~gatesearch.search.searchers.botorch_qnehvi.qlognehvi_candidates`).
Imported only when the ``botorch`` searcher is built (the optional extra)."""

from __future__ import annotations

import functools
from typing import Any

from optuna._transform import _SearchSpaceTransform
from optuna_integration import BoTorchSampler


class NonRepeatBoTorchSampler(BoTorchSampler):
    """``BoTorchSampler`` whose candidates function also receives ``transform=``: the same
    ``_SearchSpaceTransform(search_space)`` the sampler encodes the trials with and decodes the
    candidate with (optuna-integration 5.0's ``sample_relative``). The candidates function a search
    pickles is the plain one; the transform is bound only for the duration of one ask."""

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        plain = self._candidates_func
        if search_space and plain is not None:
            self._candidates_func = functools.partial(plain, transform=_SearchSpaceTransform(search_space))
        try:
            return super().sample_relative(study, trial, search_space)
        finally:
            self._candidates_func = plain
