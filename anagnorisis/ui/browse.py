"""Search, sort, filter and page a kind: plain functions the media tabs (and tests) call."""
from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from typing import Any

from anagnorisis import search
from anagnorisis.search import SORT_KEYS, SearchRequest, sorts_of_kind
from anagnorisis.ui.context import AppContext

PAGE_SIZE = 24  # items per gallery page: four rows of six thumbnails
QUERY_ORDER = "(query score)"  # the sort selector's entry when a query ranks the results
RATED_CHOICES = ("all", "rated", "unrated")


def sort_choices(kind: str) -> list[str]:
    """Sort keys that apply to this kind, the query-score entry first."""
    specific = sorts_of_kind(kind)
    general = [key for key in SORT_KEYS if key not in search.KIND_SPECIFIC_SORTS or key in specific]
    return [QUERY_ORDER, *general]


@dataclass
class Filters:
    folder: str = ""
    rated: str = "all"
    rating_min: float = 0.0
    rating_max: float = 10.0
    model_min: float = 0.0
    model_max: float = 10.0
    ext: str = ""

    def rating_range(self, low: float, high: float) -> str | None:
        return None if (low, high) == (0.0, 10.0) else f"{low}:{high}"


def build_request(kind: str, query: str, mode: str, sort: str, order: str, temperature: float, seed: int,
                  page: int, filters: Filters, page_size: int = PAGE_SIZE) -> SearchRequest:
    query = (query or "").strip() or None
    chosen_sort = None if sort in (None, "", QUERY_ORDER) or query else sort
    return SearchRequest(
        kind=kind, query=query, mode=mode or "auto", sort=chosen_sort, order=order or "desc",
        temperature=float(temperature or 0), seed=int(seed or 0), offset=max(0, int(page or 1) - 1) * page_size,
        limit=page_size, folder=filters.folder.strip() or None,
        rated={"rated": True, "unrated": False}.get(filters.rated),
        rating=filters.rating_range(filters.rating_min, filters.rating_max),
        model_rating=filters.rating_range(filters.model_min, filters.model_max),
        ext=filters.ext.strip() or None,
    )


@dataclass
class Page:
    results: list[dict[str, Any]]
    total: int
    not_indexed: int
    page: int
    pages: int
    mode: str | None
    error: str | None = None

    def summary(self) -> str:
        if self.error:
            return f"⚠️ {self.error}"
        text = f"**{self.total}** matching · page {self.page} of {self.pages}"
        if self.mode:
            text += f" · {self.mode} search"
        if self.not_indexed:
            text += f" · {self.not_indexed} not indexed yet"
        return text


def run_page(ctx: AppContext, request: SearchRequest) -> Page:
    """One page of results, or an error a person can act on (never an exception into the UI)."""
    try:
        result = ctx.session.search(request)
    except search.UsageError as error:
        return Page([], 0, 0, 1, 1, None, str(error))
    except search.SearchError as error:
        return Page([], 0, 0, 1, 1, None, str(error))
    pages = max(1, math.ceil(result.total / max(1, request.limit)))
    return Page(result.results, result.total, result.not_indexed, request.offset // max(1, request.limit) + 1,
                pages, result.mode)


def new_seed() -> int:
    return random.SystemRandom().randrange(1, 2**31)


def rating_text(record: dict[str, Any]) -> str:
    parts = []
    if record.get("user_rating") is not None:
        parts.append(f"yours {record['user_rating']:g}")
    if record.get("model_rating") is not None:
        stale = " (stale)" if record.get("model_rating_stale") else ""
        uncertainty = f" ± {record['uncertainty']:.1f}" if record.get("uncertainty") is not None else ""
        parts.append(f"model {record['model_rating']:.1f}{uncertainty}{stale}")
    return ", ".join(parts) or "not rated"


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def file_name(record: dict[str, Any]) -> str:
    return os.path.basename(record.get("display_path") or record["path"])
