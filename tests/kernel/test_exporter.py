"""lvs-exporter in a booted kernel, scraped by a real Prometheus server.

::

    guest root namespace                  namespace lb (test_synproxy.py's lab)
    prometheus --(HTTP 127.0.0.1)--> lvs-exporter --netns lb ---> IPVS: FULLNAT+SYNPROXY
      rules: docs/monitoring/lvs-alerts.yml  lvs-exporter --role rs --netns rs1 (toa.ko)

    client ------------- lb -------------------- rs1 rs2
    held connections,    TCP 10.0.0.100:80       whoami servers
    SYN floods           SYNPROXY, FULLNAT, 2 local addresses

Prometheus (Debian's package, from the host's file system) scrapes every
SCRAPE seconds (an emulated guest needs that long for a scrape) and
evaluates the rules every second; the tests poll its HTTP API for the
expected answers, then confirm them with ``promtool query instant``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.kernel.fnat_support import SynLoad
from tests.kernel.test_synproxy import PORT, Lab, make_topo
from tools import netlab, whoami
from tools.kbuild import ROOT

pytestmark = pytest.mark.kernel

RULES = ROOT / "docs" / "monitoring" / "lvs-alerts.yml"
HELD = 6                 # connections held open through the SYNPROXY service
WAIT = 240               # seconds to wait for Prometheus to see something
SCRAPE = "4s"            # Prometheus' scrape interval and timeout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.read().decode()


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value of an exposition text."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


class Exporter:
    """lvs-exporter as its own process, listening on the guest's loopback."""

    def __init__(self, tmp: Path, role: str, netns: str, *options: str) -> None:
        self.port = free_port()
        self.log_path = tmp / f"exporter-{role}-{netns}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ipvsadm_py.exporter", "--role", role, "--netns", netns,
             "--listen", f"127.0.0.1:{self.port}", *options],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log_path.open("w"))
        netlab.wait_for(self._ready, timeout=60)

    def _ready(self) -> bool:
        assert self.proc.poll() is None, f"lvs-exporter exited: {self.log()}"
        try:
            self.scrape()
            return True
        except OSError:
            return False

    def scrape(self) -> str:
        return get(f"http://127.0.0.1:{self.port}/metrics")

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        netlab.stop_process(self.proc)


