"""Where an index lives: the `Store` protocol (base.py) and its engines (local.py: a folder of
FAISS + bm25s files; milvus.py: a Milvus Lite ``.db`` or a Milvus server).

`open_store` is the one place that decides the engine from the location; nothing here imports
pymilvus until a Milvus location is opened.
"""

from __future__ import annotations

import os
from pathlib import Path

from speechrag.config import is_uri
from speechrag.stores.base import Filter, Store


def is_milvus(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` names a Milvus index: a path ending ``.db`` (Milvus Lite) or an
    ``http(s)://`` URI (a server). Anything else is a folder (the local store)."""
    text = os.fspath(location)
    return text.endswith(".db") or is_uri(text)


def location_key(location: str | os.PathLike[str]) -> str:
    """A stable name for ``location``: an absolute folder or ``.db`` path, or the URI as given
    (``Path`` would fold ``http://`` into ``http:/``)."""
    text = os.fspath(location)
    return text.rstrip("/") if is_uri(text) else str(Path(text).resolve())


def open_store(location: str | os.PathLike[str], *, token: str | None = None, search_threads: int = 1) -> Store:
    """The live generation at ``location``: a folder -> `LocalStore` (``search_threads`` FAISS
    threads); ``x.db`` or ``http(s)://host:port`` -> `MilvusStore` (``token`` for a server)."""
    if is_milvus(location):
        from speechrag.stores.milvus import open_milvus

        return open_milvus(os.fspath(location), token=token)
    from speechrag.stores.local import open_local

    return open_local(Path(location), search_threads=search_threads)


__all__ = ["Filter", "Store", "is_milvus", "location_key", "open_store"]
