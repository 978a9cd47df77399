"""Boot persistence: a oneshot systemd unit that applies the profile.

Kernel values set through /proc and /sys are lost at reboot; the unit
applies the profile again once the network is up (NIC drivers often
allocate their queue IRQs only when the interface is opened).  It runs
after irqbalance so that the plan can stop it, and before keepalived so
that traffic arrives on a tuned host.  It has no ExecStop: reverting at
every shutdown would re-enable irqbalance only to disable it again at the
next boot; ``lvs-tune revert`` restores by hand.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

UNIT_NAME = "lvs-tune.service"
DEFAULT_PROFILE_PATH = "/etc/lvs-toolkit/tuning.yaml"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "tuning.md"


def default_command() -> str:
    """The installed ``lvs-tune`` next to this Python, else on PATH."""
    local = Path(sys.executable).parent / "lvs-tune"
    if local.exists():
        return str(local)
    return shutil.which("lvs-tune") or "/usr/local/bin/lvs-tune"


def unit_text(command: str | None = None, profile: str = DEFAULT_PROFILE_PATH) -> str:
    """The unit file's text for ``command`` (an absolute path) and a profile path."""
    command = command or default_command()
    if not command.startswith("/"):
        raise ValueError(f"systemd needs an absolute path for ExecStart, got {command!r}")
    start = shlex.join([command, "apply", "--profile", profile])
    return f"""\
[Unit]
Description=lvs-toolkit host tuning (IRQ affinity, RPS/XPS, sysctls, NIC offloads)
Documentation=file://{DOCS}
Wants=network-online.target
After=network-online.target irqbalance.service systemd-modules-load.service
Before=keepalived.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={start}

[Install]
WantedBy=multi-user.target
"""
