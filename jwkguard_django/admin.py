"""The Django admin: the lifecycle history, and forms to revoke, cut off and distrust.

Adding a "lifecycle change" does not save the form's row directly: it calls
:class:`~jwkguard.lifecycle.LifecycleAdmin` on the database store (see
:func:`~jwkguard_django.lifecycle.lifecycle_admin`), which writes the change and its entry and
emits the audit event, with the signed-in user as ``by``. A change the store refuses (its
database unreachable, or a value the admin API rejects) is not saved: the form comes back with
what was typed and an error message. Existing changes are read-only: the history is append-only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from jwkguard import ConfigurationError
from jwkguard.errors import StoreUnavailable

from .lifecycle import lifecycle_admin
from .models import LifecycleEntry, LifecycleRecord


class ChangeForm(forms.ModelForm):  # type: ignore[type-arg]
    """One administrative change; ``value`` is the jti, subject, client id, kid or thumbprint."""

    OPS = (
        ("revoke_token", "revoke a token (by jti)"),
        ("cut_off_subject", "cut off a user (by sub)"),
        ("cut_off_client", "cut off a client (by client id)"),
        ("distrust_key", "distrust a key"),
        ("trust_key", "trust a key again"),
    )
    op = forms.ChoiceField(choices=OPS)
    key_field = forms.ChoiceField(
        choices=(("", "-"), ("kid", "kid"), ("thumbprint", "thumbprint")),
        required=False,
        help_text="For keys: is the value a kid or an RFC 7638 thumbprint?",
    )
    when = forms.DateTimeField(
        required=False,
        help_text="Revoke: the token's expiry (required). Cut-off: the cut-off (default: now).",
    )

    class Meta:
        model = LifecycleRecord
        fields = ("op", "issuer", "value", "key_field", "when", "why")

    @classmethod
    def typed(cls, request: HttpRequest) -> dict[str, str]:
        """The form's fields as posted, to fill the form in again."""
        return {name: request.POST[name] for name in cls.Meta.fields if request.POST.get(name)}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        op = data.get("op")
        if not data.get("value"):
            self.add_error("value", "Name the token, subject, client or key.")
        if op == "revoke_token" and data.get("when") is None:
            self.add_error("when", "A revocation needs the token's expiry.")
        if op in ("distrust_key", "trust_key") and not data.get("key_field"):
            self.add_error("key_field", "Say whether the value is a kid or a thumbprint.")
        return data


@admin.register(LifecycleRecord)
class LifecycleRecordAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The change history (read-only) and the form that makes a change."""

    list_display = ("id", "op", "value", "issuer", "by", "why", "made")
    list_filter = ("op",)
    search_fields = ("value", "issuer", "by", "why")

    @admin.display(description="when")
    def made(self, obj: LifecycleRecord) -> str:
        return datetime.fromtimestamp(obj.timestamp, UTC).isoformat(timespec="seconds")

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        try:
            return super().add_view(request, form_url, extra_context)
        except StoreUnavailable:
            refusal = (
                "The lifecycle store is temporarily unavailable (503): nothing was changed. "
                "Try again in a few seconds."
            )
        except ConfigurationError as exc:
            refusal = f"Nothing was changed: {exc}."
        # The view's transaction rolled back (no history row, no log entry): show the form
        # again, filled in as it was posted, with why it was not saved.
        self.message_user(request, refusal, messages.ERROR)
        return HttpResponseRedirect(f"{request.path}?{urlencode(ChangeForm.typed(request))}")

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ChangeForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("op", "issuer", "value", "key_field", "at", "by", "why", "timestamp")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        user = getattr(request, "user", None)
        by = f"admin:{user.get_username()}" if user is not None else "admin"
        who = {"issuer": data["issuer"], "by": by, "why": data["why"]}
        admin_api = lifecycle_admin()
        op, value, when = data["op"], data["value"], data.get("when")
        # ConfigurationError and StoreUnavailable reach add_view, which shows the form again.
        if op == "revoke_token":
            made = admin_api.revoke_token(value, expires_at=when, **who)
        elif op == "cut_off_subject":
            made = admin_api.cut_off_subject(value, before=when, **who)
        elif op == "cut_off_client":
            made = admin_api.cut_off_client(value, before=when, **who)
        else:
            key = {data["key_field"]: value}
            method = admin_api.distrust_key if op == "distrust_key" else admin_api.trust_key
            made = method(**key, **who)
        # The store wrote the row: point the admin's object at it for the redirect and log.
        row = (
            LifecycleRecord.objects.filter(
                op=made.op, issuer=made.issuer, value=made.value or "", timestamp=made.timestamp
            )
            .order_by("-id")
            .first()
        )
        if row is not None:
            obj.pk = row.pk
            obj.__dict__.update({k: v for k, v in row.__dict__.items() if not k.startswith("_")})


@admin.register(LifecycleEntry)
class LifecycleEntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """What is in force now (read-only: change it through lifecycle changes)."""

    list_display = ("kind", "value", "issuer", "at")
    list_filter = ("kind",)
    search_fields = ("value", "issuer")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
