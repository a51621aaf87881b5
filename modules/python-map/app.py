"""°F → °C in Python: the same logic as the Rust `temperature` map.

Rewrites `temperature.value` and `temperature.unit` of `{"temperature":{"value":72,"unit":"F"}}`,
keeping the rest of the payload; readings already in °C pass unchanged.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import logger, types


def read(value: types.BufferOrBytes) -> bytes:
    """The bytes of a host buffer or of module-made bytes."""
    if isinstance(value, types.BufferOrBytes_Buffer):
        return value.value.read()
    return value.value


def fail(message: str) -> Err:
    return Err(types.Error(message))


class Map(exports.Map):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        logger.log(logger.Level.INFO, "python-map", "ready to convert °F to °C")
        return True

    def process(self, message: types.DataModel) -> types.DataModel:
        if not isinstance(message, types.DataModel_Message):
            raise fail("temperature/map: expected a message")
        msg = message.value
        try:
            data = json.loads(read(msg.payload))
        except ValueError as error:
            raise fail(f"temperature/map: payload is not JSON: {error}")
        temperature = data.get("temperature") if isinstance(data, dict) else None
        if not isinstance(temperature, dict):
            raise fail("temperature/map: payload has no `temperature` object")
        if temperature.get("unit") != "F":
            return message
        fahrenheit = temperature.get("value")
        if isinstance(fahrenheit, bool) or not isinstance(fahrenheit, (int, float)):
            raise fail("temperature/map: `temperature.value` is not a number")
        temperature["value"] = (float(fahrenheit) - 32.0) * 5.0 / 9.0
        temperature["unit"] = "C"
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        msg.payload = types.BufferOrBytes_Bytes(text.encode("utf-8"))
        return types.DataModel_Message(msg)
