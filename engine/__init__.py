"""tapewatch's headless engine: strategy, risk, brokers, feeds, journal and backtester.

Nothing in this package may import ``textual`` or ``rich``; tests/engine/test_import_hygiene.py
proves it.
"""

__version__ = "0.1.0"
