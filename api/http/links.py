"""``Link`` headers (RFC 8288) on paged lists: ``rel="next"`` while there are more items,
``rel="prev"`` after the first page. The targets are this request's own path and query with
only ``page`` changed, as path-absolute references (``</api/v1/events?city=Oslo&page=3>``):
they resolve against whatever scheme and host the client used, proxies included.

An endpoint takes ``links: PageLinksDep`` and calls ``links.set(page, limit, total)``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response

from api.problems import DEPENDENCY_HEADERS


class PageLinks:
    def __init__(self, request: Request, response: Response) -> None:
        self._request = request
        self._response = response

    def set(self, page: int, limit: int, total: int, *, max_page: int | None = None) -> None:
        """``max_page``: the last page the endpoint accepts (no ``next`` link beyond it)."""
        last = max(1, -(-total // limit))  # ceil; an empty list still has page 1
        links = []
        if page < last and (max_page is None or page < max_page):
            links.append(f'<{self._url(page + 1)}>; rel="next"')
        if page > 1:
            links.append(f'<{self._url(min(page - 1, last))}>; rel="prev"')
        if links:
            self._response.headers["Link"] = ", ".join(links)

    def _url(self, page: int) -> str:
        url = self._request.url.include_query_params(page=page)
        return f"{url.path}?{url.query}"


PageLinksDep = Annotated[PageLinks, Depends()]

LINK_HEADER: dict[str, Any] = {
    "description": 'RFC 8288 links to the neighbouring pages: `rel="next"`, `rel="prev"`',
    "schema": {"type": "string"},
}
DEPENDENCY_HEADERS[PageLinks] = ({"Link": LINK_HEADER}, True)
