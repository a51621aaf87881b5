"""Branch in Python: temperature payloads to the arm "True", everything else to "False".

The same logic as the Rust `temperature` branch.
"""

import json

from wit_world import exports
from wit_world.imports import hybrid_logical_clock, types


def payload_bytes(item: types.DataModel) -> bytes:
    """The payload of any data-model variant, whether a host buffer or bytes."""
    if isinstance(item, types.DataModel_Message):
        value = item.value.payload
    elif isinstance(item, types.DataModel_Snapshot):
        value = item.value.frame
    else:
        value = item.value
    if isinstance(value, types.BufferOrBytes_Buffer):
        return value.value.read()
    return value.value


def is_temperature(payload: bytes) -> bool:
    try:
        value = json.loads(payload)["temperature"]["value"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Branch(exports.Branch):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        return True

    def process(
        self, timestamp: hybrid_logical_clock.HybridLogicalClock, message: types.DataModel
    ) -> bool:
        return is_temperature(payload_bytes(message))
