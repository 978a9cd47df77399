"""``ipvsadm-py``: ipvsadm's command line on the ipvsadm_py library.

:mod:`~ipvsadm_py.cli.parse` reads argv into a command,
:mod:`~ipvsadm_py.cli.check` judges it as ipvsadm does,
:mod:`~ipvsadm_py.cli.run` carries it out through
:class:`ipvsadm_py.api.IPVS`, and :mod:`~ipvsadm_py.cli.fmt` writes
ipvsadm's text.  ``apply``, ``validate``, ``export`` and ``completion`` go
to :mod:`ipvsadm_py.config.cli`; ``deny``, ``allow`` and ``acl`` (client lists in
nftables) to :mod:`ipvsadm_py.cli.acl`.  Exit statuses are ipvsadm's: 0 done, 1 a
listing failed, 2 bad input (or IPVS unavailable), 255 the kernel refused
(or the command line could not be parsed at all).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

from ipvsadm_py.cli.check import check
from ipvsadm_py.cli.parse import Command, parse
from ipvsadm_py.cli.run import (EXIT_KERNEL, Session, execute, request_of, restore, usage,
                                version_line)
from ipvsadm_py.cli.spec import EXIT_FAIL, UsageError
from ipvsadm_py.errors import IPVSError, NotLoaded

TYPE_CHECKING = False     # typing only for type checkers (see wire.py)
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["main", "entry_point", "parse", "check", "request_of", "usage", "version_line"]

SUBCOMMANDS = ("apply", "validate", "export", "completion")
ACL_COMMANDS = ("deny", "allow", "acl")      # client lists in nftables (cli.acl)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None, stdin: TextIO | None = None) -> int:
    """The ``ipvsadm-py`` command; returns the exit status.  The streams
    default to the process's (tests pass their own)."""
    # A short-lived process holding many small objects (10,000 rules):
    # the cyclic collector would only cost time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _main(list(sys.argv[1:] if argv is None else argv), out or sys.stdout,
                     err or sys.stderr, stdin or sys.stdin)
    finally:
        if collecting:
            gc.enable()


def _main(argv: list[str], out: TextIO, err: TextIO, stdin: TextIO) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        from ipvsadm_py.config import cli as config_cli

        return config_cli.main(argv, out, err)
    if argv and argv[0] in ACL_COMMANDS:
        from ipvsadm_py.cli import acl

        return acl.main(argv, out, err)
    load = "--load" in argv
    argv = [a for a in argv if a != "--load"]
    session = Session(out, err, load)
    try:
        if not argv:
            return execute(session, Command(name="list"))
        try:
            cmd = parse(argv)
            check(cmd)
        except UsageError as exc:
            err.write(f"{exc}\n")
            if exc.tryhelp:
                session.tryhelp()
            return exc.code
        if cmd.name == "restore":
            return restore(session, stdin)
        return execute(session, cmd)
    except NotLoaded as exc:
        err.write(f"{exc}\n")
        return EXIT_FAIL
    except IPVSError as exc:          # no permission, an extension missing, a refusal
        err.write(f"{exc}\n")
        return EXIT_KERNEL
    except BrokenPipeError:
        return 0
    finally:
        session.close()


def entry_point() -> None:
    """Console script wrapper: exit with main()'s status."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
