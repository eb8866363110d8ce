"""``model.freeze = "backbone"``: train only the new classifier head (transfer learning).

Every parameter outside the head gets ``requires_grad = False``, so no gradient is computed
for it and the optimizer is given only the head's parameters (``train.optim`` builds it over
the parameters that require grad). That alone would still let the frozen backbone's BatchNorm
layers move: in train mode they normalise with each batch's statistics and update their
running mean and variance. They are therefore kept in eval mode (a forward pre-hook sets
``training = False`` before each call, since the loop switches the whole model to train mode
every epoch): the backbone computes exactly the function it was pretrained as, at every batch
size, and nothing in it changes — the usual choice for a frozen base (Keras does the same).
Dropout layers in the backbone are left alone.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def freeze_backbone(model: nn.Module, head: str) -> nn.Module:
    """Freeze everything in ``model`` but the module at dotted path ``head``; returns ``model``.

    Frozen BatchNorm layers stay in eval mode for good (see the module docstring). The hooks are
    module-level functions, so the model still deep-copies (probes) and pickles.
    """
    trainable = model.get_submodule(head)
    keep = {id(p) for p in trainable.parameters()}
    for p in model.parameters():
        if id(p) not in keep:
            p.requires_grad_(False)
    inside_head = {id(m) for m in trainable.modules()}
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and id(module) not in inside_head:
            module.eval()
            module.register_forward_pre_hook(_stay_in_eval)
    return model


def _stay_in_eval(module: nn.Module, args: Any) -> None:
    """Forward pre-hook: a frozen BatchNorm uses (and keeps) its running statistics."""
    module.training = False


def kept_in_eval(module: nn.Module) -> bool:
    """Whether ``module`` is a BatchNorm layer that :func:`freeze_backbone` keeps in eval mode
    (it normalises with its running statistics at every batch size)."""
    return _stay_in_eval in module._forward_pre_hooks.values()
