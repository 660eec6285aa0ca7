"""Lifecycle state in Django's database (used by :class:`~jwkguard_django.lifecycle.DatabaseStore`).

``LifecycleRecord`` is the change feed and the audit history: one row per administrative
change, never updated, read by every process in ``id`` order. ``LifecycleEntry`` is the
current state (what a process loads at start and on a full resync). ``OneTimeUse`` is the
replay ledger (a unique insert), ``TokenUse`` the reuse watch. Long values are keyed by a
SHA-256 digest so the unique indexes fit every backend.
"""

from __future__ import annotations

from django.db import models

__all__ = ["LifecycleEntry", "LifecycleRecord", "OneTimeUse", "TokenUse"]


class LifecycleRecord(models.Model):
    """One administrative change: who did what, when and why (append-only)."""

    OPS = (
        ("revoke_token", "revoke token"),
        ("cut_off_subject", "cut off subject"),
        ("cut_off_client", "cut off client"),
        ("distrust_key", "distrust key"),
        ("trust_key", "trust key"),
        ("force_refresh", "force key refresh"),
    )

    id: models.BigAutoField[int, int] = models.BigAutoField(primary_key=True)
    op: models.CharField[str, str] = models.CharField(max_length=32, choices=OPS)
    issuer: models.TextField[str, str] = models.TextField()
    value: models.TextField[str, str] = models.TextField(blank=True, default="")
    key_field: models.CharField[str, str] = models.CharField(max_length=16, blank=True, default="")
    at: models.FloatField[float | None, float | None] = models.FloatField(null=True, blank=True)
    by: models.TextField[str, str] = models.TextField()
    why: models.TextField[str, str] = models.TextField()
    timestamp: models.FloatField[float, float] = models.FloatField()

    class Meta:
        ordering = ("-id",)
        verbose_name = "lifecycle change"

    def __str__(self) -> str:
        return f"{self.op} {self.value} ({self.issuer})"


class LifecycleEntry(models.Model):
    """One live entry: a revoked jti, a subject or client cut-off, a distrusted key."""

    id: models.BigAutoField[int, int] = models.BigAutoField(primary_key=True)
    digest: models.CharField[str, str] = models.CharField(max_length=64, unique=True)
    kind: models.CharField[str, str] = models.CharField(
        max_length=16
    )  # revoked, subject, client, kid, thumbprint
    issuer: models.TextField[str, str] = models.TextField()
    value: models.TextField[str, str] = models.TextField()
    at: models.FloatField[float, float] = (
        models.FloatField()
    )  # token expiry, cut-off time, or when distrusted

    class Meta:
        verbose_name = "lifecycle entry"
        verbose_name_plural = "lifecycle entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.value} ({self.issuer})"


class OneTimeUse(models.Model):
    """The replay ledger: a token id's first use, until ``expires``."""

    digest: models.CharField[str, str] = models.CharField(max_length=64, primary_key=True)
    expires: models.FloatField[float, float] = models.FloatField(db_index=True)


class TokenUse(models.Model):
    """One use of a token from an address (the reuse watch counts them per window)."""

    id: models.BigAutoField[int, int] = models.BigAutoField(primary_key=True)
    digest: models.CharField[str, str] = models.CharField(max_length=64)
    address: models.CharField[str, str] = models.CharField(max_length=255)
    at: models.FloatField[float, float] = models.FloatField(db_index=True)

    class Meta:
        indexes = (models.Index(fields=("digest", "at"), name="jwkguard_use_digest_at"),)
