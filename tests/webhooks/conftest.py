"""The webhook tests post to the web app as the providers do: its fixtures are the web tests'."""

from tests.web.conftest import client, make_app, web_settings  # noqa: F401 - fixtures
