"""Offline data sets: clear errors when missing; shapes, tasks and splits when present (`make data`);
the registered objectives run on small subsets."""

import numpy as np
import pytest

from gatesearch.objectives import get_objective
from gatesearch.objectives.data import (
    DataMissing,
    data_dir,
    load_adult,
    load_char_lm,
    load_fashion_mnist,
    load_movielens,
    load_multi_fashion_mnist,
)
from gatesearch.objectives.moe_classification import EvoMoEClassification, MoEClassification

HAVE = {name: (data_dir() / sub).exists() for name, sub in
        (("fashion", "fashion-mnist/train-images-idx3-ubyte.gz"), ("movielens", "ml-100k/ml-100k.inter"),
         ("adult", "widedeep/adult.parquet.brotli"))}


def needs(name):
    return pytest.mark.skipif(not HAVE[name], reason=f"{name} not fetched: run `make data`")


@pytest.mark.parametrize("loader", [load_fashion_mnist, load_multi_fashion_mnist, load_movielens, load_adult])
def test_missing_data_names_the_command(monkeypatch, tmp_path, loader):
    monkeypatch.setenv("GATESEARCH_DATA_DIR", str(tmp_path))
    with pytest.raises(DataMissing, match=r"run `make data`"):
        loader()


def test_objective_with_missing_data_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv("GATESEARCH_DATA_DIR", str(tmp_path))
    objective = get_objective("moe_movielens")
    objective._cache.clear()
    with pytest.raises(DataMissing, match="MovieLens-100k not found"):
        objective.run(objective.resolve({"epochs": 1}))


@needs("fashion")
def test_fashion_mnist_subset():
    d = load_fashion_mnist(seed=0, max_train=3000)
    assert d.train.x.shape == (3000, 784) and d.n_classes == (10,)
    assert set(d.train.y[:, 0].tolist()) == set(range(10))
    assert abs(float(d.train.x.mean())) < 0.05  # standardised on train


@needs("fashion")
def test_multi_fashion_two_tasks():
    d = load_multi_fashion_mnist(seed=0, n_train=600, n_test=100)
    assert d.n_classes == (10, 10) and d.train.y.shape[1] == 2 and d.test.x.shape == (100, 784)
    assert (d.train.y[:, 0] != d.train.y[:, 1]).float().mean() > 0.8  # two independent items


@needs("movielens")
def test_movielens_tasks():
    d = load_movielens(seed=0, max_users=40)
    watched, rating = d.train.y[:, 0].numpy(), d.train.y[:, 1].numpy()
    assert d.n_classes == (2, 6) and 0.3 < watched.mean() < 0.7
    assert (rating[watched == 1] >= 1).all() and (rating[watched == 0] == 0).all()
    assert d.num_ids <= 40  # hash routing by user id


@needs("adult")
def test_adult_tasks():
    d = load_adult(seed=0, max_rows=4000)
    income, never = d.train.y[:, 0].float().mean().item(), d.train.y[:, 1].float().mean().item()
    assert 0.15 < income < 0.35 and 0.2 < never < 0.45


def test_char_lm_from_stdlib_text():
    d = load_char_lm(seed=0, max_windows=2000)
    assert d.train.x.shape[1] == 8 * 64 and d.n_classes == (64,)
    assert (d.train.x.sum(1) == 8).all()  # one-hot per context position


@pytest.mark.parametrize("name, loader, needed", [
    ("movielens", lambda s: load_movielens(seed=s, max_users=30), "movielens"),
    ("adult", lambda s: load_adult(seed=s, max_rows=2000), "adult"),
    ("multifashion", lambda s: load_multi_fashion_mnist(seed=s, n_train=500, n_test=100), "fashion"),
])
def test_moe_objectives_on_subsets(name, loader, needed):
    if not HAVE[needed]:
        pytest.skip(f"{needed} not fetched: run `make data`")
    objective = MoEClassification(f"test_{name}", loader)
    final = objective.run(objective.resolve({"epochs": 1, "gate": "topk", "n_experts": 4, "k": 2}))
    assert np.isfinite(final["auc"]) and 0.5 < final["auc"] <= 1.0 and np.isfinite(final["test_auc"])


def test_evomoe_charlm_dense_to_sparse():
    objective = EvoMoEClassification("test_evomoe_charlm", lambda s: load_char_lm(seed=s, max_windows=4000))
    reports = []
    objective.run(objective.resolve({"epochs": 4, "n_experts": 6, "share_epochs": 1.0, "tau_max": 2.0,
                                     "tau_min": 0.05, "tau_decay_epochs": 2.5, "dts_threshold": 0.02,
                                     "batch_size": 128}), report=reports.append)
    active = [r["train_active_experts"] for r in reports]
    assert active[0] == 1.0  # phase 1: one shared expert
    assert active[1] > active[3] and active[3] < 3.0  # phase 2: dense, then sparser as tau falls
    assert reports[-1]["accuracy"] > 0.2  # next-char accuracy well above chance (1/64)


def test_recommender_and_census_objectives_optimise_auc():
    for name in ("moe_movielens", "moe_adult"):
        assert [m.name for m in get_objective(name).objectives] == ["auc", "macs_per_sample"]
    assert [m.name for m in get_objective("moe_multifashion").objectives] == ["accuracy", "macs_per_sample"]


def test_data_sets_are_one_registry_with_clear_lookups():
    from gatesearch.objectives.base import DataLoader
    from gatesearch.objectives.data import DATASETS, register_dataset

    assert {"load_digits", "load_adult", "load_shakespeare"} <= set(DATASETS)
    assert DataLoader("load_digits")(0).name == "digits"
    import pytest

    with pytest.raises(ValueError, match="did you mean 'load_digits'"):
        DataLoader("load_digit")(0)
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("load_digits", lambda seed: None)
    register_dataset("load_digits", DATASETS["load_digits"])  # the same loader again: a no-op
