"""The BoTorch searcher's candidates: qLogNEHVI over a GP per objective (and per constraint).

optuna-integration's ``qnehvi_candidates_func`` (5.0) builds the same acquisition but optimises it
with ``options={"nonnegative": True}``, a flag for acquisitions whose values are >= 0 (qEHVI). The
log form it switched to is negative almost everywhere, so BoTorch's non-negative initialiser
found "no non-zero value" at every ask: it drew its raw samples again at 2x, 3x and 4x (10,240
acquisition evaluations instead of 1,024), then started L-BFGS from *random* points. Measured on
NAS-Bench-201 (seed 0, one at a time): 29 of 29 asks fell back to random starts, 22 s an ask on a
shared 2-core CPU. Here BoTorch picks its initialiser from the acquisition itself
(``botorch.optim.initializers.is_nonnegative``: Boltzmann sampling over the log values).

On a discrete space (a table's grid, integer and categorical parameters) the acquisition's best
restart often rounds to a configuration already run: deduplication answers it from memory, the
model is refitted on the same data and proposes it again (about half of BoTorch's asks on
NAS-Bench-201), each ask a model fit of seconds. Given the sampler's parameter transform
(``search/searchers/botorch_sampler.py`` passes it), the candidate is the best of the optimiser's
restarts that does not round to a finished or running configuration; when all of them do (they
often converge to a few optima), the acquisition's best among configurations drawn at random.
"""

from __future__ import annotations

from typing import Any

from gatesearch.spaces import config_key


def qlognehvi_candidates(train_x: Any, train_obj: Any, train_con: Any | None, bounds: Any,
                         pending_x: Any | None, *, transform: Any = None) -> Any:
    """Optuna's ``candidates_func`` contract (``BoTorchSampler``): the next candidate, in the
    sampler's (one-hot relaxed) parameter space, maximising qLogNEHVI (:func:`acquisition`).

    ``train_obj``: objectives, maximised (the sampler negates minimised ones); ``train_con``:
    constraint values, feasible at <= 0, or None; ``pending_x``: running trials (BoTorch integrates
    over their outcomes, so parallel trials differ). The optimiser's budget is optuna-integration's:
    20 L-BFGS-B restarts chosen from 1,024 raw samples, up to 200 iterations each.

    ``transform``: the sampler's ``optuna._transform._SearchSpaceTransform`` (it rounds a candidate
    to a configuration). Given, the candidate is the best restart by acquisition value that rounds
    to no configuration of ``train_x`` or ``pending_x``; when every restart does, the best by
    acquisition value of :data:`UNSEEN_DRAWS` configurations drawn at random that are neither.
    Without it, the best restart, as BoTorch's own ``return_best_only``."""
    import torch
    from botorch.optim import optimize_acqf
    from botorch.utils.transforms import normalize, unnormalize

    acqf = acquisition(train_x, train_obj, train_con, bounds, pending_x)
    unit = torch.zeros_like(bounds)
    unit[1] = 1
    # no "nonnegative" option: the initialiser follows the acquisition (log values are negative).
    # Every restart's optimum comes back (restarts x 1 x d); with q = 1 this is the joint
    # optimisation BoTorch's sequential=True runs, so the best restart is the same one.
    restarts, values = optimize_acqf(acq_function=acqf, bounds=unit, q=1, num_restarts=20, raw_samples=1024,
                                     options={"batch_limit": 5, "maxiter": 200}, return_best_only=False)
    ranked = unnormalize(restarts.detach(), bounds=bounds)[values.detach().argsort(descending=True)]
    if transform is None:
        return ranked[0]
    seen = {_config_key(transform, row) for row in _rows(train_x, pending_x)}
    for candidate in ranked:
        if _config_key(transform, candidate[0]) not in seen:
            return candidate
    # every restart rounds to a configuration already run or running: the acquisition's best among
    # configurations drawn at random that are neither (none: the best restart, the core unsticks it)
    pool = _unseen_configurations(transform, bounds, seen, UNSEEN_DRAWS)
    if pool is None:
        return ranked[0]
    with torch.no_grad():
        scores = torch.cat([acqf(normalize(chunk, bounds=bounds).unsqueeze(-2)) for chunk in pool.split(64)])
    return pool[scores.argmax()].unsqueeze(0)


#: configurations drawn when every restart repeats one already run (their acquisition values are
#: computed in batches of 64: about a second on one core with 256 posterior samples)
UNSEEN_DRAWS = 256


