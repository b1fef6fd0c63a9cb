"""`python -m fupin_sim`: the `fupin-sim` command."""
import sys

from fupin_sim.cli import main

sys.exit(main())
