"""Analysis of stored runs: diagnoses, time to target, scaling fits, experiment conclusions,
the answer that leads with them (what to pick and why) and each run's verdict (one label, one
sentence).

Plain data in, plain data out (frozen dataclasses, dicts, numpy): the report draws from these
and never recomputes them.
"""

from batchlab.analysis.answer import Answer, Point
from batchlab.analysis.diagnose import (
    DIAGNOSIS_METRICS,
    EVAL_METRICS,
    KINDS,
    Finding,
    RunContext,
    Thresholds,
    diagnose_run,
    wants_step_loss,
)
from batchlab.analysis.experiment import (
    ANALYSIS_METRICS,
    ExperimentAnalysis,
    RunAnalysis,
    analyze_experiment,
    analyze_runs,
)
from batchlab.analysis.scaling import (
    CriticalBatchFit,
    PowerLawFit,
    fit_critical_batch,
    fit_critical_batch_or_reason,
    fit_power_law,
)
from batchlab.analysis.targets import DEFAULT_TARGET_FRACTION, TargetHit, default_target, first_hit
from batchlab.analysis.verdict import RunVerdict, run_verdict

__all__ = [
    "ANALYSIS_METRICS", "DEFAULT_TARGET_FRACTION", "DIAGNOSIS_METRICS", "EVAL_METRICS", "KINDS",
    "Answer", "CriticalBatchFit", "ExperimentAnalysis", "Finding", "Point", "PowerLawFit",
    "RunAnalysis", "RunContext", "RunVerdict", "TargetHit", "Thresholds", "analyze_experiment",
    "analyze_runs", "default_target", "diagnose_run", "first_hit", "fit_critical_batch",
    "fit_critical_batch_or_reason", "fit_power_law", "run_verdict", "wants_step_loss",
]
