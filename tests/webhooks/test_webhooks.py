"""Provider webhooks: verified, parsed, stored once, acted on; anything else changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from newsletter.jobs.subscriptions import enrol_subscriber
from newsletter.store.schema import deliveries, events, suppressions
from newsletter.store.subscribers import add_subscriber, get_subscriber
from tests.factories import COURSE, timing
from tests.fakes.webhooks import FAKES, KINDS, Fake, SendGridFake, SESFake, now
from tests.web.conftest import BASE, NOW, TestClient, snapshot

WELCOME = "protect-your-back-welcome"


@pytest.fixture(params=FAKES, ids=lambda cls: cls().name)
def fake(request, monkeypatch) -> Fake:
    made: Fake = request.param()
    made.configure(monkeypatch)
    return made


@pytest.fixture
def hooks(make_app, fake):
    app = make_app(certificate_fetch=getattr(fake, "fetch", None))
    with TestClient(app, base_url=BASE) as client:
        yield client


@pytest.fixture
def sent(store, project) -> dict[str, int]:
    """The welcome email, sent to each of six subscribers: address → ledger id. The rows are
    written as `send` leaves them (state sent, the provider's message id "pm-<id>")."""
    found = {}
    with store.write() as conn:
        for kind in KINDS:
            email = f"{kind}@example.com"
            sub = add_subscriber(conn, email, now=NOW)
            enrol_subscriber(conn, sub, COURSE, timing(project), NOW)
            row = conn.execute(
                deliveries.insert()
                .values(
                    subscriber_id=sub.id,
                    message_id=WELCOME,
                    course=COURSE,
                    position=0,
                    state="sent",
                    due_at=NOW,
                    next_attempt_at=NOW,
                    attempts=1,
                    provider="test",
                    created_at=NOW,
                    sent_at=NOW,
                    updated_at=NOW,
                )
                .returning(deliveries.c.id)
            )
            found[email] = row.scalar_one()
        conn.execute(
            sa.update(deliveries).values(
                provider_message_id="pm-" + sa.cast(deliveries.c.id, sa.String)
            )
        )
    return found


def post(client, fake: Fake, raw_events, **options):
    path, body, headers = fake.request(raw_events, **options)
    return client.post(path, content=body, headers=headers)


def stored(store) -> list[sa.Row]:
    with store.read() as conn:
        return list(
            conn.execute(sa.select(events).where(events.c.source != "cli").order_by(events.c.id))
        )


def test_every_event_kind_is_stored_against_its_delivery_and_acted_on(hooks, fake, store, sent):
    for n, kind in enumerate(fake.kinds):
        email = f"{kind}@example.com"
        raw = fake.event(
            kind, email=email, delivery_id=sent[email], message_id=WELCOME, ident=str(n)
        )
        answer = post(hooks, fake, [raw])
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"stored": 1, "duplicates": 0}
    # A soft bounce is recorded, but suppresses nobody: the provider tries again.
    email = "delivered@example.com"
    raw = fake.event(
        "soft_bounced", email=email, delivery_id=sent[email], message_id=WELCOME, ident="s"
    )
    assert post(hooks, fake, [raw]).json() == {"stored": 1, "duplicates": 0}

    found = {(r.type, r.delivery_id, r.message_id) for r in stored(store) if r.source == fake.name}
    expected_rows = {(kind, sent[f"{kind}@example.com"], WELCOME) for kind in fake.kinds}
    assert found == expected_rows | {("soft_bounced", sent[email], WELCOME)}
    with store.read() as conn:
        reasons = dict(conn.execute(sa.select(suppressions.c.email, suppressions.c.reason)).all())
        statuses = {k: get_subscriber(conn, f"{k}@example.com").status for k in KINDS}
    expected = {"bounced": "bounced", "complained": "complained", "unsubscribed": "unsubscribed"}
    assert reasons == {f"{k}@example.com": r for k, r in expected.items() if k in fake.kinds}
    gone = {"complained", "unsubscribed"} & set(fake.kinds)
    bounced = {"bounced"} & set(fake.kinds)  # the address cannot be mailed: shown as such
    assert statuses == {
        k: "unsubscribed" if k in gone else "suppressed" if k in bounced else "active"
        for k in KINDS
    }


