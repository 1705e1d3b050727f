"""Console themes as data files, shipped in the wheel as tapewatch.themes."""
