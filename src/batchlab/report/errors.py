"""The report's user-facing error (the CLI prints its message as one paragraph, exit 2)."""

from batchlab.errors import BatchlabError


class ReportError(BatchlabError):
    """A report or export cannot be made: nothing to show yet, or the output path is unusable."""
