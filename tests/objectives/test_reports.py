"""EpochReports, the ``report`` every objective is handed: epochs numbered when a report lacks
them, optimised metrics finite wherever they appear (reports and the returned dict), every
optimised metric present at the end, returned metrics merged into the last epoch once."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gatesearch.objectives.reports import EpochReports, MissingMetric, NonFiniteMetric, ObjectiveOutputError

OBJECTIVES = ("accuracy", "macs_per_sample")


def _reports(first_epoch: int = 1) -> tuple[EpochReports, list[dict]]:
    sent: list[dict] = []
    return EpochReports(OBJECTIVES, sent.append, first_epoch=first_epoch), sent


def _ok(i: int = 0) -> dict:
    return {"accuracy": 0.5 + i / 100, "macs_per_sample": 1000.0 + i}


# -- epochs ---------------------------------------------------------------------------------------

def test_reports_without_epoch_are_numbered_from_one():
    reports, sent = _reports()
    for i in range(3):
        reports(_ok(i))
    assert [m["epoch"] for m in sent] == [1, 2, 3]
    assert [m["accuracy"] for m in sent] == [0.5, 0.51, 0.52]  # the metrics travel unchanged


def test_numbering_continues_after_a_restored_epoch():
    reports, sent = _reports(first_epoch=4)  # a checkpoint of epoch 3 was restored
    reports(_ok())
    reports(_ok(1))
    assert [m["epoch"] for m in sent] == [4, 5]


def test_an_explicit_epoch_is_kept_and_the_numbering_follows_it():
    reports, sent = _reports()
    reports({**_ok(), "epoch": 7})
    reports({**_ok(), "epoch": 9.0})  # a whole float is an epoch too, sent as an int
    reports(_ok())
    assert [m["epoch"] for m in sent] == [7, 9, 10]
    assert type(sent[1]["epoch"]) is int


def test_a_numpy_integer_epoch_is_an_epoch():
    reports, sent = _reports()
    reports({**_ok(), "epoch": np.int64(2)})
    assert sent[0]["epoch"] == 2 and type(sent[0]["epoch"]) is int


@pytest.mark.parametrize("epoch", [0, -1, 1.5, "x", "1", True, None, math.nan, math.inf])
def test_a_bad_epoch_is_an_error_naming_epoch(epoch):
    reports, sent = _reports()
    with pytest.raises(ObjectiveOutputError, match="'epoch' must be a whole number >= 1") as info:
        reports({**_ok(), "epoch": epoch})
    assert repr(epoch) in str(info.value)
    assert not sent


# -- non-finite optimised metrics -----------------------------------------------------------------

@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float32("nan"), np.float64("-inf")])
@pytest.mark.parametrize("metric", OBJECTIVES)
def test_a_non_finite_optimised_metric_fails_at_its_epoch(metric, bad):
    reports, sent = _reports()
    reports(_ok())
    with pytest.raises(NonFiniteMetric) as info:
        reports({**_ok(), metric: bad})
    text = str(info.value)
    shown = bad.item() if isinstance(bad, np.generic) else bad  # a numpy scalar is taken as its Python number
    assert repr(metric) in text and repr(shown) in text and "at epoch 2" in text, text
    assert [m["epoch"] for m in sent] == [1]  # nothing was sent for epoch 2
    assert reports.last == {**_ok(), "epoch": 1}


def test_a_non_finite_metric_at_an_explicit_epoch_names_that_epoch():
    reports, sent = _reports()
    with pytest.raises(NonFiniteMetric, match="at epoch 5"):
        reports({**_ok(), "accuracy": math.nan, "epoch": 5})
    assert not sent


def test_metrics_that_are_not_optimised_may_be_nan_or_infinite():
    reports, sent = _reports()
    reports({**_ok(), "train_loss": math.nan, "grad_norm": math.inf})
    reports.finish(None)
    assert len(sent) == 1 and math.isnan(sent[0]["train_loss"]) and sent[0]["grad_norm"] == math.inf


@pytest.mark.parametrize("bad", ["0.9", "nan", None, [0.9], True])
def test_an_optimised_metric_that_is_not_a_number_is_an_error(bad):
    reports, sent = _reports()
    with pytest.raises(ObjectiveOutputError, match="'accuracy'"):
        reports({**_ok(), "accuracy": bad})
    assert not sent


def test_numpy_and_zero_dim_array_metrics_are_numbers():
    reports, sent = _reports()
    reports({"accuracy": np.float32(0.75), "macs_per_sample": np.array(12.0)})
    reports.finish(None)
    assert len(sent) == 1


# -- finish: what run() returned ------------------------------------------------------------------

def test_finish_without_a_return_needs_every_optimised_metric_in_the_last_report():
    reports, sent = _reports()
    reports({"accuracy": 0.9})  # macs_per_sample never reported (a misspelt name, say)
    with pytest.raises(MissingMetric) as info:
        reports.finish(None)
    assert "'macs_per_sample'" in str(info.value) and "'accuracy'" not in str(info.value).split(":")[0]
    assert len(sent) == 1


def test_an_optimised_metric_of_an_earlier_report_only_is_missing_at_the_end():
    reports, _ = _reports()
    reports(_ok())
    reports({"accuracy": 0.9})
    with pytest.raises(MissingMetric, match="'macs_per_sample'"):
        reports.finish(None)


def test_finish_after_nothing_reported_and_nothing_returned_is_missing():
    reports, sent = _reports()
    with pytest.raises(MissingMetric, match="reported nothing"):
        reports.finish(None)
    with pytest.raises(MissingMetric):
        reports.finish({})
    assert not sent


def test_a_returned_missing_metric_completes_the_last_epoch():
    reports, sent = _reports()
    reports({"accuracy": 0.9})
    reports.finish({"macs_per_sample": 10.0})
    assert sent[-1] == {"accuracy": 0.9, "macs_per_sample": 10.0, "epoch": 1}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_returned_metric_fails(bad):
    reports, sent = _reports()
    reports(_ok())
    with pytest.raises(NonFiniteMetric) as info:
        reports.finish({"macs_per_sample": bad})  # already reported finite: the return still counts
    assert "'macs_per_sample'" in str(info.value) and "returned" in str(info.value)
    assert len(sent) == 1


def test_finish_sends_new_keys_once_at_the_last_epoch_and_keeps_reported_values():
    reports, sent = _reports()
    reports(_ok(0))
    reports(_ok(1))
    reports.finish({"accuracy": 0.99, "test_accuracy": 0.8, "epoch": 99})
    assert len(sent) == 3
    assert sent[-1] == {**_ok(1), "epoch": 2, "test_accuracy": 0.8}  # reported accuracy and epoch kept
    assert reports.last == sent[-1]


def test_finish_with_nothing_new_sends_nothing():
    reports, sent = _reports()
    reports(_ok())
    reports.finish({"accuracy": 0.1})
    reports.finish(None)
    assert len(sent) == 1


def test_finish_with_nothing_reported_sends_the_returned_dict_as_epoch_one():
    reports, sent = _reports()
    reports.finish({**_ok(), "test_accuracy": 0.7})
    assert sent == [{**_ok(), "test_accuracy": 0.7, "epoch": 1}]


def test_finish_with_nothing_reported_after_a_restore_numbers_the_return_after_it():
    reports, sent = _reports(first_epoch=3)
    reports.finish(_ok())
    assert [m["epoch"] for m in sent] == [3]


def test_a_returned_dict_alone_is_checked_too():
    reports, sent = _reports()
    with pytest.raises(NonFiniteMetric, match="'accuracy'"):
        reports.finish({"accuracy": math.nan, "macs_per_sample": 1.0})
    with pytest.raises(MissingMetric, match="'macs_per_sample'"):
        _reports()[0].finish({"accuracy": 0.5})
    assert not sent


# -- not a dict -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0.9, [0.9, 100.0], ("accuracy", 0.9), "accuracy=0.9"])
def test_a_report_that_is_not_a_dict_is_an_error(value):
    reports, sent = _reports()
    with pytest.raises(ObjectiveOutputError, match=r"report\(\) takes a dict"):
        reports(value)
    assert not sent


@pytest.mark.parametrize("value", [0.9, [0.9, 100.0], (0.9, 100.0), "done"])
def test_a_return_that_is_not_a_dict_or_none_is_an_error(value):
    reports, sent = _reports()
    reports(_ok())
    with pytest.raises(ObjectiveOutputError, match=r"run\(\) must return a dict of final metrics or None"):
        reports.finish(value)
    assert len(sent) == 1


def test_the_errors_are_value_errors_of_one_family():
    # the trial fails with this reason; callers may catch ValueError
    assert issubclass(NonFiniteMetric, ObjectiveOutputError) and issubclass(MissingMetric, ObjectiveOutputError)
    assert issubclass(ObjectiveOutputError, ValueError)


def test_a_metric_reported_earlier_but_not_last_is_named_with_its_epoch():
    sent = []
    reports = EpochReports(("accuracy", "macs"), sent.append)
    reports({"accuracy": 0.5, "macs": 10.0})
    reports({"accuracy": 0.6})
    with pytest.raises(MissingMetric, match=r"epoch 2\) lacks 'macs' \(last reported at epoch 1\)"):
        reports.finish(None)


def test_a_0d_tensor_or_numpy_scalar_is_taken_as_its_number_and_a_vector_is_refused_by_name():
    import torch

    reports, sent = _reports()
    reports({**_ok(), "loss": torch.tensor(0.25, requires_grad=True) * 2, "n": np.int64(3), "f": np.float32(0.5)})
    assert sent[-1]["loss"] == 0.5 and type(sent[-1]["loss"]) is float
    assert type(sent[-1]["n"]) is int and type(sent[-1]["f"]) is float
    with pytest.raises(ObjectiveOutputError, match=r"'loss' is a torch.Tensor of shape \(3,\), not a number.*item\(\)"):
        reports({**_ok(), "loss": torch.ones(3)})
    with pytest.raises(ObjectiveOutputError, match=r"'hist' is a numpy.ndarray of shape \(2,\), not a number"):
        reports({**_ok(), "hist": np.array([1, 2])})
    with pytest.raises(ObjectiveOutputError, match=r"'model' is a torch.nn.modules.linear.Linear, not a number"):
        reports({**_ok(), "model": torch.nn.Linear(1, 1)})
    reports({**_ok(), "points": [{"accuracy": 0.5}]})  # lists of numbers pass (an early exit's operating points)
    assert sent[-1]["points"] == [{"accuracy": 0.5}]
