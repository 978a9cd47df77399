"""The command line: reading, checking and wording of every ipvsadm-py command
and option (no kernel needed)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from ipvsadm_py import cli
from ipvsadm_py.cli import spec
from ipvsadm_py.cli import tokens as tokens_module
from ipvsadm_py.cli.check import check
from ipvsadm_py.cli.parse import parse
from ipvsadm_py.cli.spec import EXIT_FAIL, EXIT_TRYHELP, OPTIONS, UsageError
from ipvsadm_py.cli.tokens import tokens
from ipvsadm_py.model import Forward, SchedFlag, TunnelCsum, TunnelType

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ipvsadm"


def entry(line: str):
    cmd = parse(line.split())
    check(cmd)
    return cmd


def usage_code(line: str) -> int:
    with pytest.raises(UsageError) as info:
        entry(line)
    return info.value.code


# ------------------------------------------------------------------ tokens
@pytest.mark.parametrize("argv,want", [
    ("-Ln", [("cmd", "list", None), ("opt", "numeric", None)]),
    ("-At10.0.0.1:80", [("cmd", "add-service", None), ("opt", "tcp-service", "10.0.0.1:80")]),
    ("--add-service --tcp-service=1.2.3.4:80", [("cmd", "add-service", None),
                                                ("opt", "tcp-service", "1.2.3.4:80")]),
    ("-A -t 1.2.3.4:80 -p -s rr", [("cmd", "add-service", None),
                                   ("opt", "tcp-service", "1.2.3.4:80"),
                                   ("opt", "persistent", None), ("opt", "scheduler", "rr")]),
    ("-A -t 1.2.3.4:80 -p 60", [("cmd", "add-service", None),
                                ("opt", "tcp-service", "1.2.3.4:80"),
                                ("opt", "persistent", "60")]),
    ("--start-daemon master", [("cmd", "start-daemon", "master")]),
    ("-L --foo", [("cmd", "list", None), ("bad", "--foo", None)]),
    ("-L -t", [("cmd", "list", None), ("noarg", "-t", None)]),
    ("--set 1 2 3", [("cmd", "set", None), ("arg", "1", None), ("arg", "2", None),
                     ("arg", "3", None)]),
    ("-Ln -- -x", [("cmd", "list", None), ("opt", "numeric", None), ("arg", "-x", None)]),
])
def test_tokens(argv, want):
    assert tokens(argv.split()) == want


def test_b_is_fullnat_on_real_server_commands():
    assert tokens("-a -t 1.2.3.4:80 -r 5.6.7.8 -b -w 2".split(), fullnat_b=True)[3:] == [
        ("opt", "fullnat", None), ("opt", "weight", "2")]


# ------------------------------------------------------------------ commands
def test_add_service_every_option():
    e = entry("-A -t 10.0.0.1:80 -s sh -p 600 -M 255.255.255.0 --pe sip -b sh-port,sh-fallback "
              "-j enable")
    svc = e.service
    assert (e.name, svc.protocol, str(svc.addr), svc.port) == ("add-service", 6, "10.0.0.1", 80)
    assert (svc.scheduler, svc.timeout, svc.netmask, svc.pe_name) == \
        ("sh", 600, 0xFFFFFF00, "sip")
    assert (svc.persistent, svc.onepacket, svc.sched_flags, svc.synproxy) == \
        (True, False, {SchedFlag.FLAG_1, SchedFlag.FLAG_2}, True)


@pytest.mark.parametrize("line,proto,addr,port,af", [
    ("-E -u 10.0.0.1:53 -o", 17, "10.0.0.1", 53, 2),
    ("-D --sctp-service 10.0.0.2:3868", 132, "10.0.0.2", 3868, 2),
    ("-A -t [2001:db8::1]:443", 6, "2001:db8::1", 443, 10),
    ("-A -t 10.0.0.1:http", 6, "10.0.0.1", 80, 2),
    ("-A -u 10.0.0.1:domain", 17, "10.0.0.1", 53, 2),
    ("-A -t 10.1:80", 6, "10.0.0.1", 80, 2),
])
def test_service_addresses(line, proto, addr, port, af):
    svc = entry(line).service
    assert (svc.protocol, str(svc.addr), svc.port, svc.af) == (proto, addr, port, af)


def test_fwmark_ipv6_service():
    e = entry("-A -f 8 -6 -s lblcr -p 30 -M 64")
    assert (e.service.fwmark, e.service.af, e.service.netmask, e.service.timeout) == \
        (8, 10, 64, 30)


@pytest.mark.parametrize("line,method,port", [
    ("-a -t 10.0.0.1:80 -r 10.0.2.11:8080 -m -w 3", Forward.MASQ, 8080),
    ("-a -t 10.0.0.1:80 -r 10.0.2.11:8080 -g", Forward.ROUTE, 80),
    ("-a -t 10.0.0.1:80 -r 10.0.2.11 -i", Forward.TUNNEL, 80),
    ("-e -t 10.0.0.1:80 -r 10.0.2.11:81 -b", Forward.FULLNAT, 81),
    ("-a -t 10.0.0.1:80 -r 10.0.2.11:81 --fullnat", Forward.FULLNAT, 81),
    ("-a -t 10.0.0.1:80 -r 10.0.2.11", Forward.ROUTE, 80),
])
def test_real_server_methods(line, method, port):
    e = entry(line)
    assert (e.dest.forward, e.dest.port) == (method, port)


def test_real_server_thresholds_and_tunnel():
    e = entry("-a -t 10.0.0.1:80 -r 10.0.2.11 -i -w 5 -x 100 -y 10 --tun-type gue "
              "--tun-port 6080 --tun-remcsum")
    d = e.dest
    assert (d.weight, d.u_threshold, d.l_threshold) == (5, 100, 10)
    assert (d.tun_type, d.tun_port, d.tun_csum) == (TunnelType.GUE, 6080,
                                                    TunnelCsum.REMCSUM)


def test_daemon_options():
    e = entry("--start-daemon master --mcast-interface d0 --syncid 3 --sync-maxlen 1400 "
              "--mcast-group 239.1.1.1 --mcast-port 8849 --mcast-ttl 2")
    d = e.daemon
    assert (d.state, d.mcast_ifn, d.syncid, d.sync_maxlen, str(d.mcast_group), d.mcast_port,
            d.mcast_ttl) == ("master", "d0", 3, 1400, "239.1.1.1", 8849, 2)
    assert entry("--stop-daemon backup").daemon.state == "backup"
    assert entry("--start-daemon backup").daemon.mcast_ifn == "eth0"


def test_set_timeouts():
    t = entry("--set 900 120 300").timeouts
    assert (t.tcp, t.tcp_fin, t.udp) == (900, 120, 300)


@pytest.mark.parametrize("line,attrs", [
    ("-L -n --stats --exact", {"numeric": True, "stats": True, "exact": True}),
    ("-l --rate", {"rate": True}),
    ("-L --thresholds --nosort", {"thresholds": True, "nosort": True}),
    ("-L --persistent-conn --sort", {"persistent_conn": True}),
    ("-L --tun-info -X", {"tun_info": True, "exact": True}),
])
def test_list_formats(line, attrs):
    f = entry(line).view
    for key, value in attrs.items():
        assert getattr(f, key) == value


@pytest.mark.parametrize("line,option", [
    ("-L -c", "connection"), ("-L --timeout", "timeout"), ("-L --daemon", "daemon"),
    ("-L --ext-stats", "ext-stats"), ("-L --json", "json"), ("-Ln -t 1.2.3.4:80", "service-address"),
])
def test_list_views(line, option):
    assert option in entry(line).given


def test_extension_commands():
    e = entry("-P -t 10.0.0.1:80 -z 10.0.3.1")
    assert (e.name, str(e.laddr.addr)) == ("add-laddr", "10.0.3.1")
    assert entry("-Q -t 10.0.0.1:80 -z 10.0.3.1").name == "del-laddr"
    assert entry("-G").name == "get-laddr"
    assert entry("-G -t 10.0.0.1:80 -n --json").json
    assert not entry("-E -t 10.0.0.1:80 -j disable").service.synproxy


@pytest.mark.parametrize("line", ["-C", "-R", "-S", "-S -n", "-Z", "-Z -t 1.2.3.4:80", "-h",
                                  "-v", "--version", "--help", "--clear", "--save", "--zero"])
def test_simple_commands(line):
    entry(line)


def test_every_option_is_reachable():
    """Each option of the table parses in some command line."""
    lines = {
        "tcp-service": "-A -t 1.2.3.4:80", "udp-service": "-A -u 1.2.3.4:53",
        "sctp-service": "-A --sctp-service 1.2.3.4:1",
        "fwmark-service": "-A -f 1", "scheduler": "-A -f 1 -s rr", "persistent": "-A -f 1 -p",
        "netmask": "-A -f 1 -p -M 255.0.0.0",
        "real-server": "-a -f 1 -r 1.2.3.5", "masquerading": "-a -f 1 -r 1.2.3.5 -m",
        "ipip": "-a -f 1 -r 1.2.3.5 -i",
        "gatewaying": "-a -f 1 -r 1.2.3.5 -g", "fullnat": "-a -f 1 -r 1.2.3.5 --fullnat",
        "weight": "-a -f 1 -r 1.2.3.5 -w 1", "u-threshold": "-a -f 1 -r 1.2.3.5 -x 1",
        "l-threshold": "-a -f 1 -r 1.2.3.5 -y 1", "numeric": "-Ln", "connection": "-Lc",
        "mcast-interface": "--start-daemon master --mcast-interface x",
        "syncid": "--stop-daemon master --syncid 1", "timeout": "-L --timeout",
        "daemon": "-L --daemon", "stats": "-L --stats", "rate": "-L --rate",
        "thresholds": "-L --thresholds", "persistent-conn": "-L --persistent-conn",
        "nosort": "-L --nosort", "sort": "-L --sort", "exact": "-L -X", "ipv6": "-A -f 1 -6",
        "ops": "-A -f 1 -o", "pe": "-A -f 1 -p --pe sip", "sched-flags": "-A -f 1 -b flag-1",
        "mcast-group": "--start-daemon master --mcast-group 224.0.0.82",
        "mcast-port": "--start-daemon master --mcast-port 1",
        "mcast-ttl": "--start-daemon master --mcast-ttl 1",
        "sync-maxlen": "--start-daemon master --sync-maxlen 100", "tun-info": "-L --tun-info",
        "tun-type": "-a -f 1 -r 1.2.3.5 -i --tun-type gre",
        "tun-port": "-a -f 1 -r 1.2.3.5 -i --tun-type gue --tun-port 1",
        "tun-nocsum": "-a -f 1 -r 1.2.3.5 -i --tun-type gre --tun-nocsum",
        "tun-csum": "-a -f 1 -r 1.2.3.5 -i --tun-type gre --tun-csum",
        "tun-remcsum": "-a -f 1 -r 1.2.3.5 -i --tun-type gue --tun-port 1 --tun-remcsum",
        "laddr": "-P -t 1.2.3.4:80 -z 1.2.3.6", "synproxy": "-A -t 1.2.3.4:80 -j enable",
        "json": "-L --json", "ext-stats": "-L --ext-stats",
    }
    assert set(lines) == {o.name for o in OPTIONS}
    for key, line in lines.items():
        entry(line)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("line,code", [
    ("-n -L", EXIT_TRYHELP), ("", EXIT_TRYHELP), ("-L --foo", EXIT_TRYHELP),
    ("-L -t", EXIT_TRYHELP), ("-A", EXIT_FAIL), ("-A -t 10.0.0.9", EXIT_FAIL),
    ("-A -E", EXIT_FAIL), ("-A -t 300.1.2.3:80", EXIT_FAIL), ("-A -t 1.2.3.4:99999", EXIT_FAIL),
    ("-A -t 1.2.3.4:80 -p 0", EXIT_FAIL), ("-A -t 1.2.3.4:80 -o", EXIT_FAIL),
    ("-A -t 1.2.3.4:80 -6", EXIT_FAIL), ("-A -f 0", EXIT_FAIL), ("-A -f 9 -6 -M 200", EXIT_FAIL),
    ("-a -t 1.2.3.4:80 -r [2001:db8::5]:80 -m", EXIT_FAIL),
    ("-a -t 1.2.3.4:80 -r 1.2.3.5 -m --tun-type gue", EXIT_FAIL),
    ("-a -t 1.2.3.4:80 -r 1.2.3.5 -i --tun-type gue", EXIT_FAIL),
    ("-a -t 1.2.3.4:80 -r 1.2.3.5 -i --tun-type gre --tun-remcsum", EXIT_FAIL),
    ("-a -t 1.2.3.4:80 -r 1.2.3.5 -m -g", EXIT_FAIL), ("-a -t 1.2.3.4:80 -r 1.2.3.5 -w -1", EXIT_FAIL),
    ("-L -c -t 1.2.3.4:80", EXIT_FAIL), ("-L --timeout --stats", EXIT_FAIL),
    ("--set 1 2", EXIT_FAIL), ("--set 1 2 3 4", EXIT_FAIL), ("--start-daemon foo", EXIT_FAIL),
    ("-A -t 1.2.3.4:80 -b bogus", EXIT_FAIL), ("-A -t 1.2.3.4:80 -b sh-port", EXIT_FAIL),
    ("-S -c", EXIT_FAIL), ("-P -t 1.2.3.4:80", EXIT_FAIL), ("-A -t 1.2.3.4:80 -j maybe", EXIT_FAIL),
    ("-P -t 1.2.3.4:80 -z 2001:db8::1", EXIT_FAIL), ("-L -j enable", EXIT_FAIL),
])
def test_usage_errors(line, code):
    assert usage_code(line) == code


def test_cli_reports_bad_input_without_touching_the_kernel():
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["-A", "-t", "10.0.0.1"], out, err) == EXIT_FAIL
    assert "Zero port" in err.getvalue() and out.getvalue() == ""


def test_help_names_every_option():
    text = cli.usage()
    for opt in OPTIONS:
        assert f"--{opt.name}" in text, opt.name


# ------------------------------------------------------------------ against C ipvsadm
def _c_cases():
    for path in sorted(FIXTURES.glob("c-ipvsadm-*.json")):
        data = json.loads(path.read_text())
        for case in data["cases"]:
            if case["stdin"] is None:
                yield pytest.param(case, id=f"{path.stem}:{case['argv'] or '(none)'}")


@pytest.mark.parametrize("case", list(_c_cases()))
def test_exit_status_of_bad_input_matches_c_ipvsadm(case):
    """Where our parser refuses a command line, the C tool refused it with
    the same status; where ours accepts, C did not fail on parsing."""
    argv = case["argv"].split()
    if not argv or argv[0] in ("-h", "-v", "--version"):
        return
    try:
        e = parse(argv)
        check(e)
    except UsageError as exc:
        assert exc.code == case["rc"], (case["stderr"], str(exc))
        return
    # accepted: C either succeeded, or the kernel refused (255), or a listing failed (1)
    assert case["rc"] in (0, 1, 255), (case["rc"], case["stderr"])
    if case["rc"] == 255:
        assert not case["stderr"].startswith("Try"), case["stderr"]


def _c_adds():
    for path in sorted(FIXTURES.glob("c-ipvsadm-*.json")):
        for case in json.loads(path.read_text())["cases"]:
            argv = case["argv"].split()
            if case["stdin"] is None and case["rc"] == 0 and argv[:1] in (["-A"], ["-a"]) \
                    or argv[:1] == ["-At10.0.0.25:80"]:
                yield pytest.param(case, id=f"{path.stem}:{case['argv']}")


@pytest.mark.parametrize("case", list(_c_adds()))
def test_what_we_send_is_what_c_ipvsadm_created(case):
    """Our request, decoded as the kernel would read it, saved as -Sn
    saves it, is the line the C tool's command left in the table."""
    from ipvsadm_py import codec, wire
    from ipvsadm_py.cli import fmt

    cmd = entry(case["argv"])
    number, attrs = codec.encode_request(cli.request_of(cmd))
    (msg,) = wire.parse_stream(wire.encode(number, attrs, family=1, flags=1, seq=1))
    svc = codec.service_from(msg.attrs["service"])
    f = fmt.Format(numeric=True, rule=True)
    name = fmt.service_name(svc, f)
    if "dest" in msg.attrs:
        dest = codec.dest_from(msg.attrs["dest"], svc.af)
        line = fmt.dest_line(svc, name, dest, f)
    else:
        line = fmt.service_line(svc, name, f)
    assert line in case["after"].splitlines(keepends=True)


