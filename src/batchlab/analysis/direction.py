"""Which way the LR is wrong, judged across a sweep: a run that barely trained is "LR too small"
only if no smaller LR trained better.

A run whose training loss never fell looks the same whether its LR is far too small (every
step too timid) or far too large (the first steps threw the weights into a flat region, e.g. a
BatchNorm network stuck at ln(classes)). The run alone cannot tell them apart; its sweep can:
when a run that differs only in a *smaller* LR (same batch size, model, data, schedule) learned
more, raising the LR is the wrong advice. Such a run's ``lr_too_small`` becomes
``lr_too_large`` with the peer that shows it. Pure: findings in, findings out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from batchlab.analysis.findings import Finding, pct

#: Fields that may differ between a run and the peer that shows its LR is too large.
_FREE = ("lr", "seed")


def _peer_key(config: dict[str, Any]) -> str:
    train = {k: v for k, v in config.get("train", {}).items() if k not in _FREE}
    return json.dumps({**config, "train": train}, sort_keys=True, default=str)


def _lr(config: dict[str, Any]) -> float | None:
    """The run's configured LR, None where its config records none (a tracked run's config
    holds only the keys its user gave) or holds something that is not a number."""
    lr = config.get("train", {}).get("lr")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr):
        return None
    return float(lr)


def _smaller(lr: float | None, than: float) -> bool:
    """Whether a (possibly unrecorded) LR is below ``than``; an unrecorded one never is."""
    return lr is not None and lr < than


def _learned(summary: dict[str, Any]) -> float:
    """How far a run got: its best validation accuracy, else minus its final validation loss."""
    acc = summary.get("best_val_acc")
    if isinstance(acc, int | float) and math.isfinite(acc) and acc >= 0:
        return float(acc)
    loss = summary.get("final_val_loss")
    return -float(loss) if isinstance(loss, int | float) and math.isfinite(loss) else -math.inf


def reconsider_lr_too_small(
    runs: Sequence[tuple[dict[str, Any], dict[str, Any], str]], findings: Sequence[list[Finding]],
) -> list[list[Finding]]:
    """``runs``: (config, summary, status) per run; ``findings``: each run's findings. Returns
    the findings with ``lr_too_small`` replaced by ``lr_too_large`` where a peer with a smaller
    LR learned more (the peer that learned most is quoted). A run without a recorded LR keeps
    its finding and is nobody's peer: with no LR there is no "smaller" to compare."""
    keys = [_peer_key(c) for c, _, _ in runs]
    lrs = [_lr(c) for c, _, _ in runs]
    out = []
    for i, found in enumerate(findings):
        mine = next((f for f in found if f.kind == "lr_too_small"), None)
        if mine is None:
            out.append(list(found))
            continue
        lr, level = _lr(runs[i][0]), _learned(runs[i][1])
        if lr is None:
            out.append(list(found))
            continue
        peers = [j for j, (_, s, status) in enumerate(runs)
                 if keys[j] == keys[i] and status != "diverged" and _smaller(lrs[j], lr)
                 and _learned(s) > level and not any(f.kind == "lr_too_small" for f in findings[j])]
        if not peers:
            out.append(list(found))
            continue
        p = max(peers, key=lambda j: _learned(runs[j][1]))
        peer_lr, peer = lrs[p], runs[p][1]
        assert peer_lr is not None  # every peer has a recorded LR (_smaller)
        got = (f"val acc {pct(peer['best_val_acc'])}" if _learned(peer) >= 0
               else f"val loss {peer.get('final_val_loss', math.nan):.3g}")
        n = mine.numbers
        swapped = Finding(
            "lr_too_large",
            f"LR too large: training loss never really fell ({n['initial_loss']:.3g} -> lowest "
            f"{n['lowest_loss']:.3g}), while the smaller lr {peer_lr:.3g} in this sweep reached {got}; "
            "lower the LR (a too-large step can leave the weights stuck as surely as a tiny one)",
            None, None, {**n, "peer_lr": float(peer_lr), "lr": float(lr)})
        out.append([swapped if f is mine else f for f in found])
    return out
