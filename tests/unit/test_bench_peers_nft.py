"""The benchmark's nftables peer (tools/bench/nft_peer.py): its ruleset is
what nftables' documentation recommends and the kernel takes it."""

from __future__ import annotations

import json
import os
import uuid
from typing import Iterator

import pytest

from ipvsadm_py.nft import Nft, NftError
from tools import netlab
from tools.bench import nft_peer

needs_root_nft = pytest.mark.skipif(
    os.geteuid() != 0 or not Nft().available(),
    reason="loading a ruleset needs root and the nft program")


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"nftpeer-{uuid.uuid4().hex[:8]}"
    netlab.run(["ip", "netns", "add", name])
    try:
        yield name
    finally:
        netlab.run(["ip", "netns", "del", name], check=False)


def test_round_robin_map_holds_every_server():
    cmds = nft_peer.ruleset(["10.0.2.11", "10.0.2.12", "10.0.2.13"])
    text = json.dumps(cmds)
    assert text.count('"mod": 3') == 4            # UDP, TCP, synproxy, output
    assert '[2, "10.0.2.13"]' in text


def test_as_many_sources_as_fullnat_has_local_addresses():
    text = json.dumps(nft_peer.ruleset(["10.0.2.11"], sources=4))
    assert '"range": ["10.0.5.1", "10.0.5.4"]' in text
    with pytest.raises(ValueError):
        nft_peer.ruleset(["10.0.2.11"], sources=0)


@needs_root_nft
def test_the_kernel_takes_the_ruleset_and_it_reads_back_as_documented(netns):
    peer = nft_peer.NftPeer(netns, ["10.0.2.11", "10.0.2.12"])
    with peer.active():
        text = netlab.run(["ip", "netns", "exec", netns, "nft", "list", "table", "ip",
                           nft_peer.TABLE]).stdout
    lines = {line.strip() for line in text.splitlines()}
    assert ("ip daddr 10.0.0.103 tcp dport 87 tcp flags syn / fin,syn,rst,ack notrack"
            in lines)
    assert ("ip daddr 10.0.0.103 udp dport 9003 dnat to numgen inc mod 2 map "
            "{ 0 : 10.0.2.11, 1 : 10.0.2.12 }:9003" in lines)
    assert "ct original ip daddr 10.0.0.103 snat to 10.0.5.1-10.0.5.64" in lines
    assert ("ip daddr 10.0.0.103 tcp dport 87 ct state invalid,untracked synproxy "
            "mss 1460 wscale 7 timestamp sack-perm" in lines)
    assert "type nat hook output priority -100; policy accept;" in lines
    # gone after the block: conntrack's hooks do not stay for the others' windows
    listed = netlab.run(["ip", "netns", "exec", netns, "nft", "list", "tables"]).stdout
    assert nft_peer.TABLE not in listed


@needs_root_nft
def test_a_second_load_is_refused_whole_and_changes_nothing(netns):
    peer = nft_peer.NftPeer(netns, ["10.0.2.11"])
    peer.load()
    try:
        before = netlab.run(["ip", "netns", "exec", netns, "nft", "list", "ruleset"]).stdout
        with pytest.raises(NftError):
            peer.nft.run(nft_peer.ruleset(["10.0.2.11"])
                         + [{"add": {"rule": {"family": "ip", "table": nft_peer.TABLE,
                                              "chain": "no_such_chain", "expr": []}}}])
        after = netlab.run(["ip", "netns", "exec", netns, "nft", "list", "ruleset"]).stdout
        assert after == before
    finally:
        peer.unload()
