"""The Alpaca adapter: alpaca-py 0.44 wrapped so its sharp edges never reach the engine.

One module per job: ``endpoints`` (URLs per mode), ``rest`` (every SDK REST call in a worker
thread with a timeout, one retry policy), ``errors`` (APIError read defensively), ``rate`` (the
request budget), ``mapping`` (SDK models to engine models, strings to Decimal to float),
``history`` (minute bars from REST, how far back to warm up), ``aggregator`` (1-minute bars to
N-minute bars), ``streams`` (the two websockets on the engine's loop), ``orders`` and
``account`` (what the broker tracks between REST calls), ``clock`` and ``hours`` (time and the
session as the broker sees them). The Broker
and Feed that use them live in engine/brokers/alpaca.py and engine/feeds/alpaca.py; see
/work/shared/ALPACA-WIRE.md.
"""
