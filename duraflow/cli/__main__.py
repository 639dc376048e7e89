"""``python -m duraflow.cli``: the same as the ``duraflow`` command."""

import sys

from duraflow.cli import main

sys.exit(main())
