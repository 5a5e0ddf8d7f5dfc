"""The web page in a real browser: Playwright driving Debian's chromium against `layerscan serve`
(with its in-process analyzer) and a real registry. The queue table refreshes live, an image's
page shows its layers, packages by type and masked secrets, and links to its JSON reports."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from api_harness import ADMIN_PASSWORD, ServeProcess, admin_session, serving
from registry_fixtures import Pushed
from registry_harness import REGISTRY_BIN
from service_harness import app_image, app_secret, push_image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (scripts/bootstrap.sh)"),
    pytest.mark.skipif(not Path(REGISTRY_BIN).exists(), reason=f"{REGISTRY_BIN} is not installed"),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="the test extra (playwright) is not installed")

SECRET = app_secret(7)  # app_image(7)'s planted aws_secret_access_key


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory, registry: Pushed) -> Iterator[ServeProcess]:
    push_image(registry.server.url, "ui/app7", "latest", app_image(7))
    with serving(tmp_path_factory.mktemp("ui"), registry.host, max_threads=1) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: object, serve: ServeProcess) -> Iterator[object]:
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=f"http://127.0.0.1:{serve.port}", http_credentials={"username": "admin", "password": ADMIN_PASSWORD}
    )
    page = context.new_page()
    yield page
    context.close()


def test_without_credentials_the_browser_is_challenged(browser: object, serve: ServeProcess) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    try:
        # Headless chromium cannot answer the Basic challenge, so the navigation fails on it.
        with pytest.raises(playwright_api.Error, match="ERR_INVALID_AUTH_CREDENTIALS"):
            context.new_page().goto(f"http://127.0.0.1:{serve.port}/ui")
        assert context.request.get(f"http://127.0.0.1:{serve.port}/ui/state.json").status == 401
    finally:
        context.close()


def test_queue_refreshes_live_then_the_image_page(page: object, serve: ServeProcess, registry: Pushed) -> None:
    expect = playwright_api.expect
    p = page
    p.goto("/ui")  # type: ignore[attr-defined]
    queue = p.locator("#queue td[data-state]")  # type: ignore[attr-defined]
    assert queue.count() == 4
    expect(p.locator('#queue td[data-state="analyzed"]')).to_have_text("0")  # type: ignore[attr-defined]
    expect(p.locator("#workers tbody tr")).to_have_count(1)  # type: ignore[attr-defined]
    expect(p.locator("#workers tbody tr td.up")).to_have_text("up")  # type: ignore[attr-defined]
    p.evaluate("window.__loaded_once = true")  # type: ignore[attr-defined]

    tag = f"{registry.host}/ui/app7:latest"
    (image,) = admin_session().post(f"{serve.url}/images", json={"tag": tag}).json()
    digest = image["imageDigest"]

    row = p.locator(f'#images tr[data-digest="{digest}"]')  # type: ignore[attr-defined]
    expect(row).to_have_count(1, timeout=15_000)
    expect(row.locator("td.status")).to_have_text("analyzed", timeout=120_000)
    expect(p.locator('#queue td[data-state="analyzed"]')).to_have_text("1")  # type: ignore[attr-defined]
    expect(p.locator("#refreshed")).to_contain_text("updated")  # type: ignore[attr-defined]
    assert p.evaluate("window.__loaded_once") is True, "the page was reloaded, not refreshed"  # type: ignore[attr-defined]

    row.locator("a").click()
    expect(p.locator("#digest")).to_have_text(digest)  # type: ignore[attr-defined]
    expect(p.locator("#layers tbody tr")).to_have_count(3)  # type: ignore[attr-defined]
    counts = {
        cell.get_attribute("data-type"): cell.inner_text()
        for cell in p.locator("#package-counts td").all()  # type: ignore[attr-defined]
    }
    assert counts == {"os": "2", "python": "1", "npm": "1"}
    p.locator('details[data-type="os"] summary').click()  # type: ignore[attr-defined]
    expect(p.locator('details[data-type="os"] tbody tr')).to_have_count(2)  # type: ignore[attr-defined]
    expect(p.locator('details[data-type="os"]')).to_contain_text("bash")  # type: ignore[attr-defined]
    expect(p.locator("#files")).to_have_text(str(image_files(serve, digest)))  # type: ignore[attr-defined]

    secret_rows = p.locator("#secrets tbody tr", has_text="/app/.env")  # type: ignore[attr-defined]
    assert secret_rows.count() >= 1
    masked = secret_rows.first.locator("td.masked").inner_text()
    assert "*" in masked and SECRET not in masked
    assert SECRET not in p.content()  # type: ignore[attr-defined]

    with p.expect_navigation():  # type: ignore[attr-defined]
        p.get_by_role("link", name="layerscan JSON report").click()  # type: ignore[attr-defined]
    report = json.loads(p.locator("body").inner_text())  # type: ignore[attr-defined]
    assert report["schema"] == "layerscan/v1" and report["image"]["manifest_digest"] == digest
    assert SECRET not in json.dumps(report)
    p.go_back()  # type: ignore[attr-defined]
    anchore = p.get_by_role("link", name="Anchore image export").get_attribute("href")  # type: ignore[attr-defined]
    export = requests.get(f"http://127.0.0.1:{serve.port}{anchore}", auth=("admin", ADMIN_PASSWORD)).json()
    assert export[0]["image"]["imagedata"]["image_report"]["docker_data"]["RepoDigests"][0].endswith(f"@{digest}")


def image_files(serve: ServeProcess, digest: str) -> int:
    return len(admin_session().get(f"{serve.url}/images/{digest}/content/files").json()["content"])
