"""Search and sort a kind's files (SPEC §4) over the session's cached records and indexes."""
from __future__ import annotations

from typing import Any

from anagnorisis.search import SearchError, SearchRequest, SearchResult, UsageError
from anagnorisis.service.errors import BadRequest, Failed
from anagnorisis.service.library import check_kind


def search(session: Any, request: SearchRequest) -> SearchResult:
    """Run a search request; a bad request is BadRequest, a search that cannot run (no model) is Failed."""
    from dataclasses import replace

    request = replace(request, kind=check_kind(request.kind))
    try:
        return session.search(request)
    except UsageError as error:
        raise BadRequest(str(error)) from None
    except SearchError as error:
        raise Failed(str(error)) from None
