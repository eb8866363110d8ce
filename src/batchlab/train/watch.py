"""Per-layer signals at evaluations: gradient norm, update-to-weight ratio, dead units.

A :class:`LayerWatch` measures each parameterised layer (a module with parameters of its own)
once per evaluation, never every step, so it costs a weight copy, a few norms and one forward
pass over a fixed probe batch per evaluation (none in the built-in loop, whose evaluation of its
fixed training subset serves as the probe):

- ``layer/<name>/grad_norm``: the L2 norm of the layer's gradient in the update after the
  evaluation (0 when no gradient reaches it: a ``.detach()`` upstream, frozen parameters);
- ``layer/<name>/update_ratio``: |Δw| / |w| of that update (L2 norms over the layer's
  parameters): ~1e-3 is the classic healthy order (Karpathy), 1e-6 a layer that barely learns;
- ``layer/<name>/dead_frac``: the fraction of the layer's output units (channels of a conv,
  features of a linear layer) that a following ReLU zeroes on every example of a fixed probe
  batch, in eval mode: in the built-in loop the fixed training subset it evaluates anyway (no
  extra forward pass), in a tracked loop the batch given to ``run.watch``. ``<name>`` is the
  layer that produced the units (normalisation layers between it and the ReLU pass through);
  hooks are registered only for that pass.

The cycle is ``arm()`` at an evaluation (a copy of the weights; in ``hooks`` mode, gradient
hooks), one optimizer update, then ``collect()``. The built-in loop reads ``p.grad`` after the
update (it zeroes gradients before each update, and the fp16 scaler has unscaled them by then);
a tracked loop may zero its gradients anywhere, so there the gradient hooks record each
parameter's gradient as backward produces it. Nothing here changes the update itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from batchlab.layernames import metric_name

#: The activations whose zeros count as dead units (a unit a ReLU zeroes on every input passes
#: no gradient and never recovers); functional ``F.relu`` calls cannot be hooked and are not seen.
RELU_LIKE: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)
#: Layers that pass their input's units through (the dead units belong to the layer before).
PASS_THROUGH: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.Dropout, nn.Identity)
PROBE_SIZE = 256  # examples in the probe batch: a unit alive on 1 of 256 examples is not dead


def _layers(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Each module with parameters of its own -> those parameters (frozen ones included: a
    frozen layer is one the diagnosis must see)."""
    out: dict[str, list[nn.Parameter]] = {}
    for name, module in model.named_modules():
        params = list(module.parameters(recurse=False))
        if params:
            out[name or "model"] = params
    return out


