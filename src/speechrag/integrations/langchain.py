"""speechrag as a LangChain retriever: passages of the speeches as ``Document``s.

    from speechrag.integrations.langchain import SpeechragRetriever
    docs = SpeechragRetriever(k=3, index="embeddings").invoke("商丘今年人口出生率要控制在多少以内？")
    docs[0].metadata["citation"]   # '篇五（商丘） · 二、… · 第7段'

Checked by LangChain's own standard suite (``RetrieversIntegrationTests``) in
``tests/test_integrations_langchain.py``. Needs ``pip install 'speechrag[langchain]'``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, field_validator, model_validator

from speechrag.integrations._common import check_filters, checked, search
from speechrag.searcher import Hit, Searcher
from speechrag.serving import hit_fields

log = logging.getLogger(__name__)

# invoke() passes its keyword arguments on to the retriever; these are not search options.
_CALL_NOISE = frozenset({"verbose"})
# The request options the retriever has as fields (`QueryOptions`' own names).
_FIELDS = ("k", "mode", "speeches", "speaker", "place", "years")


class SpeechragRetriever(BaseRetriever):
    """Passages of the speeches for a query, best first, as LangChain ``Document``s.

    ``page_content`` is the passage text; ``metadata`` holds ``citation``, ``passage_id``,
    ``speech_id``, ``speech_title``, ``section``, ``paragraph``, ``source``, ``score``,
    ``rank``, ``also_in`` and ``also_in_citations`` (the near-twin copies folded into it).

    Fields: ``k`` (1-50), ``mode`` (``hybrid``, ``dense`` or ``keyword``), ``index`` (a
    ``Searcher``, its folder, or None for ``$SPEECHRAG_INDEX`` / the default folder), the
    filters ``speeches`` (speech ids), ``speaker``, ``place`` (names; None for all) and
    ``years`` (a year or ``(first, last)``), and ``filters``: further keyword options forwarded
    to ``speechrag.retrieve()`` as they are (``rrf_k``...), checked against the ones it
    accepts. Each of them can also be given per call: ``retriever.invoke(query, k=3,
    mode="keyword", speaker=None)``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    k: int = 5
    mode: str = "hybrid"
    index: Searcher | str | Path | None = None
    speeches: list[str] | None = None
    speaker: list[str] | None = None
    place: list[str] | None = None
    years: tuple[int, int] | int | None = None
    filters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("filters")
    @classmethod
    def _known_filters(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_filters(value)

    @model_validator(mode="after")
    def _checked(self) -> SpeechragRetriever:
        checked(self._values())  # a bad value is an OptionError naming it, as at every door
        return self

    def _values(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in _FIELDS}
        calls = {key: v for key, v in (overrides or {}).items() if key not in _CALL_NOISE}
        return {**fields, **self.filters, **calls}

    def _search(self, query: str, overrides: dict[str, Any]) -> list[Document]:
        hits = search(query, self._values(overrides), self.index)
        return [to_document(h) for h in hits]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return self._search(query, kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        # Encoding the query is CPU work: keep it off the event loop.
        return await asyncio.to_thread(self._search, query, kwargs)


def to_document(hit: Hit) -> Document:
    return Document(page_content=hit.passage.text, metadata=hit_fields(hit), id=hit.passage.id)
