"""Errors the user can fix. The CLI prints their message as one paragraph and exits 2."""


class BatchlabError(Exception):
    """Bad input the user can fix: the message says what is wrong and how to fix it."""

    exit_code = 2


class SpecError(BatchlabError):
    """A spec field is unknown, has the wrong type or an impossible value."""


class DataError(BatchlabError):
    """A data file or folder is missing, corrupt or in the wrong format."""


class ModelError(BatchlabError):
    """An unknown zoo model, or a user factory that does not import or build."""


class StoreError(BatchlabError):
    """The store file is not a batchlab database, or is of a newer schema."""


class ExecutorError(BatchlabError):
    """Runs could not be executed (e.g. every worker process died); finished runs are kept."""

    exit_code = 1
