"""URLs of the example project."""

from __future__ import annotations

from django.urls import include, path
from orders import views
from rest_framework.routers import SimpleRouter

router = SimpleRouter(trailing_slash=False)
router.register("api/v2/orders", views.OrderViewSet, basename="orders")

urlpatterns = [
    path("health", views.health),
    path("api/public", views.public),
    path("api/me", views.me),
    path("api/async-me", views.async_me),
    path("api/orders", views.orders),
    path("", include(router.urls)),
]
