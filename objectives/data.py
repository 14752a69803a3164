"""Data sets as in-memory tensors with fixed train/validation/test splits.

Nothing here downloads: digits ships inside scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Split:
    """One split: features ``x (N, d)`` float32, targets ``y (N, T)`` int64 (T tasks),
    ``ids (N,)`` int64 (the feature hash routing uses)."""

    x: Tensor
    y: Tensor
    ids: Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test splits plus task sizes."""

    name: str
    train: Split
    val: Split
    test: Split
    n_classes: tuple[int, ...]
    num_ids: int

    @property
    def d_in(self) -> int:
        return self.train.x.shape[1]


def _split_indices(n: int, val_frac: float, test_frac: float, seed: int) -> tuple[np.ndarray, ...]:
    perm = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(n * test_frac)), int(round(n * val_frac))
    return perm[n_test + n_val :], perm[n_test : n_test + n_val], perm[:n_test]


def load_digits(*, seed: int = 0, val_frac: float = 0.15, test_frac: float = 0.2) -> Dataset:
    """scikit-learn's 8×8 digits (1,797 images, 10 classes), standardised on the train split.

    The split depends only on ``seed`` so every trial of a search sees the same data.
    Hash routing uses the image's row index as its id (digits has no natural id
    feature, so hash routing is a fixed random assignment per image, as Hash-r).
    """
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    x = bunch.data.astype(np.float32)
    y = bunch.target.astype(np.int64)
    tr, va, te = _split_indices(len(x), val_frac, test_frac, seed)
    mean, std = x[tr].mean(0), x[tr].std(0) + 1e-6
    x = (x - mean) / std

    def split(idx: np.ndarray) -> Split:
        return Split(torch.from_numpy(x[idx]), torch.from_numpy(y[idx, None]), torch.from_numpy(idx.astype(np.int64)))

    return Dataset("digits", split(tr), split(va), split(te), n_classes=(10,), num_ids=len(x))
