"""Routing-aware MAC count of a whole user model: attention, dense layers and head from
``torch.utils.flop_counter``, every MoE layer from its own exact count.

    total = (F − Σ_m F_m) / 2  +  Σ_m M_m  [+ E]

over one forward call of the model on an example input, where

- F is what :class:`~torch.utils.flop_counter.FlopCounterMode` counts for the whole call: 2 flops
  per multiply-accumulate of every matmul-like op (``mm``, ``addmm``, ``bmm``, ``baddbmm``,
  convolutions, fused attention kernels) over the full shapes (a causal mask does not halve
  attention), nothing for biases, norms, activations, softmax, embeddings or residual adds;
- F_m is the part of F spent inside MoE layer m (:class:`~gatesearch.models.moe_ffn.MoEFeedForward`
  or a bare :class:`~gatesearch.models.moe.MoELayer`), replaced by
- M_m, the MACs layer m reports for that call (its ``macs_per_token`` × tokens, or
  ``macs_per_sample`` × rows): the gate plus only the (row, expert) pairs really dispatched, after
  any capacity drop; that equals F_m / 2 for every built-in gate (``tests/models/test_moe_ffn.py``),
  and taking the layer's own number counts each MoE layer exactly once whatever its gate does;
- E (only with ``count_elementwise=True``) is the MSDNet op-counter convention of
  :mod:`~gatesearch.models.vit` and :mod:`~gatesearch.models.early_exit`: every ``nn.Linear``'s bias
  (one MAC per output element) and ``nn.MultiheadAttention``'s projection biases, plus 2.5 MACs per
  element of every ``nn.LayerNorm`` output, outside MoE layers.

Two CPU gaps of the flop counter are closed here: ``F.scaled_dot_product_attention``'s CPU kernel
(``_scaled_dot_product_flash_attention_for_cpu``, counted 0 by torch) gets torch's own formula for
the GPU kernels (Q·Kᵀ and A·V over the full score matrix), and ``nn.MultiheadAttention``'s
inference fast path (one fused op, counted 0) is switched off for the call, so its projections and
attention run, and are counted, as separate ops (same result).
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from gatesearch.models.moe import MoELayer, MoEOutput
from gatesearch.models.moe_ffn import MoEFeedForward, MoEFeedForwardOutput

#: the layers whose own count replaces the flop counter's (the outermost one when nested)
MOE_TYPES = (MoEFeedForward, MoELayer)

#: MACs per element of a LayerNorm output (mean, variance, normalise, scale, shift), the MSDNet
#: op-counter convention :mod:`~gatesearch.models.vit` uses
LAYERNORM_MACS = 2.5


@dataclass(frozen=True)
class MacCount:
    """MACs of one forward call, from :func:`count_macs`.

    Attributes:
        total: all MACs of the call: ``dense + elementwise + sum(moe.values())``.
        dense: matmul MACs outside the MoE layers (flop counter / 2).
        elementwise: biases and LayerNorms outside the MoE layers (0 unless ``count_elementwise``).
        moe: per MoE layer (its name in ``model.named_modules()``), the MACs it reported for the
            call: gate + dispatched experts, summed over calls if it ran more than once.
        samples: the example input's leading dimension B.
        tokens: B·T for token-shaped input (``(B, T)`` integer ids or ``(B, T, d)`` floats),
            else the ``tokens`` given to :func:`count_macs`, else None.
    """

    total: float
    dense: float
    elementwise: float
    moe: Mapping[str, float] = field(default_factory=dict)
    samples: int = 1
    tokens: int | None = None

    @property
    def per_sample(self) -> float:
        return self.total / self.samples

    @property
    def per_token(self) -> float:
        if self.tokens is None:
            raise ValueError("per_token needs token-shaped input ((B, T) ids or (B, T, d)) or count_macs(..., tokens=)")
        return self.total / self.tokens


def count_macs(model: nn.Module, example_input: Any, *, train: bool = False, count_elementwise: bool = False,
               forward_kwargs: Mapping[str, Any] | None = None, tokens: int | None = None) -> MacCount:
    """Count the MACs of ``model(*example_input, **forward_kwargs)``, routing-aware.

    Dense parts (attention, projections, dense FFNs, heads, convolutions) are what
    ``torch.utils.flop_counter.FlopCounterMode`` counts, halved (2 flops per MAC); every MoE layer
    (:class:`~gatesearch.models.moe_ffn.MoEFeedForward`, :class:`~gatesearch.models.moe.MoELayer`)
    contributes instead its own count for this call: its gate plus only the experts it dispatched
    (so top-k, capacity drops, hash routing and DTS's dense training phase are what was really
    run). See the module docstring for the formula and what is not counted.

    Args:
        model: any ``nn.Module``; its forward must accept the example input.
        example_input: a tensor, or a tuple of positional arguments (the first must be a tensor
            whose leading dimension is the batch), on the model's device.
        train: count a training forward (``model.train()``: dropout, noisy gates, DTS's dense phase,
            the local search's permutation matmul) with autograd on; otherwise an inference forward
            (``model.eval()``) under ``torch.no_grad``. Every submodule's mode is restored afterwards.
        count_elementwise: add ``nn.Linear`` biases (1 MAC per output element),
            ``nn.MultiheadAttention``'s projection biases and ``nn.LayerNorm`` (2.5 per element)
            outside MoE layers: the convention of
            :meth:`~gatesearch.models.early_exit.EarlyExitNetwork.exit_costs`, which also charges
            each JEI-DNN gate 9·C + 1 MACs (C classes) for its softmax statistics and sigmoid, computed
            by a function rather than a module: ``exit_costs()[-1]`` = this count + (L − 1)·(9·C + 1).
        forward_kwargs: keyword arguments of the forward call (e.g. ``{"step": 100}``: gate schedules
            read the step, so the count depends on it).
        tokens: the number of tokens, for input that is not token-shaped.

    Returns:
        :class:`MacCount`: ``total``, ``per_sample``, ``per_token`` and the breakdown.

    The global RNG state is left as it was (the call's random draws come from a fork of it, so
    ``torch.manual_seed(s)`` before ``count_macs`` and before a real call gives both the same
    routing). One call is counted: with a data-dependent router the count is that batch's.
    """
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    if not args or not isinstance(args[0], Tensor) or args[0].dim() == 0:
        raise TypeError("example_input must be a tensor or a tuple whose first element is a batched tensor")
    first = args[0]
    samples = int(first.shape[0])
    if tokens is None and first.dim() >= 2 and ((first.dim() == 2 and not first.is_floating_point()) or
                                                (first.dim() == 3 and first.is_floating_point())):
        tokens = samples * int(first.shape[1])
    moe_layers = _outermost_moe(model)
    inside_moe = {id(m) for _, layer in moe_layers for m in layer.modules()}
    counter = FlopCounterMode(display=False, custom_mapping=_extra_flop_formulas())
    moe_macs = {name: 0.0 for name, _ in moe_layers}
    moe_flops = {name: 0 for name, _ in moe_layers}  # the flop counter's flops inside each layer
    elementwise = [0.0]
    modes = {m: m.training for m in model.modules()}
    cuda = sorted({t.device.index or 0 for t in (*model.parameters(), *model.buffers()) if t.is_cuda})
    with ExitStack() as stack:
        for name, layer in moe_layers:
            stack.enter_context(_MoEHooks(layer, name, counter, moe_macs, moe_flops))
        if count_elementwise:
            # MultiheadAttention applies its out_proj functionally: its bias is counted with the MHA
            skip = inside_moe | {id(c) for m in model.modules() if isinstance(m, nn.MultiheadAttention)
                                 for c in m.modules() if c is not m}
            for m in model.modules():
                if id(m) not in skip:
                    stack.enter_context(_ElementwiseHook(m, elementwise))
        stack.enter_context(torch.random.fork_rng(devices=cuda))
        stack.enter_context(_MHAFastpathOff())
        stack.enter_context(torch.enable_grad() if train else torch.no_grad())
        stack.callback(lambda: [m.train(flag) for m, flag in modes.items()])
        model.train(train)
        with counter:
            model(*args, **dict(forward_kwargs or {}))
    dense = (counter.get_total_flops() - sum(moe_flops.values())) / 2  # 2 flops per MAC
    moe = {name: float(v) for name, v in moe_macs.items()}
    total = dense + elementwise[0] + sum(moe.values())
    return MacCount(total=total, dense=float(dense), elementwise=elementwise[0], moe=moe, samples=samples,
                    tokens=tokens)


def _outermost_moe(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every MoE layer that is not inside another one (a MoEFeedForward's own
    MoELayer is counted through the MoEFeedForward)."""
    found: list[tuple[str, nn.Module]] = []
    for name, m in model.named_modules():
        if isinstance(m, MOE_TYPES) and not any(m in set(outer.modules()) for _, outer in found):
            found.append((name, m))
    return found


class _MoEHooks:
    """Hooks on one MoE layer: on entry, note the flop counter's total; on exit, charge the flops
    counted since to the layer (to be removed from ``dense``) and add the MACs it reported."""

    def __init__(self, layer: nn.Module, name: str, counter: FlopCounterMode, macs: dict, flops: dict):
        self.layer, self.name, self.counter, self.macs, self.flops = layer, name, counter, macs, flops
        self.entered: list[int] = []  # a stack: a layer may be re-entered (shared, recursive models)

    def __enter__(self) -> "_MoEHooks":
        self.handles = [self.layer.register_forward_pre_hook(self._pre), self.layer.register_forward_hook(self._post)]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()

    def _pre(self, module: nn.Module, args: Any) -> None:
        self.entered.append(self.counter.get_total_flops())

    def _post(self, module: nn.Module, args: Any, out: Any) -> None:
        start = self.entered.pop()
        if not self.entered:  # only the outermost call of a re-entered layer
            self.flops[self.name] += self.counter.get_total_flops() - start
        if isinstance(out, MoEFeedForwardOutput):  # per token of (B, T, d)
            rows = out.output.shape[0] * out.output.shape[1]
            self.macs[self.name] += out.macs_per_token * rows
        elif isinstance(out, MoEOutput):  # per row of (B, d)
            self.macs[self.name] += out.macs_per_sample * out.outputs[0].shape[0]
        else:
            raise TypeError(f"MoE layer {self.name!r} returned {type(out).__name__}, not its output type")


class _ElementwiseHook:
    """The MSDNet op-counter extras of one module: Linear bias, MultiheadAttention biases,
    LayerNorm at 2.5 per element."""

    def __init__(self, module: nn.Module, acc: list[float]):
        self.module, self.acc, self.handle = module, acc, None

    def __enter__(self) -> "_ElementwiseHook":
        m = self.module
        if isinstance(m, nn.MultiheadAttention):
            self.handle = m.register_forward_hook(self._mha, with_kwargs=True)
        elif isinstance(m, nn.Linear):
            self.handle = m.register_forward_hook(self._linear)
        elif isinstance(m, nn.LayerNorm):
            self.handle = m.register_forward_hook(self._layer_norm)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.handle is not None:
            self.handle.remove()

    def _linear(self, m: nn.Linear, args: Any, out: Tensor) -> None:
        if m.bias is not None:
            self.acc[0] += out.numel()  # one add per output element

    def _layer_norm(self, m: nn.LayerNorm, args: Any, out: Tensor) -> None:
        self.acc[0] += LAYERNORM_MACS * out.numel()

    def _mha(self, m: nn.MultiheadAttention, args: tuple, kwargs: dict, out: Any) -> None:
        names = ("query", "key", "value")
        q, k, v = (args[i] if i < len(args) else kwargs[n] for i, n in enumerate(names))
        # in_proj_bias: E per projected row of q, k and v; out_proj.bias: E per query row
        if m.in_proj_bias is not None:
            self.acc[0] += m.embed_dim * (q.numel() // m.embed_dim + k.numel() // m.kdim + v.numel() // m.vdim)
        if m.out_proj.bias is not None:
            self.acc[0] += q.numel()


def _sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """torch's formula for the GPU attention kernels, for any (..., L, E) shapes:
    Q·Kᵀ (L·S·E per batch-head) + A·V (L·S·Ev), 2 flops per MAC, the full score matrix."""
    batch = math.prod(query_shape[:-2])  # query heads (grouped-query K/V broadcast to them)
    L, E, S, Ev = query_shape[-2], query_shape[-1], key_shape[-2], value_shape[-1]
    return 2 * batch * L * S * (E + Ev)


def _extra_flop_formulas() -> dict:
    ops = ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_fused_attention_overrideable",
           "_scaled_dot_product_attention_math_for_mps")
    packets = (getattr(torch.ops.aten, name, None) for name in ops)
    return {p: _sdpa_flops for p in packets if p is not None and p not in flop_registry}


class _MHAFastpathOff:
    """``nn.MultiheadAttention``/``nn.TransformerEncoderLayer`` without their fused inference op
    (the flop counter sees it as one uncounted op); restored on exit."""

    def __enter__(self) -> None:
        self.was = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)

    def __exit__(self, *exc: Any) -> None:
        torch.backends.mha.set_fastpath_enabled(self.was)
