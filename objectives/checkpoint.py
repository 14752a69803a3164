"""A trial's training state at the end of an epoch, to checkpoint and to continue from.

The state is a plain dict of tensors and numbers (``torch.load(..., weights_only=True)`` reads it):
the epoch and step reached, the model's ``state_dict`` (buffers included: EvoMoE's phase, the local
search's hardened permutation), every optimiser's ``state_dict``, the data-order generator's state and
the global torch RNG states (gate noise, dropout), so a trial continued from it trains exactly as an
uninterrupted one would (same seed, same device). Learning-rate schedules here are functions of the
step, so the step restores them.

An objective that supports it takes ``restore=`` (a state) in :meth:`Objective.run` and passes
``state=`` to its ``report`` after each epoch; the search saves that state as the trial's Ray Tune
checkpoint (only the last one is kept) and hands it back when the trial restarts.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch


def capture(*, epoch: int, step: int, model: torch.nn.Module, optimizers: Mapping[str, torch.optim.Optimizer],
            generator: torch.Generator, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The training state after ``epoch`` (1-based) and ``step`` optimisation steps."""
    state = {"epoch": int(epoch), "step": int(step), "model": model.state_dict(),
             "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
             "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "extra": dict(extra or {})}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore(state: Mapping[str, Any], *, model: torch.nn.Module, optimizers: Mapping[str, torch.optim.Optimizer],
            generator: torch.Generator) -> tuple[int, int, dict[str, Any]]:
    """Load ``state`` into the model, optimisers and generators; returns (epoch, step, extra)."""
    model.load_state_dict(state["model"])
    missing = set(optimizers) - set(state["optimizers"])
    if missing:
        raise ValueError(f"checkpoint has no state for optimiser(s) {sorted(missing)}")
    for name, opt in optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["epoch"]), int(state["step"]), dict(state.get("extra", {}))


#: a trial's training state inside its checkpoint directory
STATE_FILE = "state.pt"


def save_state(state: Mapping[str, Any], directory: str) -> None:
    """Write ``state`` (from :func:`capture`, plus the epoch's metrics) into ``directory``."""
    import os

    torch.save(dict(state), os.path.join(directory, STATE_FILE))


def load_state(data: bytes, device: str) -> dict[str, Any]:
    """A state written by :func:`save_state`, read from its bytes onto ``device`` (tensors only:
    ``weights_only=True``, so a checkpoint cannot run code)."""
    import io

    return torch.load(io.BytesIO(data), map_location=device, weights_only=True)
