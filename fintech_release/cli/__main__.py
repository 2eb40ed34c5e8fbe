import sys

from fintech_release.cli.commands import main

sys.exit(main())
