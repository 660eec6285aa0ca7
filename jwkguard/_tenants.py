"""Dynamic tenants: issuers that match a template, accepted by a decision made at run time.

A multi-tenant API trusts issuers it cannot list at start-up (Entra
``https://login.microsoftonline.com/{tenant}/v2.0``, Auth0 custom domains, Keycloak realms).
The token's unverified ``iss`` is matched against the template first (the tenant part must
match a strict pattern), then the operator's decision (a set, a store with ``__contains__``
or a callable) is asked; only then is an issuer built, with key URLs filled in from the
operator's own templates. So a forged ``iss`` never causes a fetch to a URL the operator did
not write, and the routes built for tenants are bounded (least recently used are dropped).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Container, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from ._issuer import Issuer
from .errors import ConfigurationError

__all__ = ["TenantIssuers"]

logger = logging.getLogger("jwkguard.tenants")

_PLACEHOLDER = "{tenant}"
# A tenant is one host label or path segment: never a dot-dot, a slash, a colon or an @.
_DEFAULT_TENANT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}"

TenantDecision = Container[str] | Callable[[str], bool]
"""Which tenants are accepted: a set or any store with ``__contains__``, or a callable."""


@dataclass(frozen=True)
class TenantIssuers:
    """Issuers matching ``template``, each accepted when ``tenants`` says so.

    Args:
        template: The issuer with a ``{tenant}`` placeholder, e.g.
            ``https://login.microsoftonline.com/{tenant}/v2.0``.
        tenants: The run-time decision: a set (which may change), a store with
            ``__contains__``, or a callable ``tenant -> bool``. It is asked at most once per
            tenant per ``decision_ttl`` seconds, synchronously: keep it fast (an in-memory
            snapshot of your tenant table).
        jwks_uri: Where keys are fetched; ``{tenant}`` is filled in. Without a placeholder
            (Entra's ``common`` keys) every tenant shares one cache and one fetch. Without a
            ``jwks_uri``, discovery under the tenant's issuer is used.
        tenant_pattern: A regular expression the tenant part must match in full; by default
            one host label or path segment of letters, digits, ``-`` and ``_``.
        max_tenants: At most this many tenants (accepted or refused) are remembered; the least
            recently used are dropped, so forged issuers cannot grow memory.
        decision_ttl: How long a decision is remembered, in seconds.
        options: Any other ``Issuer`` option for every tenant (``audiences``,
            ``role_claims``, ``claim_checks``, cache timings, ...).
    """

    template: str
    _: KW_ONLY
    tenants: TenantDecision
    jwks_uri: str | None = None
    tenant_pattern: str = _DEFAULT_TENANT_PATTERN
    max_tenants: int = 1000
    decision_ttl: float = 300
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.template, str) or self.template.count(_PLACEHOLDER) != 1:
            raise ConfigurationError("template must hold '{tenant}' exactly once")
        if not (callable(self.tenants) or hasattr(self.tenants, "__contains__")):
            raise ConfigurationError(
                "tenants must be a set, a store with __contains__ or a callable"
            )
        if isinstance(self.tenants, str):
            raise ConfigurationError("tenants must be a set of tenant ids, not one string")
        if self.jwks_uri is not None and (
            not isinstance(self.jwks_uri, str) or self.jwks_uri.count(_PLACEHOLDER) > 1
        ):
            raise ConfigurationError("jwks_uri must be a URL with at most one '{tenant}'")
        try:
            pattern = re.compile(self.tenant_pattern)
        except (re.error, TypeError) as exc:
            raise ConfigurationError(f"tenant_pattern is not a regular expression: {exc}") from None
        if type(self.max_tenants) is not int or self.max_tenants < 1:
            raise ConfigurationError("max_tenants must be a positive integer")
        if type(self.decision_ttl) not in (int, float) or not self.decision_ttl >= 0:
            raise ConfigurationError("decision_ttl must be a non-negative number of seconds")
        if not isinstance(self.options, Mapping) or {"issuer", "jwks_uri"} & set(self.options):
            raise ConfigurationError("options are Issuer options other than issuer and jwks_uri")
        prefix, suffix = self.template.split(_PLACEHOLDER)
        object.__setattr__(
            self,
            "_matcher",
            re.compile(f"{re.escape(prefix)}(?P<tenant>{pattern.pattern}){re.escape(suffix)}"),
        )
        object.__setattr__(self, "options", dict(self.options))
        # Every URL a tenant could lead to is checked now, with a sample tenant.
        self.issuer_for("sample")

    def tenant_of(self, iss: str) -> str | None:
        """The tenant named by ``iss``, or None when it does not match the template."""
        found = self._matcher.fullmatch(iss)  # type: ignore[attr-defined]
        return found.group("tenant") if found is not None else None

    def accepts(self, tenant: str) -> bool:
        """The operator's decision for ``tenant`` (a failing decision refuses)."""
        try:
            if callable(self.tenants):
                return self.tenants(tenant) is True
            return tenant in self.tenants
        except Exception:
            logger.exception("the tenant decision failed for %r; refusing", tenant)
            return False

    def issuer_for(self, tenant: str) -> Issuer:
        """The ``Issuer`` of an accepted tenant, its URLs filled in from the templates."""
        jwks_uri = self.jwks_uri.replace(_PLACEHOLDER, tenant) if self.jwks_uri else None
        return Issuer(
            self.template.replace(_PLACEHOLDER, tenant), jwks_uri=jwks_uri, **self.options
        )

    @property
    def shares_keys(self) -> bool:
        """True when every tenant's keys come from one fixed ``jwks_uri``."""
        return self.jwks_uri is not None and _PLACEHOLDER not in self.jwks_uri


class TenantRoutes:
    """The bounded, thread-safe memory of tenant decisions and the routes built for them.

    ``build(template, issuer)`` makes a validator route (policy and key source); ``drop``
    releases what a dropped route holds.
    """

    def __init__(
        self,
        templates: tuple[TenantIssuers, ...],
        build: Callable[[TenantIssuers, Issuer], Any],
        drop: Callable[[Any], None],
        clock: Callable[[], float],
    ) -> None:
        self.templates = templates
        self._build = build
        self._drop = drop
        self._clock = clock
        self._lock = threading.Lock()
        # iss -> (route or None for a refused tenant, decided at)
        self._known: OrderedDict[str, tuple[Any, float, TenantIssuers]] = OrderedDict()
        self._limit = max(template.max_tenants for template in templates)

    def route(self, iss: str) -> Any:
        """The route for ``iss``, or None when no template accepts it."""
        now = self._clock()
        with self._lock:
            known = self._known.get(iss)
            if known is not None:
                route, decided, template = known
                if now - decided < template.decision_ttl:
                    self._known.move_to_end(iss)
                    return route
        for template in self.templates:
            tenant = template.tenant_of(iss)
            if tenant is None:
                continue
            route = None
            if template.accepts(tenant):
                # A tenant accepted again keeps its route, and so its cached keys.
                if known is not None and known[0] is not None:
                    route = known[0]
                else:
                    route = self._build(template, template.issuer_for(tenant))
            self._remember(iss, route, now, template)
            return route
        return None  # matches no template: never remembered, nothing grows

    def _remember(self, iss: str, route: Any, now: float, template: TenantIssuers) -> None:
        dropped = []
        with self._lock:
            previous = self._known.pop(iss, None)
            if previous is not None and previous[0] is not None and previous[0] is not route:
                dropped.append(previous[0])
            self._known[iss] = (route, now, template)
            while len(self._known) > self._limit:
                _, (old, _, _) = self._known.popitem(last=False)
                if old is not None:
                    dropped.append(old)
        for old in dropped:
            self._drop(old)

    def routes(self) -> list[Any]:
        """The routes currently remembered."""
        with self._lock:
            return [route for route, _, _ in self._known.values() if route is not None]

    def __len__(self) -> int:
        with self._lock:
            return len(self._known)
