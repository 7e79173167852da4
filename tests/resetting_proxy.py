"""A TCP proxy on 127.0.0.1 that resets every ``every``-th connection it accepts (RST at once,
before any byte), for tests of what transient store errors do to a run."""

from __future__ import annotations

import socket
import struct
import threading


class ResettingProxy:
    """Forward 127.0.0.1:``port`` to ``target`` (host, port); connection number ``every``,
    ``2 * every``, ... is reset. ``accepted`` and ``reset`` count connections."""

    def __init__(self, target: tuple[str, int], every: int = 5) -> None:
        self.target = target
        self.every = every
        self.accepted = 0
        self.reset = 0
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted % self.every == 0:
                self.reset += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()  # RST
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop = True
        self.server.close()
