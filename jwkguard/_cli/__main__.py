"""``python -m jwkguard._cli``: the same as the ``jwkguard`` command."""

import sys

from . import main

sys.exit(main())