def test_a_replayed_event_is_stored_once(hooks, fake, store, sent):
    email = "bounced@example.com"
    raw = fake.event("bounced", email=email, delivery_id=sent[email], message_id=WELCOME, ident="r")
    path, body, headers = fake.request([raw])
    assert hooks.post(path, content=body, headers=headers).json() == {"stored": 1, "duplicates": 0}
    after_first = snapshot(store)
    again = hooks.post(path, content=body, headers=headers)  # the very same request
    assert again.status_code == 200
    assert again.json() == {"stored": 0, "duplicates": 1}
    resent = post(hooks, fake, [raw])  # re-signed, as a provider's retry is
    assert resent.json()["duplicates"] == 1
    assert snapshot(store) == after_first


def test_unverified_requests_get_401_and_change_nothing(hooks, fake, store, sent):
    email = "bounced@example.com"
    raw = fake.event("bounced", email=email, delivery_id=sent[email], message_id=WELCOME, ident="f")
    before = snapshot(store)
    answer = post(hooks, fake, [raw], forge=True)
    assert answer.status_code == 401, answer.text
    # No credentials at all: no auth header or token, and no signature in the body either.
    path, body, _ = fake.request([raw])
    unsigned = json.loads(body)
    if isinstance(unsigned, dict):
        unsigned.pop("signature", None)
        unsigned.pop("Signature", None)
    answer = hooks.post(path.split("?")[0], content=json.dumps(unsigned).encode())
    assert answer.status_code == 401, answer.text
    assert snapshot(store) == before


def test_stale_signed_timestamps_are_refused(hooks, fake, store, sent):
    if not fake.signs_time:
        pytest.skip(f"{fake.name} signs no timestamp")
    email = "bounced@example.com"
    raw = fake.event("bounced", email=email, delivery_id=sent[email], message_id=WELCOME, ident="t")
    before = snapshot(store)
    for skew in (timedelta(minutes=-6), timedelta(minutes=6)):
        answer = post(hooks, fake, [raw], at=now() + skew)
        assert answer.status_code == 401, answer.text
    assert snapshot(store) == before


def test_malformed_bodies_get_400_and_change_nothing(hooks, fake, store, sent):
    before = snapshot(store)
    bad = {
        "postmark": [{"no": "RecordType"}],
        "sendgrid": {"not": "a list"},
        "mailgun": ["not an object"],
        "resend": [{"type": "email.delivered"}],
        "brevo": [{"no": "event"}],
    }
    if fake.name == "ses":
        path, _, headers = fake.request(
            [
                fake.event(
                    "delivered", email="x@example.com", delivery_id=None, message_id=None, ident="m"
                )
            ]
        )
        answer = hooks.post(path, content=b"{not json", headers=headers)
    else:
        answer = post(hooks, fake, bad[fake.name])
    assert answer.status_code == 400, answer.text
    assert snapshot(store) == before


def test_events_map_back_by_provider_id_and_foreign_ids_are_not_trusted(hooks, fake, store, sent):
    # No metadata echoed back: the provider's own message id finds the ledger row.
    opener = "opened@example.com"
    raw = fake.event(
        "opened",
        email=opener,
        delivery_id=None,
        message_id=None,
        ident="p",
        provider_id=f"pm-{sent[opener]}",
    )
    assert post(hooks, fake, [raw]).status_code == 200
    # An echoed id of another project on the same provider account: a real row of ours, but
    # another message and address. Only the subscriber is known, by address.
    clicker = "clicked@example.com"
    raw = fake.event(
        "clicked",
        email=clicker,
        delivery_id=sent[opener],
        message_id="their-lesson",
        ident="o",
        provider_id="zz",
    )
    assert post(hooks, fake, [raw]).status_code == 200
    by_type = {r.type: r for r in stored(store) if r.source == fake.name}
    assert (by_type["opened"].delivery_id, by_type["opened"].message_id) == (sent[opener], WELCOME)
    assert (by_type["clicked"].delivery_id, by_type["clicked"].message_id) == (None, None)
    with store.read() as conn:
        assert by_type["clicked"].subscriber_id == get_subscriber(conn, clicker).id