def _rows(train_x: Any, pending_x: Any | None) -> list[Any]:
    return list(train_x) + (list(pending_x) if pending_x is not None else [])


def _config_key(transform: Any, row: Any) -> str:
    """The configuration ``row`` (one point of the sampler's encoded space) rounds to, as a key."""
    return config_key(transform.untransform(row.detach().cpu().numpy()))


def _unseen_configurations(transform: Any, bounds: Any, seen: set[str], draws: int) -> Any | None:
    """Up to ``draws`` distinct configurations drawn uniformly (torch's generator, which the sampler
    seeds around each ask), none in ``seen``, each encoded exactly (its rounded point, so the
    acquisition scores the configuration that would run); None when every draw was in ``seen``."""
    import torch

    points = bounds[0] + (bounds[1] - bounds[0]) * torch.rand(draws, bounds.size(-1), dtype=bounds.dtype)
    pool: dict[str, Any] = {}
    for point in points:
        params = transform.untransform(point.cpu().numpy())
        key = config_key(params)
        if key not in seen and key not in pool:
            pool[key] = torch.as_tensor(transform.transform(params), dtype=bounds.dtype, device=bounds.device)
    return torch.stack(list(pool.values())) if pool else None


def acquisition(train_x: Any, train_obj: Any, train_con: Any | None, bounds: Any, pending_x: Any | None) -> Any:
    """qLogNEHVI over a GP per outcome (objectives, then constraints), on inputs scaled to the unit
    cube; the arguments are :func:`qlognehvi_candidates`'. The model, the reference point (just below
    the worst observed value of each objective), the QMC sampler (256 Sobol normal draws) and the
    pruned baseline are optuna-integration's. Deterministic under ``botorch.utils.sampling.manual_seed``."""
    import torch
    from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
    from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.sampling import SobolQMCNormalSampler
    from botorch.utils.transforms import normalize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    _no_fused_kernel_compile()
    n_objectives = train_obj.size(-1)
    extra: dict[str, Any] = {}
    train_y = train_obj
    if train_con is not None:
        train_y = torch.cat([train_obj, train_con], dim=-1)
        n_con = train_con.size(-1)
        extra = {"objective": IdentityMCMultiOutputObjective(outcomes=list(range(n_objectives))),
                 # BoTorch's constraint convention is Optuna's: feasible when the value is <= 0
                 "constraints": [lambda Z, i=i: Z[..., n_objectives + i] for i in range(n_con)]}
    x = normalize(train_x, bounds=bounds)
    pending = normalize(pending_x, bounds=bounds) if pending_x is not None else None
    model = SingleTaskGP(x, train_y, outcome_transform=Standardize(m=train_y.shape[-1]))
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    # Ax's approximate box decomposition above four objectives (alpha = 10^(n - 8)), else exact
    alpha = 10 ** (-8 + n_objectives) if n_objectives > 4 else 0.0
    # qLogNEHVI (Daulton et al. 2021; log form: Ament et al. 2023): E[log HVI(f(x) | f(X_baseline))]
    # over posterior samples, with a reference point just below the worst observed objective values
    return qLogNoisyExpectedHypervolumeImprovement(
        model=model, ref_point=(train_obj.min(dim=0).values - 1e-8).tolist(), X_baseline=x, alpha=alpha,
        prune_baseline=True, sampler=SobolQMCNormalSampler(sample_shape=torch.Size((256,))), X_pending=pending,
        **extra)


def _no_fused_kernel_compile() -> None:
    """BoTorch (0.17+) compiles a fused C++ qLogEHVI kernel on first use with torch's
    ``cpp_extension.load``: minutes of g++ on a small machine, guarded by a ``lock`` file under
    ``~/.cache/torch_extensions``. A compile cut short (Ctrl-C, a kill, a CI timeout) leaves that lock
    behind, and torch's ``FileBaton`` has no staleness check, so every later BoTorch search waited on
    it forever, silently. The pure-PyTorch path computes the same acquisition value; a prebuilt
    kernel (an importable ``logei_fused_ext``) is still used."""
    try:
        from botorch.acquisition.multi_objective import logei
    except ImportError:  # another BoTorch layout: nothing to skip
        return
    if getattr(logei, "_load_attempted", True) or getattr(logei, "_C", None) is not None:
        return
    try:
        import logei_fused_ext  # type: ignore[import-not-found]
        logei._C = logei_fused_ext
    except ImportError:
        pass
    logei._load_attempted = True
