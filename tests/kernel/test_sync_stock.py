"""Our master with a stock-IPVS backup: the backup keeps NAT sessions and
skips FULLNAT and SYNPROXY ones.

The lab of tests/kernel/sync_support.py.  First, on our modules, lb1's
master daemon syncs NAT and FULLNAT sessions while lb2 only records the
sync messages it receives.  Then the kernel's own IPVS modules replace
ours (inserted by path) and lb2, configured with the stock ipvsadm and
running a stock backup daemon, is sent the recorded messages: it must
create the NAT sessions and none of the FULLNAT or SYNPROXY ones, whose
entries carry our mandatory parameter.  Runs last: it swaps modules.
"""

from __future__ import annotations

import socket
import subprocess

import pytest

from tools import netlab, whoami
from tools.guest_init import kernel_log_problems

from tests.kernel import sync_support as ss
from tests.kernel.test_keepalived_stock import insert_stock, ipvs_modules, loaded, unload
from tests.kernel.test_sync import TPORT, UPORT, _services

pytestmark = [pytest.mark.kernel, pytest.mark.last]

NAT_PORT = 5353
SESSIONS = 5


def _udp_sessions(pair: ss.Pair, port: int, first_cport: int) -> None:
    """SESSIONS UDP sessions to VIP:port, three datagrams each (a session is
    synced at its third packet)."""
    for cport in range(first_cport, first_cport + SESSIONS):
        with pair.inside(pair.client):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            sock.bind((ss.CLIENT[4], cport))
            for _ in range(3):
                sock.sendto(b"s", (ss.VIP[4], port))


def _recorded_entries(messages: list[bytes]) -> list[tuple[int, int, int, bytes]]:
    return [one for msg in messages for one in ss.entries_of(msg)]


def _record_our_master(pair: ss.Pair) -> tuple[list[bytes], dict[str, int]]:
    """The sync messages of our master, as lb2 receives them, and the
    master's extended counters."""
    _services(pair, pair.lbs[0], 4)
    pair.sh(pair.lbs[0], f"ipvsadm -A -u {ss.VIP[4]}:{NAT_PORT} -s rr && "
                         f"ipvsadm -a -u {ss.VIP[4]}:{NAT_PORT} -r {ss.RS[4]}:{NAT_PORT} -m")
    recorder = ss.Recorder(pair, pair.lbs[1])
    try:
        pair.sh(pair.lbs[0], "ipvsadm --start-daemon master --mcast-interface s0")
        _udp_sessions(pair, NAT_PORT, 30000)
        _udp_sessions(pair, UPORT, 31000)
        sock = netlab.connect(pair, pair.client, ss.VIP[4], TPORT)
        with sock:      # a FULLNAT+SYNPROXY session, past its 3rd packet
            for line in range(5):
                sock.sendall(f"line {line}\n".encode())
                sock.recv(4096)
            tcp_cport = sock.getsockname()[1]

            def seen() -> bool:
                ports = {cport for _, _, cport, _ in _recorded_entries(recorder.messages)}
                wanted = {*range(30000, 30000 + SESSIONS), *range(31000, 31000 + SESSIONS),
                          tcp_cport}
                return wanted <= ports
            netlab.wait_for(seen, 60, what="every session in the recorded messages")
    finally:
        messages = recorder.close()
    return messages, pair.ext_stats(pair.lbs[0])


def test_stock_backup_keeps_nat_and_skips_fullnat(kver, kmsg_mark):
    ours = ipvs_modules(kver)
    with ss.Pair() as pair:
        server = whoami.TcpWhoami(whoami.listen(pair.inside, pair.rs, 4, socket.SOCK_STREAM,
                                                TPORT, ss.RS[4]), "rs1")
        try:
            messages, master = _record_our_master(pair)
        finally:
            server.close()
    entries = _recorded_entries(messages)
    fullnat = [e for e in entries if e[0] & 0x7 == ss.CONN_F_FULLNAT]
    nat = [e for e in entries if e[0] & 0x7 == ss.CONN_F_MASQ and e[2] in
           range(30000, 30000 + SESSIONS)]
    assert nat and all(ss.OPT_FNAT not in ss.options_of(e[3]) for e in nat)
    # every FULLNAT entry carries our parameter, mandatory (no 0x40 bit)
    assert len(fullnat) >= SESSIONS + 1
    assert all(ss.OPT_FNAT in ss.options_of(e[3]) for e in fullnat), fullnat
    assert master["sync_fullnat_sent"] >= SESSIONS + 1, master

    try:
        unload(ours)
        insert_stock(kver)
        with ss.Pair() as pair:
            backup = pair.lbs[1]
            # the stock backup has the same services, the FULLNAT ones with
            # a NAT real server (the stock module has no FULLNAT): without
            # our mandatory parameter it would create their sessions
            for proto, port in (("u", NAT_PORT), ("u", UPORT), ("t", TPORT)):
                pair.sh(backup, f"ipvsadm -A -{proto} {ss.VIP[4]}:{port} -s rr && "
                                f"ipvsadm -a -{proto} {ss.VIP[4]}:{port} -r {ss.RS[4]}:{port} -m")
            pair.sh(backup, "ipvsadm --start-daemon backup --mcast-interface s0")
            sock = ss.sender(pair, pair.lbs[0])
            with sock:
                for msg in messages:
                    ss.send(sock, msg)

            def table() -> list[str]:
                return pair.sh(backup, "ipvsadm -Lnc").stdout.splitlines()
            netlab.wait_for(lambda: sum(f":{NAT_PORT}" in line for line in table())
                            >= SESSIONS, 30, what="the NAT sessions on the stock backup")
            lines = table()
            assert not [line for line in lines if f"{ss.VIP[4]}:{UPORT} " in line
                        or f"{ss.VIP[4]}:{TPORT} " in line], lines
    finally:    # the stock modules go (also after a failure), ours come back
        unload(sorted(n for n in loaded() if n.startswith("ip_vs")))
        subprocess.run(["modprobe", "-a", *ours], check=True)
    assert kernel_log_problems(kmsg_mark()) == []
