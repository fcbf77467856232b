"""A lane written in Python (componentize-py): echoes its payload, uppercasing `text`.

It exists to measure what a large lane (the CPython runtime is in the component) costs a host
to start, compile and restart; see scripts/bench-large-lanes.
"""
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import (
    LaneCapabilities,
    Outcome,
    Rejection,
)


class LaneAdapter(exports.LaneAdapter):
    def capabilities(self) -> LaneCapabilities:
        return LaneCapabilities(
            lane_id="python-echo",
            protocols=["echo"],
            surfaces=["wasm"],
            supports_execute=True,
            supports_stream=False,
            metadata_json="{}",
        )

    def validate(self, request) -> None:
        payload = json.loads(request.payload_json)
        if not isinstance(payload.get("text", ""), str):
            raise Err(Rejection("invalid_lane_request", "`text` must be a string", "{}"))

    def execute(self, request) -> Outcome:
        payload = json.loads(request.payload_json)
        output = {"text": payload.get("text", "").upper(), "runtime": "python"}
        return Outcome(True, json.dumps(output), None, "{}")

    def stream(self, request):
        raise Err(Rejection("not_supported", "the python echo lane does not stream", "{}"))
