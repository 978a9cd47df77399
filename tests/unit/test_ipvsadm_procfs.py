"""The /proc readers (ipvsadm_py.procfs): one parser per file."""

from __future__ import annotations

from ipvsadm_py import procfs

EXT_STATS = """\
                                            CPU0            CPU1           TOTAL
fullnat_add_toa_ok                                 3               4               7
fullnat_add_toa_fail_len                           0               0               0
synproxy_syn_cnt                                   0               2               2
"""


def test_ext_stats_totals(tmp_path):
    assert procfs.parse_ext_stats(EXT_STATS) == {"fullnat_add_toa_ok": 7,
                                                 "fullnat_add_toa_fail_len": 0,
                                                 "synproxy_syn_cnt": 2}
    path = tmp_path / "ip_vs_ext_stats"
    path.write_text(EXT_STATS)
    assert procfs.read_ext_stats(path)["synproxy_syn_cnt"] == 2


CONNS = """\
Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0A000063 C350 0A000001 0050 0A00020B 1F90 ESTABLISHED    899
TCP 2001:0db8:0000:0000:0000:0000:0000:0063 C350 2001:0db8:0000:0000:0000:0000:0000:0001 0050 2001:0db8:0000:0000:0000:0000:0000:000b 0050 SYN_RECV        59
UDP 0A000063 C351 0A000001 13C4 0A00020B 13C4 UDP            299 sip 1234@host
short line
"""


def test_connections():
    first, six, sip = procfs.parse_connections(CONNS)
    assert (first.protocol, first.client, first.client_port, first.virtual, first.dest,
            first.dest_port, first.state, first.expires, first.pe_name) == \
        ("TCP", bytes([10, 0, 0, 99]), 50000, bytes([10, 0, 0, 1]), bytes([10, 0, 2, 11]),
         8080, "ESTABLISHED", 899, None)
    assert len(six.client) == 16 and six.virtual_port == 80 and six.state == "SYN_RECV"
    assert (sip.pe_name, sip.pe_data) == ("sip", "1234@host")


TOA_STATS = """\
counter                          CPU0         CPU1        total
syn_recv_sock_toa                   3            4            7
getname_toa_ok                      1            0            1
probe_missed                        -            -            5
"""


def test_toa_stats_totals_with_global_counters(tmp_path):
    path = tmp_path / "toa_stats"
    path.write_text(TOA_STATS)
    assert procfs.read_toa_stats(path) == {"syn_recv_sock_toa": 7, "getname_toa_ok": 1,
                                           "probe_missed": 5}


def test_loaded_modules_are_directories_of_sys_module(tmp_path):
    (tmp_path / "ip_vs").mkdir()
    assert procfs.module_loaded("ip_vs", tmp_path)
    assert not procfs.module_loaded("toa", tmp_path)
    assert not procfs.toa_loaded(tmp_path / "toa")
