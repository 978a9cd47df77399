"""The demo that ``./inv demo`` runs inside the guest: FULLNAT end to end.

A client in one subnet sends HTTP requests to a virtual service; the real
servers sit in another subnet and have no route back to the client, only
to the balancer's local addresses.  ``ipvsadm-py`` configures the service
with FULLNAT real servers and a local address; the real servers answer
and log the peer their sockets see (the client's own address when toa.ko
is loaded, the balancer's local address otherwise).
"""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import urllib.request

from tools import netlab

PORT = 80
LADDR = "10.0.3.1"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = (f"hello from {self.server.name}; you are "
                f"{self.client_address[0]}:{self.client_address[1]}\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        self.server.log.append(f"{self.client_address[0]}:{self.client_address[1]} "
                               f"\"{self.requestline}\" {args[1] if len(args) > 1 else ''}")


class _Server(http.server.ThreadingHTTPServer):
    def __init__(self, topo: netlab.Topology, ns: str) -> None:
        super().__init__(("0.0.0.0", PORT), _Handler, bind_and_activate=False)
        self.socket.close()
        with topo.inside(ns):  # the listening socket belongs to the server's netns
            self.socket = socket.socket(self.address_family, self.socket_type)
        self.server_bind()
        self.server_activate()
        self.name = ns
        self.log: list[str] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def shell(topo: netlab.Topology, ns: str, cmd: str) -> str:
    print(f"[{ns}]$ {cmd}", flush=True)
    out = topo.sh(ns, cmd).stdout.rstrip()
    if out:
        print(out, flush=True)
    return out


def main() -> int:
    step("our ip_vs is loaded")
    print(subprocess.run("modinfo -n ip_vs; dmesg | grep -m1 'FNAT-capable'", shell=True,
                         capture_output=True, text=True).stdout.rstrip())
    topo = netlab.Topology(n_rs=2, rs_routes=[netlab.LADDR_NET4],
                           client_routes=[f"{netlab.VIP4}/32"])
    with topo:
        step(f"client {netlab.CLIENT4} (route to the VIP only) -> VIP {netlab.VIP4}:{PORT} "
             f"-> rs1 {netlab.rs_addr(1)}, rs2 {netlab.rs_addr(2)} (routes to "
             f"{netlab.LADDR_NET4} only)")
        topo.ip_batch(topo.lb, [f"addr add {LADDR}/32 dev vip0"])
        servers = [_Server(topo, name) for name in topo.servers]
        shell(topo, topo.client, f"ip route get {netlab.rs_addr(1)} || true")
        vip = f"{netlab.VIP4}:{PORT}"
        shell(topo, topo.lb, f"ipvsadm-py -A -t {vip} -s rr")
        for index in (1, 2):
            shell(topo, topo.lb, f"ipvsadm-py -a -t {vip} -r {netlab.rs_addr(index)}:{PORT} -b")
        shell(topo, topo.lb, f"ipvsadm-py -P -t {vip} -z {LADDR}")
        step("the client asks the VIP four times")
        for _ in range(4):
            with topo.inside(topo.client):
                reply = urllib.request.urlopen(f"http://{netlab.VIP4}:{PORT}/", timeout=30)
            print(f"[client] GET http://{netlab.VIP4}/ -> {reply.read().decode().strip()}")
        step("what the real servers logged (peer as their sockets see it)")
        for server in servers:
            for line in server.log:
                print(f"[{server.name}] {line}")
        step("the balancer's view")
        shell(topo, topo.lb, "ipvsadm-py -Ln")
        shell(topo, topo.lb, "ipvsadm-py -G")
        shell(topo, topo.lb, "cat /proc/net/ip_vs_conn")
        shell(topo, topo.lb, "grep -E 'toa_ok|mss_adjusted|timestamp' /proc/net/ip_vs_ext_stats")
        ok = all(server.log for server in servers)
        for server in servers:
            server.shutdown()
            server.server_close()
    print("\ndemo " + ("passed: both real servers answered through the FULLNAT VIP" if ok
                       else "FAILED: a real server saw no request"), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
