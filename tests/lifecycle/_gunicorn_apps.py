"""Apps configured through settings only, for ``test_gunicorn.py`` to run under gunicorn.

The test passes its configuration in ``JWKGUARD_TEST_CONFIG`` (JSON). With ``eager`` the
module starts the fleet's store while gunicorn ``--preload`` imports it, in the master, before
the fork: the workers must restart it themselves. ``/pid`` answers with the worker's pid.
"""

from __future__ import annotations

import json
import os
from typing import Any

CONFIG: dict[str, Any] = json.loads(os.environ.get("JWKGUARD_TEST_CONFIG", "{}"))


def _issuers() -> list[dict[str, Any]]:
    return [
        {
            "issuer": CONFIG["issuer"],
            "audiences": [CONFIG["audience"]],
            "jwks_uri": CONFIG["jwks_uri"],
        }
    ]


def _fleet() -> dict[str, Any]:
    return {
        "REDIS_URL": CONFIG["redis_url"],
        "PREFIX": CONFIG["prefix"],
        "ON_UNAVAILABLE": "fail_closed",
        "REUSE": {"MAX_ADDRESSES": 1},
    }


def flask_app() -> Any:
    from flask import Flask

    from jwkguard_flask import JWKGuard, current_claims, metrics_view

    app = Flask(__name__)
    app.config.update(
        JWKGUARD_ISSUERS=_issuers(),
        JWKGUARD_ALGORITHMS=["RS256"],
        JWKGUARD_FLEET=_fleet(),
        JWKGUARD_METRICS=True,
        JWKGUARD_WARM_UP=True,  # the master fetches the keys before the fork
    )
    guard = JWKGuard(app)
    if CONFIG.get("eager"):
        app.extensions["jwkguard"].fleet.store.start()

    @app.get("/pid")
    @guard.require
    def pid() -> dict[str, Any]:
        return {"pid": os.getpid(), "sub": current_claims.subject}

    app.add_url_rule("/metrics", view_func=metrics_view)
    return app


def django_app() -> Any:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["127.0.0.1"],
        SECRET_KEY="gunicorn-test",
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["jwkguard_django"],
        MIDDLEWARE=["jwkguard_django.middleware.JWKGuardMiddleware"],
        JWKGUARD={
            "ISSUERS": _issuers(),
            "ALGORITHMS": ["RS256"],
            "FLEET": _fleet(),
            "METRICS": True,
            "WARM_UP": True,
        },
    )
    django.setup()
    from django.core.wsgi import get_wsgi_application

    from jwkguard_django.conf import get_state

    application = get_wsgi_application()
    if CONFIG.get("eager"):
        fleet = get_state().fleet
        assert fleet is not None
        fleet.store.start()
    return application


def _pid_view(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse({"pid": os.getpid(), "sub": request.jwt_claims.subject})


def __getattr__(name: str) -> Any:
    # ROOT_URLCONF of the Django app: built on first use, after settings.configure().
    if name != "urlpatterns":
        raise AttributeError(name)
    from django.urls import path

    from jwkguard_django.views import metrics

    return [path("pid", _pid_view), path("metrics", metrics)]
