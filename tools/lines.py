"""Which kernels ``./inv test`` runs, and how much of the suite on each.

The primary lines run the whole suite, in every run and so in CI: Debian
12's 6.1 (installed on the host) and Debian 13's 6.12 (the newest image of
trixie, security updates included, built in the trixie root).  Every other
supported line runs the core tier (tests/tiers.py), in every run too unless
``--no-secondary``: bookworm-backports' 6.12 (installed on the host), the newest
line of trixie-backports and bullseye's 5.10.  The
kernels of other releases are resolved from Debian's archive at each run
(buildroot.newest_kernel()), so a new upload is tested as soon as it is
there.  docs/kernels.md lists the lines.
"""

from __future__ import annotations

from typing import Sequence

from tools import buildroot, kbuild

#: the host's kernel line that runs the whole suite
PRIMARY_HOST_LINE = "6.1"


def _line_order(kver: str) -> tuple[int, ...]:
    return tuple(int(part) for part in kbuild.kernel_line(kver).split("."))


def split(host: Sequence[str], others: Sequence[tuple[buildroot.Line, str]]
          ) -> tuple[list[str], list[str]]:
    """(kernels for the whole suite, kernels for the core tier) of the host's
    kernels and ``others``' newest ones, each once, primary lines first.

    The core kernels come oldest line first: guests boot in that order as
    slots free (tests/guest_plugin.py), and the older a kernel the longer
    its guest takes under emulation (core tier, measured: 5.10 11-12 min,
    bookworm-backports' 6.12 9 min with its DKMS build, 7.3 6-7 min), so
    the longest start first and the run does not end on one of them alone."""
    full = [k for k in host if kbuild.kernel_line(k) == PRIMARY_HOST_LINE]
    full += [kver for line, kver in others if line.primary]
    core = [k for k in host if k not in full]
    core += [kver for line, kver in others if not line.primary]
    full = list(dict.fromkeys(full))
    return full, sorted((k for k in dict.fromkeys(core) if k not in full), key=_line_order)


def plan(secondary: bool = True) -> tuple[list[str], list[str]]:
    """The kernels of today's run: the host's and the newest of every other
    line; without ``secondary``, the primary lines only (no core list)."""
    lines = [line for line in buildroot.LINES if secondary or line.primary]
    full, core = split(kbuild.installed_kernels(),
                       [(line, buildroot.newest_kernel(line)) for line in lines])
    return full, core if secondary else []