def test_unconfigured_and_unknown_providers_are_404(client, store):
    before = snapshot(store)
    for name in ("postmark", "sendgrid", "mailgun", "resend", "ses", "brevo", "nope"):
        answer = client.post(f"/webhooks/{name}", content=b"[]")
        assert answer.status_code == 404, name
    assert snapshot(store) == before


def test_sendgrid_batches_many_events(make_app, monkeypatch, store, sent):
    fake = SendGridFake()
    fake.configure(monkeypatch)
    batch = [
        fake.event(
            kind,
            email=f"{kind}@example.com",
            delivery_id=sent[f"{kind}@example.com"],
            message_id=WELCOME,
            ident=str(i),
        )
        for i, kind in enumerate(fake.kinds)
    ]
    batch.append({"event": "processed", "email": "x@example.com", "sg_event_id": "ignored"})
    with TestClient(make_app(), base_url=BASE) as client:
        answer = post(client, fake, batch)
    assert answer.json() == {"stored": 6, "duplicates": 0}


# -- SES and SNS specifics -------------------------------------------------------------------------


@pytest.fixture
def ses(make_app, monkeypatch):
    fake = SESFake()
    fake.configure(monkeypatch)
    with TestClient(make_app(certificate_fetch=fake.fetch), base_url=BASE) as client:
        yield fake, client


def test_ses_confirms_its_sns_subscription(ses, store):
    fake, client = ses
    url = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=abc"
    body = fake.envelope(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "sub-1",
            "Token": "abc",
            "TopicArn": fake.topic,
            "Message": "You have chosen to subscribe to the topic",
            "SubscribeURL": url,
            "Timestamp": now().isoformat().replace("+00:00", "Z"),
        }
    )
    before = snapshot(store)
    answer = client.post(
        "/webhooks/ses",
        content=body,
        headers={"x-amz-sns-message-type": "SubscriptionConfirmation"},
    )
    assert answer.status_code == 200
    assert fake.fetched == [fake.cert_url, url]
    assert snapshot(store) == before


def test_ses_refuses_other_topics_and_foreign_certificates(ses, store, monkeypatch):
    fake, client = ses
    raw = fake.event("bounced", email="a@example.com", delivery_id=None, message_id=None, ident="x")
    before = snapshot(store)
    fake.topic = "arn:aws:sns:eu-west-1:999999999999:someone-elses"
    path, body, headers = fake.request([dict(raw)])
    assert client.post(path, content=body, headers=headers).status_code == 403
    fake.topic = "arn:aws:sns:eu-west-1:123456789012:newsletter-events"
    for cert_url in (
        "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
        "http://sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com/cert.pem",  # another region than the topic's
    ):
        fake.cert_url = cert_url
        path, body, headers = fake.request([dict(raw)])
        assert client.post(path, content=body, headers=headers).status_code == 403, cert_url
    assert fake.fetched == []  # nothing is fetched from a URL that is not SNS's
    assert snapshot(store) == before


def test_ses_answers_503_when_the_certificate_cannot_be_fetched(ses, store):
    fake, client = ses
    raw = fake.event("bounced", email="a@example.com", delivery_id=None, message_id=None, ident="y")
    fake.unreachable = True
    path, body, headers = fake.request([raw])
    before = snapshot(store)
    assert client.post(path, content=body, headers=headers).status_code == 503
    assert snapshot(store) == before


def test_ses_event_publishing_success_message_is_ignored(ses, store):
    fake, client = ses
    body = fake.envelope(
        {
            "Type": "Notification",
            "MessageId": "n-1",
            "TopicArn": fake.topic,
            "Message": "Successfully validated SNS topic for Amazon SES event publishing.",
            "Timestamp": now().isoformat().replace("+00:00", "Z"),
        }
    )
    answer = client.post("/webhooks/ses", content=body)
    assert answer.json() == {"stored": 0, "duplicates": 0}
    assert json.loads(body)["Type"] == "Notification"
