"""Search: lexical (FTS5/BM25), embeddings, the vector index, hybrid fusion and evaluation."""
