"""tools/lvs_tools/toa_installer.py and the parts it names (toa_facts,
toa_state, toa_trust, toa_steps) on fake trees: what it concludes, what it says.

The real thing (DKMS, modprobe, the self-test) runs in the guest:
tests/kernel/test_toa_installer.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lvs_tools import toa_installer as toa

KVER = "6.1.0-99-amd64"
BPO = "6.12.95+deb12-amd64"


def fake_kernel(root: Path, kver: str = KVER, headers: bool = True) -> Path:
    modules = root / "lib/modules" / kver
    modules.mkdir(parents=True)
    if headers:
        build = root / "usr/src" / f"linux-headers-{kver}"
        build.mkdir(parents=True)
        (build / "Makefile").write_text("# fake\n")
        (modules / "build").symlink_to(build)
    return modules


def versions(**found: str):
    table = {f"linux-image-{k.replace('_', '.')}": v for k, v in found.items()}
    return table.get


def all_tools(_: str) -> str:
    return "/usr/bin/x"


def test_headers_present(tmp_path):
    fake_kernel(tmp_path)
    assert toa.check_headers(KVER, tmp_path, lambda p: None).name == "build"


def test_missing_headers_name_the_package(tmp_path):
    fake_kernel(tmp_path, headers=False)
    with pytest.raises(toa.InstallerError) as err:
        toa.check_headers(KVER, tmp_path, lambda p: "6.1.99-1")
    assert f"apt-get install linux-headers-{KVER}" in str(err.value)
    assert "backports" not in str(err.value)


def test_missing_backports_headers_name_the_version(tmp_path):
    fake_kernel(tmp_path, BPO, headers=False)
    with pytest.raises(toa.InstallerError) as err:
        toa.check_headers(BPO, tmp_path, lambda p: "6.12.95-1~bpo12+1")
    assert f"apt-get install linux-headers-{BPO}=6.12.95-1~bpo12+1" in str(err.value)
    assert "-t " not in str(err.value)


def test_broken_headers_link_counts_as_missing(tmp_path):
    modules = fake_kernel(tmp_path)
    (modules / "build").unlink()
    (modules / "build").symlink_to(tmp_path / "nowhere")
    with pytest.raises(toa.InstallerError, match="headers of kernel .* are missing"):
        toa.check_headers(KVER, tmp_path, lambda p: None)


def test_kernel_that_is_not_installed(tmp_path):
    with pytest.raises(toa.InstallerError, match="is not installed"):
        toa.check_headers(KVER, tmp_path, lambda p: None)


def test_missing_tools_name_their_packages():
    missing = toa.check_tools(lambda tool: None if tool in ("dkms", "gcc") else "/bin/x")
    assert missing == ["dkms is missing: apt-get install dkms",
                       "gcc is missing: apt-get install gcc"]


def test_check_collects_problems_and_notes(tmp_path):
    fake_kernel(tmp_path, "6.6.0-1-amd64", headers=False)
    result = toa.check("6.6.0-1-amd64", tmp_path, which=lambda t: None if t == "make" else "/x",
                       version_of=lambda p: None)
    assert any("linux-headers-6.6.0-1-amd64" in p for p in result.problems)
    assert "make is missing: apt-get install make" in result.problems
    assert any("6.6 is not one this project tests" in n for n in result.notes)
    ok = toa.check(KVER, _ready(tmp_path / "ok"), which=all_tools, version_of=lambda p: None)
    assert ok.problems == [] and not ok.policy.enforced


def _ready(root: Path) -> Path:
    fake_kernel(root)
    return root


def write(root: Path, rel: str, data: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)


def test_signing_policy_of_an_open_kernel(tmp_path):
    write(tmp_path, "sys/kernel/security/lockdown", "[none] integrity confidentiality\n")
    write(tmp_path, "sys/module/module/parameters/sig_enforce", "N\n")
    write(tmp_path, "proc/cmdline", "root=/dev/sda1 quiet\n")
    policy = toa.signing_policy(tmp_path)
    assert not policy.enforced and policy.reasons == []


@pytest.mark.parametrize("files,reason", [
    ({"sys/kernel/security/lockdown": "none [integrity] confidentiality\n"},
     "kernel lockdown is 'integrity'"),
    ({"sys/kernel/security/lockdown": "none integrity [confidentiality]\n"},
     "kernel lockdown is 'confidentiality'"),
    ({"sys/module/module/parameters/sig_enforce": "Y\n"}, "module.sig_enforce is on"),
    ({"proc/cmdline": "quiet module.sig_enforce=1\n"},
     "module.sig_enforce=1 on the kernel command line"),
])
def test_kernels_that_refuse_unsigned_modules(tmp_path, files, reason):
    for rel, text in files.items():
        write(tmp_path, rel, text)
    policy = toa.signing_policy(tmp_path)
    assert policy.enforced and reason in policy.reasons


def test_secure_boot_is_reported_but_the_kernel_decides(tmp_path):
    write(tmp_path, toa.EFI_SECUREBOOT, b"\x06\x00\x00\x00\x01")
    write(tmp_path, "sys/kernel/security/lockdown", "[none] integrity confidentiality\n")
    policy = toa.signing_policy(tmp_path)
    assert policy.reasons == ["UEFI Secure Boot is enabled"] and not policy.enforced
    write(tmp_path, "sys/kernel/security/lockdown", "none [integrity] confidentiality\n")
    assert toa.signing_policy(tmp_path).enforced
    write(tmp_path, toa.EFI_SECUREBOOT, b"\x06\x00\x00\x00\x00")
    assert not toa.secure_boot(tmp_path)


def test_signing_advice_says_what_to_do():
    text = toa.signing_advice(BPO, "DKMS module signing key")
    assert "'DKMS module signing key', a key this kernel does not trust" in text
    assert "mokutil --import /var/lib/dkms/mok.pub" in text
    assert "/usr/lib/linux-kbuild-6.12/scripts/sign-file sha256 MOK.priv MOK.der" in text
    assert "/etc/dkms/framework.conf" in text
    assert "is not signed" in toa.signing_advice(KVER, None)


def test_check_notes_an_enforcing_kernel(tmp_path):
    root = _ready(tmp_path)
    write(root, "sys/module/module/parameters/sig_enforce", "Y\n")
    result = toa.check(KVER, root, which=all_tools, version_of=lambda p: None)
    assert result.policy.enforced and result.problems == []
    assert any("refuses modules without a trusted signature" in n for n in result.notes)


def test_persist_and_unpersist(tmp_path):
    assert not toa.persisted(tmp_path)
    path = toa.persist(tmp_path)
    assert path == tmp_path / "etc/modules-load.d/lvs-toa.conf"
    assert [line for line in path.read_text().splitlines()
            if not line.startswith("#")] == ["toa"]
    assert toa.persisted(tmp_path)
    assert toa.unpersist(tmp_path) and not path.exists()
    assert not toa.unpersist(tmp_path)


STATS = """\
counter                          CPU0         CPU1        total
syn_recv_sock_toa                   2            1            3
getname_toa_ok                      4            4            8
opt_bad_len                         1            0            1
opt_truncated                       0            2            2
entry_alloc                         2            2            4
entry_free                          2            1            3
probe_missed                        -            -            0
"""


def test_parse_stats_takes_the_totals():
    stats = toa.parse_stats(STATS)
    assert stats == {"syn_recv_sock_toa": 3, "getname_toa_ok": 8, "opt_bad_len": 1,
                     "opt_truncated": 2, "entry_alloc": 4, "entry_free": 3,
                     "probe_missed": 0}


def test_status_of_a_fake_system(tmp_path):
    root = _ready(tmp_path)
    write(root, "proc/net/toa_stats", STATS)
    write(root, "sys/module/toa/initstate", "live\n")
    write(root, "sys/module/toa/parameters/enabled", "Y\n")
    write(root, "sys/module/toa/version", "0.1.0\n")
    toa.persist(root)
    info = toa.status(KVER, root)
    assert info["loaded"] and info["persistent"] and info["headers"]
    assert info["counters"]["getname_toa_ok"] == 8
    text = toa.format_status(info)
    assert "loaded       yes, version 0.1.0, enabled=Y" in text
    assert "at boot      yes, /etc/modules-load.d/lvs-toa.conf" in text
    assert "malformed=3" in text and "signatures   not enforced" in text


def test_status_when_nothing_is_there(tmp_path):
    info = toa.status(KVER, tmp_path)
    assert not info["loaded"] and not info["persistent"] and info["counters"] is None
    assert "loaded       no" in toa.format_status(info)


def test_invoke_collection_offers_the_installer():
    from tasks import ns
    assert set(ns.collections["toa"].task_names) >= {"check", "install", "status",
                                                     "selftest", "uninstall"}


# ---------------------------------------------------------------- --trusted

@pytest.mark.parametrize("value,prefixes", [
    ("10.0.3.0/24,2001:db8:3::/64", ["10.0.3.0/24", "2001:db8:3::/64"]),
    (" 10.0.3.0/24 , 2001:DB8:3:0::/64\n", ["10.0.3.0/24", "2001:db8:3::/64"]),
    ("192.0.2.7", ["192.0.2.7/32"]),
    ("2001:db8::1", ["2001:db8::1/128"]),
    ("0.0.0.0/0", ["0.0.0.0/0"]),
    ("", []),
    ("  ", []),
])
def test_trusted_prefixes_in_the_modules_form(value, prefixes):
    assert toa.parse_trusted(value) == prefixes


@pytest.mark.parametrize("value,message", [
    ("banana", "'banana'"),
    ("10.0.3.0/33", "'10.0.3.0/33'"),
    ("10.0.3.1/24", "has host bits set"),
    ("2001:db8::1/64", "has host bits set"),
    ("10.0.3.0/24,", "empty item"),
    ("10.0.3.0/24,,10.0.4.0/24", "empty item"),
    ("10.0.3.0/255.255.255.0", "must be a number"),
    ("10.0.3.0/+24", "must be a number"),
    ("::ffff:10.0.3.0/120", "write IPv4 prefixes as IPv4"),
    (",".join(f"10.{n}.0.0/16" for n in range(65)), "at most 64"),
])
def test_bad_trusted_values_are_refused_by_name(value, message):
    with pytest.raises(toa.InstallerError, match="--trusted") as err:
        toa.parse_trusted(value)
    assert message in str(err.value)


def test_trusted_is_kept_in_modprobe_d(tmp_path):
    path = toa.write_trusted(["10.0.3.0/24", "2001:db8:3::/64"], tmp_path)
    assert path == tmp_path / "etc/modprobe.d/lvs-toa.conf"
    assert [line for line in path.read_text().splitlines() if not line.startswith("#")] == \
        ["options toa trusted=10.0.3.0/24,2001:db8:3::/64"]
    assert toa.persisted_trusted(tmp_path) == "10.0.3.0/24,2001:db8:3::/64"
    assert toa.write_trusted([], tmp_path) is None and not path.exists()
    assert toa.persisted_trusted(tmp_path) is None
    assert toa.write_trusted([], tmp_path) is None      # nothing there: fine


def _loaded(root: Path, trusted: str) -> None:
    write(root, "sys/module/toa/initstate", "live\n")
    write(root, "sys/module/toa/parameters/enabled", "Y\n")
    write(root, "sys/module/toa/parameters/trusted", trusted + "\n")


def test_status_shows_the_trusted_peers(tmp_path):
    _loaded(tmp_path, "10.0.3.0/24")
    toa.write_trusted(["10.0.3.0/24"], tmp_path)
    info = toa.status(KVER, tmp_path)
    assert info["trusted"] == "10.0.3.0/24" and info["trusted_at_boot"] == "10.0.3.0/24"
    assert "trusted      10.0.3.0/24 (loaded), at boot via /etc/modprobe.d/lvs-toa.conf" \
        in toa.format_status(info)


def test_status_says_when_any_peer_is_believed(tmp_path):
    _loaded(tmp_path, "")
    text = toa.format_status(toa.status(KVER, tmp_path))
    assert "trusted      any peer (loaded); restrict with install --trusted PREFIX,..." in text


def test_status_shows_a_list_waiting_for_the_next_load(tmp_path):
    _loaded(tmp_path, "")
    toa.write_trusted(["10.0.3.0/24"], tmp_path)
    text = toa.format_status(toa.status(KVER, tmp_path))
    assert ("trusted      any peer (loaded); 10.0.3.0/24 "
            "(/etc/modprobe.d/lvs-toa.conf, from the next load)") in text


def test_status_of_an_unloaded_module_with_a_list(tmp_path):
    toa.write_trusted(["10.0.3.0/24"], tmp_path)
    text = toa.format_status(toa.status(KVER, tmp_path))
    assert "trusted      10.0.3.0/24 (/etc/modprobe.d/lvs-toa.conf, from the next load)" in text


def test_bad_trusted_on_the_command_line_changes_nothing(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(toa, "install", lambda *a, **k: calls.append((a, k)))
    assert toa.main(["install", "--trusted", "10.0.3.1/24"]) == 1
    assert "toa: error: --trusted: '10.0.3.1/24'" in capsys.readouterr().err
    assert calls == []
    assert toa.main(["status", "--trusted", "10.0.3.0/24"]) == 1
    assert "--trusted goes with install" in capsys.readouterr().err


def test_trusted_reaches_install(monkeypatch):
    calls = []
    monkeypatch.setattr(toa, "install", lambda kver, **k: calls.append(k))
    assert toa.main(["install", "--kver", KVER, "--trusted", "10.0.3.0/24,2001:db8:3::/64"]) == 0
    assert toa.main(["install", "--kver", KVER]) == 0
    assert toa.main(["install", "--kver", KVER, "--trusted", ""]) == 0
    assert [c["trusted"] for c in calls] == [["10.0.3.0/24", "2001:db8:3::/64"], None, []]


def test_invoke_install_passes_trusted(monkeypatch):
    from tools import toa_tasks
    seen = []
    monkeypatch.setattr(toa, "main", lambda argv: seen.append(argv) or 0)
    toa_tasks.install.body(None, kver=KVER, trusted="10.0.3.0/24")
    assert seen == [["install", "--trusted", "10.0.3.0/24", "--kver", KVER]]
