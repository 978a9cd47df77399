"""Record C ipvsadm's behaviour and the kernel's raw replies as unit-test fixtures.

Run inside a guest (as root, our modules loaded)::

    python -m tests.record_ipvsadm OUTDIR

It builds a broad rule set with the C ``ipvsadm`` in a fresh network
namespace, then writes ``OUTDIR/<kernel line>.json`` with

* ``cases``: argv, stdin, exit status, stdout and stderr of the C tool for
  parsing and error cases (the exit statuses our CLI must match);
* ``listings``: the C tool's output of every listing format for that table;
* ``replies``: the raw netlink replies (hex) of the same table, read through
  ``ipvsadm_py.nl``, from which the unit tests re-create those listings.

Host side: ``python -m tests.record_ipvsadm --boot KVER OUTDIR`` boots the
guest and runs the above in it.  The kernel tests of ipvsadm-py use its
rule set and cases too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

NS = "rec"

SETUP = """
ip link add d0 type dummy
ip link set d0 up multicast on
ip addr add 192.0.2.1/24 dev d0
""".strip().splitlines()

RULES = """
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.0.2.11:8080 -m -w 3
-a -t 10.0.0.1:80 -r 10.0.2.12 -g -w 0
-a -t 10.0.0.1:80 -r 10.0.2.13 -i -w 2 -x 100 -y 10
-a -t 10.0.0.1:80 -r 192.168.7.1 -g
-A -t 200.0.0.1:80 -s wrr
-A -t 192.168.1.1:80 -s wrr
-A -t 172.16.0.1:8080 -s rr
-A -u 10.0.0.1:53 -s wrr -o
-a -u 10.0.0.1:53 -r 10.0.2.11:53 -m
-a -u 10.0.0.1:53 -r 10.0.2.10:5353 -m -w 7
-A --sctp-service 10.0.0.2:3868 -s sh -b sh-fallback,sh-port
-a --sctp-service 10.0.0.2:3868 -r 10.0.2.20 -m
-A -t 10.0.0.3:443 -s lc -p 600 -M 255.255.255.0
-A -t 10.0.0.3:0 -s wlc -p
-A -f 7 -s lblc -p 120
-a -f 7 -r 10.0.2.30:0 -g
-A -f 8 -6 -s lblcr
-a -f 8 -6 -r [2001:db8::30]:0 -g
-A -f 4000000000 -s rr
-A -t [2001:db8::1]:80 -s dh -p 60 -M 64
-a -t [2001:db8::1]:80 -r [2001:db8:2::11]:80 -m -w 5
-a -t [2001:db8::1]:80 -r [2001:db8:2::9]:81 -m -w 5
-A -u [2001:db8::1]:53 -s rr
-A -t [fe80::1:2]:80 -s rr
-A -t 10.0.0.4:80 -s sed
-A -t 10.0.0.4:81 -s nq
-A -t 10.0.0.4:82 -s fo
-A -t 10.0.0.4:83 -s ovf
-A -t 10.0.0.4:84 -s mh -b mh-fallback,mh-port
-A -t 10.0.0.4:86 -s rr -b flag-1,flag-3
-A -u 10.0.0.5:5060 -s rr -p 30 --pe sip
-a -t 10.0.0.4:80 -r 10.0.2.50 -i --tun-type gue --tun-port 6080 --tun-csum
-a -t 10.0.0.4:80 -r 10.0.2.51 -i --tun-type gre --tun-csum
-a -t 10.0.0.4:80 -r 10.0.2.52 -i --tun-type ipip
-a -t 10.0.0.4:80 -r 10.0.2.53 -i --tun-type gue --tun-port 5555 --tun-remcsum
-a -t 10.0.0.4:80 -r 10.0.2.54 -i --tun-type gre --tun-nocsum
-a -t 10.0.0.4:80 -r 10.0.2.55 -m -w 2147483647
--set 900 120 300
--start-daemon master --mcast-interface d0 --syncid 3 --sync-maxlen 1400 --mcast-group 239.1.1.1 --mcast-port 8849 --mcast-ttl 2
--start-daemon backup --mcast-interface d0 --syncid 4
""".strip().splitlines()

# A tunnel real server of the other address family: the kernel refuses sync
# daemons while one exists, so it is listed separately.
MIXED = """
-A -t [2001:db8::1]:80 -s rr
-a -t [2001:db8::1]:80 -r 10.0.2.40 -i -w 2
-a -t [2001:db8::1]:80 -r [2001:db8::41]:80 -i
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r [2001:db8::40]:80 -i --tun-type gue --tun-port 6080 --tun-nocsum
""".strip().splitlines()

LISTINGS = [
    "-Ln", "-L", "-l -n", "-Ln --stats", "-Ln --rate", "-Ln --thresholds",
    "-Ln --persistent-conn", "-Ln --tun-info", "-Ln --exact --stats", "-Ln --nosort",
    "-Ln --stats --nosort", "-S", "-Sn", "-S -n", "-Ln -t 10.0.0.1:80", "-Ln -u 10.0.0.1:53",
    "-L -n --sctp-service 10.0.0.2:3868", "-Ln -f 7", "-Ln -f 8 -6",
    "-Ln -t [2001:db8::1]:80", "-L --timeout", "-L --daemon", "-Lnc", "-Lnc --persistent-conn",
    "-Ln --sort", "-Ln --thresholds --tun-info",
]

CASES = [
    "", "-h", "-v", "--version", "-n -L", "-L -n", "-ln", "-A", "-A -t 10.0.0.9",
    "-A -t 10.0.0.9:80 -s rr -p -M 255.255.0.0", "-A -t 10.0.0.10:80 -p 60",
    "-A -t 10.0.0.11:80 -p60", "-A -t 10.0.0.12:80 --persistent=70", "-A -t -s rr",
    "-A -t 10.0.0.9:80 -x 5", "-A -E", "-L -h", "-L --foo", "--foo", "-L -t", "-w",
    "-A -t 10.0.0.13:80 -o", "-a -t 10.0.0.1:80 -r 10.0.2.99 -w 70000",
    "-a -t 10.0.0.1:80 -r 10.0.2.98 -w -1", "-a -t 10.0.0.1:80 -r [2001:db8::5]:80 -m",
    "-a -t 10.0.0.1:80 -r 10.0.2.97 -m --tun-type gue",
    "-a -t 10.0.0.1:80 -r 10.0.2.96 -i --tun-type gue",
    "-a -t 10.0.0.1:80 -r 10.0.2.96 -i --tun-type gre --tun-remcsum",
    "-a -t 10.0.0.1:80 -r 10.0.2.96 -i --tun-port 5",
    "-a -t 10.0.0.1:80 -r 10.0.2.96 -i --tun-type vxlan",
    "-A -t 10.0.0.1:80", "-D -t 10.9.9.9:80", "-e -t 10.0.0.1:80 -r 10.0.2.250",
    "-d -t 10.0.0.1:80 -r 10.0.2.250", "-a -t 10.9.9.9:80 -r 10.0.2.1",
    "-L -t 10.9.9.9:80", "-A -t 10.0.0.1:81 -s nosuch", "-L -c -t 10.0.0.1:80",
    "-L --timeout --stats", "-A -t 10.0.0.14:80 -s rr -b sh-port", "-A -t 10.0.0.14:80 -b bogus",
    "--set 1 2", "--set 1 2 3 4", "-L extra", "--start-daemon foo", "--stop-daemon foo",
    "--start-daemon master --mcast-interface d0", "-A -f 0", "-A -t 10.0.0.15:80 -6",
    "-A -f 9 -6 -M 200", "-Z -t 10.9.9.9:80", "-S -c", "-A -t 10.0.0.16:80 -s rr -s wrr",
    "-A -t 10.0.0.17:http -s rr", "-A -u 10.0.0.17:domain", "-A -t 10.0.0.18:99999",
    "-A -t 10.0.0.19:80 -p 0", "-A -t 10.0.0.20:80 -p 2678401", "-A -t 300.1.2.3:80",
    "-A -t [2001:db8::77] -p", "-A -t 2001:db8::78 -p", "-A -t 10.0.0.21:80 -M 255.255.0.0",
    "-A -t 10.0.0.22:80 -p -M 255.0.255.0", "-a -t 10.0.0.1:80", "-a -t 10.0.0.1:80 -r 10.0.2.95 -x 5 -y 10",
    "-a -t 10.0.0.1:80 -r 10.0.2.94 -w abc", "-E -t 10.0.0.99:80", "-A -t 10.0.0.23:80 --sched-flags flag-2 -s wrr",
    "-A -t 10.0.0.24:80 -Z", "-Lnt 10.0.0.1:80", "-At10.0.0.25:80", "-L --daemon --persistent-conn",
    "--set 10 x 30", "-C extra", "-L --nosort --exact --tun-info -n", "-A -u 10.0.0.26:80 -o -s rr",
    "-A -f 10 -o", "-R", "--start-daemon backup --mcast-group 1.2.3.4",
    "--start-daemon backup --mcast-group ff02::1 --mcast-interface d0 --syncid 9 --mcast-port 0",
    "-A -t 10.0.0.27:80 -- -s", "-Ln --", "--clear -n",
]

RESTORES = {
    "comment": "# a comment\n-A -t 10.0.5.1:80 -s rr\n",
    "mixed": "ipvsadm -A -t 10.0.5.2:80 -s rr\n\n   \n-A -t 10.0.5.2:80 -s rr\n-a -t 10.0.5.2:80 -r 10.0.2.11 -m\n",
    "last_fails": "-A -t 10.0.5.3:80\n-A -t 10.0.5.3:80\n",
    "first_fails": "-A -t 10.0.5.4:80\n-A -t 10.0.5.4:80\n-A -t 10.0.5.5:80\n",
    "parse_error": "-A -t 10.0.5.6:80\n-A -t 10.0.5.7\n-A -t 10.0.5.8:80\n",
    "nested_list": "-A -t 10.0.5.9:80\n-Ln -t 10.0.5.9:80\n-a -t 10.0.5.9:80 -r 10.0.2.11\n-Ln -t 10.0.5.9:80\n",
    "nested_restore": "-A -t 10.0.5.10:80\n-R\n-A -t 10.0.5.11:80\n",
    "tabs": "-A\t-t\t10.0.5.12:80\t-s\trr\r\n",
    "no_newline": "-A -t 10.0.5.13:80",
    "unknown_option": "-A -t 10.0.5.14:80 --bogus\n-A -t 10.0.5.15:80\n",
}


HOSTS = "10.0.0.1 vip-one\n10.0.2.11 rs-eleven\n2001:db8::1 vip-six\n"


def quiet_resolver() -> None:
    """Inside the guest only (its /etc is a private overlay): names from
    /etc/hosts, no DNS server to wait for."""
    Path("/etc/resolv.conf").write_text("options timeout:1 attempts:1\n")
    with open("/etc/hosts", "a") as hosts:
        hosts.write(HOSTS)


def fresh_ns() -> None:
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    for line in ["ip link set lo up", *SETUP]:
        subprocess.run(["ip", "netns", "exec", NS, *line.split()], check=True)


def ipvsadm(args: str, stdin: str = "") -> dict[str, object]:
    """The C tool, run directly (this process is in the namespace)."""
    res = subprocess.run(["ipvsadm", *args.split()], input=stdin, capture_output=True,
                         text=True, timeout=120)
    return {"rc": res.returncode, "stdout": res.stdout, "stderr": res.stderr}


def reset(base: bool = True) -> None:
    """Empty table and no daemons (then, with ``base``, the one-service table
    the cases start from), through the library: no process to start."""
    from netaddr import IPAddress

    from ipvsadm_py import IPVS, Dest, Forward, Service

    with IPVS() as ipvs:
        ipvs.flush()
        for daemon in ipvs.daemons():
            ipvs.stop_daemon(daemon)
        if base:
            svc = Service(addr=IPAddress("10.0.0.1"), port=80, scheduler="rr")
            ipvs.add_service(svc)
            ipvs.add_dest(svc, Dest(addr=IPAddress("10.0.2.11"), port=80,
                                    forward=Forward.MASQ))


class RecordingSocket:
    """A netlink socket that keeps a copy of every buffer it receives."""

    def __init__(self, sock) -> None:
        self.sock = sock
        self.received: list[bytes] = []

    def recv_into(self, buf) -> int:
        size = self.sock.recv_into(buf)
        self.received.append(bytes(memoryview(buf)[:size]))
        return size

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


def raw_replies() -> dict[str, object]:
    """The kernel's raw replies for the current table."""
    from ipvsadm_py import abi, codec, nl

    chan = nl.Channel()
    sock = chan.sock = RecordingSocket(chan.sock)
    out: dict[str, object] = {}

    def take(call) -> list[str]:
        sock.received.clear()
        call()
        return [b.hex() for b in sock.received]

    out["info"] = take(lambda: chan.request(abi.CMD_GET_INFO, [], "infomsg"))
    out["services"] = take(lambda: chan.dump(abi.CMD_GET_SERVICE, []))
    svcs = [codec.service_from(r.attrs["service"])
            for r in chan.dump(abi.CMD_GET_SERVICE, [])]
    out["dests"] = [take(lambda svc=svc: chan.dump(
        abi.CMD_GET_DEST, [("service", codec.service_key(svc))])) for svc in svcs]
    out["config"] = take(lambda: chan.request(abi.CMD_GET_CONFIG, []))
    out["daemons"] = take(lambda: chan.dump(abi.CMD_GET_DAEMON, []))
    chan.close()
    return out


