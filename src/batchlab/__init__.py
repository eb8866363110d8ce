"""batchlab: a laboratory for batch size and learning rate."""

__version__ = "0.1.0"
