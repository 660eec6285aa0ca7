"""Who ``request.user`` is for a bearer-authenticated request.

By default a :class:`TokenUser` built from the verified claims, with no database access. A
``USER_LOADER`` (a callable or its dotted path) maps the claims to a Django user instead;
:func:`user_from_subject` is a ready-made one.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

from jwkguard import Claims

__all__ = ["TokenUser", "UserSlot", "user_from_subject"]


class TokenUser:
    """A user that exists only in the token: authenticated, named after ``sub``, no rows.

    It quacks like ``django.contrib.auth`` users where views usually look (``is_authenticated``,
    ``get_username()``, ``has_perm()``), and grants no Django permissions: use scopes.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, claims: Claims) -> None:
        self.claims = claims
        self.username = claims.subject or claims.client_id or ""
        self.pk = self.id = self.username

    @property
    def scopes(self) -> frozenset[str]:
        """The scopes the token grants."""
        return self.claims.scopes

    def get_username(self) -> str:
        """The token's ``sub`` (or its client id for tokens without a subject)."""
        return self.username

    def has_perm(self, perm: str, obj: object = None) -> bool:
        """Always False: token users hold scopes, not Django permissions."""
        return False

    def has_perms(self, perm_list: Any, obj: object = None) -> bool:
        """Always False, unless ``perm_list`` is empty."""
        return not list(perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        """Always False."""
        return False

    def __str__(self) -> str:
        return self.username

    def __repr__(self) -> str:
        return f"TokenUser({self.username!r}, issuer={self.claims.issuer!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TokenUser):
            return NotImplemented
        return (self.claims.issuer, self.username) == (other.claims.issuer, other.username)

    def __hash__(self) -> int:
        return hash((self.claims.issuer, self.username))


def user_from_subject(claims: Claims) -> Any:
    """A ``USER_LOADER``: the user whose username (``USERNAME_FIELD``) equals ``sub``, or None.

    Only safe with a single issuer, or issuers that share one subject namespace.
    """
    from django.contrib.auth import get_user_model

    model = get_user_model()
    if claims.subject is None:
        return None
    try:
        return model._default_manager.get(**{str(model.USERNAME_FIELD): claims.subject})
    except model.DoesNotExist:
        return None


class UserSlot:
    """Loads the user for a request once, from sync code (``get``) or async code (``aget``)."""

    __slots__ = ("_claims", "_loader", "_user")

    _MISSING: Any = object()

    def __init__(self, claims: Claims, loader: Any) -> None:
        self._claims = claims
        self._loader = loader
        self._user: Any = UserSlot._MISSING

    def get(self) -> Any:
        """The user; runs the loader (usually a database query) on first use."""
        if self._user is UserSlot._MISSING:
            self._user = self._load()
        return self._user

    async def aget(self) -> Any:
        """The user, with the loader run in a thread so the event loop never blocks."""
        if self._user is UserSlot._MISSING:
            user = self._load() if self._loader is None else await sync_to_async(self._load)()
            if self._user is UserSlot._MISSING:
                self._user = user
        return self._user

    def _load(self) -> Any:
        if self._loader is None:
            return TokenUser(self._claims)
        user = self._loader(self._claims)
        if user is None:
            from django.contrib.auth.models import AnonymousUser

            return AnonymousUser()
        return user
