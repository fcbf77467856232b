// The `example-js` lane: a word counter written in JavaScript, built with componentize-js
// against the `lane-events` world of the lane ABI (it imports `events` and caller input, nothing
// else of the host).
//
// `execute` counts the words of the payload's `text` and emits one `words.counted` event;
// `stream` emits one `words.word` event per word and ends with the count as its outcome.

import { emit } from "execution-plane:lane/events@0.2.0";

const LANE_ID = "example-js";

// A rejection is thrown: componentize-js turns it into the `err` of `result<_, rejection>`.
function words(request) {
  let payload;
  try {
    payload = JSON.parse(request.payloadJson);
  } catch (e) {
    throw rejection("payload is not JSON", { error: String(e) });
  }
  const text = payload === null || typeof payload !== "object" ? undefined : payload.text;
  if (typeof text !== "string") {
    throw rejection("payload.text must be a string", { field: "text" });
  }
  return text.split(/\s+/).filter((word) => word.length > 0);
}

function rejection(message, details) {
  return { reason: "invalid_lane_request", message, detailsJson: JSON.stringify(details) };
}

function succeeded(output) {
  return {
    succeeded: true,
    outputJson: JSON.stringify(output),
    failure: undefined,
    metricsJson: "{}",
  };
}

class WordStream {
  constructor(words) {
    this.words = words;
    this.sent = 0;
  }

  next() {
    if (this.sent < this.words.length) {
      const word = this.words[this.sent];
      this.sent += 1;
      const payload = JSON.stringify({ index: this.sent, word });
      return { tag: "event", val: { eventType: "words.word", payloadJson: payload } };
    }
    return { tag: "end", val: succeeded({ count: this.sent }) };
  }
}

export const laneAdapter = {
  EventStream: WordStream,

  capabilities() {
    return {
      laneId: LANE_ID,
      protocols: ["words"],
      surfaces: [],
      supportsExecute: true,
      supportsStream: true,
      metadataJson: JSON.stringify({ language: "javascript" }),
    };
  },

  validate(request) {
    words(request);
  },

  execute(request) {
    const counted = words(request);
    emit({ eventType: "words.counted", payloadJson: JSON.stringify({ count: counted.length }) });
    return succeeded({ count: counted.length, language: "javascript" });
  },

  stream(request) {
    return new WordStream(words(request));
  },
};
