"""Host tuning for the balancer: IRQ affinity, RPS/XPS/RFS, sysctls, NIC offloads.

Layers, each usable alone and testable on a fake /proc and /sys tree::

    hostfs, backends   file access under a root; ethtool features; services
    facts              read the host                      -> HostFacts
    profile            YAML profile                        -> Profile
    plan               facts + profile (+ strategy)        -> Plan (writes, old -> new)
    apply              apply / rollback / revert with a state file
    audit              plan read as deviations
    report, cli        text and the ``lvs-tune`` command; api.Tuner ties it together
"""
