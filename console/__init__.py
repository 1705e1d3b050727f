"""tapewatch's front end: the Textual console and the command line."""
