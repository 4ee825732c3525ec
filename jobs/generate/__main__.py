import sys

from jobs.generate.cli import main

sys.exit(main())
