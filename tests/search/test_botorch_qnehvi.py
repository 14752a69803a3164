"""The BoTorch searcher's candidates function (search/searchers/botorch_qnehvi.py): qLogNEHVI's
log values start BoTorch's optimiser from its best raw samples, not from random points."""

import warnings

import pytest

from gatesearch.search.searchers.registry import SEARCHERS

pytestmark = pytest.mark.skipif(bool(SEARCHERS["botorch"].missing()), reason="optional extra not installed: botorch")


def _data(n: int = 10, d: int = 3, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=torch.float64) * 4.0 - 2.0  # bounds [-2, 2]^d
    # two maximised objectives in tension (closeness to +1 and to -1 in every coordinate), in units
    # like an accuracy's: a hypervolume improvement below 1, so qLogNEHVI's values are negative
    obj = 0.01 * torch.stack([-((x - 1.0) ** 2).sum(-1), -((x + 1.0) ** 2).sum(-1)], dim=-1)
    bounds = torch.tensor([[-2.0] * d, [2.0] * d], dtype=torch.float64)
    return x, obj, bounds


def test_candidates_start_from_the_acquisitions_best_raw_samples():
    """optuna-integration's own function passes ``nonnegative=True`` with the log acquisition: where
    the hypervolume improvement is below 1 (objectives in an accuracy's units) every ask warned
    BadInitialCandidatesWarning, drew its raw samples three more times and started from random
    points (on these data: 12 s against 2.6 s). Ours raises no such warning, stays in the bounds, is
    reproducible under a seed (the sampler seeds torch around each call) and moves away from a
    pending point."""
    import torch
    from botorch.exceptions.warnings import BadInitialCandidatesWarning
    from botorch.utils.sampling import manual_seed

    from gatesearch.search.searchers.botorch_qnehvi import qlognehvi_candidates

    x, obj, bounds = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with manual_seed(7):
            first = qlognehvi_candidates(x, obj, None, bounds, None)
    bad = [w for w in caught if issubclass(w.category, BadInitialCandidatesWarning)]
    assert not bad, [str(w.message) for w in bad]
    assert first.shape == (1, 3) and bool(((first >= -2.0) & (first <= 2.0)).all())
    with manual_seed(7):
        again = qlognehvi_candidates(x, obj, None, bounds, None)
    assert torch.equal(first, again)
    # a pending point (a running trial) changes the proposal: parallel trials differ
    with manual_seed(7):
        pending = qlognehvi_candidates(x, obj, None, bounds, first)
    assert not torch.allclose(pending, first, atol=1e-3)


def test_constraints_steer_the_candidate_to_the_feasible_side():
    """With a constraint column (feasible at <= 0, Optuna's and BoTorch's convention) that allows
    only x0 <= -1, the candidate lands there, which the unconstrained front (x0 up to +1) does not
    require."""
    import torch
    from botorch.utils.sampling import manual_seed

    from gatesearch.search.searchers.botorch_qnehvi import qlognehvi_candidates

    x, obj, bounds = _data(n=16, seed=1)
    con = (x[:, :1] + 1.0)  # feasible where x0 <= -1
    with manual_seed(0):
        cand = qlognehvi_candidates(x, obj, con, bounds, None)
    assert cand.shape == (1, 3) and float(cand[0, 0]) <= -0.9, cand
    assert torch.isfinite(cand).all()


def _grid():
    """A 12-configuration discrete space (an int, a categorical) in the sampler's encoding, and two
    objectives in tension (accuracy up with x and y, cost up with both), maximised as BoTorch sees them."""
    import itertools

    import numpy
    import torch
    from optuna._transform import _SearchSpaceTransform
    from optuna.distributions import CategoricalDistribution, IntDistribution

    space = {"x": IntDistribution(0, 3), "y": CategoricalDistribution(["a", "b", "c"])}
    transform = _SearchSpaceTransform(space)
    configs = [dict(zip(space, v)) for v in itertools.product(range(4), "abc")]

    def encode(cs):
        return torch.from_numpy(numpy.array([transform.transform(c) for c in cs], dtype=numpy.float64))

    def objectives(cs):
        level = {"a": 0, "b": 1, "c": 2}
        return torch.tensor([[0.5 + 0.1 * c["x"] + 0.03 * level[c["y"]], -(2 * c["x"] + level[c["y"]] + 1.0)]
                             for c in cs], dtype=torch.float64)

    bounds = torch.from_numpy(transform.bounds).T.contiguous()
    return transform, configs, encode, objectives, bounds


