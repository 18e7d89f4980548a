"""``python -m inference``: the engine's command line (``inference.cli``)."""
import sys

from inference.cli import main

sys.exit(main())
