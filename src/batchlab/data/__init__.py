"""Data: load a DataSpec into train/validation tensors, and augment batches.

``load_dataset(spec)`` supports digits, mnist1d, synthetic, mnist_idx, cifar10, cifar100,
image_folder and npz; every bad file or folder raises ``batchlab.errors.DataError``.
``augment_batch`` applies random crops, flips and resized crops to a batch on its own device.
``pipeline.load_data(spec)`` picks the pipeline (``data.pipeline``): those tensors, or an image
folder opened for streaming (``stream``); ``batches.batch_source`` turns either into the
batches the trainer iterates.
"""

from batchlab.data.augment import augment_batch
from batchlab.data.dataset import Dataset, load_dataset

__all__ = ["Dataset", "augment_batch", "load_dataset"]
