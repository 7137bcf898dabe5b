import sys

from vertex_emulator.cli import main

sys.exit(main())
