"""Knowledge base: markdown articles, heading chunks, sentence encoders, vector indexes and retrieval."""
