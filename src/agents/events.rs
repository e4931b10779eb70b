//! Where the events of an agent's SSE stream end, read as the bytes come (lines end in `\n` or
//! `\r\n`; an empty line ends an event), so the gateway relays whole events and can end a broken
//! stream with an error event of its own without gluing it to half of the agent's.

/// The state of a stream read so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EventEnds {
    /// The current line has something on it.
    line_open: bool,
    /// Something since the last event's end.
    pending: bool,
    /// Events ended so far.
    pub count: u32,
}

impl EventEnds {
    /// Read the next bytes of the stream; the offset just past the last event end in them, if
    /// one is.
    pub fn feed(&mut self, data: &[u8]) -> Option<usize> {
        let mut start = 0;
        let mut last = None;
        for nl in memchr::memchr_iter(b'\n', data) {
            let line = data.get(start..nl).unwrap_or_default();
            if !self.line_open && line.iter().all(|b| *b == b'\r') {
                if self.pending {
                    self.count = self.count.saturating_add(1);
                    self.pending = false;
                    last = Some(nl + 1);
                }
            } else {
                self.pending = true;
            }
            self.line_open = false;
            start = nl + 1;
        }
        if data
            .get(start..)
            .unwrap_or_default()
            .iter()
            .any(|b| *b != b'\r')
        {
            self.line_open = true;
            self.pending = true;
        }
        last
    }

    /// Whether everything read so far ends at an event's end (or is nothing).
    pub fn at_event_end(&self) -> bool {
        !self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::EventEnds;

    fn ends(chunks: &[&str]) -> (Vec<Option<usize>>, u32) {
        let mut e = EventEnds::default();
        let at = chunks.iter().map(|c| e.feed(c.as_bytes())).collect();
        (at, e.count)
    }

    #[test]
    fn finds_event_ends_across_chunks_and_line_endings() {
        assert_eq!(ends(&["data: 1\n\ndata: 2\n\n"]), (vec![Some(18)], 2));
        assert_eq!(ends(&["data: 1\r\n\r\ndata: 2"]), (vec![Some(11)], 1));
        assert_eq!(ends(&["data: 1\r\n", "\r\n"]), (vec![None, Some(2)], 1));
        assert_eq!(
            ends(&["data: 1\n", "\n", "\n\n"]),
            (vec![None, Some(1), None], 1)
        );
        assert_eq!(
            ends(&["data: 1\r", "\n\r", "\n"]),
            (vec![None, None, Some(1)], 1)
        );
        assert_eq!(
            ends(&[": ping\n\n", "event: x\n"]),
            (vec![Some(8), None], 1)
        );
        assert_eq!(ends(&["data: {\"a\":", "1}\n\n"]), (vec![None, Some(4)], 1));
        let mut e = EventEnds::default();
        e.feed(b"data: 1\n\ndata");
        assert!(!e.at_event_end());
        e.feed(b": 2\n\n");
        assert!(e.at_event_end());
    }

    /// Every event end in `chunks` (read a byte at a time), and the count.
    fn all_ends(chunks: &[&[u8]]) -> (Vec<usize>, u32) {
        let mut e = EventEnds::default();
        let mut at = Vec::new();
        let mut offset = 0;
        for c in chunks {
            for (i, b) in c.iter().enumerate() {
                if e.feed(std::slice::from_ref(b)).is_some() {
                    at.push(offset + i + 1);
                }
            }
            offset += c.len();
        }
        (at, e.count)
    }

    #[test]
    fn any_split_finds_the_same_ends() {
        let streams: [&[u8]; 4] = [
            b"data: 1\r\n\r\n: ping\n\nevent: x\ndata: {}\n\n\n\ndata: tail",
            b"\r\n\r\ndata: a\r\r\n\n\rdata: b\n\r\n",
            b"\n\n\n",
            b"data: x\r",
        ];
        for data in streams {
            let (every, count) = all_ends(&[data]);
            for at in 0..=data.len() {
                let (head, tail) = data.split_at(at);
                let mut e = EventEnds::default();
                let first = e.feed(head);
                let second = e.feed(tail).map(|end| at + end);
                assert_eq!(e.count, count, "{at}");
                assert_eq!(second.or(first), every.last().copied(), "{at}");
                assert_eq!(first, every.iter().copied().rfind(|x| *x <= at));
            }
        }
    }
}
