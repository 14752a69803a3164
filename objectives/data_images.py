"""Image data sets: digits (scikit-learn), Fashion-MNIST and MultiFashion-MNIST (two overlaid items)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from gatesearch.objectives.dataset import data_dir, Dataset, make_dataset, need, split_indices, standardise


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
    tr, va, te = split_indices(len(x), val_frac, test_frac, seed)
    return make_dataset("digits", standardise(x, tr), y, tr, va, te, (10,))


def _idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def _fashion_raw() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    root = need(data_dir() / "fashion-mnist", "Fashion-MNIST")
    xtr = _idx(need(root / "train-images-idx3-ubyte.gz", "Fashion-MNIST"), 16).reshape(-1, 28, 28)
    ytr = _idx(root / "train-labels-idx1-ubyte.gz", 8)
    xte = _idx(root / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    yte = _idx(root / "t10k-labels-idx1-ubyte.gz", 8)
    return xtr, ytr, xte, yte


def load_fashion_mnist(*, seed: int = 0, max_train: int | None = None, val_frac: float = 0.1) -> Dataset:
    """Fashion-MNIST (Debian ``dataset-fashion-mnist``): 60k train (a ``val_frac`` validation
    part split off) / 10k test, 784 standardised pixels, 10 classes. ``max_train`` subsamples
    the training part (and the test set proportionally) for quick runs."""
    xtr, ytr, xte, yte = _fashion_raw()
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(xtr))
    n_val = int(round(len(perm) * val_frac))
    va, tr = perm[:n_val], perm[n_val:]
    te = np.arange(len(xte))
    if max_train is not None:
        tr, va = tr[:max_train], va[: max(1, int(max_train * val_frac / (1 - val_frac)))]
        te = rng.permutation(len(xte))[: max(1, len(tr) // 6)]
    x = np.concatenate([xtr, xte]).reshape(-1, 784).astype(np.float32) / 255.0
    y = np.concatenate([ytr, yte])
    te = te + len(xtr)
    return make_dataset("fashion_mnist", standardise(x, tr), y, tr, va, te, (10,))


def multi_overlay(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, shift: int = 4) -> np.ndarray:
    """MultiMNIST recipe (DSelect-k): image ``a`` top-left and ``b`` bottom-right of a 36×36
    canvas, each shifted by up to ±``shift`` px, pixelwise max, resized back to 28×28."""
    n = len(a)
    canvas = np.zeros((n, 36, 36), np.float32)
    for i in range(n):
        da, db = rng.integers(-shift, shift + 1, 2), rng.integers(-shift, shift + 1, 2)
        ya, xa = np.clip(np.array([0, 0]) + da, 0, 8)
        yb, xb = np.clip(np.array([8, 8]) + db, 0, 8)
        canvas[i, ya : ya + 28, xa : xa + 28] = np.maximum(canvas[i, ya : ya + 28, xa : xa + 28], a[i])
        canvas[i, yb : yb + 28, xb : xb + 28] = np.maximum(canvas[i, yb : yb + 28, xb : xb + 28], b[i])
    t = torch.from_numpy(canvas)[:, None]
    return torch.nn.functional.interpolate(t, size=(28, 28), mode="bilinear", align_corners=False)[:, 0].numpy()


def load_multi_fashion_mnist(*, seed: int = 0, n_train: int = 20000, n_test: int = 4000,
                             val_frac: float = 0.1) -> Dataset:
    """MultiFashionMNIST: pairs overlaid by :func:`multi_overlay`; task 1 = class of the left
    item, task 2 = class of the right one. Train/val pairs come from the training images, test
    pairs from the test images (source images never shared across the splits)."""
    xtr, ytr, xte, yte = _fashion_raw()
    rng = np.random.default_rng(seed)

    def pairs(x, y, n):
        i, j = rng.integers(0, len(x), n), rng.integers(0, len(x), n)
        return multi_overlay(x[i] / 255.0, x[j] / 255.0, rng).reshape(n, -1), np.stack([y[i], y[j]], 1)

    xa, ya = pairs(xtr, ytr, n_train)
    xb, yb = pairs(xte, yte, n_test)
    x, y = np.concatenate([xa, xb]), np.concatenate([ya, yb])
    n_val = int(round(n_train * val_frac))
    tr, va, te = np.arange(n_val, n_train), np.arange(n_val), np.arange(n_train, n_train + n_test)
    return make_dataset("multi_fashion_mnist", standardise(x, tr), y, tr, va, te, (10, 10))
