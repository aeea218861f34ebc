"""A DNS server for tests: a zone given as text, answered on 127.0.0.1 at a port the OS picks,
from a thread (dnslib). CNAMEs are followed inside the zone, as a recursive resolver would, so
a zone can hold SendGrid-style ``s1._domainkey`` CNAMEs and the keys they point to.

    with dns_server(ZONE) as address:       # "127.0.0.1:53124"
        settings = load_settings(..., dns_server=address)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dnslib import QTYPE, RCODE, RR, DNSLabel
from dnslib.server import BaseResolver, DNSServer


class ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: str):
        self.records = RR.fromZone(zone)

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name, wanted = request.q.qname, request.q.qtype
        for _ in range(8):  # a CNAME chain, at most this long
            here = [rr for rr in self.records if rr.rname == name]
            if not here:
                if not reply.rr:
                    reply.header.rcode = RCODE.NXDOMAIN
                return reply
            answers = [rr for rr in here if rr.rtype == wanted]
            cname = [rr for rr in here if rr.rtype == QTYPE.CNAME]
            if answers or not cname:
                for rr in answers:  # none: the name exists without that type (NODATA)
                    reply.add_answer(rr)
                return reply
            reply.add_answer(cname[0])
            name = DNSLabel(str(cname[0].rdata.label))
        return reply


class _Quiet:
    """dnslib logs every query to stdout by default."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@contextmanager
def dns_server(zone: str) -> Iterator[str]:
    server = DNSServer(ZoneResolver(zone), address="127.0.0.1", port=0, logger=_Quiet())
    # Our own thread rather than start_thread(): a short poll makes stopping quick.
    udp = server.server
    thread = threading.Thread(target=udp.serve_forever, kwargs={"poll_interval": 0.02})
    thread.daemon = True
    thread.start()
    try:
        yield f"127.0.0.1:{udp.server_address[1]}"
    finally:
        udp.shutdown()
        udp.server_close()
