"""URLs of the adapter test project."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from jwkguard_django.decorators import token_required

from . import views

router = SimpleRouter(trailing_slash=False)
router.register("drf/viewset", views.DRFOrderViewSet, basename="orders")

urlpatterns = [
    path("health", views.health),
    path("healthcheck", views.health),
    path("publicity", views.health),
    path("public/info", views.health),
    path("plain", views.plain),
    path("aplain", views.aplain),
    path("required", views.required),
    path("arequired", views.arequired),
    path("required-bare", views.required_bare),
    path("optional", views.optional),
    path("aoptional", views.aoptional),
    path("exempt", views.exempt),
    path("aexempt", views.aexempt),
    path("cbv", views.OrdersView.as_view()),
    path("acbv", views.AsyncOrdersView.as_view()),
    path("cbv-public", views.PublicView.as_view()),
    path("cbv-write", views.WriteView.as_view()),
    path("cbv-method", views.MethodDecoratedView.as_view()),
    path("cbv-asview", token_required(scopes=["orders:read"])(views.PlainOrdersView.as_view())),
    path("submit", views.submit),
    path("subject", views.subject),
    path("whoami", views.whoami),
    path("awhoami", views.awhoami),
    path("drf/orders", views.DRFOrders.as_view()),
    path("drf/authenticated", views.DRFAuthenticatedOnly.as_view()),
    path("drf/reports", views.DRFReports.as_view()),
    *router.urls,
]
