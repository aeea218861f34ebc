"""The preview never shows real subscribers' links to a stranger.

A stranger is a client whose address is not this machine's, whatever ``Host`` it sends: the
preview (and unsent lessons at ``/m/<id>``) answer only loopback clients asking for a loopback
name, or requests for a host the operator named. `serve` refuses the preview on a non-loopback
address unless such hosts are named.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from tests.factories import enrolled
from tests.web.conftest import LOOPBACK_CLIENT, NOW, TestClient
from tests.web.live import serving

STRANGER = ("203.0.113.7", 41000)  # TEST-NET-3: some machine on the internet
UNSENT = "week-2-swan-dive"


@pytest.fixture
def open_client(make_app: Callable[..., Starlette]) -> Iterator[Callable[..., TestClient]]:
    """``open_client(base_url, client, **app_options)``: a test client on a preview app."""
    clients: list[TestClient] = []

    def make(base_url: str, client: tuple[str, int], **options: Any) -> TestClient:
        app = make_app(preview=True, live_reload=False, **options)
        made = TestClient(app, base_url=base_url, client=client, follow_redirects=False)
        clients.append(made.__enter__())
        return made

    yield make
    for made in clients:
        made.__exit__(None, None, None)


def preview_paths(address: str) -> list[str]:
    return [
        "/preview",
        f"/preview?as={address}",
        f"/preview/m/{UNSENT}?as={address}",
        f"/preview/render/{UNSENT}?as={address}",
        "/preview/events",
    ]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_a_stranger_sending_a_loopback_host_sees_nothing(open_client, store, project, tokens, host):
    ana = enrolled(store, project, "ana@example.com", NOW, name="Ana")
    stranger = open_client(f"http://{host}:8000", STRANGER, preview_hosts=frozenset({"box.lan"}))
    for path in preview_paths("ana@example.com"):
        answer = stranger.get(path)
        assert answer.status_code == 403, path
        assert "ana@example.com" not in answer.text
        assert tokens.make("unsubscribe", ana.id) not in answer.text
    unsent = stranger.get(f"/m/{UNSENT}")
    assert unsent.status_code == 404
    assert "Swan Dive" not in unsent.text
    assert stranger.get("/").headers["location"] == "/signup"


@pytest.mark.parametrize("client", [LOOPBACK_CLIENT, ("::1", 50000), ("::ffff:127.0.0.1", 1)])
def test_this_machine_sees_the_preview_and_unsent_lessons(open_client, store, project, client):
    enrolled(store, project, "ana@example.com", NOW, name="Ana")
    author = open_client("http://localhost:8000", client)
    for path in preview_paths("ana@example.com")[:-1]:  # the event stream is long-lived
        assert author.get(path).status_code == 200, path
    unsent = author.get(f"/m/{UNSENT}")
    assert unsent.status_code == 200
    assert unsent.headers["cache-control"] == "no-store"  # never kept by a shared cache
    assert author.get("/").headers["location"] == "/preview"


def test_a_named_host_sees_it_from_anywhere_and_nothing_else_does(open_client):
    named = open_client("http://box.lan:8000", STRANGER, preview_hosts=frozenset({"Box.LAN"}))
    assert named.get("/preview").status_code == 200
    assert named.get(f"/m/{UNSENT}").status_code == 200
    other = open_client("http://other.lan:8000", STRANGER, preview_hosts=frozenset({"box.lan"}))
    assert other.get("/preview").status_code == 403
    assert other.get(f"/m/{UNSENT}").status_code == 404


def test_hosts_from_the_environment_count_as_named(open_client, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_PREVIEW_HOSTS", "box.lan, [fd00::5]")
    assert open_client("http://box.lan", STRANGER).get("/preview").status_code == 200
    assert open_client("http://[fd00::5]", STRANGER).get("/preview").status_code == 200
    assert open_client("http://localhost", STRANGER).get("/preview").status_code == 403


def test_sent_lessons_stay_public_for_everyone(cli, open_client, store, project):
    enrolled(store, project, "ana@example.com", NOW, name="Ana")
    assert cli("send", "--now", NOW.isoformat()).exit_code == 0
    stranger = open_client("http://localhost:8000", STRANGER)
    welcome = stranger.get("/m/protect-your-back-welcome")
    assert welcome.status_code == 200
    assert welcome.headers["cache-control"] == "public, max-age=300"


# -- over a real socket: the client address uvicorn reports ---------------------------------------


def local_address() -> str | None:
    """This machine's address on its outward interface (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def test_over_a_real_socket_a_non_loopback_client_is_a_stranger(make_app):
    address = local_address()
    if address is None:
        pytest.skip("no non-loopback interface")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", 0))
    port = sock.getsockname()[1]
    app = make_app(preview=True, live_reload=False, preview_hosts=frozenset({"box.lan"}))
    with serving(app, sock), httpx.Client(timeout=5) as http:
        outside = f"http://{address}:{port}"
        assert http.get(f"{outside}/preview", headers={"host": "localhost"}).status_code == 403
        assert http.get(f"{outside}/m/{UNSENT}", headers={"host": "localhost"}).status_code == 404
        assert http.get(f"{outside}/preview", headers={"host": "box.lan"}).status_code == 200
        assert http.get(f"http://127.0.0.1:{port}/preview").status_code == 200


# -- newsletter serve ----------------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch) -> list[dict[str, Any]]:
    """Calls of uvicorn.run, recorded instead of serving."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    return calls


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::"])
def test_serve_refuses_the_preview_beyond_loopback_without_named_hosts(cli, served, host):
    result = cli("serve", "--host", host, "--preview")
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: the preview shows subscribers' data and has no login")
    assert "--preview-host" in lines[0]
    assert served == []  # nothing listens


def test_serve_with_named_hosts_says_who_sees_the_preview(cli, served):
    result = cli("serve", "--host", "0.0.0.0", "--preview-host", "Box.lan", "--no-reload")
    assert result.exit_code == 0, result.output
    options = served[0]["app"].state.web.options
    assert options.preview is True  # naming who may see it turns it on
    assert options.preview_hosts == frozenset({"box.lan"})  # and nothing else, not 0.0.0.0
    preview_lines = [line for line in result.output.splitlines() if "preview" in line]
    assert preview_lines == [
        "preview: http://box.lan:8000/preview, shown to any machine that asks for box.lan "
        "(and to this one): it shows subscribers' data and has no login"
    ]


def test_serve_counts_hosts_named_in_the_environment(cli, served, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_PREVIEW_HOSTS", "box.lan")
    assert cli("serve", "--host", "0.0.0.0", "--preview").exit_code == 0
    assert served[0]["app"].state.web.options.preview_hosts == frozenset({"box.lan"})


def test_serve_on_loopback_says_this_machine_only(cli, served):
    result = cli("serve")
    assert result.exit_code == 0
    assert "preview: http://127.0.0.1:8000/preview (this machine only)" in result.output
