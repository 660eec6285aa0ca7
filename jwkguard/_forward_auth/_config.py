"""Configuration of ``jwkguard serve``: a TOML file, then ``JWKGUARD__...`` environment overrides.

```toml
[server]
gateway = "nginx"                 # required: "nginx", "traefik" or "envoy"
trusted_proxies = ["127.0.0.1"]   # the gateway's addresses or networks (default: loopback)
host = "127.0.0.1"
port = 9180
realm = "api"
unmatched = "authenticate"        # or "deny": requests no route matches
claim_headers = { "X-Auth-Email" = "email" }

[validator]                       # jwkguard.build_validator settings
algorithms = ["RS256"]

[[validator.issuers]]
issuer = "https://id.example.com/"
audiences = ["https://api.example.com"]

[[routes]]
host = "api.example.com"          # optional; "*.example.com" matches subdomains
path = "/orders"                  # a path prefix, matched on whole segments
methods = ["GET"]                 # optional; HEAD follows GET; methods no rule of the
scopes = ["orders:read"]          # prefix names are refused (403 method_not_allowed)

[[routes]]
path = "/public"
anonymous = true

[lifecycle]                       # optional: revocations, cut-offs, distrust, DPoP proofs
redis_url = "redis://127.0.0.1:6379/0"    # shared by the fleet through Redis
on_unavailable = "fail_open"      # or "fail_closed"

[sender]                          # optional: DPoP, mTLS-bound tokens, introspection
dpop = true                       # or { algorithms = ["ES256"], nonce_secret = "..." }
client_cert_header = "X-SSL-Client-Cert"
trusted_proxies = ["127.0.0.1"]   # the gateway's address
```

Routes may add ``dpop = true``, ``certificate = true`` and ``introspect = true`` (the last
needs ``[sender.introspection]``). ``[lifecycle]`` takes the keys of ``jwkguard.fleet``
settings, in lower case: also ``prefix``, ``reuse`` (off unless set: the address serve sees is
the gateway's), ``dpop_replay`` (default true: DPoP proofs are remembered in its Redis, under
its ``on_unavailable`` policy), ``heartbeat``, ``resync_interval``, ``socket_timeout``,
``connect_timeout`` and ``restore``. Step-up (RFC 9470): ``acr_values = ["urn:mfa"]``
and ``max_age = 300`` on a route answer a weaker or older login with 401
``insufficient_user_authentication``. Roles and origin: ``roles`` (all), ``any_roles``,
``any_scopes`` (at least one) answer 403 ``insufficient_scope``; ``issuers`` and
``audiences`` narrow the validator's for the route (401, ``issuer_not_accepted`` /
``audience_not_accepted``).

RFC 9728: ``resource = "https://api.example.com"`` (before the first table), or a
``[resource]`` table of metadata members (``resource``, ``scopes_supported``,
``resource_name``...): every challenge names the metadata document, which the server
serves at its well-known path (route that path of the gateway to it); issuers without
``audiences`` take the resource identifier as their audience (RFC 8707).

The ``[validator]`` settings also come from ``JWKGUARD_<KEY>`` variables, the scheme every
adapter shares (``jwkguard.settings_from_env``): ``JWKGUARD_ALGORITHMS=RS256``,
``JWKGUARD_ISSUER`` with ``JWKGUARD_AUDIENCES``, or ``JWKGUARD_ISSUERS`` as JSON; they win over
the file. Any other key is set with a double underscore: ``JWKGUARD__SERVER__PORT=9000`` sets
``server.port``; list items are addressed by index
(``JWKGUARD__VALIDATOR__ISSUERS__0__AUDIENCES='["https://api"]'``). Those values are read as
TOML values, then JSON, or taken as plain strings when they are neither.
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._checks import string_list
from .._env import settings_from_env
from .._settings import describe_unknown
from ..errors import ConfigurationError
from ..fleet._settings import FLEET_SETTINGS, FleetSettings, build_fleet_settings
from ..pipeline._pipeline import QueryPolicy, acr_list, query_policy
from ..pipeline._resource import build_resource_metadata
from ..sender._settings import SENDER_SETTINGS, build_sender_settings
from ._original import GATEWAYS
from ._routes import AmbiguousPath, RouteRule, RouteTable, normalise_path

__all__ = ["ENV_PREFIX", "ServerConfig", "apply_environment", "load_config", "parse_config"]

ENV_PREFIX = "JWKGUARD__"
CONFIG_ENV = "JWKGUARD_CONFIG"

_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
# Claim values are the issuer's (often the user's) text: they never set a header that jwkguard
# writes itself, that frames or routes the answer, or that the gateway obeys (Envoy's x-envoy-*).
_RESERVED_HEADERS = frozenset(
    {
        "x-auth-subject",
        "x-auth-scopes",
        "x-auth-error-body",
        "www-authenticate",
        "retry-after",
        "dpop-nonce",
        "cache-control",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "date",
        "server",
        "location",
        "set-cookie",
    }
)
_SERVER_KEYS = frozenset(
    {
        "host",
        "port",
        "realm",
        "unmatched",
        "claim_headers",
        "metrics",
        "log_level",
        "access_log",
        "allow_query_token",
        "envoy_prefix",
        "audit",
        "gateway",
        "trusted_proxies",
    }
)
_ROUTE_KEYS = frozenset(
    {
        "host",
        "path",
        "methods",
        "scopes",
        "anonymous",
        "dpop",
        "certificate",
        "introspect",
        "acr_values",
        "max_age",
        "any_scopes",
        "roles",
        "any_roles",
        "issuers",
        "audiences",
    }
)
_TOP_KEYS = frozenset({"server", "validator", "routes", "lifecycle", "sender", "resource"})


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``jwkguard serve`` needs, validated.

    Attributes:
        validator: The ``build_validator`` settings.
        routes: Per-route rules, most specific first.
        gateway: The gateway that asks (``nginx``, ``traefik`` or ``envoy``): the original
            request is read only from the headers it sets.
        trusted_proxies: Addresses or networks of the gateway; other peers are refused.
        host: Listen address.
        port: Listen port.
        realm: The ``realm`` of ``WWW-Authenticate`` challenges.
        unmatched: ``authenticate`` (any valid token) or ``deny`` (403) for unmatched requests.
        claim_headers: Response header name -> claim name (dotted paths reach nested claims).
        metrics: Serve ``/metrics`` (needs ``prometheus_client``).
        log_level: uvicorn and jwkguard log level.
        access_log: uvicorn access log on or off.
        allow_query_token: Where ``access_token`` is accepted in the original URI's query
            (RFC 6750 2.3): ``"never"`` (``false``) or ``"always"`` (``true``).
        envoy_prefix: The path prefix of the Envoy ``ext_authz`` endpoint.
        audit: Write the audit trail (``jwkguard.audit`` logger).
        lifecycle: The ``[lifecycle]`` table as ``jwkguard.fleet`` settings (the Redis store
            and policy the fleet shares), or None for no lifecycle checks.
        sender: The ``[sender]`` table (``jwkguard.sender.build_sender_settings`` keys): DPoP,
            certificate binding through the gateway's header, introspection.
        resource: The protected resource (RFC 9728): its identifier URL, or a ``[resource]``
            table of metadata members; None for none.
    """

    validator: Mapping[str, Any]
    routes: RouteTable
    gateway: str
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    host: str = "127.0.0.1"
    port: int = 9180
    realm: str = "api"
    unmatched: str = "authenticate"
    claim_headers: Mapping[str, str] = field(default_factory=dict)
    metrics: bool = True
    log_level: str = "info"
    access_log: bool = False
    allow_query_token: QueryPolicy = "never"  # noqa: S105 - a policy name, not a secret
    envoy_prefix: str = "/envoy"
    audit: bool = True
    lifecycle: FleetSettings | None = None
    sender: Mapping[str, Any] = field(default_factory=dict)
    resource: str | Mapping[str, Any] | None = None


