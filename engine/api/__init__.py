"""The engine's API: all the console may import from the engine.

Commands go in (``commands``), replies come back (``replies``), and an immutable, versioned
``Snapshot`` of everything the screens draw plus the engine's events come out, through an
``EngineHandle`` (``handle``). Every one of them is plain, serialisable data, so the same console
works in-process today and across a process boundary next. ``types`` re-exports the engine's
data types the console names; ``errors`` and ``process`` what the console reports and needs
from its host process.
"""

from tapewatch.engine import __version__

__all__ = ["__version__"]
