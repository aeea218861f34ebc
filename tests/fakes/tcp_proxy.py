"""A TCP proxy on loopback, between a `newsletter` process and its PostgreSQL server, that can
break the connection at the worst moments: a reply lost after the server did the work, a
connection dropped mid-statement, a server that is down for a while.

The PostgreSQL wire protocol is not parsed: faults are armed by bytes the client sends (an SQL
text, a bound value such as ``in_flight``, ``COMMIT``), which is enough to pick out one
statement of a `send` run.

* ``lose_reply(*after, at=b"COMMIT")``: once the client has sent each of ``after`` in turn, the
  next chunk that holds ``at`` is passed on, the server is told the client has finished (it
  still reads and executes what it got) and the client's connection is cut: the server did the
  work, the client never hears of it.
* ``drop_on(*after)``: once the client has sent each of ``after`` in turn (the last one is not
  passed on), both sides are cut.
* ``outage(seconds)``: every connection is cut and new ones are refused for ``seconds``: a
  server restart as clients see it.

Each armed fault strikes once; ``struck`` counts them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class _Fault:
    kind: str  # "lose_reply" · "drop"
    after: list[bytes]
    at: bytes = b""
    seen: int = 0  # how many of ``after`` have gone by


@dataclass
class _Pair:
    client: socket.socket
    server: socket.socket
    closed: bool = False
    mute: bool = False  # the server's replies are read and dropped (a lost reply)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class TCPProxy:
    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.faults: list[_Fault] = []
        self.pairs: list[_Pair] = []
        self.down_until = 0.0
        self.struck = 0
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    # -- instructions -------------------------------------------------------------------------

    def lose_reply(self, *after: bytes, at: bytes = b"COMMIT") -> None:
        with self.lock:
            self.faults.append(_Fault("lose_reply", list(after), at))

    def drop_on(self, *after: bytes) -> None:
        with self.lock:
            self.faults.append(_Fault("drop", list(after)))

    def outage(self, seconds: float) -> None:
        with self.lock:
            self.down_until = time.monotonic() + seconds
            pairs, self.pairs = self.pairs, []
            self.struck += 1
        for pair in pairs:
            pair.close()

    def stop(self) -> None:
        self._stopped = True
        self.listener.close()
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            pair.close()

    # -- the relay ----------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.down_until:
                client.close()  # the server is "down": the connection ends at once
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            pair = _Pair(client, server)
            with self.lock:
                self.pairs.append(pair)
            threading.Thread(target=self._upstream, args=(pair,), daemon=True).start()
            threading.Thread(target=self._downstream, args=(pair,), daemon=True).start()

    def _upstream(self, pair: _Pair) -> None:
        """Client → server, watching for the bytes that arm and fire the faults."""
        while True:
            try:
                data = pair.client.recv(65536)
            except OSError:
                data = b""
            if not data:
                pair.close()
                return
            fault = self._fires(data)
            if fault is None:
                if not self._forward(pair.server, data, pair):
                    return
                continue
            if fault.kind == "lose_reply":
                self._forward(pair.server, data, pair)
                with contextlib.suppress(OSError):
                    pair.server.shutdown(socket.SHUT_WR)  # the server still runs what it got
                pair.mute = True  # the reply is read and dropped by _downstream
                with contextlib.suppress(OSError):
                    pair.client.shutdown(socket.SHUT_RDWR)
            else:
                pair.close()
            return

    def _downstream(self, pair: _Pair) -> None:
        while True:
            try:
                data = pair.server.recv(65536)
            except OSError:
                data = b""
            if not data:
                pair.close()
                return
            if pair.mute:
                continue  # a lost reply: read, never passed on
            if not self._forward(pair.client, data, pair):
                return

    @staticmethod
    def _forward(to: socket.socket, data: bytes, pair: _Pair) -> bool:
        try:
            to.sendall(data)
        except OSError:
            pair.close()
            return False
        return True

    def _fires(self, data: bytes) -> _Fault | None:
        """The armed fault this chunk sets off (disarmed and counted), if any. One step of a
        fault's ``after`` per chunk: each is a statement of its own, and ``at`` (a COMMIT)
        comes in a chunk after the last of them."""
        with self.lock:
            for fault in self.faults:
                if fault.seen < len(fault.after):
                    if fault.after[fault.seen] in data:
                        fault.seen += 1
                        if fault.kind == "drop" and fault.seen == len(fault.after):
                            return self._strike(fault)
                    continue
                if fault.kind == "lose_reply" and fault.at in data:
                    return self._strike(fault)
        return None

    def _strike(self, fault: _Fault) -> _Fault:
        self.faults.remove(fault)
        self.struck += 1
        return fault


@contextmanager
def proxy_for(host: str, port: int) -> Iterator[TCPProxy]:
    proxy = TCPProxy((host, port))
    try:
        yield proxy
    finally:
        proxy.stop()
