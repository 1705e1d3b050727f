"""Market data and hours: the NYSE calendar, the synthetic market, file loading."""
