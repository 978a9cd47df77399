"""Reference implementations the unit tests compare ipvsadm_py with."""
