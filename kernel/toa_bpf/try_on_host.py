import os, socket, subprocess, sys, time
sys.path.insert(0, "/work/main/tools")
from lvs_tools import toa_craft as craft
tun = craft.Tun("toap0")
for cmd in craft.ip_commands("toap0", ["10.77.0.1/32", "2001:db8:77::1/128"], ["198.51.100.0/24", "2001:db8:51::/64"]):
    subprocess.run(cmd, check=True)
peer = craft.TunPeer(tun)
results = []
for fam, rs, lb, client, where in ((4, "10.77.0.1", "198.51.100.2", "203.0.113.9", "ack"),
                                   (4, "10.77.0.1", "198.51.100.2", "203.0.113.10", "data"),
                                   (6, "2001:db8:77::1", "2001:db8:51::2", "2001:db8:99::9", "ack"),
                                   (6, "2001:db8:77::1", "2001:db8:51::2", "203.0.113.11", "ack")):
    srv = socket.socket(socket.AF_INET if fam == 4 else socket.AF_INET6)
    srv.bind((rs, 0)); srv.listen(8); port = srv.getsockname()[1]
    conn = craft.CraftedConnection(peer, lb, rs, port)
    opt = craft.toa_option(client, 4321)
    if where == "ack":
        conn.handshake(opt)
    else:
        conn.handshake()
    srv.settimeout(5)
    s, acc = srv.accept()
    if where == "data":
        conn.send(b"hello", opt); time.sleep(0.2); s.recv(10)
    results.append((fam, client, where, acc[:2], s.getpeername()[:2]))
    conn.reset(); s.close(); srv.close()
peer.close()
for r in results:
    print(r)
