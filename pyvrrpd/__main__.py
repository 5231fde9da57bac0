from pyvrrpd.cli import main

raise SystemExit(main())
