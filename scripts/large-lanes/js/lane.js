// A lane written in JavaScript (componentize-js): echoes its payload, uppercasing `text`.
//
// It exists to measure what a large lane (the SpiderMonkey runtime is in the component) costs a
// host to start, compile and restart; see scripts/bench-large-lanes.

const rejection = (reason, message) => ({ reason, message, detailsJson: "{}" });

class EventStream {
  next() {
    return undefined;
  }
}

export const laneAdapter = {
  EventStream,
  capabilities() {
    return {
      laneId: "js-echo",
      protocols: ["echo"],
      surfaces: ["wasm"],
      supportsExecute: true,
      supportsStream: false,
      metadataJson: "{}",
    };
  },
  validate(request) {
    const payload = JSON.parse(request.payloadJson);
    if (payload.text !== undefined && typeof payload.text !== "string") {
      throw rejection("invalid_lane_request", "`text` must be a string");
    }
  },
  execute(request) {
    const payload = JSON.parse(request.payloadJson);
    const output = { text: (payload.text ?? "").toUpperCase(), runtime: "javascript" };
    return { succeeded: true, outputJson: JSON.stringify(output), failure: undefined, metricsJson: "{}" };
  },
  stream(_request) {
    throw rejection("not_supported", "the js echo lane does not stream");
  },
};