def _toml_value(text: str) -> Any:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        pass
    if text.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(text)  # JSON lists and objects, as every JWKGUARD_* variable
        except ValueError:
            pass
    return text


def apply_environment(document: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Apply ``JWKGUARD__A__B=value`` overrides to ``document`` (in place) and return it."""
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            raise ConfigurationError(f"{name}: empty path segment")
        target: Any = document
        for position, part in enumerate(path):
            last = position == len(path) - 1
            if isinstance(target, list):
                if not part.isdigit() or int(part) >= len(target):
                    raise ConfigurationError(f"{name}: no list item {part!r}")
                key: Any = int(part)
            elif isinstance(target, dict):
                key = part
            else:
                raise ConfigurationError(f"{name}: {'.'.join(path[:position])} is not a table")
            if last:
                target[key] = _toml_value(environ[name])
            else:
                if isinstance(target, dict) and key not in target:
                    target[key] = {}
                target = target[key]
    return document


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigurationError(message)


def _require_known(table: Mapping[str, Any], known: frozenset[str], message: str) -> None:
    """Refuse keys of ``table`` not in ``known``, each with the closest known key."""
    unknown = sorted(str(key) for key in set(table) - known)
    if unknown:
        names = describe_unknown(unknown, known, spell=str)
        raise ConfigurationError(f"{message}: {', '.join(names)}")


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    # TOML and JSON arrays arrive as lists; any other type is a mistake in the file.
    return string_list(value, where, container=list)


def _networks(value: Any) -> tuple[str, ...]:
    where = "server.trusted_proxies"
    entries = _string_list(value, where)
    _require(bool(entries), f"{where} must name at least one address")
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigurationError(f"{where}: {entry!r} is not an address or network") from None
    return entries


def _route(raw: Any, position: int) -> RouteRule:
    where = f"routes[{position}]"
    _require(isinstance(raw, dict), f"{where} must be a table")
    _require_known(raw, _ROUTE_KEYS, f"{where}: unknown keys")
    host = raw.get("host")
    _require(
        host is None or (isinstance(host, str) and bool(host)), f"{where}.host must be a string"
    )
    path = raw.get("path", "/")
    _require(isinstance(path, str) and path.startswith("/"), f"{where}.path must start with '/'")
    try:
        canonical = normalise_path(path).path
    except AmbiguousPath as exc:
        raise ConfigurationError(f"{where}.path: {exc}") from None
    _require(
        canonical == path and "%" not in path and "?" not in path,
        f"{where}.path must be written decoded, without '?' or repeated slashes",
    )
    anonymous = raw.get("anonymous", False)
    _require(isinstance(anonymous, bool), f"{where}.anonymous must be true or false")
    scopes = _string_list(raw.get("scopes", []), f"{where}.scopes")
    _require(not (anonymous and scopes), f"{where}: an anonymous route cannot require scopes")
    methods = raw.get("methods")
    if methods is not None:
        methods = [method.upper() for method in _string_list(methods, f"{where}.methods")]
        _require(
            "HEAD" not in methods or "GET" in methods,
            f"{where}.methods: HEAD follows GET's rule (RFC 9110 section 9.3.2); name GET",
        )
    demands = {name: raw.get(name, False) for name in ("dpop", "certificate", "introspect")}
    for name, value in demands.items():
        _require(isinstance(value, bool), f"{where}.{name} must be true or false")
        _require(not (anonymous and value), f"{where}: an anonymous route cannot demand {name}")
    try:
        acr_values = acr_list(raw.get("acr_values", []), f"{where}.acr_values")
    except ConfigurationError as exc:
        raise ConfigurationError(str(exc)) from None
    max_age = raw.get("max_age")
    _require(
        max_age is None or (type(max_age) is int and max_age >= 0),
        f"{where}.max_age must be a number of seconds",
    )
    _require(
        not (anonymous and (acr_values or max_age is not None)),
        f"{where}: an anonymous route cannot demand a step-up (acr_values, max_age)",
    )
    narrowing = {
        name: frozenset(_string_list(raw.get(name, []), f"{where}.{name}"))
        for name in ("any_scopes", "roles", "any_roles", "issuers", "audiences")
    }
    _require(
        not (anonymous and any(narrowing.values())),
        f"{where}: an anonymous route cannot demand roles, any_scopes, issuers or audiences",
    )
    return RouteRule(
        acr_values=acr_values,
        max_age=max_age,
        any_scopes=narrowing["any_scopes"],
        roles=narrowing["roles"],
        any_roles=narrowing["any_roles"],
        issuers=narrowing["issuers"],
        audiences=narrowing["audiences"],
        host=host,
        path=path,
        methods=None if methods is None else tuple(methods),
        scopes=frozenset(scopes),
        anonymous=anonymous,
        **demands,
    )


def parse_config(document: Mapping[str, Any]) -> ServerConfig:
    """A validated ``ServerConfig`` from a parsed document; unknown keys are refused."""
    _require_known(document, _TOP_KEYS, "unknown sections")
    server = document.get("server", {})
    _require(isinstance(server, dict), "[server] must be a table")
    _require_known(server, _SERVER_KEYS, "[server]: unknown keys")
    validator = document.get("validator")
    if not isinstance(validator, dict) or not validator:
        raise ConfigurationError("a [validator] table is required")
    raw_routes = document.get("routes", [])
    _require(isinstance(raw_routes, list), "routes must be an array of tables ([[routes]])")
    options: dict[str, Any] = {}
    for name in ("host", "realm", "log_level", "envoy_prefix"):
        if name in server:
            _require(
                isinstance(server[name], str) and bool(server[name]),
                f"server.{name} must be a string",
            )
            options[name] = server[name]
    for name in ("metrics", "access_log", "audit"):
        if name in server:
            _require(isinstance(server[name], bool), f"server.{name} must be true or false")
            options[name] = server[name]
    if "allow_query_token" in server:
        # One spelling in every adapter: true/false, or "never", "websocket", "always".
        options["allow_query_token"] = query_policy(
            server["allow_query_token"], "server.allow_query_token"
        )
    if "port" in server:
        port = server["port"]
        _require(
            isinstance(port, int) and not isinstance(port, bool) and 0 <= port < 65536,
            "server.port must be a port number",
        )
        options["port"] = port
    if "unmatched" in server:
        _require(
            server["unmatched"] in ("authenticate", "deny"),
            "server.unmatched must be 'authenticate' or 'deny'",
        )
        options["unmatched"] = server["unmatched"]
    prefix = options.get("envoy_prefix", "/envoy")
    _require(
        prefix.startswith("/") and prefix != "/" and not prefix.endswith("/"),
        "server.envoy_prefix must look like /envoy",
    )
    headers = server.get("claim_headers", {})
    _require(isinstance(headers, dict), "server.claim_headers must be a table")
    seen: set[str] = set()
    for header, claim in headers.items():
        _require(bool(_HEADER_NAME.fullmatch(header)), f"claim header {header!r} is not a name")
        lowered = header.lower()
        _require(
            lowered not in _RESERVED_HEADERS and not lowered.startswith("x-envoy-"),
            f"claim header {header!r} is reserved",
        )
        _require(lowered not in seen, f"claim header {header!r} is named more than once")
        seen.add(lowered)
        _require(
            isinstance(claim, str) and bool(claim), f"claim_headers.{header} must name a claim"
        )
    options["claim_headers"] = dict(headers)
    routes = RouteTable([_route(raw, position) for position, raw in enumerate(raw_routes)])
    if "lifecycle" in document:
        options["lifecycle"] = _lifecycle(document["lifecycle"])
    options["sender"] = _sender(document.get("sender", {}), routes)
    if document.get("resource") is not None:
        resource = document["resource"]
        build_resource_metadata(resource, where="resource")  # checked now, built by the app
        options["resource"] = resource
    if "trusted_proxies" in server:
        options["trusted_proxies"] = _networks(server["trusted_proxies"])
    gateway = server.get("gateway")
    _require(
        isinstance(gateway, str) and gateway in GATEWAYS,
        "server.gateway is required: name the gateway that asks jwkguard serve "
        '("nginx", "traefik" or "envoy"); the original request is read only from the '
        "headers that gateway sets",
    )
    return ServerConfig(validator=validator, routes=routes, gateway=gateway, **options)


def _sender(raw: Any, routes: RouteTable) -> dict[str, Any]:
    _require(isinstance(raw, dict), "[sender] must be a table")
    _require_known(raw, SENDER_SETTINGS, "[sender]: unknown keys")
    try:
        built = build_sender_settings(raw)  # checked now, built again by the app
    except ConfigurationError as exc:
        raise ConfigurationError(f"[sender]: {exc}") from exc
    if built.introspector is not None:
        built.introspector.close()
    elif any(route.introspect for route in routes.routes):
        raise ConfigurationError("a route has introspect = true but [sender] has no introspection")
    if built.constraints.dpop is None and any(route.dpop for route in routes.routes):
        raise ConfigurationError("a route has dpop = true but [sender] has no dpop")
    return dict(raw)


def _lifecycle(raw: Any) -> FleetSettings:
    _require(isinstance(raw, dict), "[lifecycle] must be a table")
    _require_known(raw, FLEET_SETTINGS, "[lifecycle]: unknown keys")
    # serve sees the gateway's address, never the client's: no reuse watch unless asked for.
    settings = build_fleet_settings({"reuse": False, **raw}, where="[lifecycle]")
    if settings is None:  # only for None or False, which a table is not
        raise ConfigurationError("[lifecycle] must be a table")
    return settings


def load_config(path: str | Path | None, environ: Mapping[str, str]) -> ServerConfig:
    """Read the TOML file at ``path`` (or ``$JWKGUARD_CONFIG``), apply overrides, validate."""
    chosen = path or environ.get(CONFIG_ENV)
    document: dict[str, Any] = {}
    if chosen:
        try:
            document = tomllib.loads(Path(chosen).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read {chosen}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{chosen} is not valid TOML: {exc}") from exc
    apply_environment(document, environ)
    flat = settings_from_env(environ)
    if flat:
        validator = document.setdefault("validator", {})
        _require(isinstance(validator, dict), "[validator] must be a table")
        if "issuers" in flat:
            for key in [key for key in validator if str(key).lower() == "issuers"]:
                del validator[key]
        validator.update(flat)
    return parse_config(document)
