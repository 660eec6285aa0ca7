"""The Django admin's lifecycle form (jwkguard_django/admin.py), driven through the admin site.

The suite's Django project has no admin; this module installs ``django.contrib.admin`` and
``django.contrib.messages`` (with templates, middleware and its own URLs) only while its test
runs, through ``override_settings``, and creates and drops the admin log table around it, so
other tests see the project unchanged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client, override_settings

from jwkguard.errors import ConfigurationError, LifecycleError, StoreUnavailable
from jwkguard.testing import LocalIssuer
from jwkguard_django import conf

from .conftest import jwkguard_settings

ADD = "/admin/jwkguard_django/lifecyclerecord/add/"
STORE = {"STORE": "database", "POLL_INTERVAL": 0.2}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]


@pytest.fixture
def admin_site(issuer: LocalIssuer) -> Iterator[Client]:
    """A client signed in as superuser ``ops`` on a project with the admin installed."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection

    from jwkguard_django.models import LifecycleEntry, LifecycleRecord

    installed = [
        "django.contrib.admin",
        *settings.INSTALLED_APPS,
        "django.contrib.messages",
    ]
    with override_settings(
        INSTALLED_APPS=installed,
        ROOT_URLCONF="tests.django.admin_urls",
        MIDDLEWARE=MIDDLEWARE,
        TEMPLATES=TEMPLATES,
        TIME_ZONE="UTC",
        JWKGUARD=jwkguard_settings(issuer, LIFECYCLE_STORE=STORE),
    ):
        from django.contrib.admin.models import LogEntry

        with connection.schema_editor() as editor:
            editor.create_model(LogEntry)
        user = User.objects.create_superuser("ops", "ops@example.com", "unused-password")
        client = Client()
        client.force_login(user)
        try:
            yield client
        finally:
            LogEntry.objects.all().delete()  # before the user (Django 4.2 misses the cascade)
            user.delete()
            with connection.schema_editor() as editor:
                editor.delete_model(LogEntry)
            for model in (LifecycleRecord, LifecycleEntry):
                model.objects.all().delete()


def _refusal(token: str) -> str | None:
    try:
        conf.get_validator().validate(token)
    except LifecycleError as exc:
        return exc.reason
    return None


def _add(client: Client, **fields: Any) -> Any:
    data = {"op": "", "issuer": "", "value": "", "key_field": "", "when": "", "why": "", **fields}
    return client.post(ADD, {**data, "_save": "Save"})


def test_the_admin_form_revokes_cuts_off_and_distrusts_audited_with_the_signed_in_user(
    admin_site: Client, issuer: LocalIssuer
) -> None:
    from django.contrib.admin.models import ADDITION, LogEntry

    from jwkguard_django.models import LifecycleEntry, LifecycleRecord

    page = admin_site.get(ADD)
    assert page.status_code == 200
    assert "revoke a token (by jti)" in page.content.decode()

    jti = uuid.uuid4().hex
    token = issuer.mint(jti=jti, sub="alice")
    bob = issuer.mint(sub="bob", iat=int(time.time()) - 5)
    assert _refusal(token) is None
    assert _refusal(bob) is None

    # The form's own rules: a revocation needs the expiry, a key needs kid or thumbprint.
    missing = _add(admin_site, op="revoke_token", issuer=issuer.url, value=jti, why="leaked")
    assert missing.status_code == 200
    assert "A revocation needs the token" in missing.content.decode()
    unnamed = _add(admin_site, op="distrust_key", issuer=issuer.url, value="k", why="hsm")
    assert "Say whether the value is a kid or a thumbprint." in unnamed.content.decode()
    assert not LifecycleRecord.objects.exists()

    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    when = expiry.strftime("%Y-%m-%d %H:%M:%S")
    revoked = _add(
        admin_site, op="revoke_token", issuer=issuer.url, value=jti, when=when, why="leaked"
    )
    assert revoked.status_code == 302, revoked.content.decode()[:2000]
    assert revoked["Location"].endswith("/admin/jwkguard_django/lifecyclerecord/")
    assert _refusal(token) == "revoked"  # this process enforces it at once
    entry = LifecycleEntry.objects.get(kind="revoked")
    assert (entry.value, entry.issuer, entry.at) == (jti, issuer.url, expiry.timestamp())

    cut = _add(admin_site, op="cut_off_subject", issuer=issuer.url, value="bob", why="left")
    assert cut.status_code == 302
    assert _refusal(bob) == "subject_cut_off"

    kid = conf.get_validator().validate(issuer.mint(sub="carol")).key_id or ""
    assert kid
    distrusted = _add(
        admin_site, op="distrust_key", issuer=issuer.url, value=kid, key_field="kid", why="hsm"
    )
    assert distrusted.status_code == 302
    assert _refusal(issuer.mint(sub="carol")) == "key_distrusted"

    # The history: each change once, by the signed-in user, with its reason.
    rows = list(LifecycleRecord.objects.order_by("id").values_list("op", "value", "by", "why"))
    assert rows == [
        ("revoke_token", jti, "admin:ops", "leaked"),
        ("cut_off_subject", "bob", "admin:ops", "left"),
        ("distrust_key", kid, "admin:ops", "hsm"),
    ]
    # Django's own admin log points at those rows, under the same user.
    logged = list(LogEntry.objects.order_by("id").values_list("user__username", "action_flag",
                                                              "object_id"))  # fmt: skip
    ids = [str(pk) for pk in LifecycleRecord.objects.order_by("id").values_list("id", flat=True)]
    assert logged == [("ops", ADDITION, pk) for pk in ids]

    # The history is append-only: a change can be viewed, not edited or deleted.
    change = f"/admin/jwkguard_django/lifecyclerecord/{ids[0]}/change/"
    assert admin_site.get(change).status_code == 200
    assert admin_site.post(change, {"op": "trust_key", "why": "x"}).status_code == 403
    delete = f"/admin/jwkguard_django/lifecyclerecord/{ids[0]}/delete/"
    assert admin_site.post(delete, {"post": "yes"}).status_code == 403
    assert LifecycleRecord.objects.count() == 3


@pytest.mark.parametrize(
    ("failure", "shown"),
    [
        (StoreUnavailable(), "The lifecycle store is temporarily unavailable (503)"),
        (ConfigurationError("kid must be a non-empty string"), "kid must be a non-empty string"),
    ],
)
def test_a_change_the_store_refuses_comes_back_as_an_error_with_the_form_filled_in(
    admin_site: Client,
    issuer: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    shown: str,
) -> None:
    """Not a 500 page: nothing is saved or logged, the message says why, nothing typed is lost."""
    from django.contrib.admin.models import LogEntry

    from jwkguard_django.lifecycle import DatabaseStore
    from jwkguard_django.models import LifecycleRecord

    def refuse(self: DatabaseStore, change: object) -> None:
        raise failure

    monkeypatch.setattr(DatabaseStore, "publish", refuse)
    typed = {"op": "cut_off_subject", "issuer": issuer.url, "value": "bob", "why": "left"}
    refused = _add(admin_site, **typed)
    assert refused.status_code == 302
    assert refused["Location"].startswith(ADD + "?")
    page = admin_site.get(refused["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert shown in html
    assert "nothing was changed" in html.lower()
    for name in ("issuer", "value", "why"):
        assert f'id="id_{name}">\n{typed[name]}</textarea>' in html
    assert '<option value="cut_off_subject" selected>' in html
    assert not LifecycleRecord.objects.exists()
    assert not LogEntry.objects.exists()
