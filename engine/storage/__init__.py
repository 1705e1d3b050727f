"""What is kept on disk: the journal, the writer lock, the data directory, trades."""
