import sys

from fintech_release.cli.commands import main

if __name__ == "__main__":  # not again in a child process of multiprocessing's "spawn" (the demo's builds)
    sys.exit(main())
