"""HTTP the way operators and browsers expect it (docs/api.md, "HTTP behaviour"): body limits, CORS,
security headers (:mod:`api.http.edge`), rate-limit fields (:mod:`api.http.ratelimit`),
conditional GETs (:mod:`api.http.conditional`), paging links (:mod:`api.http.links`), date-range
query parameters (:mod:`api.http.dates`), deprecated aliases (:mod:`api.http.deprecation`) and
how all of it is documented in the OpenAPI document (:mod:`api.http.openapi`)."""
