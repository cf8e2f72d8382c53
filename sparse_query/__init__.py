"""sparse_query: batch active learning from the perspective of sparse approximation."""
__version__ = "0.1.0"
