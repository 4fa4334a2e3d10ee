"""``python -m optevo.search.cli ...`` is ``optevo ...``."""

import sys

from . import main

sys.exit(main())
