"""The `example-python` lane: a word counter written in Python, built with componentize-py
against the `lane-events` world of the lane ABI (it imports `events` and caller input, nothing
else of the host).

`execute` counts the words of the payload's `text` and emits one `words.counted` event;
`stream` emits one `words.word` event per word and ends with the count as its outcome.
"""

import json

from wit_world import exports
from wit_world.exports import lane_adapter
from wit_world.imports import events, types
from componentize_py_types import Err

LANE_ID = "example-python"


def _words(request: types.ExecutionRequest) -> list[str]:
    payload = json.loads(request.payload_json)
    text = payload.get("text")
    if not isinstance(text, str):
        raise Err(
            types.Rejection(
                reason="invalid_lane_request",
                message="payload.text must be a string",
                details_json=json.dumps({"field": "text"}),
            )
        )
    return text.split()


def _succeeded(output: dict) -> types.Outcome:
    return types.Outcome(
        succeeded=True, output_json=json.dumps(output), failure=None, metrics_json="{}"
    )


class LaneAdapter(exports.LaneAdapter):
    def capabilities(self) -> types.LaneCapabilities:
        return types.LaneCapabilities(
            lane_id=LANE_ID,
            protocols=["words"],
            surfaces=[],
            supports_execute=True,
            supports_stream=True,
            metadata_json=json.dumps({"language": "python"}),
        )

    def validate(self, request: types.ExecutionRequest) -> None:
        _words(request)

    def execute(self, request: types.ExecutionRequest) -> types.Outcome:
        words = _words(request)
        events.emit(types.Event("words.counted", json.dumps({"count": len(words)})))
        return _succeeded({"count": len(words), "language": "python"})

    def stream(self, request: types.ExecutionRequest) -> lane_adapter.EventStream:
        return WordStream(_words(request))


class WordStream(lane_adapter.EventStream):
    def __init__(self, words: list[str]):
        self.words = words
        self.sent = 0

    def next(self) -> lane_adapter.StreamItem:
        if self.sent < len(self.words):
            word = self.words[self.sent]
            self.sent += 1
            event = types.Event("words.word", json.dumps({"index": self.sent, "word": word}))
            return lane_adapter.StreamItem_Event(event)
        return lane_adapter.StreamItem_End(_succeeded({"count": self.sent}))
