"""Tiny statistics shared by the diagnoses and the fits: a straight line with the standard error
of its slope, and the Student-t quantile that turns that error into an interval.

numpy only (no scipy): the t table below covers the few degrees of freedom a learning curve's
tail or a handful of batch sizes give, where the normal 1.96 would overstate certainty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Two-sided 95% Student-t quantiles (t_0.975) for 1..30 degrees of freedom.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(dof: int) -> float:
    """The 97.5% quantile of Student's t with ``dof`` degrees of freedom (NaN below 1): the
    half-width of a 95% interval in standard errors."""
    if dof < 1:
        return float("nan")
    return _T975[dof - 1] if dof <= len(_T975) else 1.96


@dataclass(frozen=True)
class LineFit:
    """y ≈ slope * x + intercept by least squares.

    ``slope_se`` is the standard error of the slope and ``resid_std`` the residual standard
    deviation (both with n - 2 degrees of freedom; NaN with only 2 points, where the line passes
    through both and says nothing about noise). ``n`` is the number of points.
    """

    slope: float
    intercept: float
    slope_se: float
    resid_std: float
    n: int

    def at(self, x: float) -> float:
        """The fitted value at ``x``."""
        return self.slope * x + self.intercept


def line_fit(x: np.ndarray, y: np.ndarray) -> LineFit | None:
    """Least-squares line through (x, y); None with fewer than 2 points or all x equal."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.size < 2 or np.ptp(xa) == 0:
        return None
    slope, intercept = np.polyfit(xa, ya, 1)
    n = int(xa.size)
    if n < 3:
        return LineFit(float(slope), float(intercept), math.nan, math.nan, n)
    resid = ya - (slope * xa + intercept)
    resid_std = math.sqrt(float(np.sum(resid**2)) / (n - 2))
    sxx = float(np.sum((xa - xa.mean()) ** 2))
    return LineFit(float(slope), float(intercept), resid_std / math.sqrt(sxx), resid_std, n)
