"""Reaching a Ray cluster's address: a bounded wait for it to accept a connection, before Ray retries forever.

Ray's own connection to a head node that is not there retries for minutes, and its client mode
(``ray://``) fails with pages of traceback that never name the address. :func:`wait_reachable` fails in
one line within ``timeout`` seconds instead. Nothing here imports Ray or torch (the plugin reads
``CONNECT_TIMEOUT`` for its option's help).
"""

from __future__ import annotations

import socket
import time

from ..errors import ScalingError

CONNECT_TIMEOUT = 10.0  # seconds a cluster's address may take to accept a connection

ADDRESS_FIX = ("; start the cluster (`ray start --head`) or fix --scaling-ray-address (ini scaling_ray_address, "
               "or $RAY_ADDRESS)")  # fmt: skip


def wait_reachable(address: str, timeout: float) -> None:
    """Return once ``address`` (``host:port`` or ``ray://host:port``) accepts a TCP connection; a one-line
    :class:`ScalingError` naming it after ``timeout`` seconds. Other forms (``auto``) are left to Ray."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=max(0.1, min(2.0, timeout))):
                return
        except OSError as exc:
            if time.monotonic() + 0.5 >= deadline:
                reason = exc.strerror or type(exc).__name__
                raise ScalingError(f"cannot reach the Ray cluster at {address} within {timeout:g} s ({reason})"
                                   + ADDRESS_FIX + "; --scaling-ray-timeout sets the wait") from None  # fmt: skip
            time.sleep(0.5)
