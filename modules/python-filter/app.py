"""Temperature bounds in Python: the same logic as the Rust `temperature` filter.

Keeps readings between `temperature_lower_bound` and `temperature_upper_bound` (inclusive, in °C,
defaults -40 and 125); °F readings are converted before the comparison.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

DEFAULT_LOWER = -40.0
DEFAULT_UPPER = 125.0

# componentize-py makes a new `Filter` object for every call: configuration lives in the module.
BOUNDS = [DEFAULT_LOWER, DEFAULT_UPPER]


def payload_bytes(item: types.DataModel) -> bytes:
    """The payload of any data-model variant."""
    if isinstance(item, types.DataModel_Message):
        value = item.value.payload
    elif isinstance(item, types.DataModel_Snapshot):
        value = item.value.frame
    else:
        value = item.value
    if isinstance(value, types.BufferOrBytes_Buffer):
        return value.value.read()
    return value.value


def celsius(payload: bytes):
    """The reading in °C, or None when the payload holds no temperature reading."""
    try:
        temperature = json.loads(payload)["temperature"]
        value = temperature["value"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if temperature.get("unit", "C") == "F":
        return (float(value) - 32.0) * 5.0 / 9.0
    return float(value)


class Filter(exports.Filter):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        properties = dict(configuration.properties)
        try:
            lower = float(properties.get("temperature_lower_bound", DEFAULT_LOWER))
            upper = float(properties.get("temperature_upper_bound", DEFAULT_UPPER))
        except ValueError:
            return False
        BOUNDS[:] = [lower, upper]
        return lower <= upper

    def process(self, message: types.DataModel) -> bool:
        value = celsius(payload_bytes(message))
        if value is None:
            raise Err(types.Error("temperature/filter: payload has no temperature reading"))
        lower, upper = BOUNDS
        return lower <= value <= upper
