"""Reports of stored experiments: figures, one self-contained HTML file, TensorBoard export.

``write_report(store, experiment, out_html)`` and ``write_comparison(store, a, b, out_html)``
write an offline HTML report plus the figures as PNGs beside it; ``export_tensorboard(store,
experiment, out_dir)`` writes TensorBoard event files with the tensorboard package (the
``tensorboard`` extra).
"""

from batchlab.report.errors import ReportError
from batchlab.report.report import ReportResult, write_comparison, write_report
from batchlab.report.tensorboard import export_tensorboard

__all__ = ["ReportError", "ReportResult", "export_tensorboard", "write_comparison", "write_report"]
