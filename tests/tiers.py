"""Named subsets of the kernel tests (``pytest --tier NAME``, ``./inv test --tier NAME``).

The sanitizer tier is what runs on the debug kernel (KASAN, kmemleak,
lockdep, PROVE_RCU, atomic-sleep checks: ``./inv test --kver debug --tier
sanitizer``).  That guest is several times slower than one of a Debian
kernel, so the tier takes the tests that drive our code through its
allocations, locks, timers and unload paths once each, not the whole suite:
the netlink fuzz, FULLNAT and SYNPROXY sessions made, expired and deleted
under load (with the SYNPROXY flow locks raced on two CPUs), sessions synced
to a backup and its fuzzed sync messages, the TOA unload storm and the final
kernel-log and kmemleak scan.
A test may also run fewer rounds in a tier (``reduced``).
"""

from __future__ import annotations

#: Entries are relative to tests/kernel/: a file, ``file::test`` (every
#: parametrization) or ``file::test[prefix`` (the parametrizations whose id
#: starts so).
SANITIZER = (
    "test_netlink_fuzz.py",
    "test_fnat.py::test_tcp_and_udp_through_fullnat",
    "test_fnat.py::test_deleting_local_address_and_service_with_live_sessions",
    "test_fnat.py::test_expired_session_resets_both_ends",
    "test_fnat.py::test_icmp_too_big_from_both_sides[ipv6",
    "test_fnat_robust.py::test_spoofed_syn_does_not_break_a_download",
    "test_fnat_robust.py::test_corrupted_icmp_error_from_the_rs_side_is_dropped",
    "test_fnat_robust.py::test_small_port_range_fills_refuses_cleanly_and_drains",
    "test_fnat_robust.py::test_laddr_commands_refuse_loose_addresses",
    "test_synproxy.py::test_requests_through_synproxy",
    "test_synproxy.py::test_session_reused_by_a_new_cookie",
    "test_synproxy.py::test_silent_rs_gets_retries_then_client_rst",
    "test_synproxy.py::test_ack_storm_on_a_session_is_cut",
    "test_synproxy_race.py",
    "test_synproxy_unload.py",
    "test_sync.py::test_tcp_stream_survives_fail_over",
    "test_sync.py::test_fuzzed_messages_break_nothing",
    "test_toa.py::test_records_are_freed_with_their_sockets",
    "test_toa_unload.py",
    "test_unload.py",
    "test_zz_kernel_log.py",
)

#: What every secondary kernel line runs (README, Kernel lines): the build
#: is the guest's start, then load and unload, upstream's own IPVS
#: selftest, FULLNAT over IPv4 and IPv6 with TCP and UDP and TOA, SYNPROXY
#: beside a small spoofed SYN flood, a FULLNAT+SYNPROXY stream across a
#: fail-over, the backup's refusals and the sync daemons' message
#: counters, toa.ko naming the client, the
#: real-server installer's DKMS build where the guest has the kernel's
#: headers (bookworm-backports' 6.12), the BPF TOA's checks, the kernel log.
CORE = (
    "test_base.py::test_loaded_modules_are_our_build",
    "test_base.py::test_load_message_says_fnat_capable",
    "test_base.py::test_stock_ipvsadm_forwarding",
    "test_selftest.py",
    "test_fnat.py::test_tcp_and_udp_through_fullnat",
    "test_fnat.py::test_toa_reaches_the_real_server",
    "test_fnat.py::test_real_server_application_sees_the_client_through_toa",
    "test_synproxy.py::test_requests_through_synproxy",
    "test_synproxy.py::test_spoofed_syn_flood_while_clients_work",
    "test_sync.py::test_tcp_stream_survives_fail_over",
    "test_sync.py::test_backup_refuses_what_it_cannot_place",
    "test_sync.py::test_sync_messages_counted_and_losses_seen",
    "test_toa.py::test_toa_on_the_handshake_ack_names_the_client",
    "test_toa_installer.py::test_install_status_selftest_uninstall",
    "test_toa_bpf_installer.py::test_check_names_what_is_missing",
    "test_unload.py",
    "test_zz_kernel_log.py",
)

#: Tests of our tooling that need a guest but not a particular kernel line:
#: in a run of several whole-suite kernels they run on the first one only
#: (the benchmark's smoke test: every rate figure under the test guests'
#: emulation is null anyway, and it costs four minutes a guest).
ONCE = (
    "test_bench_quick.py",
)

TIERS: dict[str, tuple[str, ...]] = {"sanitizer": SANITIZER, "core": CORE}
KERNEL_TESTS = "tests/kernel/"

#: The tier of this pytest run (set by tests/guest_plugin.py from --tier).
active: str | None = None


def position(nodeid: str, tier: str) -> int | None:
    """Index of the first entry of ``tier`` that selects the test ``nodeid``,
    None if none does (KeyError: no such tier).  Tests of a tier run in the
    order of its entries: a guest stopped early has run the first ones."""
    return entry_of(nodeid, TIERS[tier])


def entry_of(nodeid: str, entries: tuple[str, ...]) -> int | None:
    """Index of the first of ``entries`` that selects the test ``nodeid``."""
    if not nodeid.startswith(KERNEL_TESTS):
        return None
    rest = nodeid[len(KERNEL_TESTS):]
    for index, entry in enumerate(entries):
        if (rest == entry or rest.startswith(entry + "::") or rest.startswith(entry + "[")
                or ("[" in entry and rest.startswith(entry))):
            return index
    return None


def in_tier(nodeid: str, tier: str) -> bool:
    """Whether the test ``nodeid`` belongs to ``tier`` (KeyError: no such tier)."""
    return position(nodeid, tier) is not None


def reduced(full: int, sanitizer: int) -> int:
    """A count of rounds: ``sanitizer`` in the sanitizer tier, else ``full``
    (the debug kernel's guest would run past its time for the full count)."""
    return sanitizer if active == "sanitizer" else full