def record_inside(outdir: Path) -> Path:
    """Runs in the namespace: the rule set, listings, replies, cases."""
    kernel = os.uname().release
    data: dict[str, object] = {"kernel": kernel, "rules": RULES}
    reset(base=False)
    data["applied"] = [{"argv": rule, **ipvsadm(rule)} for rule in RULES]
    data["listings"] = {args: ipvsadm(args) for args in LISTINGS}
    data["conn_proc"] = Path("/proc/net/ip_vs_conn").read_text()
    data["replies"] = raw_replies()
    print("listings done", file=sys.stderr, flush=True)
    cases = []
    for args in CASES:
        reset()
        cases.append({"argv": args, "stdin": None, **ipvsadm(args),
                      "after": ipvsadm("-Sn")["stdout"]})
    for name, text in RESTORES.items():
        reset(base=False)
        cases.append({"argv": "-R", "name": name, "stdin": text, **ipvsadm("-R", text),
                      "after": ipvsadm("-Sn")["stdout"]})
    data["cases"] = cases
    reset(base=False)
    line = ".".join(kernel.split(".")[:2])
    path = outdir / f"c-ipvsadm-{line}.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def record(outdir: Path) -> None:
    """In the guest: a fresh namespace, then :func:`record_inside` in it."""
    quiet_resolver()
    fresh_ns()
    subprocess.run(["ip", "netns", "exec", NS, sys.executable, "-m", "tests.record_ipvsadm",
                    "--inside", str(outdir)], check=True,
                   cwd=Path(__file__).resolve().parents[1])
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)


def boot(kver: str, outdir: Path) -> int:
    from tools import guest

    outdir.mkdir(parents=True, exist_ok=True)
    cfg = guest.GuestConfig(kver, rwdirs=[outdir.resolve()])
    return guest.run(cfg, f"{sys.executable} -m tests.record_ipvsadm {outdir.resolve()}")


if __name__ == "__main__":
    if sys.argv[1] == "--boot":
        sys.exit(boot(sys.argv[2], Path(sys.argv[3])))
    if sys.argv[1] == "--inside":
        print(record_inside(Path(sys.argv[2])))
    else:
        record(Path(sys.argv[1]))
