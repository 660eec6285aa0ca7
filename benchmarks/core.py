"""Core validation cost: jwkguard beside PyJWT, joserfc and the bare-crypto floor.

Every implementation checks the same tokens against the same keys in one run. Figures are
median microseconds of CPU time per token: the calls are timed in blocks, the implementations
take turns block by block (so a noisy neighbour hurts all of them alike), and the median of the
block means is reported. Ratios are to the floor: split, base64url-decode and ``json.loads`` the
header and payload, and verify with a ``cryptography`` key loaded in advance (no claim checks).

Run with ``python -m benchmarks core``; ``JWKGUARD_BENCH_ROUNDS`` changes the number of rounds.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import logging
import os
import platform
import statistics
import time
import warnings
from binascii import a2b_base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet as JoseKeySet
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry

from benchmarks._timing import paired_ratio
from jwkguard import Claims, Issuer, Validator
from jwkguard._parse import split_standard, standard_b64_decode, strict_json_object
from jwkguard.testing import SigningKey, b64url, generate_key, mint_token, sign_compact

ISSUER = "https://id.example.com/"
AUDIENCE = "https://api.example.com"
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA", "HS256")
IMPLEMENTATIONS = ("verify", "floor", "jwkguard", "pyjwt", "joserfc")
SECRET = bytes(range(32))
SECRET_KID = "hs-1"
# Target: jwkguard / the raw signature verify at most this much (paired per round).
VERIFY_TARGETS = {"RS256": 1.4, "ES256": 1.15}
# Target: jwkguard / floor at most this much.
FLOOR_TARGETS = {"RS256": 1.6, "PS256": 1.6, "ES256": 1.3, "EdDSA": 1.3, "HS256": 4.0}
PEER_SPEEDUP_TARGET = ("RS256", 3.0)
BLOCK_SECONDS = 0.02
_cpu_time = time.process_time

Verify = Callable[[str], object]


@dataclass
class Fixture:
    """Keys and one token per algorithm, shared by every implementation."""

    keys: dict[str, SigningKey]
    jwks: dict[str, Any]
    tokens: dict[str, str]


def _fixture(now: float) -> Fixture:
    keys = {alg: generate_key(alg, kid=f"{alg.lower()}-1") for alg in ALGORITHMS[:4]}
    jwks = {"keys": [dict(key.public_jwk) for key in keys.values()]}
    claims: dict[str, Any] = {
        "sub": "user-123",
        "scope": "orders:read orders:write profile",
        "client_id": "web-app",
    }
    tokens = {
        alg: mint_token(key, issuer=ISSUER, audience=AUDIENCE, now=now, lifetime=3600, **claims)
        for alg, key in keys.items()
    }
    payload = {
        "iss": ISSUER,
        "sub": "user-123",
        "aud": AUDIENCE,
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + 3600,
        "jti": "0" * 32,
        **claims,
    }
    header = {"alg": "HS256", "typ": "at+jwt", "kid": SECRET_KID}
    tokens["HS256"] = sign_compact(header, payload, secret=SECRET, alg="HS256")
    return Fixture(keys, jwks, tokens)


# -- the floor -------------------------------------------------------------------------------

_STANDARD = bytes.maketrans(b"-_", b"+/")


def _b64(segment: bytes) -> bytes:
    return a2b_base64(segment.translate(_STANDARD) + b"=" * (-len(segment) % 4))


def _floor(alg: str, fixture: Fixture) -> Verify:
    loads = json.loads
    if alg == "HS256":
        new, compare, sha256 = hmac.new, hmac.compare_digest, hashlib.sha256

        def verify_hmac(token: str) -> object:
            raw = token.encode()
            header, payload, signature = raw.split(b".")
            loads(_b64(header))
            claims = loads(_b64(payload))
            mac = new(SECRET, raw[: len(header) + 1 + len(payload)], sha256).digest()
            if not compare(mac, _b64(signature)):
                raise ValueError("bad signature")
            return claims

        return verify_hmac
    public_key: Any = fixture.keys[alg].private_key.public_key()
    if alg == "ES256":
        ecdsa, from_bytes = ec.ECDSA(hashes.SHA256()), int.from_bytes

        def verify_ecdsa(token: str) -> object:
            raw = token.encode()
            header, payload, signature = raw.split(b".")
            loads(_b64(header))
            claims = loads(_b64(payload))
            sig = _b64(signature)
            der = encode_dss_signature(from_bytes(sig[:32], "big"), from_bytes(sig[32:], "big"))
            public_key.verify(der, raw[: len(header) + 1 + len(payload)], ecdsa)
            return claims

        return verify_ecdsa
    if alg == "EdDSA":

        def verify_eddsa(token: str) -> object:
            raw = token.encode()
            header, payload, signature = raw.split(b".")
            loads(_b64(header))
            claims = loads(_b64(payload))
            public_key.verify(_b64(signature), raw[: len(header) + 1 + len(payload)])
            return claims

        return verify_eddsa
    rsa_hash = hashes.SHA256()
    pad: padding.AsymmetricPadding = (
        padding.PKCS1v15()
        if alg == "RS256"
        else padding.PSS(mgf=padding.MGF1(rsa_hash), salt_length=rsa_hash.digest_size)
    )

    def verify_rsa(token: str) -> object:
        raw = token.encode()
        header, payload, signature = raw.split(b".")
        loads(_b64(header))
        claims = loads(_b64(payload))
        public_key.verify(_b64(signature), raw[: len(header) + 1 + len(payload)], pad, rsa_hash)
        return claims

    return verify_rsa


def _raw_verify(alg: str, fixture: Fixture, *, der_given: bool = False) -> Verify:
    """Only the ``cryptography`` verify (or HMAC) of the pre-decoded signature: no parsing.

    A JWS ECDSA signature is ``R || S`` (RFC 7518 section 3.4) and ``cryptography`` verifies
    only DER, so verifying an ES256 signature with it is the conversion and the verify: the
    conversion is in the raw verify, as it is in every validator built on ``cryptography``
    (and in the floor). ``der_given`` measures the verify alone, with a DER signature made in
    advance, as this benchmark did before (printed beside it).
    """
    token = fixture.tokens[alg].encode()
    header, payload, signature = token.split(b".")
    signing_input, raw = token[: len(header) + 1 + len(payload)], _b64(signature)
    if alg == "HS256":
        new, sha256 = hmac.new, hashlib.sha256
        return lambda _token: hmac.compare_digest(new(SECRET, signing_input, sha256).digest(), raw)
    public_key: Any = fixture.keys[alg].private_key.public_key()
    if alg == "ES256":
        ecdsa, from_bytes = ec.ECDSA(hashes.SHA256()), int.from_bytes
        if der_given:
            der = encode_dss_signature(from_bytes(raw[:32], "big"), from_bytes(raw[32:], "big"))
            return lambda _token: public_key.verify(der, signing_input, ecdsa)
        return lambda _token: public_key.verify(
            encode_dss_signature(from_bytes(raw[:32], "big"), from_bytes(raw[32:], "big")),
            signing_input,
            ecdsa,
        )
    if alg == "EdDSA":
        return lambda _token: public_key.verify(raw, signing_input)
    rsa_hash = hashes.SHA256()
    pad: padding.AsymmetricPadding = (
        padding.PKCS1v15()
        if alg == "RS256"
        else padding.PSS(mgf=padding.MGF1(rsa_hash), salt_length=rsa_hash.digest_size)
    )
    return lambda _token: public_key.verify(raw, signing_input, pad, rsa_hash)


# -- the implementations -----------------------------------------------------------------------


def _jwkguard(alg: str, fixture: Fixture) -> Verify:
    if alg == "HS256":
        # jwkguard never verifies HMAC against a JWK Set: the secret is configured explicitly.
        issuer = Issuer(ISSUER, audiences=[AUDIENCE], secret=SECRET, secret_kid=SECRET_KID)
    else:
        issuer = Issuer(ISSUER, audiences=[AUDIENCE], jwks=fixture.jwks)
    validator = Validator(issuers=[issuer], algorithms=[alg], required_claims=("exp", "iat"))
    return validator.validate


def _jwks_with_secret(fixture: Fixture) -> dict[str, Any]:
    oct_jwk = {"kty": "oct", "kid": SECRET_KID, "k": b64url(SECRET), "alg": "HS256"}
    return {"keys": [*fixture.jwks["keys"], oct_jwk]}


def _pyjwt(alg: str, fixture: Fixture) -> Verify:
    key_set = pyjwt.PyJWKSet.from_dict(_jwks_with_secret(fixture))
    keys = {key.key_id: key for key in key_set.keys}
    options: Any = {"require": ["exp", "iat", "iss", "aud"]}
    decode, header_of = pyjwt.decode, pyjwt.get_unverified_header

    def verify(token: str) -> object:
        key = keys[header_of(token)["kid"]]
        return decode(
            token, key, algorithms=[alg], issuer=ISSUER, audience=AUDIENCE, options=options
        )

    return verify


def _joserfc(alg: str, fixture: Fixture) -> Verify:
    document = _jwks_with_secret(fixture)
    key_set = JoseKeySet.import_key_set(document)  # type: ignore[arg-type]
    if alg == "HS256":
        key_set.keys.append(OctKey.import_key(SECRET, {"kid": SECRET_KID, "alg": "HS256"}))
    registry = JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
        iat={"essential": True},
    )
    decode, validate = jose_jwt.decode, registry.validate

    def verify(token: str) -> object:
        decoded = decode(token, key_set, algorithms=[alg])
        validate(decoded.claims)
        return decoded.claims

    return verify


def _raw_verify_der_given(alg: str, fixture: Fixture) -> Verify:
    return _raw_verify(alg, fixture, der_given=True)


BUILDERS: dict[str, Callable[[str, Fixture], Verify]] = {
    "verify": _raw_verify,
    "verify, DER given": _raw_verify_der_given,
    "floor": _floor,
    "jwkguard": _jwkguard,
    "pyjwt": _pyjwt,
    "joserfc": _joserfc,
}


# -- timing ------------------------------------------------------------------------------------


def _block_size(verify: Verify, token: str) -> int:
    start = _cpu_time()
    calls = 0
    while _cpu_time() - start < BLOCK_SECONDS / 2:
        verify(token)
        calls += 1
    return max(5, int(calls * 2))


def _time_block(verify: Verify, token: str, calls: int) -> float:
    # CPU time of this process: on a shared machine, time spent descheduled is not the
    # token's cost (wall-clock blocks that were interrupted would only add noise).
    start = _cpu_time()
    for _ in range(calls):
        verify(token)
    return (_cpu_time() - start) / calls * 1e6


def measure(fixture: Fixture, rounds: int) -> dict[str, dict[str, float]]:
    """Median microseconds per token for every algorithm and implementation.

    Each row also holds ``jwkguard/verify``: the median of the per-round ratios of jwkguard to
    the raw verify (blocks timed side by side share the machine's mood).
    """
    results: dict[str, dict[str, float]] = {}
    for alg in ALGORITHMS:
        token = fixture.tokens[alg]
        names = IMPLEMENTATIONS + (("verify, DER given",) if alg == "ES256" else ())
        verifiers = {name: BUILDERS[name](alg, fixture) for name in names}
        for verify in verifiers.values():
            verify(token)  # every implementation must accept the token before it is timed
        sizes = {name: _block_size(verify, token) for name, verify in verifiers.items()}
        samples: dict[str, list[float]] = {name: [] for name in names}
        gc.disable()
        try:
            for round_number in range(rounds):
                shift = round_number % len(names)
                order = names[shift:] + names[:shift]
                for name in order:
                    samples[name].append(_time_block(verifiers[name], token, sizes[name]))
        finally:
            gc.enable()
        results[alg] = {name: statistics.median(values) for name, values in samples.items()}
        results[alg]["jwkguard/verify"] = paired_ratio(samples["jwkguard"], samples["verify"])
        for peer in ("floor", "pyjwt", "joserfc"):
            results[alg][f"{peer}/verify"] = paired_ratio(samples[peer], samples["verify"])
        if "verify, DER given" in samples:
            results[alg]["jwkguard/verify, DER given"] = paired_ratio(
                samples["jwkguard"], samples["verify, DER given"]
            )
    return results


def _ignoring_token(stage: Callable[[], object]) -> Verify:
    return lambda _token: stage()


def breakdown(fixture: Fixture, rounds: int) -> dict[str, float]:
    """Median microseconds of each stage of one RS256 validation, and of the bare RSA verify."""
    alg, token = "RS256", fixture.tokens["RS256"]
    validator: Any = _jwkguard(alg, fixture).__self__  # type: ignore[attr-defined]
    parsed, route, kid, alg = validator._prepare(token)
    now = time.time()
    match = route.source.key_for(kid, alg, now)
    _, verifier = match
    public_key = fixture.keys[alg].private_key.public_key()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    scopes = route.policy.check(parsed.payload, now)
    raw = token.encode("ascii")
    _, payload_std, signature_std = split_standard(raw)
    payload_json = standard_b64_decode(payload_std)
    header_b64, payload_b64, signature_b64 = raw.split(b".")
    header_json = _b64(header_b64)
    loads = json.loads
    stages: dict[str, Callable[[], object]] = {
        "cryptography RSA verify alone": lambda: public_key.verify(
            parsed.signature, parsed.signing_input, pkcs1, sha256
        ),
        "floor: str to bytes, split": lambda: token.encode().split(b"."),
        "floor: base64url header + payload + signature": lambda: (
            _b64(header_b64),
            _b64(payload_b64),
            _b64(signature_b64),
        ),
        "floor: json.loads header + payload": lambda: (loads(header_json), loads(payload_json)),
        "parse: str to bytes, one translate pass, split": lambda: split_standard(
            token.encode("ascii")
        ),
        "parse: payload base64url": lambda: standard_b64_decode(payload_std),
        "parse: payload strict JSON (orjson + duplicate bound)": lambda: strict_json_object(
            payload_json, "payload"
        ),
        "parse: signature base64url": lambda: standard_b64_decode(signature_std),
        "parse: size, segments, header cache, payload JSON, routing": lambda: validator._prepare(
            token
        ),
        "key selection by kid and alg": lambda: route.source.key_for(kid, alg, now),
        "signature (verifier with its length check)": lambda: verifier(
            parsed.signing_input, parsed.signature
        ),
        "claims: exp nbf iat iss aud scopes": lambda: route.policy.check(parsed.payload, now),
        "Claims result": lambda: Claims._trusted(
            parsed.payload, header=parsed.header, key_id=kid, thumbprint="", scopes=scopes
        ),
        "whole validate()": lambda: validator.validate(token),
    }
    samples: dict[str, list[float]] = {name: [] for name in stages}
    calls = {name: _ignoring_token(stage) for name, stage in stages.items()}
    sizes = {name: _block_size(call, token) for name, call in calls.items()}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, call in calls.items():
                samples[name].append(_time_block(call, token, sizes[name]))
    finally:
        gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}


def _ten_key_jwks() -> dict[str, Any]:
    algs = ["RS256"] * 4 + ["ES256"] * 3 + ["EdDSA"] * 3
    return {"keys": [dict(generate_key(alg, kid=f"k{i}").public_jwk) for i, alg in enumerate(algs)]}


def measure_build(rounds: int) -> dict[str, float]:
    """Median milliseconds to load a 10-key JWK Set into each library's verifier."""
    document = _ten_key_jwks()
    builders: dict[str, Callable[[], object]] = {
        "jwkguard": lambda: Validator(
            issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks=document)],
            algorithms=["RS256", "ES256", "EdDSA"],
        ),
        "pyjwt": lambda: pyjwt.PyJWKSet.from_dict(document),
        "joserfc": lambda: JoseKeySet.import_key_set(document),  # type: ignore[arg-type]
    }
    samples: dict[str, list[float]] = {name: [] for name in builders}
    for _ in range(rounds):
        for name, build in builders.items():
            start = _cpu_time()
            build()
            samples[name].append((_cpu_time() - start) * 1e3)
    return {name: statistics.median(values) for name, values in samples.items()}


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, {model}, {platform.python_implementation()} "
        f"{platform.python_version()}, load average {load}"
    )


