"""Adapters for other ecosystems' retriever interfaces, one module each:

- ``speechrag.integrations.langchain``: ``SpeechragRetriever`` (a LangChain ``BaseRetriever``);
- ``speechrag.integrations.llamaindex``: ``SpeechragRetriever`` (a LlamaIndex ``BaseRetriever``).

Nothing is imported here: ``import speechrag`` never imports LangChain or LlamaIndex, and each
adapter needs only its own extra (``pip install 'speechrag[langchain]'`` or ``[llamaindex]``).
"""
