"""``python -m ipvsadm_py.exporter``: lvs-exporter without the console script."""

import sys

from ipvsadm_py.exporter import main

sys.exit(main())