class LayerWatch:
    """The per-layer signals of one model (see the module doc). ``hooks``: record gradients with
    gradient hooks (tracked loops) instead of reading ``p.grad`` after the update."""

    def __init__(self, model: nn.Module, *, hooks: bool = False) -> None:
        self.model = model
        self.layers = _layers(model)
        self.hooks = hooks
        self.armed = False
        self._before: list[torch.Tensor] = []
        self._grads: dict[nn.Parameter, torch.Tensor] = {}
        self._handles: list[Any] = []

    def summary(self, frozen_on_purpose: bool = False) -> dict[str, list[str]]:
        """What the diagnosis needs beside the rows: ``layers``, the layer names in the model's
        order (first to last: stored metric names are only sorted by name), and with
        ``frozen_on_purpose`` (the spec froze them: ``model.freeze``) ``frozen_layers``, those
        without a trainable parameter, which then receive no gradient by design."""
        out = {"layers": list(self.layers)}
        if frozen_on_purpose:
            out["frozen_layers"] = [n for n, ps in self.layers.items()
                                    if not any(p.requires_grad for p in ps)]
        return out

    # ------------------------------------------------------------------ update and gradients
    def arm(self) -> None:
        """Copy the weights (and, in hooks mode, start recording gradients) so that the next
        ``collect()`` measures the update in between."""
        self.disarm()
        with torch.no_grad():
            self._before = [p.detach().clone() for ps in self.layers.values() for p in ps]
        if self.hooks:
            def keep(p: torch.Tensor) -> None:
                if p.grad is not None:  # the accumulated gradient so far: the last call wins
                    self._grads[p] = p.grad.detach().pow(2).sum()
            self._handles = [p.register_post_accumulate_grad_hook(keep)
                             for ps in self.layers.values() for p in ps if p.requires_grad]
        self.armed = True

    def disarm(self) -> None:
        """Drop the copy and the hooks (a run that ends after its last evaluation)."""
        for handle in self._handles:
            handle.remove()
        self._handles, self._before, self._grads, self.armed = [], [], {}, False

    @torch.no_grad()
    def collect(self, steps: int = 1) -> dict[str, float]:
        """The grad norm and update ratio of every layer since ``arm()``, as metric values.

        ``steps``: updates since ``arm()`` (a tracked loop may log less often than it steps):
        the ratio is the mean per update, |Δw| / |w| / steps. A layer whose weights are all
        zero has no ratio (0/0). One host transfer for all layers."""
        if not self.armed:
            return {}
        params = [p for ps in self.layers.values() for p in ps]
        now = [p.detach() for p in params]
        # a few fused calls over every parameter: per-parameter ops cost ~0.5 ms an evaluation
        # on a small model, a percent of a short run
        deltas = torch._foreach_norm(torch._foreach_sub(now, self._before))
        weights = torch._foreach_norm(self._before)
        if self.hooks:
            grads = [self._grads.get(p) for p in params]
        else:
            have = [p.grad for p in params if p.grad is not None]
            norms = iter(torch._foreach_norm(have) if have else ())
            grads = [next(norms).square() if p.grad is not None else None for p in params]
        device = params[0].device
        zero = torch.zeros((), device=device)
        table = torch.stack([_stack([zero if g is None else g for g in grads], device),
                             _stack(deltas, device).square(), _stack(weights, device).square()])
        rows = table.double().cpu().T.tolist()  # one host transfer for all layers
        self.disarm()
        out: dict[str, float] = {}
        k = 0
        for name, ps in self.layers.items():
            g, d, w = (sum(col) for col in zip(*rows[k:k + len(ps)], strict=True))
            k += len(ps)
            out[metric_name(name, "grad_norm")] = math.sqrt(g) if math.isfinite(g) else g
            if w > 0:
                out[metric_name(name, "update_ratio")] = math.sqrt(d / w) / max(steps, 1)
        return out

    # ------------------------------------------------------------------ dead units
    @torch.no_grad()
    def dead_fractions(self, forward: Callable[[], Any]) -> dict[str, float]:
        """The dead-unit fraction per layer over one call of ``forward`` (a forward pass of the
        probe batch, in eval mode and under no_grad: the caller's mode is restored). Layers
        without a ReLU after them are absent."""
        was_training = self.model.training
        self.model.eval()
        try:
            with self.dead_units() as out:
                forward()
        finally:
            self.model.train(was_training)
        return out

    @contextmanager
    def dead_units(self) -> Iterator[dict[str, float]]:
        """The dead-unit fraction per layer over every forward pass inside the block (the caller
        runs them: the built-in loop's evaluation of its fixed training subset, so no extra
        pass is needed); the yielded dict is filled when the block ends."""
        alive: dict[str, torch.Tensor] = {}
        out: dict[str, float] = {}
        with self._probe_hooks(alive):
            yield out
        out.update({metric_name(name, "dead_frac"): float(1.0 - a.float().mean().item())
                    for name, a in alive.items() if a.numel()})

    @contextmanager
    def _probe_hooks(self, alive: dict[str, torch.Tensor]) -> Iterator[None]:
        """Forward hooks for one probe pass: parameterised layers say who produced the units,
        ReLUs record which of them were ever positive. Removed on exit, whatever happens."""
        last: list[tuple[str, bool]] = []  # (name, whether its units are the last dim)
        handles = []

        def produced(name: str, features_last: bool) -> Callable[..., None]:
            def hook(module: nn.Module, args: Any, output: Any) -> None:
                last[:] = [(name, features_last)]
            return hook

        def relu(name: str) -> Callable[..., None]:
            def hook(module: nn.Module, args: Any, output: Any) -> None:
                if not isinstance(output, torch.Tensor) or output.dim() < 2:
                    return
                owner, features_last = last[0] if last else (name, False)
                # a unit is a channel (dim 1 of a conv's output) or a feature (the last dim of
                # a linear layer's): alive when positive anywhere on any example
                if features_last or output.dim() == 2:
                    peak = output.detach().reshape(-1, output.shape[-1]).amax(dim=0)
                else:  # over the examples first (a contiguous reduction), then the positions
                    peak = output.detach().amax(dim=0).reshape(output.shape[1], -1).amax(dim=1)
                seen = peak > 0
                if owner in alive and alive[owner].shape == seen.shape:
                    alive[owner] |= seen
                else:
                    alive[owner] = seen
            return hook

        for name, module in self.model.named_modules():
            if isinstance(module, RELU_LIKE):
                handles.append(module.register_forward_hook(relu(name)))
            elif (name or "model") in self.layers and not isinstance(module, PASS_THROUGH):
                handles.append(module.register_forward_hook(
                    produced(name or "model", isinstance(module, nn.Linear))))
        try:
            yield
        finally:
            for h in handles:
                h.remove()


def _stack(values: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """0-d tensors as one float32 vector on ``device``; element by element only when they
    live on several devices or in several dtypes (a model split over devices)."""
    try:
        return torch.stack(values).float()
    except RuntimeError:
        return torch.stack([v.float().to(device) for v in values])


def first_examples(batch: Any, n: int = PROBE_SIZE) -> Any:
    """The first ``n`` examples of a model input (a tensor, or a tuple/list of them), detached
    and copied: a fixed probe batch that later updates in place cannot change."""
    if isinstance(batch, torch.Tensor):
        return batch[:n].detach().clone()
    if isinstance(batch, tuple | list):
        return type(batch)(first_examples(b, n) for b in batch)
    return batch
