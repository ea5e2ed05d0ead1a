import sys

from kdp_beam.cli import main

sys.exit(main())
