import sys

from xembody.cli import main

sys.exit(main())
