"""What each email provider asks of the sending domain's DNS, as its documentation says.

Two ways a provider's mail passes DMARC (which Gmail and Yahoo require of bulk senders): a DKIM
signature with the sender's domain (every provider here signs so once the domain is set up), or
SPF on an envelope (Return-Path / MAIL FROM) domain that belongs to the sender. So:

* ``spf_needed``: the provider's SPF include must be on the envelope domain for its mail to
  pass SPF there (Mailgun, Resend, SES with a custom MAIL FROM domain). Where the provider
  sends with its own envelope domain by default (Postmark, SendGrid's automated security,
  Brevo), the include on the sender's domain is optional: a missing one is not a problem.
* ``return_path``: where that envelope domain is, ``{domain}`` being the sender's; None when it
  is the account's choice (``return_path_domain`` in the settings).
* ``dkim_selectors``: selectors the provider always uses; empty when each account gets its own
  (``dkim_selector`` in the settings then names them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderDNS:
    title: str
    spf_include: str
    spf_needed: bool
    return_path: str | None
    dkim_selectors: tuple[str, ...]
    dkim_hint: str  # where to find the selector when it is the account's own
    docs: str


PROVIDER_DNS: dict[str, ProviderDNS] = {
    # SPF is optional: Postmark's own Return-Path (pm.mtasv.net) passes SPF; DKIM aligns.
    # https://postmarkapp.com/support/article/900-what-is-spf
    "postmark": ProviderDNS(
        "Postmark",
        "spf.mtasv.net",
        False,
        "{domain}",
        (),
        "a dated selector such as 20240101000000pm: see Sender Signatures → DNS Settings",
        "https://postmarkapp.com/support/article/1091-how-do-i-set-up-dkim-for-postmark",
    ),
    # Automated security: CNAMEs s1/s2._domainkey and em####.<domain> (its own SPF).
    "sendgrid": ProviderDNS(
        "SendGrid",
        "sendgrid.net",
        False,
        "{domain}",
        ("s1", "s2"),
        "s1 and s2, as Settings → Sender Authentication shows",
        "https://www.twilio.com/docs/sendgrid/ui/account-and-settings/how-to-set-up-domain-authentication",
    ),
    # The Mailgun sending domain (often mg.<domain>) carries SPF and the DKIM key.
    "mailgun": ProviderDNS(
        "Mailgun",
        "mailgun.org",
        True,
        "{domain}",
        (),
        "the selector under Sending → Domains → DNS records (such as pic, smtp, mx or k1)",
        "https://documentation.mailgun.com/docs/mailgun/user-manual/domains/domains-verify",
    ),
    # Resend runs on SES: SPF (and an MX) on send.<domain>, DKIM at resend._domainkey.
    "resend": ProviderDNS(
        "Resend",
        "amazonses.com",
        True,
        "send.{domain}",
        ("resend",),
        "resend, as the Domains page shows",
        "https://resend.com/docs/dashboard/domains/introduction",
    ),
    "resend-batch": ProviderDNS(
        "Resend",
        "amazonses.com",
        True,
        "send.{domain}",
        ("resend",),
        "resend, as the Domains page shows",
        "https://resend.com/docs/dashboard/domains/introduction",
    ),
    # Easy DKIM: three CNAMEs <token>._domainkey; SPF only on a custom MAIL FROM domain
    # (https://docs.aws.amazon.com/ses/latest/dg/mail-from.html).
    "ses": ProviderDNS(
        "Amazon SES",
        "amazonses.com",
        True,
        None,
        (),
        "the three Easy DKIM tokens of the identity in the SES console",
        "https://docs.aws.amazon.com/ses/latest/dg/send-email-authentication-dkim-easy.html",
    ),
    # SPF is optional on Brevo's shared IPs (its own Return-Path); DKIM is required since
    # February 2024, either a TXT key (mail._domainkey) or CNAMEs (brevo1, brevo2).
    "brevo": ProviderDNS(
        "Brevo",
        "spf.brevo.com",
        False,
        "{domain}",
        (),
        "mail (a TXT key) or brevo1 and brevo2 (CNAMEs), as Senders & IPs → Domains shows",
        "https://help.brevo.com/hc/en-us/articles/17286219877778",
    ),
}


def selectors_setting(value: str | None) -> tuple[str, ...]:
    """``dkim_selector`` as a list: comma or space separated selectors, or full record names
    (``pic._domainkey.mg.example.com``) as a provider's dashboard shows them."""
    return tuple(s for s in (value or "").replace(",", " ").split() if s)


def dkim_name(selector: str, domain: str) -> str:
    """The DNS name of a DKIM key: ``<selector>._domainkey.<domain>``, or the selector itself
    when it is already a full name."""
    if "._domainkey." in selector:
        return selector.rstrip(".")
    return f"{selector}._domainkey.{domain}"
