"""Feeds: where bars come from (synthetic, files, Alpaca). The engine knows only ``Feed``."""
