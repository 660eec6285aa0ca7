"""Requests per second of the example Django project: no auth, floor, jwkguard, drf-simplejwt.

The example project (``examples/django_project``) runs under waitress with one worker thread in
a child process on 127.0.0.1; this process sends a bounded load over keep-alive connections.
The routes answer the same DRF list of orders, from the same view code, for the same token:

- ``none``: no authentication (DRF ``AllowAny``);
- ``floor``: a middleware that only extracts the bearer header (what any auth pays);
- ``jwkguard``: the example's ``OrderViewSet`` as the example configures it:
  ``JWKGuardMiddleware`` (protect mode), ``JWKGuardAuthentication`` and ``HasScopes``, keys
  from the issuer's ``jwks_uri``;
- ``simplejwt``: drf-simplejwt's ``JWTStatelessUserAuthentication`` with ``JWK_URL`` pointing
  at the same ``jwks_uri`` (PyJWT's ``PyJWKClient`` caches the key set);
- ``jwkguard+cache``: the ``jwkguard`` route of a second server whose ``JWKGUARD`` settings
  add ``TOKEN_CACHE`` (the verified-token cache; one validator per process in Django).

Rounds interleave the routes so that drift on a shared machine hits them alike; the figure per
route is the median of its rounds (p50/p99: client-side latency over all rounds), and the
targets (jwkguard >= 1.2x drf-simplejwt and >= 0.8x floor; jwkguard+cache >= 0.95x floor) are
judged on the median of the ratios taken within each round. ``req/cpu-s`` divides each route's
requests by the CPU time its server process spent on them: the steadier figure when other work
shares the cores.
Run with ``python -m benchmarks http_django``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from benchmarks._http_load import ROOT, api_request, load_threads, start_serve, stop
from benchmarks._timing import in_turns, medians, paired_ratio, percentile, process_cpu_seconds

EXAMPLE = ROOT / "examples" / "django_project"
ROUTES = ("none", "floor", "jwkguard", "simplejwt", "jwkguard+cache")
PATHS = {
    "none": "/bench/none",
    "floor": "/bench/floor",
    "jwkguard": "/bench/jwkguard",
    "simplejwt": "/bench/simplejwt",
    "jwkguard+cache": "/bench/jwkguard",
}
_CACHED = "JWKGUARD_BENCH_TOKEN_CACHE"
CONNECTIONS = 4
WARM_UP = 200
PER_ROUND = 300
ROUNDS = 9


# -- the server (child process) -----------------------------------------------------------


class BearerFloorMiddleware:
    """The floor: read the bearer header of ``/bench/floor`` requests, nothing more."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        if request.path_info == PATHS["floor"]:
            from django.http import JsonResponse

            scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return JsonResponse({"error": "unauthorized"}, status=401)
            request.bearer_token = token.strip()
        return self.get_response(request)


def _configure() -> None:
    """The example's settings, plus the floor middleware, drf-simplejwt and the bench URLs."""
    sys.path.insert(0, str(EXAMPLE))
    os.environ["DJANGO_SETTINGS_MODULE"] = "example.settings"
    from django.conf import settings

    position = settings.MIDDLEWARE.index("jwkguard_django.middleware.JWKGuardMiddleware")
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[:position],
        "benchmarks.http_django.BearerFloorMiddleware",
        *settings.MIDDLEWARE[position:],
    ]
    settings.JWKGUARD = {
        **settings.JWKGUARD,
        "EXEMPT_PATHS": [
            *settings.JWKGUARD["EXEMPT_PATHS"],
            *(PATHS[route] for route in ("none", "floor", "simplejwt")),
        ],
        **({"TOKEN_CACHE": True} if os.environ.get(_CACHED) else {}),
    }
    settings.ROOT_URLCONF = "benchmarks.http_django"
    settings.SIMPLE_JWT = {
        "ALGORITHM": "RS256",
        "JWK_URL": os.environ["JWKGUARD_JWKS_URI"],
        "ISSUER": os.environ["JWKGUARD_ISSUER"],
        "AUDIENCE": os.environ["JWKGUARD_AUDIENCES"],
        "USER_ID_CLAIM": "sub",
        "AUTH_HEADER_TYPES": ("Bearer",),
    }


def __getattr__(name: str) -> Any:
    """``urlpatterns``, built on first use: this module is the child's ROOT_URLCONF."""
    if name != "urlpatterns":
        raise AttributeError(name)
    from django.urls import path
    from example.urls import urlpatterns as example_urls
    from orders.views import OrderViewSet
    from rest_framework.permissions import AllowAny, IsAuthenticated
    from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

    class Open(OrderViewSet):
        authentication_classes = ()
        permission_classes = (AllowAny,)

    class SimpleJWT(OrderViewSet):
        authentication_classes = (JWTStatelessUserAuthentication,)
        permission_classes = (IsAuthenticated,)

    listing = {"get": "list"}
    return [
        path(PATHS["none"].lstrip("/"), Open.as_view(listing)),
        path(PATHS["floor"].lstrip("/"), Open.as_view(listing)),
        # Mounted beside the others so that URL resolution costs every route the same.
        path(PATHS["jwkguard"].lstrip("/"), OrderViewSet.as_view(listing)),
        path(PATHS["simplejwt"].lstrip("/"), SimpleJWT.as_view(listing)),
        *example_urls,
    ]


