"""The peers whose TOA toa.ko believes (its ``trusted`` parameter): the
``--trusted`` value checked by the module's own rules, and the modprobe.d
file that sets it at every load.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from lvs_tools.toa_base import MODULE, OPTIONS_FILE, InstallerError, read_file


TRUSTED_PARAM = "sys/module/toa/parameters/trusted"
TRUSTED_PATH = "/" + TRUSTED_PARAM
TRUSTED_MAX = 64        # the module's limit (kernel/toa/toa_trust.c)


def parse_trusted(value: str) -> list[str]:
    """The prefixes of a ``trusted`` value, in the form the module shows
    them; InstallerError naming the bad item.  The rules are the module's,
    so that a value that passes here is never refused at load time: comma-
    separated IPv4/IPv6 prefixes, an address alone is a host, no bits set
    past the length, IPv4 written as IPv4.  Empty: any peer (``[]``)."""
    value = value.strip()
    if not value:
        return []
    items = [item.strip() for item in value.split(",")]
    if len(items) > TRUSTED_MAX:
        raise InstallerError(f"--trusted: {len(items)} prefixes, at most {TRUSTED_MAX}")
    return [_trusted_prefix(item) for item in items]


def _trusted_prefix(item: str) -> str:
    addr, slash, length = item.partition("/")
    if not item:
        raise InstallerError("--trusted: empty item (two commas, or one at an end)")
    if slash and not length.isdigit():
        raise InstallerError(f"--trusted: '{item}': the length after '/' must be a number")
    try:
        net = ipaddress.ip_network(item, strict=True)
    except ValueError as exc:
        raise InstallerError(f"--trusted: '{item}': {exc}") from None
    if net.version == 6 and net.network_address.ipv4_mapped is not None:
        raise InstallerError(f"--trusted: '{item}': IPv4-mapped; write IPv4 prefixes as IPv4")
    return str(net)


def write_trusted(prefixes: list[str], root: Path = Path("/")) -> Path | None:
    """Make ``trusted`` hold at every load of toa (modprobe reads
    modprobe.d); no prefixes: remove the file, any peer again."""
    path = root / OPTIONS_FILE
    if not prefixes:
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Peers whose TOA toa.ko believes (lvs-toolkit, docs/toa.md);\n"
                    "# written by lvs_tools.toa_installer --trusted, removed by its uninstall.\n"
                    f"options {MODULE} trusted={','.join(prefixes)}\n")
    return path


def persisted_trusted(root: Path = Path("/")) -> str | None:
    """The ``trusted`` value our modprobe.d file sets, or None."""
    text = read_file(root / OPTIONS_FILE) or ""
    for line in text.splitlines():
        words = line.split()
        if words[:2] == ["options", MODULE]:
            for word in words[2:]:
                if word.startswith("trusted="):
                    return word[len("trusted="):]
    return None
