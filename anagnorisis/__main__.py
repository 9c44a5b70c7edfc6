from anagnorisis.cli import main

raise SystemExit(main())
