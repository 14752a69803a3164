"""Measured cost: what a trial's model costs in time and memory on the device it runs on, beside the
counted MACs (which do not see dispatch, gathers, capacity padding or exit branching).

The protocol (:class:`CostProtocol`), the same for every built-in objective and for a training
function that calls :func:`measure_inference`:

- **inference latency per sample** (``latency_ms_per_sample``): the model in eval mode on one fixed
  batch of ``batch`` validation samples, ``warmup`` untimed calls, then the median of ``repeats``
  timed calls (``time.perf_counter``; on CUDA, ``torch.cuda.synchronize()`` before and after each),
  divided by the batch size, in milliseconds;
- **training step time** (``train_step_ms``): the epoch's training wall time over its optimizer
  steps (on CUDA, synchronised at the epoch's ends), in milliseconds;
- **peak memory** (``peak_memory_mb``) of that inference batch: on CUDA, ``torch.cuda.max_memory_allocated``
  during the timed calls (weights included); on CPU, where PyTorch's allocator keeps no count, the
  weights' and buffers' bytes plus the peak bytes of the tensors the forward allocates and holds at
  once (tracked by a ``TorchDispatchMode``: every op's output storage counted while a tensor refers
  to it). Both in MiB;
- **expert-load imbalance** (``expert_load_cv``): the coefficient of variation (population standard
  deviation / mean) of the samples (or tokens) each expert receives on that batch, averaged over the
  MoE layers; 0 for a perfectly balanced or dense gate.

Noise: on a shared CPU, latency varies by several percent between runs and more when other trials
run beside it (``max_concurrent > 1`` on the same cores); the median of 7 calls damps single
outliers, not a busy neighbour. Compare latencies within a search, one trial per core
(``cpus_per_trial``), or treat small differences as ties. MACs stay the exact, noise-free measure.
"""

from __future__ import annotations

import statistics
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from gatesearch.objectives.metrics import LATENCY, LOAD_CV, PEAK_MEMORY

MIB = float(1 << 20)


@dataclass(frozen=True)
class CostProtocol:
    """How cost is measured: ``batch`` samples, ``warmup`` untimed calls, the median of ``repeats``."""

    batch: int = 256
    warmup: int = 2
    repeats: int = 7


DEFAULT_PROTOCOL = CostProtocol()


def _sync(device: Any) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class _LiveTensorBytes(TorchDispatchMode):
    """Counts the bytes of the storages that ops allocate while the mode is on, as long as a tensor
    refers to them; ``peak`` is the most held at once."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, list] = {}  # storage address -> [bytes, tensors referring to it]
        self.total = self.peak = 0

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.total -= entry[0]
            del self.live[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key not in self.live:
                    self.live[key] = [storage.nbytes(), 0]
                    self.total += storage.nbytes()
                    self.peak = max(self.peak, self.total)
                self.live[key][1] += 1
                weakref.finalize(t, self._release, key)
        return out


def _weights_bytes(module: torch.nn.Module | None) -> int:
    if module is None:
        return 0
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def measure_inference(call: Callable[[], Any], n_samples: int, device: Any = "cpu", *,
                      module: torch.nn.Module | None = None,
                      protocol: CostProtocol = DEFAULT_PROTOCOL) -> dict[str, float]:
    """``latency_ms_per_sample`` and ``peak_memory_mb`` of ``call()`` (one forward over a batch of
    ``n_samples``, under ``torch.no_grad`` by the caller or here) by the protocol above. ``module``:
    the model, whose weights count towards the CPU peak."""
    with torch.no_grad():
        for _ in range(protocol.warmup):
            call()
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(protocol.repeats):
            _sync(device)
            t0 = time.perf_counter()
            call()
            _sync(device)
            times.append(time.perf_counter() - t0)
        if cuda:
            peak = torch.cuda.max_memory_allocated(device)
        else:
            tracker = _LiveTensorBytes()
            with tracker:
                call()
            peak = _weights_bytes(module) + tracker.peak
    return {LATENCY.name: 1e3 * statistics.median(times) / max(1, n_samples), PEAK_MEMORY.name: peak / MIB}


def load_cv(masks: Sequence[torch.Tensor]) -> float:
    """Expert-load imbalance: per MoE layer, the coefficient of variation of the rows each expert
    receives (``masks``: ``(rows, n_experts)`` booleans, a row dispatched to an expert), averaged."""
    cvs = []
    for m in masks:
        load = m.float().sum(dim=0)
        mean = load.mean()
        cvs.append(float(load.std(unbiased=False) / mean) if mean > 0 else 0.0)
    return sum(cvs) / len(cvs) if cvs else 0.0


def expert_load(masks: Sequence[torch.Tensor]) -> dict[str, float]:
    """``{expert_load_cv: ...}`` for a report."""
    return {LOAD_CV.name: load_cv(masks)}


class StepTimer:
    """The mean wall time of an epoch's optimizer steps: ``start()`` before the first, ``stop(steps)``
    after the last (CUDA synchronised at both ends)."""

    def __init__(self, device: Any = "cpu"):
        self.device, self.t0 = device, 0.0

    def start(self) -> None:
        _sync(self.device)
        self.t0 = time.perf_counter()

    def stop(self, steps: int) -> float:
        _sync(self.device)
        return 1e3 * (time.perf_counter() - self.t0) / max(1, steps)