def _rounds_to(transform, candidate) -> dict:
    return transform.untransform(candidate.reshape(-1).numpy())


def test_a_candidate_that_would_repeat_a_run_configuration_is_passed_over():
    """9 of the 12 configurations have run and one is running: the acquisition's own best restart
    rounds to one of them (what plain BoTorch proposes, a repeat deduplication answers from memory
    and the sampler is asked again, a model fit each time). Given the sampler's transform the
    candidate rounds to one of the two configurations neither run nor running."""
    from botorch.utils.sampling import manual_seed

    from gatesearch.search.searchers.botorch_qnehvi import qlognehvi_candidates

    transform, configs, encode, objectives, bounds = _grid()
    unseen = [configs[i] for i in (4, 9)]
    running = [configs[6]]
    done = [c for c in configs if c not in unseen and c not in running]
    x, obj, pending = encode(done), objectives(done), encode(running)
    with manual_seed(3):
        plain = _rounds_to(transform, qlognehvi_candidates(x, obj, None, bounds, pending))
    with manual_seed(3):
        ours = qlognehvi_candidates(x, obj, None, bounds, pending, transform=transform)
    assert plain not in unseen  # the repeat this guards against
    assert ours.shape == (1, bounds.size(-1)) and _rounds_to(transform, ours) in unseen


def test_the_fallback_draws_only_configurations_neither_run_nor_running():
    """When every restart repeats a configuration, the acquisition scores configurations drawn at
    random: only unseen ones, each encoded exactly as the sampler encodes that configuration (the
    point that would run); none left to draw: None (the best restart is returned, and the core's
    unstick decides)."""
    import torch

    from gatesearch.search.searchers.botorch_qnehvi import _config_key, _unseen_configurations

    transform, configs, encode, _, bounds = _grid()
    seen = {_config_key(transform, row) for row in encode(configs[:10])}
    torch.manual_seed(0)
    pool = _unseen_configurations(transform, bounds, seen, 256)
    assert pool is not None
    # the two unseen configurations, each once, as the exact points the sampler encodes them to
    assert len(pool) == 2
    assert {tuple(row.tolist()) for row in pool} == {tuple(row.tolist()) for row in encode(configs[10:])}
    everything = {_config_key(transform, row) for row in encode(configs)}
    assert _unseen_configurations(transform, bounds, everything, 256) is None


def test_the_registry_builds_the_non_repeat_sampler_and_pickles_the_plain_function():
    """The ``botorch`` searcher's sampler binds the transform for one ask only: what a search saves
    (and ``gatesearch resume`` loads) holds the plain candidates function."""
    import pickle

    from gatesearch.search.searchers.botorch_qnehvi import qlognehvi_candidates
    from gatesearch.search.searchers.botorch_sampler import NonRepeatBoTorchSampler
    from gatesearch.spaces import Categorical, Int, Space

    space = Space({"x": Int(0, 3), "y": Categorical(("a", "b"))})
    core = SEARCHERS["botorch"].core(space, ["acc", "macs"], ["max", "min"], seed=0, budget=10, capped=False)
    sampler = core.inner.study.sampler
    assert isinstance(sampler, NonRepeatBoTorchSampler)
    core.ask("t0")
    assert sampler._candidates_func is qlognehvi_candidates
    assert pickle.loads(pickle.dumps(core)).inner.study.sampler._candidates_func is qlognehvi_candidates
