"""The web version, images, the home page, errors, headers and logs."""

from __future__ import annotations

import logging

import pytest

from newsletter.core.errors import ConfigError
from newsletter.web import create_app
from newsletter.web.security import RedactTokens, redact_path
from tests.factories import enrolled
from tests.web.conftest import LOOPBACK_CLIENT, NOW, TestClient

LESSON = "week-1-shoulder-bridge"


def test_web_version_is_public_only_once_sent_and_has_no_personal_data(cli, client, store, project):
    enrolled(store, project, "ana@example.com", NOW, name="Ana Lima")
    assert client.get("/m/protect-your-back-welcome").status_code == 404  # not sent yet
    assert cli("send", "--now", NOW.isoformat()).exit_code == 0
    page = client.get("/m/protect-your-back-welcome")
    assert page.status_code == 200
    assert "Hi there," in page.text
    assert "Ana" not in page.text and "ana@example.com" not in page.text
    assert "/u/" not in page.text  # no personal unsubscribe token in a public page
    assert "script-src" not in page.headers["content-security-policy"]  # no script runs
    assert page.headers["cache-control"].startswith("public")


def test_unknown_message_is_404(client):
    answer = client.get("/m/no-such-message")
    assert answer.status_code == 404
    assert "Not found" in answer.text


def test_assets_serve_images_under_content_only(client):
    image = client.get("/assets/protect-your-back/images/plank.png")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    for path in (
        "/assets/protect-your-back/03-plank.md",  # lessons are not public files
        "/assets/..%2fnewsletter.toml",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/assets/protect-your-back/images/missing.png",
    ):
        assert client.get(path).status_code == 404, path


def test_home_goes_to_signup_without_preview(client, preview_client):
    assert client.get("/").headers["location"] == "/signup"
    assert preview_client.get("/").headers["location"] == "/preview"


def test_health_and_unknown_paths(client):
    assert client.get("/healthz").text == "ok\n"
    missing = client.get("/nothing-here")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    assert client.delete("/signup").status_code == 405


def test_preview_is_off_unless_asked(client):
    assert client.get("/preview").status_code == 404


def test_oversized_bodies_are_refused(client):
    answer = client.post("/signup", content=b"x" * (3 * 1024 * 1024))
    assert answer.status_code == 413


def test_without_a_secret_key_a_public_server_refuses_to_start(web_settings, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_SECRET_KEY")
    settings = web_settings.model_copy(update={"secret_key": None})
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
        create_app(settings)
    # The author's preview still starts; subscriber pages say they are not set up.
    app = create_app(settings, preview=True)
    with TestClient(app, base_url="http://127.0.0.1", client=LOOPBACK_CLIENT) as c:
        assert c.get("/preview").status_code == 200
        assert c.get("/u/anything").status_code == 503


def test_factory_reads_the_project_from_the_environment(web_settings, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_PROJECT_DIR", str(web_settings.project_dir))
    monkeypatch.setenv("NEWSLETTER_PREVIEW", "true")
    app = create_app()
    assert app.state.web.settings.project_dir == web_settings.project_dir
    assert app.state.web.options.preview is True


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/u/eyJzIjoxfQ.abc", "/u/…"),
        ("/manage/eyJzIjoxfQ.abc?done=paused", "/manage/…"),
        ("/confirm/eyJzIjoxfQ.abc.def", "/confirm/…"),
        ("/session/protect-your-back/eyJzIjoxfQ.abc?done=logged", "/session/protect-your-back/…"),
        ("/m/week-1/session", "/m/week-1/session"),
        ("/webhooks/brevo?token=s3cret", "/webhooks/brevo"),
        ("/preview/m/week-1", "/preview/m/week-1"),
    ],
)
def test_access_logs_never_show_tokens(path, logged):
    assert redact_path(path) == logged
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', None, None
    )
    record.args = ("127.0.0.1:5000", "GET", path, "1.1", 200)
    RedactTokens().filter(record)
    assert "s3cret" not in record.getMessage() and "eyJ" not in record.getMessage()


def test_a_project_that_does_not_load_gets_a_plain_500_page(client, project_dir):
    (project_dir / "content" / "broken.md").write_text("no front matter\n")
    client.app.state.web.holder.bump()
    answer = client.get("/signup")
    assert answer.status_code == 500
    assert "Not available right now" in answer.text
    assert "broken.md" not in answer.text  # the reason goes to the log, not to visitors
    assert client.get("/healthz").status_code == 200