def serve() -> None:
    """Serve the example project with one waitress worker thread; print the port."""
    # Under a bounded load the queue is never empty; waitress would log every request.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    _configure()
    from django.core.wsgi import get_wsgi_application
    from waitress import create_server

    server = create_server(get_wsgi_application(), host="127.0.0.1", port=0, threads=1)
    print(server.effective_port, flush=True)  # type: ignore[union-attr]
    server.run()


# -- the load (this process) --------------------------------------------------------------


def main() -> None:
    """Run the routes in interleaved rounds and print requests/s and ratios."""
    from jwkguard.testing import LocalIssuer

    with LocalIssuer() as issuer:
        environment = {
            "JWKGUARD_ISSUER": issuer.url,
            "JWKGUARD_AUDIENCES": issuer.audience,
            "JWKGUARD_JWKS_URI": issuer.jwks_uri,
        }
        # drf-simplejwt insists on its own token_type claim; jwkguard ignores it.
        token = issuer.mint(scopes=["orders:read"], token_type="access")
        process, port = start_serve("benchmarks.http_django", environment)
        cached_process, cached_port = start_serve(
            "benchmarks.http_django", {**environment, _CACHED: "1"}
        )
        ports = {route: cached_port if route == "jwkguard+cache" else port for route in ROUTES}
        try:
            requests = {
                route: api_request(PATHS[route], None if route == "none" else token)
                for route in ROUTES
            }
            for route in ROUTES:
                load_threads(ports[route], requests[route], WARM_UP, connections=CONNECTIONS)
            rates: dict[str, list[float]] = {route: [] for route in ROUTES}
            latencies: dict[str, list[float]] = {route: [] for route in ROUTES}
            cpu = dict.fromkeys(ROUTES, 0.0)
            pids = {
                route: (cached_process if port == cached_port else process).pid
                for route, port in ports.items()
            }
            for route in in_turns(ROUTES, ROUNDS):
                before = process_cpu_seconds(pids[route])
                seconds = load_threads(
                    ports[route],
                    requests[route],
                    PER_ROUND,
                    connections=CONNECTIONS,
                    latencies=latencies[route],
                )
                cpu[route] += process_cpu_seconds(pids[route]) - before
                rates[route].append(PER_ROUND / seconds)
        finally:
            stop([process, cached_process])
        jwks_fetches = issuer.requests["/jwks.json"]
    median = medians(rates)
    per_cpu = {route: ROUNDS * PER_ROUND / max(cpu[route], 1e-9) for route in ROUTES}
    print(f"{CONNECTIONS} keep-alive connections, {ROUNDS} rounds x {PER_ROUND} requests/route")
    print(
        f"{'route':<14} {'req/s':>8} {'vs floor':>9} {'vs simplejwt':>13}"
        f" {'req/cpu-s':>9} {'/floor':>6} {'/simplejwt':>10}"
        f" {'p50 ms':>7} {'p99 ms':>7}  rounds (req/s)"
    )
    for route in ROUTES:
        spread = " ".join(f"{value:.0f}" for value in rates[route])
        p50, p99 = (percentile(latencies[route], q) * 1e3 for q in (0.5, 0.99))
        print(
            f"{route:<14} {median[route]:>8.0f} {median[route] / median['floor']:>8.2f}x"
            f" {median[route] / median['simplejwt']:>12.2f}x"
            f" {per_cpu[route]:>9.0f} {per_cpu[route] / per_cpu['floor']:>5.2f}x"
            f" {per_cpu[route] / per_cpu['simplejwt']:>9.2f}x"
            f" {p50:>7.2f} {p99:>7.2f}  {spread}"
        )
    print(f"JWK Set fetches during the run: {jwks_fetches} (one per implementation and server)")
    # Neighbours on a shared machine make whole rounds slow or fast; a ratio taken within
    # each round cancels most of that, so the targets are judged on the median of those.
    peer = paired_ratio(rates["jwkguard"], rates["simplejwt"])
    floor = paired_ratio(rates["jwkguard"], rates["floor"])
    print(
        f"jwkguard, median of per-round ratios: {peer:.2f}x drf-simplejwt (target >= 1.20x), "
        f"{floor:.2f}x floor (target >= 0.80x)"
    )
    cached = paired_ratio(rates["jwkguard+cache"], rates["floor"])
    print(f"jwkguard+cache, median of per-round ratios: {cached:.2f}x floor (target >= 0.95x)")
    # Requests per second of the server's own CPU hold up when other work shares the cores.
    print(
        f"jwkguard by server CPU: {per_cpu['jwkguard'] / per_cpu['simplejwt']:.2f}x drf-simplejwt, "
        f"{per_cpu['jwkguard'] / per_cpu['floor']:.2f}x floor"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    else:
        main()
