"""All file access of the tuning tool, relative to a root folder.

Paths are written as on the machine (``/proc/irq/24/smp_affinity``); the
root is ``/`` on a real host and a generated folder in the tests, so every
layer above runs unchanged on a fake ``/proc`` and ``/sys``.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class HostReadError(OSError):
    """A file exists but cannot be read (the message names it)."""


class HostFS:
    """Read, list and write files below ``root``."""

    def __init__(self, root: Path | str = "/") -> None:
        self.root = Path(root).resolve()

    @property
    def is_real(self) -> bool:
        """True when the root is the machine's own ``/``."""
        return self.root == Path("/")

    def path(self, path: str) -> Path:
        """The real location of ``path`` (an absolute path on the host)."""
        return self.root / path.lstrip("/")

    def read(self, path: str) -> str | None:
        """The stripped text of a file, or None when it does not exist.

        Kernel files that refuse a read with ENOENT (``xps_cpus`` of a
        single-queue device) or ESRCH (``/proc/PID/...`` of a process that
        exited meanwhile) count as missing.  Other errors raise
        HostReadError.
        """
        try:
            return self.path(path).read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ESRCH):
                return None
            raise HostReadError(exc.errno, f"cannot read {path}: {exc.strerror}") from exc

    def exists(self, path: str) -> bool:
        return self.path(path).exists()

    def is_dir(self, path: str) -> bool:
        return self.path(path).is_dir()

    def listdir(self, path: str) -> list[str]:
        """Names in a folder, sorted; empty when the folder does not exist."""
        try:
            return sorted(os.listdir(self.path(path)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def resolve(self, path: str) -> str | None:
        """Where a (symbolic) link leads, as a host path; None if it leads nowhere
        or outside the root."""
        real = self.path(path)
        if not real.exists():
            return None
        target = real.resolve()
        try:
            return "/" + str(target.relative_to(self.root)) if target != self.root else "/"
        except ValueError:
            return None

    def writable(self, path: str) -> bool:
        """True if the file exists and some write permission bit is set.

        Kernel files without a write bit (``0444`` sysctls and module
        parameters) refuse writes even from root.
        """
        try:
            return bool(self.path(path).stat().st_mode & 0o222)
        except OSError:
            return False

    def write(self, path: str, value: str) -> None:
        """Write ``value`` with one write() call, as the kernel expects.

        The file must exist (nothing is created).  Raises OSError.
        """
        fd = os.open(self.path(path), os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, (value + "\n").encode())
        finally:
            os.close(fd)

    def write_new(self, path: str, text: str) -> None:
        """Create or replace a regular file atomically (for the state file)."""
        real = self.path(path)
        real.parent.mkdir(parents=True, exist_ok=True)
        tmp = real.with_name(real.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, real)

    def remove(self, path: str) -> None:
        self.path(path).unlink(missing_ok=True)
