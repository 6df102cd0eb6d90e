"""speechrag as a LlamaIndex retriever: passages of the speeches as ``NodeWithScore``s.

    from speechrag.integrations.llamaindex import SpeechragRetriever
    nodes = SpeechragRetriever(k=3, index="embeddings").retrieve("商丘今年人口出生率要控制在多少以内？")
    nodes[0].node.metadata["citation"]   # '篇五（商丘） · 二、… · 第7段'

It works inside a ``RetrieverQueryEngine``; with ``response_mode="no_text"`` the engine
returns the source nodes and calls no LLM. It still wants an LLM object: LlamaIndex 0.14
builds the no-text synthesizer from ``Settings.llm`` (ignoring ``from_args(llm=...)``), which
resolves to OpenAI unless set, so set ``Settings.llm = MockLLM()`` first, or pass
``response_synthesizer=NoText(llm=MockLLM())``. No embedding model is used.
Needs ``pip install 'speechrag[llamaindex]'``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.callbacks import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from speechrag.integrations._common import check_filters, checked, search
from speechrag.searcher import Hit, Searcher
from speechrag.serving import hit_fields

log = logging.getLogger(__name__)

# What an LLM reading a node is shown besides its text: the citation, to quote it by.
_LLM_METADATA = frozenset({"citation"})


class SpeechragRetriever(BaseRetriever):
    """Passages of the speeches for a query, best first.

    Each result is ``NodeWithScore(TextNode(text=passage text, id_=passage id,
    metadata=...), score)``; the metadata keys are the LangChain adapter's (``citation``,
    ``passage_id``, ``speech_id``, ``speech_title``, ``section``, ``paragraph``, ``source``,
    ``score``, ``rank``, ``also_in``, ``also_in_citations``). Only ``citation`` is shown to
    an LLM or an embedder with the text.

    ``k`` (1-50), ``mode`` (``hybrid``, ``dense`` or ``keyword``), ``index`` (a ``Searcher``,
    its folder, or None for the default), the filters ``speeches`` (speech ids), ``speaker``,
    ``place`` (names; None for all) and ``years`` (a year or ``(first, last)``), and
    ``filters`` (further keyword options forwarded to ``speechrag.retrieve()``, such as
    ``rrf_k``, checked against the ones it accepts).
    """

    def __init__(
        self,
        *,
        k: int = 5,
        mode: str = "hybrid",
        index: Searcher | str | os.PathLike[str] | None = None,
        speeches: Sequence[str] | None = None,
        speaker: str | Sequence[str] | None = None,
        place: str | Sequence[str] | None = None,
        years: tuple[int, int] | int | None = None,
        filters: Mapping[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        self.values = {"k": k, "mode": mode, "speeches": speeches, "speaker": speaker, "place": place,
                       "years": years, **check_filters(filters)}
        options, _ = checked(self.values)  # a bad value is an OptionError naming it, as at every door
        self.k, self.mode = options.k, options.mode
        self.index = index
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = search(query_bundle.query_str, self.values, self.index)
        return [to_node(h) for h in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # Encoding the query is CPU work: keep it off the event loop.
        return await asyncio.to_thread(self._retrieve, query_bundle)


def to_node(hit: Hit) -> NodeWithScore:
    metadata = hit_fields(hit)
    hidden = [key for key in metadata if key not in _LLM_METADATA]
    node = TextNode(
        text=hit.passage.text,
        id_=hit.passage.id,
        metadata=metadata,
        excluded_llm_metadata_keys=hidden,
        excluded_embed_metadata_keys=hidden,
    )
    return NodeWithScore(node=node, score=hit.score)
