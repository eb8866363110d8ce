"""batchlab: a laboratory for batch size and learning rate."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """Lazy public names: ``import batchlab`` stays cheap; torch loads on first use."""
    if name == "track":
        from batchlab.track import track

        globals()["track"] = track  # importing batchlab.track bound the module here: rebind
        return track
    if name == "integrations":
        import batchlab.integrations

        return batchlab.integrations
    raise AttributeError(f"module 'batchlab' has no attribute {name!r}")
