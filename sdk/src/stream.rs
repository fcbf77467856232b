//! Events and the pull-based sources behind `Lane::stream`.

use serde_json::Value;

/// One event of an execution or a stream: a type (`echo.word`, `sse.event`, ...) and a JSON
/// object payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event type; dotted, lane-prefixed names keep streams readable (`echo.word`).
    pub event_type: String,
    /// The payload; an object (`null` crosses as `{}`, other values as `{"value": ...}`).
    pub payload: Value,
}

impl Event {
    /// An event of `event_type` carrying `payload`.
    pub fn new(event_type: impl Into<String>, payload: Value) -> Self {
        Self {
            event_type: event_type.into(),
            payload,
        }
    }
}

/// What a stream is made of: the host calls `next` only when its consumer wants another event,
/// so do the work for one event per call (read the next chunk, parse the next frame).
pub trait EventSource {
    /// The next event, or `None` when the stream has ended (it is not called again after that).
    fn next(&mut self) -> Option<Event>;

    /// How the stream ended, asked once after [`EventSource::next`] returned `None`: the
    /// stream's result carries this outcome's output, and a failed outcome fails the stream
    /// with its class (a transport that broke mid-way, a timeout). The default succeeds with
    /// an empty output.
    fn outcome(&mut self) -> crate::Outcome {
        crate::Outcome::success(Value::Object(serde_json::Map::new()))
    }
}

/// A stream that pulls events from an iterator, for sources that are naturally iterators; the
/// iterator runs lazily, one item per host pull.
pub fn from_iter<I>(events: I) -> Box<dyn EventSource>
where
    I: IntoIterator<Item = Event>,
    I::IntoIter: 'static,
{
    Box::new(IterSource(events.into_iter()))
}

/// The [`EventSource`] behind [`from_iter`].
struct IterSource<I>(I);

impl<I: Iterator<Item = Event>> EventSource for IterSource<I> {
    fn next(&mut self) -> Option<Event> {
        self.0.next()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use serde_json::json;

    use super::*;

    #[test]
    fn from_iter_yields_events_in_order_then_none() {
        let mut source = from_iter(vec![Event::new("a", json!({})), Event::new("b", json!({}))]);
        assert_eq!(source.next().map(|e| e.event_type), Some("a".into()));
        assert_eq!(source.next().map(|e| e.event_type), Some("b".into()));
        assert_eq!(source.next(), None);
    }

    #[test]
    fn from_iter_is_lazy_one_item_per_pull() {
        let made = Rc::new(Cell::new(0));
        let counter = Rc::clone(&made);
        let mut source = from_iter((0..3).map(move |i| {
            counter.set(counter.get() + 1);
            Event::new("n", json!({ "i": i }))
        }));
        assert_eq!(made.get(), 0);
        source.next();
        assert_eq!(made.get(), 1);
    }
}
