"""Views to route: ``metrics``, the Prometheus metrics of ``JWKGUARD["METRICS"]``."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse

from jwkguard.fleet import render_metrics

from .conf import get_state
from .decorators import token_exempt

__all__ = ["metrics"]


@token_exempt
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format for validations, key sets and fleet events of this process.

    Route it: ``path("metrics", jwkguard_django.views.metrics)``. It needs no token (restrict
    it at the network, as usual for scrape endpoints); each worker process answers with its
    own counters. 404 when ``METRICS`` is off.
    """
    state = get_state()
    if state.metrics is None:
        raise Http404("JWKGUARD['METRICS'] is off")
    body, content_type = render_metrics(state.metrics)
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
