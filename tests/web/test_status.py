"""`newsletter status` counts, per lesson, what the webhooks reported."""

from __future__ import annotations

import json

import sqlalchemy as sa

from newsletter.store.schema import deliveries, subscribers
from tests.factories import enrolled
from tests.fakes.webhooks import KINDS, PostmarkFake
from tests.web.conftest import BASE, NOW, TestClient

WELCOME = "protect-your-back-welcome"


def test_status_shows_webhook_events_per_lesson(cli, make_app, monkeypatch, store, project):
    for kind in KINDS:
        enrolled(store, project, f"{kind}@example.com", NOW)
    assert cli("send", "--now", NOW.isoformat()).exit_code == 0
    with store.read() as conn:
        join = deliveries.join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        query = sa.select(subscribers.c.email, deliveries.c.id).select_from(join)
        ledger_id = dict(conn.execute(query).all())
    fake = PostmarkFake()
    fake.configure(monkeypatch)

    def report(kind: str, reader: str, ident: str) -> None:
        raw = fake.event(
            kind, email=reader, delivery_id=ledger_id[reader], message_id=WELCOME, ident=ident
        )
        path, body, headers = fake.request([raw])
        assert client.post(path, content=body, headers=headers).json()["stored"] == 1

    with TestClient(make_app(), base_url=BASE) as client:
        for kind in KINDS:
            report(kind, f"{kind}@example.com", kind)
        report("opened", "opened@example.com", "again")  # a second open of the same email

    result = cli("status", "--json")
    assert result.exit_code == 0
    lessons = json.loads(result.output)["courses"][0]["lessons"]
    welcome = next(lesson for lesson in lessons if lesson["message_id"] == WELCOME)
    assert welcome["sent"] == len(KINDS)
    assert welcome["events"] == {kind: 1 for kind in KINDS}  # the reader who opened twice: 1

    table = cli("status").output.splitlines()
    header = next(line for line in table if "delivered" in line).split()
    assert header[-7:-1] == ["delivered", "bounced", "complaine", "opened", "clicked", "unsubscri"]
    row = next(line for line in table if WELCOME in line)
    assert row.split()[-8:-2] == ["1"] * 6
    assert row.split()[-2:] == ["0", "(0%)"]  # practised: nobody logged a session
