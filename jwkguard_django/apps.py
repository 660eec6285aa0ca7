"""The Django app: registers the system checks and the settings-change receiver."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.core.signals import setting_changed

from . import conf
from .checks import check_middleware_order, check_settings


class JWKGuardConfig(AppConfig):
    """``jwkguard_django`` in ``INSTALLED_APPS``."""

    name = "jwkguard_django"
    verbose_name = "jwkguard"

    def ready(self) -> None:
        """Register the checks (ids ``jwkguard.E001``...) and follow ``override_settings``."""
        checks.register(check_settings, checks.Tags.security)
        checks.register(check_middleware_order, checks.Tags.security)
        setting_changed.connect(conf.reset, dispatch_uid="jwkguard_django.conf.reset")
