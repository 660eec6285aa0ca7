"""A JWK Set loaded into preloaded public keys, with strict key selection.

Keys are imported with ``cryptography`` once, when the set is loaded; the hot path only looks
up a prebuilt ``(kid, alg)`` index and calls a ``cryptography`` verifier.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from .._algorithms import Verifier, curve_of, make_verifier, spec_for
from ..errors import ConfigurationError, KeyNotFound
from ._jwk import import_jwk

__all__ = ["KeySet", "VerificationKey", "load_jwks_document"]

logger = logging.getLogger("jwkguard.keys")

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_MAX_KID_LENGTH = 256
_RFC9864_EDDSA = frozenset({"Ed25519", "Ed448"})


@dataclass(frozen=True, slots=True, eq=False)
class VerificationKey:
    """One usable public key from a JWK Set.

    Attributes:
        kid: The JWK's ``kid``, if it has one.
        thumbprint: The RFC 7638 SHA-256 thumbprint, base64url.
        kty: ``RSA``, ``EC`` or ``OKP`` (``oct`` only for a configured HMAC secret).
        verifiers: A verifier per algorithm this key may verify under the configuration.
        jwk: The public JWK as published.
    """

    kid: str | None
    thumbprint: str
    kty: str
    verifiers: Mapping[str, Verifier]
    jwk: Mapping[str, Any] = field(repr=False)


def _reason_unusable(jwk: Mapping[str, Any]) -> str | None:
    kty = jwk.get("kty")
    if kty == "oct":
        return "symmetric (oct) keys are never used from a JWK Set"
    if kty not in ("RSA", "EC", "OKP"):
        return f"unsupported kty {kty!r}"
    if _PRIVATE_MEMBERS.intersection(jwk):
        return "the JWK holds private key material"
    use = jwk.get("use")
    if use is not None and use != "sig":
        return f"use is {use!r}, not 'sig'"
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return "key_ops does not allow 'verify'"
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or len(kid) > _MAX_KID_LENGTH):
        return "kid is not a short string"
    return None


def _import_public_key(jwk: Mapping[str, Any]) -> tuple[Any, str]:
    return import_jwk(jwk)


def _verifiers_for(
    jwk: Mapping[str, Any], public_key: Any, algorithms: Iterable[str]
) -> dict[str, Verifier]:
    jwk_alg = jwk.get("alg")
    curve = curve_of(public_key)
    verifiers: dict[str, Verifier] = {}
    for alg in algorithms:
        spec = spec_for(alg)
        if spec is None or spec.kty != jwk.get("kty"):
            continue
        if spec.curves and curve not in spec.curves:
            continue
        # The JWK's own alg, if any, must equal the header's; an "EdDSA" key also serves the
        # RFC 9864 name of its curve ("Ed25519" or "Ed448"; the curve was checked above).
        if (
            jwk_alg is not None
            and jwk_alg != alg
            and not (jwk_alg == "EdDSA" and alg in _RFC9864_EDDSA)
        ):
            continue
        verifiers[alg] = make_verifier(alg, public_key)
    return verifiers


class KeySet:
    """The usable keys of one JWK Set, indexed by ``(kid, alg)`` for O(1) selection."""

    __slots__ = ("_index", "keys", "skipped")

    def __init__(self, keys: Iterable[VerificationKey]) -> None:
        self.keys: tuple[VerificationKey, ...] = tuple(keys)
        self.skipped: tuple[tuple[str | None, str], ...] = ()
        index: dict[tuple[str | None, str], list[VerificationKey]] = {}
        for key in self.keys:
            for alg in key.verifiers:
                index.setdefault((key.kid, alg), []).append(key)
                if key.kid is not None:
                    index.setdefault((None, alg), []).append(key)
        self._index = {k: tuple(v) for k, v in index.items()}

    @classmethod
    def from_jwks(
        cls, document: Mapping[str, Any], algorithms: Iterable[str], *, max_keys: int = 100
    ) -> KeySet:
        """Load the usable keys of a JWK Set document; unusable entries are skipped and logged."""
        entries = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(entries, list):
            raise ValueError("a JWK Set must be an object with a 'keys' array")
        if len(entries) > max_keys:
            raise ValueError(f"the JWK Set holds {len(entries)} keys, more than {max_keys}")
        algorithms = tuple(algorithms)
        keys: list[VerificationKey] = []
        skipped: list[tuple[str | None, str]] = []
        for entry in entries:
            kid = entry.get("kid") if isinstance(entry, Mapping) else None
            kid = kid if isinstance(kid, str) else None
            reason = _reason_unusable(entry) if isinstance(entry, Mapping) else "not a JSON object"
            if reason is None:
                try:
                    public_key, thumbprint = _import_public_key(entry)
                    verifiers = _verifiers_for(entry, public_key, algorithms)
                except Exception as exc:
                    reason = f"the key cannot be imported: {exc}"
                else:
                    if not verifiers:
                        reason = "the key fits none of the allowed algorithms"
            if reason is not None:
                logger.warning(
                    "skipping JWK kid=%r: %s", kid, reason, extra={"kid": kid, "reason": reason}
                )
                skipped.append((kid, reason))
                continue
            keys.append(
                VerificationKey(
                    kid=kid,
                    thumbprint=thumbprint,
                    kty=entry["kty"],
                    verifiers=verifiers,
                    jwk=dict(entry),
                )
            )
        key_set = cls(keys)
        key_set.skipped = tuple(skipped)
        return key_set

    def select(self, kid: str | None, alg: str) -> tuple[VerificationKey, Verifier] | None:
        """The one key for this ``kid`` and ``alg``, or None if there is none.

        A token without ``kid`` is accepted only when exactly one usable key fits ``alg``.
        Two usable keys with the same ``kid`` make the token ambiguous and are refused.
        """
        candidates = self._index.get((kid, alg))
        if candidates is None:
            return None
        if len(candidates) != 1:
            if kid is None:
                raise KeyNotFound(
                    "The access token has no key id and several keys fit", reason="unknown_key"
                )
            raise KeyNotFound("The access token's key id is ambiguous", reason="ambiguous_key")
        key = candidates[0]
        return key, key.verifiers[alg]

    def has_kid(self, kid: str | None) -> bool:
        """True if a usable key with this ``kid`` is in the set."""
        return any(key.kid == kid for key in self.keys)

    def by_thumbprint(self) -> dict[str, VerificationKey]:
        """The keys indexed by RFC 7638 thumbprint."""
        return {key.thumbprint: key for key in self.keys}

    def __len__(self) -> int:
        return len(self.keys)


def load_jwks_document(source: Mapping[str, Any] | str | Path) -> Mapping[str, Any]:
    """A JWK Set document from a dict or a path to a JSON file."""
    if isinstance(source, Mapping):
        return source
    if not isinstance(source, str | PathLike):
        raise ConfigurationError("jwks must be a JWK Set dict or a path to a JSON file")
    try:
        document = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read JWK Set from {source}: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigurationError(f"{source} does not hold a JWK Set object")
    return document
