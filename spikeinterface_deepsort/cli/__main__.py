"""``python -m spikeinterface_deepsort.cli``: the ``deepspikesort`` command."""

import sys

from .main import main

sys.exit(main())
