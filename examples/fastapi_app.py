"""An orders API protected by jwkguard: the FastAPI application ``jwkguard demo`` serves.

Its code is in ``jwkguard/_demo/_api.py`` (shipped in the wheel, so the demo runs from
``pip install 'jwkguard[demo]'``); read it there. It uses only the public names of ``jwkguard``
and ``jwkguard_fastapi``. Run it against any issuer::

    JWKGUARD_ISSUER=https://id.example.com/ JWKGUARD_AUDIENCE=https://api.example.com \\
    JWKGUARD_ALGORITHMS=RS256 uvicorn examples.fastapi_app:app

``JWKGUARD_JWKS_URI`` is optional (default: the issuer's discovery document);
``JWKGUARD_AUDIENCE`` and ``JWKGUARD_ALGORITHMS`` take comma-separated lists.
"""

from typing import Any

from jwkguard._demo._api import NewOrder, Order, create_app, validator_from_env

__all__ = ["NewOrder", "Order", "create_app", "validator_from_env"]


def __getattr__(name: str) -> Any:
    # `uvicorn examples.fastapi_app:app` looks `app` up; building it lazily lets tests
    # import this module (for create_app) without the environment set.
    if name == "app":
        application = create_app(validator_from_env())
        globals()["app"] = application
        return application
    raise AttributeError(name)