def main() -> None:
    """Print the per-token table, the key-set build table and the targets."""
    warnings.simplefilter("ignore")  # joserfc warns on every EdDSA decode (RFC 9864)
    # Each jwkguard validator allows one algorithm, so the other keys of the shared JWK Set
    # are skipped at load time, each with a warning that would clutter the table.
    logging.getLogger("jwkguard.keys").setLevel(logging.ERROR)
    rounds = int(os.environ.get("JWKGUARD_BENCH_ROUNDS", "25"))
    print(f"machine: {_machine()}; {rounds} rounds of ~{BLOCK_SECONDS * 1e3:.0f} ms blocks")
    fixture = _fixture(time.time())
    results = measure(fixture, rounds)
    print()
    print(
        "| alg | raw verify us | floor us | jwkguard us (x floor) | PyJWT us (x floor) "
        "| joserfc us (x floor) | x raw verify (paired): floor / jwkguard / PyJWT / joserfc |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for alg, row in results.items():
        floor = row["floor"]
        cells = [f"{row[name]:.1f} ({row[name] / floor:.2f}x)" for name in IMPLEMENTATIONS[2:]]
        paired = " / ".join(
            f"{row[name + '/verify']:.2f}x" for name in ("floor", "jwkguard", "pyjwt", "joserfc")
        )
        print(f"| {alg} | {row['verify']:.1f} | {floor:.1f} | {' | '.join(cells)} | {paired} |")
    es256 = results["ES256"]
    print(
        f"ES256 raw verify with the R||S to DER step {es256['verify']:.1f} us, DER given "
        f"{es256['verify, DER given']:.1f} us; jwkguard x the latter (the old baseline): "
        f"{es256['jwkguard/verify, DER given']:.2f}x"
    )

    build = measure_build(max(5, rounds // 2))
    print()
    print("| load a 10-key JWK Set | ms |")
    print("| --- | ---: |")
    for name, value in build.items():
        print(f"| {name} | {value:.2f} |")

    stages = breakdown(fixture, max(5, rounds // 2))
    print()
    print("| where an RS256 validation goes | us |")
    print("| --- | ---: |")
    for name, value in stages.items():
        print(f"| {name} | {value:.1f} |")

    print()
    for alg, limit in VERIFY_TARGETS.items():
        ratio = results[alg]["jwkguard/verify"]
        verdict = "met" if ratio <= limit else f"MISSED by {ratio / limit - 1:.0%}"
        print(
            f"target {alg}: jwkguard <= {limit}x the raw verify (paired): {ratio:.2f}x, {verdict}"
        )
    for alg, limit in FLOOR_TARGETS.items():
        ratio = results[alg]["jwkguard"] / results[alg]["floor"]
        verdict = "met" if ratio <= limit else f"MISSED by {ratio / limit - 1:.0%}"
        print(f"target {alg}: jwkguard <= {limit}x floor: {ratio:.2f}x, {verdict}")
    alg, speedup = PEER_SPEEDUP_TARGET
    for peer in ("pyjwt", "joserfc"):
        ratio = results[alg][peer] / results[alg]["jwkguard"]
        verdict = "met" if ratio >= speedup else "MISSED"
        print(f"target {alg}: jwkguard >= {speedup}x faster than {peer}: {ratio:.1f}x, {verdict}")


if __name__ == "__main__":
    main()
