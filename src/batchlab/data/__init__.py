"""Data: load a DataSpec into train/validation tensors, and augment batches.

``load_dataset(spec)`` supports digits, mnist1d, synthetic, mnist_idx, cifar10, cifar100,
image_folder and npz; every bad file or folder raises ``batchlab.errors.DataError``.
``augment_batch`` applies random crops and flips to a batch on its own device.
"""

from batchlab.data.augment import augment_batch
from batchlab.data.dataset import Dataset, load_dataset

__all__ = ["Dataset", "augment_batch", "load_dataset"]
