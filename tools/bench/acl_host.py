"""On this host's kernel (no emulation), as root: the UDP send rate into a
namespace whose prerouting holds a deny list of 100,000 single addresses,
in one interval set (the first layout), in the hash set (the layout of
ipvsadm_py.nft: a hash set with timeouts beside an interval set, a rule
each), or in one hash set without timeouts and of a declared size
(``fixed``: the kernel's fixed-size hash for 4-byte keys, one rule), against
no table; in turn, ROUNDS times, each pair's ratio.  The sender's own rate carries the receive path (a veth
delivers in the sender's softirq).  docs/acl.md, MEASURED.

    .venv/bin/python -m tools.bench.acl_host [ROUNDS]
"""
import ipaddress
import statistics
import subprocess
import sys
import time

from ipvsadm_py import nft as N
from ipvsadm_py.acl import AccessList, Entry, Kind, make_target

A, B = "hb_a", "hb_b"
def sh(*a): subprocess.run(a, check=True)
for ns in (A, B):
    subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
    sh("ip", "netns", "add", ns)
sh("ip", "link", "add", "hba", "netns", A, "type", "veth", "peer", "name", "hbb", "netns", B)
sh("ip", "-n", A, "addr", "add", "10.9.0.1/24", "dev", "hba"); sh("ip", "-n", A, "link", "set", "hba", "up")
sh("ip", "-n", B, "addr", "add", "10.9.0.2/24", "dev", "hbb"); sh("ip", "-n", B, "link", "set", "hbb", "up")
sh("ip", "-n", A, "link", "set", "lo", "up"); sh("ip", "-n", B, "link", "set", "lo", "up")
# a receiver socket so that no ICMP is made
rx = subprocess.Popen(["ip", "netns", "exec", B, sys.executable, "-c",
    "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,1<<16)\ns.bind(('10.9.0.2',9000))\ntime.sleep(10**6)"])
time.sleep(1)
nft = N.Nft(netns=B)
target = make_target("10.9.0.2", "udp", 9000)
entries = [Entry(ipaddress.ip_network(ipaddress.IPv4Address("172.20.0.0") + i)) for i in range(100_000)]
def load(layout):
    subprocess.run(["ip", "netns", "exec", B, "nft", "delete", "table", "inet", N.TABLE], stderr=subprocess.DEVNULL)
    if layout == "none":
        return
    lst = AccessList(Kind.DENY, target)
    if layout == "hash":
        N.AccessLists(nft).add(Kind.DENY, target, entries)
    elif layout == "fixed":
        rule = N.encode_rules(lst)[0]
        rule["rule"]["expr"][-3]["match"]["right"] = "@fixed"
        nft.run([{"add": {"table": {"family": "inet", "name": N.TABLE}}}, {"add": N._chain()},
                 {"add": N._obj("set", name="fixed", type="ipv4_addr", size=131072)},
                 {"add": N._obj("counter", name=lst.name)},
                 {"add": N._elements("fixed", entries)}, {"add": rule}])
    else:   # the first layout: one interval set, one rule
        nft.run([{"add": {"table": {"family": "inet", "name": N.TABLE}}}, {"add": N._chain()},
                 {"add": N._sets(lst)[0]}, {"add": N._obj("counter", name=lst.name)},
                 {"add": N._elements(lst.name, entries)}, {"add": N.encode_rules(lst)[1]}])
SENDER = """
import socket, time, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(('10.9.0.2', 9000)); m = b'x' * 18; n = 0
end = time.perf_counter() + float(sys.argv[1])
while time.perf_counter() < end:
    for _ in range(1000):
        try: s.send(m)
        except OSError: pass
    n += 1000
print(n)
"""
def window(sec=2.0):
    out = subprocess.run(["ip", "netns", "exec", A, "taskset", "-c", "1", sys.executable, "-c", SENDER, str(sec)],
                         capture_output=True, text=True, check=True).stdout
    return int(out) / sec
res = {"none": [], "interval": [], "hash": [], "fixed": []}
try:
    for r in range(int(sys.argv[1]) if len(sys.argv) > 1 else 6):
        for layout in ("none", "interval", "hash", "fixed"):
            load(layout)
            res[layout].append(window())
        print(r, {k: round(v[-1]) for k, v in res.items()}, flush=True)
finally:
    rx.kill()
    for ns in (A, B):
        subprocess.run(["ip", "netns", "del", ns])
for k in ("interval", "hash", "fixed"):
    pairs = [a / b for a, b in zip(res[k], res["none"])]
    print(k, "vs none: median", round(statistics.median(pairs), 3), [round(p, 3) for p in pairs])
