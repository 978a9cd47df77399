"""Declarative configuration: a YAML file of the whole table.

:func:`load` / :func:`validate` check the whole file and report every
problem with its line (:mod:`.schema`, reading :mod:`.services` and
:mod:`.nodes` into a :mod:`.desired` state); :func:`plan` compares it with the
live table and :func:`apply_plan` carries out the difference (:mod:`.plan`);
:func:`export_text` writes the live table as such a file (:mod:`.export`).
The schema is in docs/ipvsadm-py.md.
"""

from __future__ import annotations

from ipvsadm_py.config.desired import ConfigError, Desired, ServiceSpec
from ipvsadm_py.config.export import export_dict, export_text
from ipvsadm_py.config.nodes import expand_addresses
from ipvsadm_py.config.plan import (LiveState, Step, apply_plan, list_plan, plan, plan_text,
                                    read_live)
from ipvsadm_py.config.schema import load, validate
from ipvsadm_py.errors import InvalidInput

__all__ = ["ConfigError", "Desired", "InvalidInput", "LiveState", "ServiceSpec", "Step",
           "apply_plan", "expand_addresses", "list_plan", "export_dict", "export_text", "load", "plan",
           "plan_text", "read_live", "validate"]
