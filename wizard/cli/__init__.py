"""Layer 8, the top: the `mailwizard` command. `main` parses and dispatches; one module per command
(check, show, send, poll, init, listing, export, discover, rotate, cert, report); `tui` opens the
Textual wizard; `output` and `common` are shared by the commands; `support` writes the report bundle."""
