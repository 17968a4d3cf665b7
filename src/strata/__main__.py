from strata.cli.main import main

raise SystemExit(main())
