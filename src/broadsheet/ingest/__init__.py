"""Running an import: batching, transactions, checkpoints for resume, and the summary."""
