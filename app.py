"""`python app.py` serves the Anagnorisis UI on 127.0.0.1:7860 (see --help)."""

if __name__ == "__main__":
    # Imported here, not at the top: decode worker processes re-import this script and must not load Gradio
    # (nor does --help: Gradio loads once the options are parsed).
    from anagnorisis.ui.serve import main

    raise SystemExit(main())
