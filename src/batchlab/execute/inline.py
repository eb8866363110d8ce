"""Train runs one after another in this process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from batchlab.events import Event
from batchlab.execute.base import TaskSource
from batchlab.execute.datacache import DataCache
from batchlab.execute.function import train_task
from batchlab.train.inputs import RunInputs


class InlineExecutor:
    """The simplest executor: no processes, no pickling; Ctrl-C reaches the trainer directly."""

    in_process = True  # runs see this process's modules, __main__ included

    def __init__(self, threads: int | None = None, data_cache: DataCache | None = None,
                 inputs: RunInputs | None = None, function: Callable[..., Any] | None = None) -> None:
        """``inputs``: the builders every run uses (the Python API's objects); default: the
        configs' own, with data from ``data_cache``. ``function``: the training function of a
        function sweep, called as it is (default: imported from ``train.function``)."""
        self.threads = threads
        self.data_cache = data_cache or DataCache()
        self.inputs = inputs
        self.function = function

    def execute(self, next_task: TaskSource, on_event: Callable[[Event], None]) -> None:
        while (task := next_task()) is not None:
            threads = task.config.train.threads or self.threads
            if threads:
                torch.set_num_threads(threads)
            train_task(task.config, on_event, checkpoint_path=task.checkpoint_path,
                       max_resume_step=task.max_resume_step, load_data=self.data_cache.load,
                       inputs=self.inputs, prune=task.prune, function=self.function)