def test_single_option_words_read_as_bundles_do(monkeypatch):
    """The table of one-option words ("-t") gives what the general bundle
    reading gives, on random command lines over every short option."""
    rng = random.Random(11)
    words = ([f"-{ch}" for ch in spec.BY_SHORT] + [f"-{ch}" for ch in spec.CMD_SHORT]
             + ["-b", "-", "--", "-tn", "-Ln", "--weight", "--tcp-service=1.2.3.4:80",
                "10.0.0.1:80", "rr", "5", "-5", "x"])
    lines = [[rng.choice(words) for _ in range(rng.randint(0, 7))] for _ in range(3000)]
    fast = [(tokens(w), tokens(w, fullnat_b=True)) for w in lines]
    monkeypatch.setattr(tokens_module, "SINGLE", {})
    monkeypatch.setattr(tokens_module, "SINGLE_FULLNAT", {})
    slow = [(tokens(w), tokens(w, fullnat_b=True)) for w in lines]
    assert fast == slow


def test_lines_without_b_read_alike_with_and_without_fullnat_b():
    """parse() reads a real-server line again with -b as FULLNAT only when a
    word may hold "b"; for the others both readings must agree."""
    rng = random.Random(13)
    words = ["-a", "-e", "-t", "-r", "-w", "-m", "-g", "-i", "-x", "-y", "-b", "-mb", "-ab",
             "--tun-type", "gue", "10.0.0.1:80", "bob:80", "1", "--", "-"]
    checked = 0
    for _ in range(3000):
        argv = [rng.choice(words) for _ in range(rng.randint(1, 8))]
        if any(w[:1] == "-" and w[1:2] != "-" and "b" in w for w in argv):
            continue
        checked += 1
        assert tokens(argv) == tokens(argv, fullnat_b=True), argv
    assert checked > 500


@pytest.mark.parametrize("line, message", [
    ("-a -t 10.0.0.1:80 -r 10.0.2.96 -i --tun-type gue",
     "You need to supply the 'tun-port' option for the 'gue' tunnel type"),
    ("-a -t 10.0.0.1:80 -r 10.0.2.96 -i --tun-type gre --tun-port 5",
     "Illegal 'tun-port' option with the 'gre' tunnel type"),
    ("-a -t 10.0.0.1:80 -r 10.0.2.96 -i --tun-type gue --tun-port 5 --tun-csum --tun-remcsum",
     "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type"),
    ("-A -t 10.0.0.1:80 -r 10.0.2.1", "Illegal 'real-server' option with the 'add-service' command"),
    ("-a -t 10.0.0.1:80", "You need to supply the 'real-server' option for the 'add-server' command"),
    ("-L -c --timeout",
     "The option 'timeout' conflicts with the 'connection' option in the 'list' command"),
])
def test_option_table_faults_are_named_as_ipvsadm_names_them(line, message):
    """Commands and tunnel types share one rule check; each fault keeps its wording."""
    with pytest.raises(UsageError) as exc:
        check(parse(line.split()))
    assert str(exc.value) == message
