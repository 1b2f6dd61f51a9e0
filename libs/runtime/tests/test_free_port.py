"""`free_port` hands one port to one component: a stack of ten processes started on free
ports must not find two of them wanting the same one (the kernel readily offers a port again
once its probe socket is closed)."""

from __future__ import annotations

import socket

from wacast.runtime.embedded import free_port


def test_free_port_never_returns_a_port_twice_in_one_process() -> None:
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)


def test_a_returned_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
