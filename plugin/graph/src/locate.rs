//! Where each value of a YAML document is, by key path (`operations[2].name`), so that errors
//! found after parsing (an unknown node, a cycle) can still name a line and column.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line and column (1-based) of every value and key, by path.
#[derive(Debug, Default)]
pub struct Locations {
    values: HashMap<String, (usize, usize)>,
}

impl Locations {
    /// Indexes `text`. A document that does not parse yields no locations (the typed parse
    /// reports the syntax error).
    pub fn index(text: &str) -> Locations {
        let mut indexer = Indexer::default();
        let _ = Parser::new_from_str(text).load(&mut indexer, false);
        Locations {
            values: indexer.values,
        }
    }

    /// The position of the value at `path`, or of its closest ancestor that has one.
    pub fn find(&self, path: &str) -> (usize, usize) {
        let mut path = path;
        loop {
            if let Some(position) = self.values.get(path) {
                return *position;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return self.values.get("").copied().unwrap_or((1, 1)),
            }
        }
    }
}

enum Frame {
    /// `start` is kept until the first key: a block mapping's start mark points past its key.
    Mapping {
        path: String,
        key: Option<String>,
        start: Option<Marker>,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Indexer {
    stack: Vec<Frame>,
    values: HashMap<String, (usize, usize)>,
}

impl Indexer {
    /// The path of the value about to start, or `None` when the event is a mapping key.
    fn value_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Sequence { path, next }) => {
                let item = format!("{path}[{next}]");
                *next += 1;
                Some(item)
            }
            Some(Frame::Mapping { path, key, .. }) => key.take().map(|key| {
                if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                }
            }),
        }
    }

    fn record(&mut self, path: &str, mark: Marker) {
        // yaml-rust2 counts columns from 0.
        self.values
            .entry(path.to_string())
            .or_insert((mark.line(), mark.col() + 1));
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, ..) => match self.value_path() {
                Some(path) => self.record(&path, mark),
                None => {
                    let mut first_key_of = None;
                    if let Some(Frame::Mapping { key, start, path }) = self.stack.last_mut() {
                        *key = Some(value);
                        if start.take().is_some() {
                            first_key_of = Some(path.clone());
                        }
                    }
                    if let Some(path) = first_key_of {
                        self.record(&path, mark);
                    }
                }
            },
            Event::MappingStart(..) => {
                let path = self.value_path().unwrap_or_default();
                self.stack.push(Frame::Mapping {
                    path,
                    key: None,
                    start: Some(mark),
                });
            }
            Event::SequenceStart(..) => {
                let path = self.value_path().unwrap_or_default();
                self.record(&path, mark);
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd => {
                if let Some(Frame::Mapping {
                    path,
                    start: Some(start),
                    ..
                }) = self.stack.pop()
                {
                    // An empty mapping: only its start is known.
                    self.record(&path, start);
                }
            }
            Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                if let Some(path) = self.value_path() {
                    self.record(&path, mark);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Locations;

    #[test]
    fn finds_values_by_path() {
        let text = "a:\n  b: [x, {c: 1}]\nlist:\n  - name: one\n  - name: two\n";
        let at = Locations::index(text);
        assert_eq!(at.find("a.b[0]"), (2, 7));
        assert_eq!(at.find("a.b[1].c"), (2, 14));
        assert_eq!(at.find("list[1].name"), (5, 11));
        assert_eq!(at.find("list[1].missing"), (5, 5));
    }
}
