"""Keep the last few loaded datasets in memory so a sweep loads each data set once per process."""

from __future__ import annotations

from collections import OrderedDict

from batchlab.data.pipeline import LoadedData, load_data
from batchlab.spec import DataSpec


class DataCache:
    """A small LRU of loaded data keyed by the data spec: ``load_dataset``'s tensors, or an
    image folder opened for streaming (``data.pipeline``; ``batchlab.data.pipeline``).

    An explicit object owned by an executor (or a worker process), never a module global.
    """

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._items: OrderedDict[str, LoadedData] = OrderedDict()

    def load(self, spec: DataSpec) -> LoadedData:
        key = spec.model_dump_json()  # pydantic's serializer: the same spec, the same key
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        data = load_data(spec)
        self._items[key] = data
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return data
