import sys

from fruits_p8.cli import main

sys.exit(main())
