"""Accumulate in Python: statistics of humidity readings `{"humidity":{"value":N}}` per
timestamp (window), the same logic as the Rust `humidity` module:
`{"humidity":{"count":N,"min":..,"max":..,"average":..,"last":..}}`.

The host calls `process(staged, batch)` for each batch of one timestamp and keeps the result as
the next staged value; the first staged value is a message with an empty payload.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types


def read(value: types.BufferOrBytes) -> bytes:
    if isinstance(value, types.BufferOrBytes_Buffer):
        return value.value.read()
    return value.value


def payload_bytes(item: types.DataModel) -> bytes:
    if isinstance(item, types.DataModel_Message):
        return read(item.value.payload)
    if isinstance(item, types.DataModel_Snapshot):
        return read(item.value.frame)
    return read(item.value)


class Accumulate(exports.Accumulate):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        return True

    def process(self, staged: types.DataModel, message: list[types.DataModel]) -> types.DataModel:
        if not isinstance(staged, types.DataModel_Message):
            raise Err(types.Error("humidity: staged value is not a message"))
        state = staged.value
        previous = read(state.payload)
        if previous:
            h = json.loads(previous)["humidity"]
            count, low, high = h["count"], h["min"], h["max"]
            total, last = h["average"] * count, h["last"]
        else:
            count, low, high, total, last = 0, float("inf"), float("-inf"), 0.0, 0.0
        for item in message:
            try:
                value = float(json.loads(payload_bytes(item))["humidity"]["value"])
            except (ValueError, KeyError, TypeError):
                raise Err(types.Error("humidity: input has no humidity reading"))
            count += 1
            low, high = min(low, value), max(high, value)
            total += value
            last = value
        if count > 0:
            statistics = {
                "humidity": {
                    "count": count,
                    "min": float(low),
                    "max": float(high),
                    "average": total / count,
                    "last": float(last),
                }
            }
            text = json.dumps(statistics, separators=(",", ":"))
            state.payload = types.BufferOrBytes_Bytes(text.encode("utf-8"))
            state.content_type = types.BufferOrString_String("application/json")
        return types.DataModel_Message(state)
