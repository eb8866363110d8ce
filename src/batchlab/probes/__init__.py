"""Probes: short, side-effect-free measurements that inform the choice of batch size and LR.

Each probe builds what it needs fresh from a ``RunConfig`` (``probes.common.fresh_setup``),
works on its own copy of the model and optimizer, restores torch's global RNG state, and
returns a plain result object with ``to_dict()`` for ``Store.add_probe``:

- ``lr_range``: Leslie Smith's LR range test;
- ``lr_search``: ``lr_find``, the LR by a strategy (``lr_horizon``'s miniatures of the run by
  default, ``lr_trial``, or a curve rule) over seeds and batch sizes;
- ``auto_lr``: ``resolve_auto_lr`` for specs with ``train.lr = "auto"``;
- ``suggest``: LR suggestion strategies, pure functions over (lrs, losses);
- ``noise_scale``: the gradient noise scale B_simple (McCandlish et al. 2018);
- ``max_batch``, ``throughput``, ``memory``: what fits and how fast it runs.

Import the submodules directly; this package imports nothing so that importing one probe
never pays for the others.
"""
