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
  batch of at most ``PROBE_SIZE`` (256) examples, in eval mode: in the built-in loop the first
  256 examples of the fixed training subset it evaluates anyway (no extra forward pass; the
  rest of that pass is not counted), at every ``DEAD_EVERY``-th (2nd) evaluation and the last,
  in a tracked loop the batch given to ``run.watch``, at each evaluation.
  ``<name>`` is the layer that produced the units (normalisation layers between it and the
  ReLU pass through); hooks are registered only for that pass.

The cycle is ``arm()`` at an evaluation (a copy of the weights; in ``hooks`` mode, gradient
hooks), one optimizer update, then ``collect()``. The built-in loop reads ``p.grad`` after the
update (it zeroes gradients before each update, and the fp16 scaler has unscaled them by then);
a tracked loop may zero its gradients anywhere, so there the gradient hooks record each
parameter's gradient as backward produces it. Nothing here changes the update itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
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
#: The built-in loop counts dead units at every DEAD_EVERY-th evaluation (the first included)
#: and at the last: the hooks cost a run of a small model as much as the norms do, and a dead
#: unit stays dead (the diagnosis reads the first and the last count).
DEAD_EVERY = 2


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
    gradient hooks (tracked loops) instead of reading ``p.grad`` after the update.

    The model's layers, their parameters and the modules the dead-unit count hooks are read once
    here: a model whose modules change after ``LayerWatch(model)`` needs a new watch."""

    def __init__(self, model: nn.Module, *, hooks: bool = False) -> None:
        self.model = model
        self.layers = _layers(model)
        self.hooks = hooks
        self.armed = False
        # Fixed per model, so built once: an evaluation of a small model costs well under a
        # millisecond only if it walks no module tree and formats no metric name.
        self._params = [p for ps in self.layers.values() for p in ps]
        self._spans = [(metric_name(n, "grad_norm"), metric_name(n, "update_ratio"), len(ps))
                       for n, ps in self.layers.items()]
        self._relus: list[tuple[str, nn.Module]] = []
        self._producers: list[tuple[str, nn.Module, bool]] = []  # (layer, module, units last)
        for name, module in model.named_modules():
            if isinstance(module, RELU_LIKE):
                self._relus.append((name, module))
            elif (name or "model") in self.layers and not isinstance(module, PASS_THROUGH):
                self._producers.append((name or "model", module, isinstance(module, nn.Linear)))
        self._before: list[torch.Tensor] = []  # the weights at ``arm()``; -Δw in ``collect``
        self._weight_norms: list[torch.Tensor] = []  # their norms (0-d tensors)
        self._grads: dict[nn.Parameter, torch.Tensor] = {}
        self._handles: list[Any] = []
        self._evaluations = 0  # calls of ``dead_units_at``

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
            self._before = [p.clone() for p in self._params]  # no_grad: no graph, no detach
            # |w| now, while the copy is still in cache: ``collect`` turns the copy into the
            # update in place (re-reading cold weight copies cost more than the norms)
            self._weight_norms = torch._foreach_norm(self._before)
        if self.hooks:
            def keep(p: torch.Tensor) -> None:
                if p.grad is not None:  # the accumulated gradient so far: the last call wins
                    self._grads[p] = torch.linalg.vector_norm(p.grad.detach())
            self._handles = [p.register_post_accumulate_grad_hook(keep)
                             for p in self._params if p.requires_grad]
        self.armed = True

    def disarm(self) -> None:
        """Drop the copy and the hooks (a run that ends after its last evaluation)."""
        for handle in self._handles:
            handle.remove()
        self._handles, self._before, self._grads, self.armed = [], [], {}, False
        self._weight_norms = []

    @torch.no_grad()
    def collect(self, steps: int = 1) -> dict[str, float]:
        """The grad norm and update ratio of every layer since ``arm()``, as metric values.

        ``steps``: updates since ``arm()`` (a tracked loop may log less often than it steps):
        the ratio is the mean per update, |Δw| / |w| / steps. A layer whose weights are all
        zero has no ratio (0/0). One host transfer for all layers."""
        if not self.armed:
            return {}
        params = self._params
        torch._foreach_sub_(self._before, params)  # the copy becomes -Δw: no second copy
        grads = [self._grads.get(p) for p in params] if self.hooks else [p.grad for p in params]
        if any(g is None for g in grads):  # no gradient reached it: an empty tensor, norm 0
            empty = params[0].new_zeros(0)
            grads = [empty if g is None else g for g in grads]
        # the per-parameter norms of the update and the gradient in ONE fused call, and one
        # host transfer with the weights': on the CPU each torch call costs 5-15 us in a busy
        # training process, which is all a small model's evaluation pays here (a gradient norm
        # stored by a hook is its own norm)
        norms = [*torch._foreach_norm([*self._before, *grads]), *self._weight_norms]
        values = _stack(norms, params[0].device).tolist()
        self.disarm()
        n = len(params)
        out: dict[str, float] = {}
        k = 0
        for grad_name, ratio_name, size in self._spans:
            d, g, w = (sum(v * v for v in values[i + k:i + k + size]) for i in (0, n, 2 * n))
            k += size
            out[grad_name] = math.sqrt(g) if math.isfinite(g) else g
            if w > 0:
                out[ratio_name] = math.sqrt(d / w) / max(steps, 1)
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

    def dead_units_at(self, last: bool) -> AbstractContextManager[dict[str, float]]:
        """``dead_units()`` at every ``DEAD_EVERY``-th call (the first included) and whenever
        ``last`` (the run's last evaluation); otherwise a block that counts nothing and yields
        an empty dict. The built-in loop calls it once per evaluation."""
        due = self._evaluations % DEAD_EVERY == 0 or last
        self._evaluations += 1
        return self.dead_units() if due else nullcontext({})

    @contextmanager
    def dead_units(self, examples: int = PROBE_SIZE) -> Iterator[dict[str, float]]:
        """The dead-unit fraction per layer over the first ``examples`` examples of the first
        forward pass of the model inside the block (the caller runs it: the built-in loop's
        evaluation of its fixed training subset, so no extra pass is needed; later passes in
        the block are not counted, which bounds the cost whatever the subset's size); the
        yielded dict is filled when the block ends. One host transfer for all layers."""
        alive: dict[str, torch.Tensor] = {}
        out: dict[str, float] = {}
        with self._probe_hooks(alive, examples):
            yield out
        names = [name for name, a in alive.items() if a.numel()]
        if names:
            counts = _stack([alive[n].sum() for n in names], alive[names[0]].device).tolist()
            out.update({metric_name(n, "dead_frac"): 1.0 - c / alive[n].numel()
                        for n, c in zip(names, counts, strict=True)})

    @contextmanager
    def _probe_hooks(self, alive: dict[str, torch.Tensor], examples: int) -> Iterator[None]:
        """Forward hooks for one probe pass: parameterised layers say who produced the units,
        ReLUs record which of them were ever positive, and the model's own hook ends the count
        after its first forward pass. Removed on exit, whatever happens."""
        last: list[tuple[str, bool]] = []  # (name, whether its units are the last dim)
        done = [False]

        def produced(name: str, features_last: bool) -> Callable[..., None]:
            def hook(module: nn.Module, args: Any, output: Any) -> None:
                last[:] = [(name, features_last)]
            return hook

        def relu(name: str) -> Callable[..., None]:
            def hook(module: nn.Module, args: Any, output: Any) -> None:
                if done[0] or not isinstance(output, torch.Tensor) or output.dim() < 2:
                    return
                owner, features_last = last[0] if last else (name, False)
                out = output.detach()
                if len(out) > examples:  # (a view; skipped when it would be the whole batch)
                    out = out[:examples]
                # a unit is a channel (dim 1 of a conv's output) or a feature (the last dim of
                # a linear layer's): alive when positive anywhere on any example
                if features_last or out.dim() == 2:
                    peak = out.reshape(-1, out.shape[-1]).amax(dim=0)
                else:  # over the examples first (a contiguous reduction), then the positions
                    peak = out.amax(dim=0).reshape(out.shape[1], -1).amax(dim=1)
                seen = peak > 0
                if owner in alive and alive[owner].shape == seen.shape:
                    alive[owner] |= seen
                else:
                    alive[owner] = seen
            return hook

        def finished(module: nn.Module, args: Any, output: Any) -> None:
            done[0] = True

        handles = [module.register_forward_hook(relu(name)) for name, module in self._relus]
        handles += [module.register_forward_hook(produced(name, last_dim))
                    for name, module, last_dim in self._producers]
        handles.append(self.model.register_forward_hook(finished))
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
