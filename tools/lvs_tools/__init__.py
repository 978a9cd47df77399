"""The operator's tools that install with ipvsadm_py: ``lvs-tune`` (host
tuning, ``lvs_tools.tuning``) and the TOA installer for real servers
(``lvs_tools.toa_installer``, with its self-test and the packets it crafts).

The package lives in the checkout at ``tools/lvs_tools/``, next to the
development harness (the rest of ``tools/``), which is never installed;
nothing here imports the harness except the installer's build steps, which
need a checkout (docs/architecture.md).
"""
