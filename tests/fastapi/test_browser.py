"""Real headless Chromium drives Swagger UI: Authorize with a minted token, 200, then 401.

The browser has no internet: every request that does not go to the served app is refused, so
Swagger UI renders only because the example serves its assets from the installed package.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route, expect, sync_playwright

from jwkguard import Validator
from jwkguard.testing import LocalIssuer

from ..conftest import require_binary
from .conftest import ServedApp

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 20_000


@pytest.fixture
def served(validator: Validator) -> Iterator[ServedApp]:
    from examples.fastapi_app import create_app

    with ServedApp(create_app(validator)) as server:
        yield server


@pytest.mark.slow
def test_swagger_ui_authorize_then_execute_gives_200_then_401_after_logout(
    served: ServedApp, issuer: LocalIssuer
) -> None:
    chromium = require_binary("chromium")
    token = issuer.mint(subject="browser-user", scopes=["orders:read"])
    ARTIFACTS.mkdir(exist_ok=True)

    refused: list[str] = []

    def offline(route: Route) -> None:
        # No internet here: only the served app answers; a CDN request would be refused.
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
            return
        refused.append(route.request.url)
        route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(TIMEOUT_MS)
            page.route("**/*", offline)
            page.goto(f"{served.url}/docs")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("Orders API")

            page.locator(".auth-wrapper .authorize").click()
            dialog = page.locator(".modal-ux")
            dialog.get_by_label("auth-bearer-value").fill(token)
            dialog.get_by_role("button", name="Apply credentials").click()
            dialog.get_by_role("button", name="Close", exact=True).click()

            operation = page.locator("#operations-orders-list_orders_orders_get")
            operation.locator(".opblock-summary").click()
            operation.locator(".try-out__btn").click()
            operation.locator("button.execute").click()
            status = operation.locator(".live-responses-table .response .response-col_status")
            expect(status.first).to_have_text(re.compile(r"^\s*200\b"))
            assert "coffee beans" in operation.locator(".live-responses-table").inner_text()
            operation.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "fastapi-swagger-authorized.png"), full_page=True)

            page.locator(".auth-wrapper .authorize").click()
            dialog.get_by_role("button", name="Remove authorization").click()
            dialog.get_by_role("button", name="Close", exact=True).click()
            operation.locator("button.execute").click()
            # Swagger UI appends "Undocumented" to a status the operation does not declare.
            expect(status.first).to_have_text(re.compile(r"^\s*401\b"))
            body = operation.locator(".live-responses-table").inner_text()
            assert "missing_token" in body
            page.screenshot(path=str(ARTIFACTS / "fastapi-swagger-logged-out.png"), full_page=True)
            assert refused == []  # nothing was asked of the internet
        finally:
            browser.close()
