"""Executors: where the runs of a sweep train (inline, a local process pool, a Ray cluster),
and the sweep driver that plans, claims, trains and stores them (``execute.sweep.run_sweep``).

Nothing is imported here, so ``import batchlab.execute.<module>`` stays as cheap as the module
itself (the Ray executor imports Ray only when used). This file makes the folder a regular
package, which the API reference's generator (griffe, for mkdocstrings) needs to find it.
"""
