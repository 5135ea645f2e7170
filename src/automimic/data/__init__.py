"""Episodes, the HDF5 episode store, and the tensors training reads from them."""

from automimic.data.episode import SOURCES, Episode
from automimic.data.store import EpisodeInfo, EpisodeStore, StoreError, StoreSummary

__all__ = ["SOURCES", "Episode", "EpisodeInfo", "EpisodeStore", "StoreError", "StoreSummary"]
