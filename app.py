"""`python app.py` serves the Anagnorisis UI on 127.0.0.1:7860 (see --help)."""
from anagnorisis.ui.app import main

if __name__ == "__main__":
    raise SystemExit(main())
