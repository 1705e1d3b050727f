"""Research at scale as a front end asks for it: sweeps, searches and walk-forward runs.

``sweep_on_dask`` runs a ``SweepPlan`` (grid axes from ``parse_grid``, search ranges from
``parse_span``, a walk-forward from ``parse_walk_forward``) over bars from
``engine.api.backtest`` on Dask, each cell kept in the store under ``cache_dir()``. The result
ranks the cells; ``heat`` and ``text_heatmap`` draw two parameters, ``sweep_html`` the page,
``toml_block`` the best parameters as config.toml tables.
"""

from tapewatch.engine.research.executor import SweepError, default_workers
from tapewatch.engine.research.heatmap import Heat, heat, text_heatmap
from tapewatch.engine.research.html import sweep_html, write_html
from tapewatch.engine.research.progress import ProgressLine
from tapewatch.engine.research.session import sweep_on_dask
from tapewatch.engine.research.space import (
    SWEEPABLE,
    Axis,
    Span,
    check_names,
    parse_grid,
    parse_span,
    toml_block,
)
from tapewatch.engine.research.store import cache_dir
from tapewatch.engine.research.sweep import (
    OBJECTIVES,
    SEARCHES,
    CellRow,
    SweepPlan,
    SweepResult,
)
from tapewatch.engine.research.windows import WalkForward, parse_walk_forward

__all__ = [
    "OBJECTIVES",
    "SEARCHES",
    "SWEEPABLE",
    "Axis",
    "CellRow",
    "Heat",
    "ProgressLine",
    "Span",
    "SweepError",
    "SweepPlan",
    "SweepResult",
    "WalkForward",
    "cache_dir",
    "check_names",
    "default_workers",
    "heat",
    "parse_grid",
    "parse_span",
    "parse_walk_forward",
    "sweep_html",
    "sweep_on_dask",
    "text_heatmap",
    "toml_block",
    "write_html",
]
