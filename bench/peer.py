"""The peer: the same corpus and query vectors through LangChain's own components.

- dense:   ``langchain_community`` FAISS vector store over ``IndexFlatIP`` (MAX_INNER_PRODUCT;
           vectors are unit length, so this is cosine, as in speechrag), built with
           ``add_embeddings`` from the precomputed vectors;
- keyword: ``BM25Retriever`` (rank_bm25's BM25Okapi) over speechrag's own jieba ``Tokenizer``;
- hybrid:  ``EnsembleRetriever`` of the two, equal weights, RRF constant = speechrag's RRF_K,
           each side fetching as deep as speechrag's hybrid does (dense 200, keyword 100).

Query vectors come from an ``Embeddings`` that looks the query text up, so, as on the
speechrag side, query embedding is excluded from the latencies.

To keep the 1M run inside the deadline, the corpus is tokenised per *sentence* with the real
tokenizer and a passage's tokens are the concatenation of its sentences' tokens. jieba never
cuts across 。！？； so this is exactly what tokenising the passage gives (checked on a sample
in every run); it means the peer's build time below excludes tokenisation (speechrag's
includes it) and its token strings are shared objects, which flatters the peer's RAM. Queries
are tokenised for real at query time on both sides.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import synth
from timing import Budget, latencies, peak_rss, rss

from speechrag.lexical import Tokenizer
from speechrag.options import RRF_K

DENSE_DEPTH = 200  # what speechrag's rank() fetches per side for hybrid at these sizes
KEYWORD_DEPTH = 100


def _embeddings(lookup: dict[str, np.ndarray]) -> Any:
    from langchain_core.embeddings import Embeddings

    class Precomputed(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [lookup[t].tolist() for t in texts]

        def embed_query(self, text: str) -> list[float]:
            return lookup[text].tolist()  # type: ignore[no-any-return]

    return Precomputed()


def memo_tokenizer(tokenizer: Tokenizer, sentences: Sequence[str]) -> Callable[[str], list[str]]:
    """The tokenizer, applied sentence by sentence with each distinct sentence cut once."""
    memo = {s: tokenizer(s) for s in set(sentences)}

    def tokens(text: str) -> list[str]:
        out: list[str] = []
        for s in synth.split_sentences(text):
            cut = memo.get(s)
            if cut is None:
                cut = memo[s] = tokenizer(s)
            out.extend(cut)
        return out

    return tokens


def run(base_dir: Path, n: int, seed: int, k: int, out: Path, budget_s: float) -> None:
    """Build the peer at size ``n`` and time it; results are written to ``out`` as they come,
    so a run killed at the time bound still reports how far it got."""
    result: dict[str, Any] = {"n": n, "phase": "start", "rss_start": rss()}

    def save(phase: str) -> None:
        result["phase"] = phase
        out.write_text(json.dumps(result), "utf-8")

    import faiss
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.docstore.in_memory import InMemoryDocstore
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy

    base = synth.Base.load(base_dir)
    tokenizer = Tokenizer(None)  # jieba's own dictionary, as speechrag uses for these corpora
    tokenizer("预热")  # load jieba's dictionary before the baseline
    gc.collect()
    result["rss_base"] = rss()
    save("synth")

    texts, vecs, _ = synth.make_texts(base, n, seed)
    tokens = memo_tokenizer(tokenizer, base.sentences)
    sample = range(0, n, max(1, n // 200))
    result["token_check"] = sum(tokens(texts[i]) == tokenizer(texts[i]) for i in sample)
    result["token_check_of"] = len(sample)
    save("build")

    t = time.perf_counter()
    store = FAISS(embedding_function=_embeddings(dict(zip(base.queries, base.query_vectors, strict=True))),
                  index=faiss.IndexFlatIP(vecs.shape[1]), docstore=InMemoryDocstore(), index_to_docstore_id={},
                  distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)
    store.add_embeddings(zip(texts, vecs, strict=True))
    result["build_dense_s"] = time.perf_counter() - t
    t = time.perf_counter()
    bm25 = BM25Retriever.from_texts(texts, preprocess_func=tokens, k=k)
    bm25.preprocess_func = tokenizer  # queries are cut for real, every time
    result["build_keyword_s"] = time.perf_counter() - t
    result["build_s"] = result["build_dense_s"] + result["build_keyword_s"]
    del texts, vecs, tokens
    gc.collect()
    result["rss_loaded"] = rss()
    save("query")

    dense = store.as_retriever(search_kwargs={"k": k})
    deep = BM25Retriever(vectorizer=bm25.vectorizer, docs=bm25.docs, k=KEYWORD_DEPTH, preprocess_func=tokenizer)
    ensemble = EnsembleRetriever(
        retrievers=[store.as_retriever(search_kwargs={"k": DENSE_DEPTH}), deep], weights=[0.5, 0.5], c=int(RRF_K)
    )
    calls: dict[str, Callable[[str], object]] = {
        "keyword": bm25.invoke,
        "dense": dense.invoke,
        "hybrid": lambda q: ensemble.invoke(q)[:k],
    }
    modes: dict[str, Any] = {}
    result["modes"] = modes
    for mode, call in calls.items():
        modes[mode] = latencies(call, base.queries, Budget(budget_s))
        save("query")
    result["rss_end"] = rss()
    result["peak_rss"] = peak_rss()
    save("done")
