"""Search and sorting over a kind's files: the request, filters, sort keys, name and meaning queries, duplicates,
the temperature draw, and the vector and passage indexes they use."""
from anagnorisis.search.engine import (
    DEFAULT_LIMIT, DEFAULT_SORT, MODES, ORDERS, SORT_KEYS, MeaningSearchUnavailable, SearchError, SearchRequest,
    SearchResult, UsageError, apply_filters, draw_order, duplicate_threshold_for, normalise_name, run_search,
    sorts_of_kind, validate_request,
)

__all__ = ["DEFAULT_LIMIT", "DEFAULT_SORT", "MODES", "ORDERS", "SORT_KEYS", "MeaningSearchUnavailable", "SearchError",
           "SearchRequest", "SearchResult", "UsageError", "apply_filters", "draw_order", "duplicate_threshold_for",
           "normalise_name", "run_search", "sorts_of_kind", "validate_request"]
