"""Delay in Python: tumbling windows, the same logic as the Rust `window` module.

Moves each item's timestamp to the end of its window [k*w, (k+1)*w), with the window length w
from the configuration property `window_ms` (default 10000).
"""

from wit_world import exports
from wit_world.imports import hybrid_logical_clock, types

# componentize-py makes a new `Delay` object for every call: configuration lives in the module.
WINDOW_MS = [10_000]


class Delay(exports.Delay):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        value = dict(configuration.properties).get("window_ms")
        if value is None:
            return True
        try:
            window = int(value.strip())
        except ValueError:
            return False
        if window <= 0:
            return False
        WINDOW_MS[0] = window
        return True

    def process(
        self, data: types.DataModel, timestamp: hybrid_logical_clock.HybridLogicalClock
    ) -> hybrid_logical_clock.HybridLogicalClock:
        window = WINDOW_MS[0]
        millis = timestamp.timestamp.secs * 1000 + timestamp.timestamp.nanos // 1_000_000
        end = (millis // window + 1) * window
        return hybrid_logical_clock.HybridLogicalClock(
            timestamp=hybrid_logical_clock.Timespec(secs=end // 1000, nanos=(end % 1000) * 1_000_000),
            counter=0,
            node_id=timestamp.node_id,
        )
