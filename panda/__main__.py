"""Let ``python -m panda`` run the ``panda`` command."""

from panda.cli import main

main()
