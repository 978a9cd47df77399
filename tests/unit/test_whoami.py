"""The lab's whoami TCP server on loopback: it answers, keeps an idle
connection, and closing the server ends the connections it holds."""

from __future__ import annotations

import contextlib
import socket

from tools import whoami


def _server() -> tuple[whoami.TcpWhoami, int]:
    sock = whoami.listen(lambda _ns: contextlib.nullcontext(), "host", 4,
                         socket.SOCK_STREAM, 0, "127.0.0.1")
    return whoami.TcpWhoami(sock, "rs9"), sock.getsockname()[1]


def test_answers_then_echoes():
    server, port = _server()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            name, addr, _port = whoami.whoami_tcp(sock)
            assert (name, addr) == ("rs9", "127.0.0.1")
            assert whoami.echo_stream(sock, 4096)
    finally:
        server.close()


def test_closing_the_server_ends_its_open_connections():
    """No idle timeout closes a connection; the server's close() does (so
    that a test's teardown leaves no handler blocked in a read)."""
    server, port = _server()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        whoami.whoami_tcp(sock)
        assert len(server.conns) == 1
        server.close()
        assert sock.recv(1) == b""      # the server's side shut down: EOF
