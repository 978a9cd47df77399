"""A multi-queue virtio NIC for test guests, on a host tap device that carries nothing.

Multi-queue virtio-net needs a QEMU backend with queues; of the backends
QEMU has without extra daemons only tap has them (user-mode networking has
not).  The tap device is created here, on the host, *persistent and down*:
frames the guest sends reach the host kernel's tun driver, which drops them
because the interface is not up (``tun_get_user``: -EIO), and nothing is
ever sent towards the guest.  It has no address, IPv6 is disabled on it, and
it is attached to nothing.  It is removed when the guest has exited.

The guest sees a virtio-net PCI device with ``QUEUES`` queue pairs (the
driver enables as many as the guest has CPUs), MSI-X vectors for every
queue, and the MAC address ``MAC``, by which tests find it (its name depends
on udev: virtme-ng adds ``net.ifnames=0`` only when it configures networks
itself, which we do not ask for).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
from pathlib import Path
from typing import Iterator

QUEUES = 4
MAC = "52:54:00:4c:56:53"
NETDEV_ID = "lvsmq"
_SERIAL = itertools.count()


class TapError(Exception):
    """The host cannot create the tap device (the message says why)."""


def tap_name(pid: int | None = None) -> str:
    """A name unique to this process (at most 15 characters)."""
    return f"lvsmq{pid or os.getpid()}"[:15]


def qemu_args(ifname: str, queues: int = QUEUES) -> list[str]:
    """QEMU options for a virtio-net PCI NIC with ``queues`` pairs on tap ``ifname``."""
    netdev = (f"tap,id={NETDEV_ID},ifname={ifname},script=no,downscript=no,vhost=off,"
              f"queues={queues}")
    # One vector per rx and tx queue, one for config, one for the control queue.
    device = (f"virtio-net-pci,netdev={NETDEV_ID},mq=on,vectors={2 * queues + 2},"
              f"mac={MAC}")
    return ["-netdev", netdev, "-device", device]


def _ip(*args: str) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise TapError(f"ip {' '.join(args)}: {res.stderr.strip()}")


def create_tap(ifname: str) -> None:
    """A persistent multi-queue tap, left down, without IPv6."""
    if os.geteuid() != 0:
        raise TapError("creating a tap device needs root")
    if not Path("/dev/net/tun").exists():
        raise TapError("/dev/net/tun is missing")
    _ip("tuntap", "add", "dev", ifname, "mode", "tap", "multi_queue")
    ipv6 = Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6")
    if ipv6.exists():
        ipv6.write_text("1\n")


def remove_tap(ifname: str) -> None:
    subprocess.run(["ip", "link", "del", ifname], capture_output=True)


@contextlib.contextmanager
def multiqueue_nic(queues: int = QUEUES) -> Iterator[list[str]]:
    """Create the tap, yield the NIC's QEMU options, remove the tap after.

    Raises TapError (before yielding) if the host cannot create it.
    """
    # one tap per guest: guests of several kernels may run at once
    ifname = f"{tap_name()}{next(_SERIAL)}"[:15]
    create_tap(ifname)
    try:
        yield qemu_args(ifname, queues)
    finally:
        remove_tap(ifname)
