"""lvs-cluster: balancers side by side behind ECMP routers (docs/cluster.md).

``bird`` renders BIRD 2's configuration of one balancer from the YAML's
``cluster:`` section and has BIRD check and load it; ``announce`` puts the
VIPs that can be served on the dummy interface BIRD exports; ``cli`` is the
command.
"""