class Prometheus:
    """A Prometheus server scraping exporters every second, with our rules."""

    def __init__(self, tmp: Path, targets: dict[str, int]) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed (tools/bootstrap.py installs it)"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        jobs = [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                for job, port in targets.items()]
        config = {"global": {"scrape_interval": SCRAPE, "evaluation_interval": "1s",
                             "scrape_timeout": SCRAPE},
                  "rule_files": [str(RULES)], "scrape_configs": jobs}
        path = tmp / "prometheus.yml"
        path.write_text(json.dumps(config))        # JSON is YAML
        self.log_path = tmp / "prometheus.log"
        self.proc = subprocess.Popen(
            [binary, f"--config.file={path}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=self.log_path.open("w"))
        netlab.wait_for(self._ready, timeout=120)

    def _ready(self) -> bool:
        assert self.proc.poll() is None, f"prometheus exited: {self.log()}"
        try:
            get(f"{self.url}/-/ready")
            return True
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text()[-3000:]

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """An instant query over the HTTP API: (labels, value) of each sample."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        result = json.loads(get(url))["data"]["result"]
        return [(s["metric"], float(s["value"][1])) for s in result]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return result[0][1] if len(result) == 1 else None

    def promtool_value(self, expr: str) -> float | None:
        """The same answer through ``promtool query instant``."""
        done = subprocess.run(["promtool", "query", "instant", "-o", "json", self.url, expr],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout or "[]")
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def targets(self) -> str:
        """What Prometheus says of its scrapes (for failure messages)."""
        try:
            return "\n".join(f"{t['labels'].get('job')}: {t['health']} {t['lastError']} "
                             f"({t['lastScrapeDuration']:.2f} s)"
                             for t in json.loads(get(f"{self.url}/api/v1/targets"))
                             ["data"]["activeTargets"])
        except (OSError, KeyError, ValueError) as exc:
            return repr(exc)

    def wait_value(self, expr: str, expected: float, timeout: float = WAIT) -> None:
        seen: list[float | None] = []

        def check() -> bool:
            seen.append(self.value(expr))
            return seen[-1] == expected
        try:
            netlab.wait_for(check, timeout=timeout, interval=1)
        except Exception as exc:
            raise AssertionError(f"{expr}: expected {expected}, last answers "
                                 f"{seen[-5:]}") from exc

    def stop(self) -> None:
        netlab.stop_process(self.proc)


def promtool_check_metrics(text: str) -> None:
    done = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                          capture_output=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def lab():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    topo = make_topo()
    try:
        lab = Lab(topo, 4, "fnat")
        try:
            yield lab
        finally:
            lab.close()
    finally:
        topo.down()


def test_prometheus_scrapes_connection_counts_during_traffic(lab, tmp_path):
    lb = Exporter(tmp_path, "lb", lab.topo.lb)
    rs = Exporter(tmp_path, "rs", lab.topo.rs(1))
    prom = None
    held: list[socket.socket] = []
    try:
        prom = Prometheus(tmp_path, {"lvs": lb.port, "toa": rs.port})
        toa_before = samples(rs.scrape())
        for _ in range(HELD):
            sock = lab.connect()
            held.append(sock)
            assert whoami.whoami_tcp(sock)[0] in ("rs1", "rs2")
        for sock in held:                   # traffic through the held connections
            assert whoami.echo_stream(sock, 256 * 1024)
        svc = f'vip="{lab.vip}",port="{PORT}",proto="tcp"'
        prom.wait_value(f"lvs_service_active_connections{{{svc}}}", HELD)
        assert prom.promtool_value(f"lvs_service_active_connections{{{svc}}}") == HELD
        assert prom.promtool_value(f"sum(lvs_real_server_active_connections{{{svc}}})") \
            == HELD
        prom.wait_value(f"sum(lvs_real_server_active_connections{{{svc}}})", HELD)
        prom.wait_value(f"lvs_service_connections_total{{{svc}}}", HELD)
        prom.wait_value(f"sum(lvs_local_address_sessions{{{svc}}})", HELD)
        prom.wait_value(f"count(lvs_real_server_up{{{svc}}} == 1)", 2)
        prom.wait_value(f'lvs_service_info{{{svc},synproxy="true",scheduler="rr"}}', 1)
        prom.wait_value('count(lvs_real_server_info{forward="fullnat"})', 6)
        prom.wait_value('lvs_up{job="lvs"}', 1)
        prom.wait_value('lvs_toa_loaded{job="toa"}', 1)
        # a scrape after the echoes: every byte sent counted
        prom.wait_value(f"count(lvs_service_incoming_bytes_total{{{svc}}} > "
                        f"{HELD * 256 * 1024})", 1)
        assert prom.value("lvs_ext_synproxy_ok_ack_total") >= HELD
        assert prom.value('lvs_feature{feature="fullnat"}') == 1
        assert prom.value("lvs_connection_table_size") > 0
        # free ports: the range less the sessions of each local address
        ports = prom.value("lvs_fullnat_local_port_range_ports")
        assert ports == 65535 - 5000 + 1
        prom.wait_value(f"sum(lvs_local_address_free_ports{{{svc}}})", 2 * ports - HELD)
        lb_text, rs_text = lb.scrape(), rs.scrape()
        promtool_check_metrics(lb_text)
        promtool_check_metrics(rs_text)
        assert netlab.client_addr(4) not in lb_text      # no client in any label
        # the real server's exporter saw the TOA of our connections (global counters)
        toa_after = samples(rs_text)
        got = sum(toa_after.get(k, 0) - toa_before.get(k, 0)
                  for k in ("lvs_toa_syn_recv_sock_toa_total", "lvs_toa_data_seg_toa_total"))
        assert got >= HELD, (toa_before, toa_after)
        assert lb.proc.poll() is None and rs.proc.poll() is None
    except Exception as exc:
        raise AssertionError(f"{exc!r}\n--- exporter lb\n{lb.log()}\n--- exporter rs\n"
                             f"{rs.log()}\n--- prometheus\n"
                             f"{prom.targets() + prom.log() if prom else ''}") from exc
    finally:
        for sock in held:
            sock.close()
        if prom:
            prom.stop()
        lb.stop()
        rs.stop()


def test_syn_flood_alert_fires_during_a_flood_and_resolves_after(lab, tmp_path):
    lb = Exporter(tmp_path, "lb", lab.topo.lb)
    prom = Prometheus(tmp_path, {"lvs": lb.port})
    firing = 'ALERTS{alertname="LvsSynFlood",alertstate="firing"}'
    try:
        prom.wait_value('lvs_up{job="lvs"}', 1)
        assert prom.query(firing) == []
        # SYNs from the client's address and ever new ports, 400 a second:
        # four times the rule's threshold, light enough for an emulated
        # guest to keep scraping.  The client answers the cookies with RSTs,
        # so no cookie is proved.
        with SynLoad(lab.topo, 4, lab.vip, PORT, rate=400) as flood:
            prom.wait_value(f"count({firing})", 1)
            assert prom.promtool_value(f"count({firing})") == 1
            assert lab.echo(4096)[0] in ("rs1", "rs2")     # real clients still served
            assert flood.sent > 0
        prom.wait_value(f"count({firing}) or vector(0)", 0)
        assert lb.proc.poll() is None
    except Exception as exc:
        rate = prom.query("rate(lvs_ext_synproxy_syn_cnt_total[1m])")
        raise AssertionError(f"{exc!r}\n--- SYN cookies/s {rate}\n--- exporter\n{lb.log()}"
                             f"\n--- prometheus\n{prom.targets()}\n{prom.log()}") from exc
    finally:
        prom.stop()
        lb.stop()


def loaded() -> set[str]:
    return {line.split()[0] for line in Path("/proc/modules").read_text().splitlines()}


@pytest.mark.last
def test_module_reload_while_exporting(lab, kver, tmp_path):
    """ip_vs unloaded under a running exporter: lvs_up 0, the process stays,
    and it reads the reloaded module's table."""
    ours = [ko.stem for ko in (ROOT / "build" / kver / "modules").glob("*.ko")]
    lb = Exporter(tmp_path, "lb", lab.topo.lb)
    try:
        assert samples(lb.scrape())["lvs_up"] == 1
        lab.close()                         # services hold the schedulers
        helpers = [m for m in ours if m != "ip_vs"]
        subprocess.run(["timeout", "300", "modprobe", "-r", *helpers], check=True)
        subprocess.run(["timeout", "300", "modprobe", "-r", "ip_vs"], check=True)
        assert not loaded() & set(ours)
        netlab.wait_for(lambda: samples(lb.scrape())["lvs_up"] == 0, timeout=60)
        assert samples(lb.scrape())["lvs_up"] == 0 and lb.proc.poll() is None
        subprocess.run(["modprobe", "-a", *ours], check=True)
        assert set(ours) <= loaded()
        netlab.wait_for(lambda: samples(lb.scrape())["lvs_up"] == 1, timeout=60)
        lab.topo.ipvsadm(f"-A -t {lab.vip}:{PORT} -s rr")
        text = lb.scrape()
        assert samples(text)["lvs_services"] == 1, text
        promtool_check_metrics(text)
        assert lb.proc.poll() is None
    except Exception as exc:
        raise AssertionError(f"{exc!r}\n--- exporter\n{lb.log()}") from exc
    finally:
        lb.stop()
        lab.topo.ipvsadm("-C", check=False)
        lab.ipvs = _Closed()


class _Closed:
    """Stands for the lab's IPVS handle once the test closed it itself."""

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
