"""What every data set is: fixed train/validation/test splits as in-memory tensors, and where the
files are (``make data`` fills the git-ignored ``data/`` folder; nothing downloads at run time)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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


def split_indices(n: int, val_frac: float, test_frac: float, seed: int) -> tuple[np.ndarray, ...]:
    perm = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(n * test_frac)), int(round(n * val_frac))
    return perm[n_test + n_val :], perm[n_test : n_test + n_val], perm[:n_test]


class DataMissing(FileNotFoundError):
    """A data set is not on disk; the message names the command that fetches it."""


def data_dir() -> Path:
    return Path(os.environ.get("GATESEARCH_DATA_DIR") or Path(__file__).resolve().parents[1] / "data")


def need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataMissing(f"{what} not found at {path}; run `make data` (scripts/get_data.sh) in the gatesearch "
                          f"checkout, or point GATESEARCH_DATA_DIR at a folder that has it")
    return path


def standardise(x: np.ndarray, tr: np.ndarray) -> np.ndarray:
    mean, std = x[tr].mean(0), x[tr].std(0) + 1e-6
    return ((x - mean) / std).astype(np.float32)


def make_dataset(name: str, x: np.ndarray, y: np.ndarray, tr, va, te, n_classes: tuple[int, ...],
             ids: np.ndarray | None = None) -> Dataset:
    ids = np.arange(len(x)) if ids is None else ids
    y = y.reshape(len(y), -1).astype(np.int64)

    def split(idx: np.ndarray) -> Split:
        return Split(torch.from_numpy(np.ascontiguousarray(x[idx])), torch.from_numpy(y[idx]),
                     torch.from_numpy(ids[idx].astype(np.int64)))

    return Dataset(name, split(tr), split(va), split(te), n_classes=n_classes, num_ids=int(ids.max()) + 1)
