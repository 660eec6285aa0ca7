"""The Django app: registers the system checks and the settings-change receiver."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from jwkguard import ConfigurationError, JWKGuardError

from . import conf
from .checks import check_middleware_order, check_settings

logger = logging.getLogger("jwkguard.django")


class JWKGuardConfig(AppConfig):
    """``jwkguard_django`` in ``INSTALLED_APPS``."""

    name = "jwkguard_django"
    verbose_name = "jwkguard"

    def ready(self) -> None:
        """Register the checks (ids ``jwkguard.E001``...), follow ``override_settings``, and
        warm the keys up when ``WARM_UP`` or ``REQUIRE_KEYS`` says so."""
        checks.register(check_settings, checks.Tags.security)
        checks.register(check_middleware_order, checks.Tags.security)
        setting_changed.connect(conf.reset, dispatch_uid="jwkguard_django.conf.reset")
        warm_up()


def warm_up() -> None:
    """Fetch every issuer's keys now, if ``JWKGUARD["WARM_UP"]`` or ``["REQUIRE_KEYS"]``.

    Raises:
        ImproperlyConfigured: ``REQUIRE_KEYS`` is set and no keys could be had, so the
            process stops at start-up rather than answering 503 to every request.
    """
    raw = getattr(settings, "JWKGUARD", None)
    if not isinstance(raw, Mapping):
        return  # the system checks report it
    try:
        options = conf.parse_options(raw)
    except ConfigurationError:
        return  # the system checks report it
    if not (options.warm_up or options.require_keys):
        return
    try:
        conf.get_state().validator.warm_up()
    except JWKGuardError as exc:
        if options.require_keys:
            raise ImproperlyConfigured(f"JWKGUARD: REQUIRE_KEYS, but no keys: {exc}") from exc
        logger.warning("jwkguard: key warm-up failed, keys will be fetched on demand: %s", exc)
