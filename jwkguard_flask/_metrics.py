"""``metrics_view``: the app's Prometheus metrics (``JWKGUARD_METRICS = True``)."""

from __future__ import annotations

from flask import Response, abort, current_app

from jwkguard.fleet import render_metrics

from ._extension import EXEMPT_ATTRIBUTE
from ._request import state_of

__all__ = ["metrics_view"]


def metrics_view() -> Response:
    """Prometheus text format for this app's validations, key sets and fleet events.

    Route it yourself, e.g. ``app.add_url_rule("/metrics", view_func=metrics_view)``; it is
    exempt from ``protect`` (restrict it at the network, as usual for scrape endpoints).
    Each worker process answers with its own counters. 404 when ``JWKGUARD_METRICS`` is off.
    """
    metrics = state_of(current_app).metrics
    if metrics is None:
        abort(404)
    body, content_type = render_metrics(metrics)
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


setattr(metrics_view, EXEMPT_ATTRIBUTE, True)
