"""The Paper record, id and text normalisation, and the paper repository."""
