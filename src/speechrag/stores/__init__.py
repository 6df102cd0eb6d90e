"""Where an index lives: the `Store` protocol (base.py) and its engines (local.py: a folder of
FAISS + bm25s files)."""

from speechrag.stores.base import Filter, Store

__all__ = ["Filter", "Store"]
