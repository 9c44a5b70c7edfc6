"""Search and sorting over a kind's files (SPEC §4): the request (`request`), filters (`filters`), sort keys
(`sorts`), name, meaning and similar-to queries (`query`), duplicates (`duplicates`), the temperature draw (`draw`),
and the vector and passage indexes they use (`vector_index`, `chunk_index`); `engine.run_search` puts them
together."""
from anagnorisis.search.draw import draw_order
from anagnorisis.search.duplicates import DUPLICATE_THRESHOLDS, duplicate_groups, duplicate_threshold_for
from anagnorisis.search.engine import run_search
from anagnorisis.search.filters import apply_filters
from anagnorisis.search.query import normalise_name, rank_by_name
from anagnorisis.search.request import (
    DEFAULT_LIMIT, DEFAULT_SORT, KIND_SPECIFIC_SORTS, MODES, ORDERS, SORT_KEYS, MeaningSearchUnavailable, SearchError,
    SearchRequest, SearchResult, UsageError, canonical_sort_key, parse_rating_range, sorts_of_kind, validate_request,
)

__all__ = ["DEFAULT_LIMIT", "DEFAULT_SORT", "DUPLICATE_THRESHOLDS", "KIND_SPECIFIC_SORTS", "MODES", "ORDERS",
           "SORT_KEYS", "MeaningSearchUnavailable", "SearchError", "SearchRequest", "SearchResult", "UsageError",
           "apply_filters", "canonical_sort_key", "draw_order", "duplicate_groups", "duplicate_threshold_for",
           "normalise_name", "parse_rating_range", "rank_by_name", "run_search", "sorts_of_kind", "validate_request"]
