"""The demo that ``./inv demo`` runs inside the guest: a request through a VIP.

A client namespace sends HTTP requests to a virtual service on the balancer
namespace, configured with the stock ``ipvsadm`` against our ip_vs build;
two real servers answer and log who they saw.
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
        self.server.log.append(f"{self.client_address[0]} \"{self.requestline}\" "
                               f"{args[1] if len(args) > 1 else ''}")


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


def shell(topo: netlab.Topology, ns: str, cmd: str) -> None:
    print(f"[{ns}]$ {cmd}", flush=True)
    out = topo.sh(ns, cmd).stdout.rstrip()
    if out:
        print(out, flush=True)


def main() -> int:
    step("our ip_vs is loaded")
    print(subprocess.run("modinfo -n ip_vs; dmesg | grep -m1 'FNAT-capable'", shell=True,
                         capture_output=True, text=True).stdout.rstrip())
    with netlab.Topology(n_rs=2) as topo:
        step(f"client {netlab.CLIENT4} -> VIP {netlab.VIP4}:{PORT} on lb -> "
             f"rs1 {netlab.rs_addr(1)}, rs2 {netlab.rs_addr(2)} (NAT)")
        servers = [_Server(topo, name) for name in topo.servers]
        shell(topo, topo.lb, f"ipvsadm -A -t {netlab.VIP4}:{PORT} -s rr")
        for index in (1, 2):
            shell(topo, topo.lb, f"ipvsadm -a -t {netlab.VIP4}:{PORT} "
                                 f"-r {netlab.rs_addr(index)}:{PORT} -m")
        step("the client asks the VIP four times")
        for _ in range(4):
            with topo.inside(topo.client):
                reply = urllib.request.urlopen(f"http://{netlab.VIP4}:{PORT}/", timeout=10)
            print(f"[client] GET http://{netlab.VIP4}/ -> {reply.read().decode().strip()}")
        step("what the real servers logged")
        for server in servers:
            for line in server.log:
                print(f"[{server.name}] {line}")
        step("the balancer's view")
        shell(topo, topo.lb, "ipvsadm -Ln")
        shell(topo, topo.lb, "ipvsadm -Lnc")
        ok = all(server.log for server in servers)
        for server in servers:
            server.shutdown()
            server.server_close()
    print("\ndemo " + ("passed: both real servers answered through the VIP" if ok
                       else "FAILED: a real server saw no request"), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
