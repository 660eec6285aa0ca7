"""The verified-token cache: a repeated RS256 token beside the verify floor and PyJWT.

One run, one token (RS256, 2048-bit key, about 730 characters), every implementation checking
it in turn: calls are timed in blocks (thread CPU time), the implementations take turns block by
block (a noisy neighbour hurts all of them alike), and the median block mean is reported in
microseconds.

- ``cryptography verify``: only ``public_key.verify`` on the pre-decoded signature, the floor
  no validator can go under without a cache;
- ``jwkguard uncached`` / ``jwkguard cached``: ``Validator.validate`` without and with
  ``token_cache=True`` (a hit: digest, lookup, key source, time window, lifecycle hook);
- ``jwkguard cached, scopes``: a hit that also checks a per-request scope;
- ``jwkguard cached, remote keys``: a hit when the keys come from a ``jwks_uri`` (a local
  issuer on 127.0.0.1): the hit also asks the remote key source for the key;
- ``jwkguard miss + insert``: cache on, but every call a new token (the cost of a useless
  cache: distinct tokens cycling through a cache too small to keep them);
- ``PyJWT``: ``jwt.decode`` with a preloaded ``PyJWK`` (PyJWT has no cache);
- ``joserfc``: ``jwt.decode`` with a preloaded ``KeySet`` and a ``JWTClaimsRegistry`` (no cache
  either);
- ``jwkguard cached, then .subject``: a hit whose claims are then read (a hit decodes the
  cached payload text on the first read of its claims).

Then the digest choice (SHA-256 vs BLAKE2 on the same token) and the memory of a 100,000-entry
cache, measured as RSS growth in a fresh subprocess. Targets: cached <= 0.1x the verify floor
and >= 20x faster than PyJWT; 100,000 entries within the documented bound.
Run with ``python -m benchmarks token_cache``; ``JWKGUARD_BENCH_ROUNDS`` sets the rounds.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
from binascii import a2b_base64
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet as JoseKeySet
from joserfc.jwt import JWTClaimsRegistry

from benchmarks._timing import CPU, Call, interleaved_samples, medians
from jwkguard import Issuer, TokenCache, Validator
from jwkguard.testing import LocalIssuer, SigningKey, generate_key, mint_token, sign_compact

ISSUER = "https://id.example.com/"
AUDIENCE = "https://api.example.com"
CLAIMS = {"scope": "orders:read orders:write profile", "client_id": "web-app"}
BLOCK_SECONDS = 0.02
FLOOR_TARGET = 0.1
PYJWT_SPEEDUP_TARGET = 20.0
MEMORY_ENTRIES = 100_000
# The documented bound for 100,000 entries of tokens like this one (docs/performance.md).
MEMORY_BOUND_MB = 256
MISS_POOL = 400
# Issue targets: an entry of a typical (~500-byte) token in at most 1 KiB, a hit in 2 us.
ENTRY_BYTES_TARGET = 1024
HIT_US_TARGET = 2.0


def _b64(segment: str) -> bytes:
    data = segment.encode().translate(bytes.maketrans(b"-_", b"+/"))
    return a2b_base64(data + b"=" * (-len(data) % 4))


def _validator(key: SigningKey, cache: TokenCache | bool, jwks_uri: str | None = None) -> Validator:
    if jwks_uri is None:
        issuer = Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [dict(key.public_jwk)]})
    else:
        issuer = Issuer(ISSUER, audiences=[AUDIENCE], jwks_uri=jwks_uri)
    return Validator(
        issuers=[issuer],
        algorithms=["RS256"],
        required_claims=("exp", "iat"),
        token_cache=cache,
    )


def _calls(key: SigningKey, token: str, pool: list[str], jwks_uri: str) -> dict[str, Call]:
    public_key: Any = key.private_key.public_key()
    header, payload, signature = token.split(".")
    signing_input = f"{header}.{payload}".encode()
    raw_signature = _b64(signature)
    pad, sha256 = padding.PKCS1v15(), hashes.SHA256()

    uncached = _validator(key, cache=False)
    cached = _validator(key, cache=True)
    missing = _validator(key, cache=TokenCache(max_entries=MISS_POOL // 4))
    remote = _validator(key, cache=True, jwks_uri=jwks_uri)
    remote.warm_up()
    jwk = pyjwt.PyJWK.from_dict(dict(key.public_jwk))
    options: Any = {"require": ["exp", "iat", "iss", "aud"]}
    scopes = frozenset({"orders:read"})
    next_token = itertools.cycle(pool).__next__
    jose_keys = JoseKeySet.import_key_set({"keys": [dict(key.public_jwk)]})  # type: ignore[arg-type]
    registry = JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
        iat={"essential": True},
    )

    def joserfc_decode() -> object:
        decoded = jose_jwt.decode(token, jose_keys, algorithms=["RS256"])
        registry.validate(decoded.claims)
        return decoded.claims

    return {
        "cryptography verify": lambda: public_key.verify(raw_signature, signing_input, pad, sha256),
        "jwkguard uncached": lambda: uncached.validate(token),
        "jwkguard cached": lambda: cached.validate(token),
        # A hit's payload is decoded on its first read: a caller that reads a claim pays it.
        "jwkguard cached, then .subject": lambda: cached.validate(token).subject,
        "jwkguard cached, scopes": lambda: cached.validate(token, scopes=scopes),
        "jwkguard cached, remote keys": lambda: remote.validate(token),
        "jwkguard uncached, new tokens": lambda: uncached.validate(next_token()),
        "jwkguard miss + insert": lambda: missing.validate(next_token()),
        "PyJWT": lambda: pyjwt.decode(
            token, jwk, algorithms=["RS256"], issuer=ISSUER, audience=AUDIENCE, options=options
        ),
        "joserfc": joserfc_decode,
    }


def interleaved(calls: dict[str, Call], rounds: int) -> dict[str, float]:
    """Median microseconds per call, the calls taking turns block by block.

    CPU time of this thread, not wall time: on a shared machine a block that loses the CPU to
    a neighbour is not charged for the wait.
    """
    return medians(interleaved_samples(calls, rounds, clock=CPU, block_seconds=BLOCK_SECONDS))


def measure_digests(token: str, rounds: int) -> dict[str, float]:
    """Microseconds to digest the token, as the cache does (str to ASCII bytes, then hash)."""
    sha256, blake2b, blake2s = hashlib.sha256, hashlib.blake2b, hashlib.blake2s
    return interleaved(
        {
            "sha256": lambda: sha256(token.encode("ascii")).digest(),
            "blake2b (32-byte digest)": lambda: blake2b(
                token.encode("ascii"), digest_size=32
            ).digest(),
            "blake2b (64-byte digest)": lambda: blake2b(token.encode("ascii")).digest(),
            "blake2s": lambda: blake2s(token.encode("ascii")).digest(),
        },
        rounds,
    )


# -- memory (in a child process, so that nothing else moves its RSS) ---------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _memory_child(entries: int) -> None:
    """Fill a cache with ``entries`` distinct tokens; print RSS growth and the cache's estimate.

    The tokens are HS256 with the RS256 token's header fields and claims: the signature is not
    kept, so the entry is the same size, and 100,000 RSA signatures would take minutes.
    """
    secret = bytes(range(32))
    issuer = Issuer(ISSUER, audiences=[AUDIENCE], secret=secret, secret_kid="hs-1")
    cache = TokenCache(max_entries=entries, max_bytes=2**40)
    validator = Validator(issuers=[issuer], algorithms=["HS256"], token_cache=cache)
    now = int(time.time())
    header = {"alg": "HS256", "typ": "at+jwt", "kid": "hs-1"}

    def token(number: int) -> str:
        payload = {
            "iss": ISSUER,
            "sub": f"user-{number}",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "jti": f"{number:032x}",
            "aud": AUDIENCE,
            **CLAIMS,
        }
        return sign_compact(header, payload, secret=secret, alg="HS256")

    token_chars = len(token(-1))
    validator.validate(token(-1))
    cache.clear()
    gc.collect()
    before = _rss_bytes()
    for number in range(entries):
        validator.validate(token(number))
    gc.collect()
    after = _rss_bytes()
    print(
        json.dumps(
            {
                "entries": len(cache),
                "rss": after - before,
                "estimate": cache.size_bytes,
                "token_chars": token_chars,
            }
        )
    )


def measure_memory(entries: int) -> dict[str, int]:
    """RSS growth of a child process holding ``entries`` cached tokens."""
    code = f"from benchmarks.token_cache import _memory_child; _memory_child({entries})"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Print the per-call table, the digest table, the memory figures and the targets."""
    rounds = int(os.environ.get("JWKGUARD_BENCH_ROUNDS", "25"))
    key = generate_key("RS256", kid="rsa-1")
    now = time.time()
    token = mint_token(key, issuer=ISSUER, audience=AUDIENCE, now=now, lifetime=3600, **CLAIMS)
    pool = [
        mint_token(key, issuer=ISSUER, audience=AUDIENCE, now=now, lifetime=3600, **CLAIMS)
        for _ in range(MISS_POOL)
    ]
    print(f"RS256 token of {len(token)} characters; {rounds} rounds of ~20 ms blocks")
    with LocalIssuer() as local:
        local.extra_jwks.append(dict(key.public_jwk))  # the remote row fetches the same key
        results = interleaved(_calls(key, token, pool, local.jwks_uri), rounds)
    floor = results["cryptography verify"]
    print()
    print("| path | us per token | x verify floor |")
    print("| --- | ---: | ---: |")
    for name, value in results.items():
        print(f"| {name} | {value:.2f} | {value / floor:.3f}x |")

    digests = measure_digests(token, rounds)
    print()
    print(f"| digest of the {len(token)}-character token | us |")
    print("| --- | ---: |")
    for name, value in digests.items():
        print(f"| {name} | {value:.2f} |")

    memory = measure_memory(MEMORY_ENTRIES)
    rss_mb, estimate_mb = memory["rss"] / 2**20, memory["estimate"] / 2**20
    print()
    print(f"| {memory['entries']:,} cached tokens | MiB | bytes per entry |")
    print("| --- | ---: | ---: |")
    print(f"| RSS growth | {rss_mb:.1f} | {memory['rss'] / memory['entries']:.0f} |")
    print(
        f"| the cache's own estimate (what max_bytes bounds) | {estimate_mb:.1f} "
        f"| {memory['estimate'] / memory['entries']:.0f} |"
    )

    print()
    cached = results["jwkguard cached"]
    ratio = cached / floor
    verdict = "met" if ratio <= FLOOR_TARGET else f"MISSED by {ratio / FLOOR_TARGET - 1:.0%}"
    print(f"target: cached <= {FLOOR_TARGET}x the verify floor: {ratio:.3f}x, {verdict}")
    speedup = results["PyJWT"] / cached
    verdict = "met" if speedup >= PYJWT_SPEEDUP_TARGET else "MISSED"
    print(
        f"target: cached >= {PYJWT_SPEEDUP_TARGET:.0f}x faster than PyJWT: "
        f"{speedup:.1f}x, {verdict}"
    )
    print(f"(cached is {results['joserfc'] / cached:.1f}x faster than joserfc)")
    verdict = "met" if rss_mb <= MEMORY_BOUND_MB else "MISSED"
    print(
        f"target: {MEMORY_ENTRIES:,} entries under {MEMORY_BOUND_MB} MiB RSS: "
        f"{rss_mb:.1f} MiB, {verdict}"
    )
    per_entry = memory["rss"] / memory["entries"]
    verdict = "met" if per_entry <= ENTRY_BYTES_TARGET else "MISSED"
    print(
        f"target: an entry <= {ENTRY_BYTES_TARGET} bytes of RSS "
        f"({memory['token_chars']}-character tokens): {per_entry:.0f}, {verdict}"
    )
    verdict = "met" if cached <= HIT_US_TARGET else "MISSED"
    print(f"target: a hit <= {HIT_US_TARGET} us: {cached:.2f} us, {verdict}")
    read = results["jwkguard cached, then .subject"]
    verdict = "within" if read <= HIT_US_TARGET else "OVER"
    print(f"  a hit and the first read of a claim: {read:.2f} us ({verdict} {HIT_US_TARGET} us)")
    verdict = "yes" if memory["estimate"] >= memory["rss"] else "NO: max_bytes under-counts"
    print(f"the estimate bounds the RSS growth: {verdict}")


if __name__ == "__main__":
    main()
