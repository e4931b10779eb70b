//! Server-sent events from an upstream MCP server, fed in pieces of any size: each complete
//! event's name (`event:`, default `message`) and data (its `data:` lines joined by `\n`).

/// The largest event kept; a longer one ends the stream with an error.
pub const MAX_EVENT: usize = 16 << 20;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

/// An event stream being read.
#[derive(Debug, Default)]
pub struct Events {
    carry: Vec<u8>,
    name: String,
    data: String,
    has_data: bool,
}

/// An event (or an unfinished line) larger than [`MAX_EVENT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl Events {
    /// Feed `bytes`; the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, TooLarge> {
        self.carry.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(n) = memchr::memchr(b'\n', &self.carry[start..]) {
            let end = start + n;
            let line = &self.carry[start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            self.line(&line, &mut out);
            if self.data.len() > MAX_EVENT {
                return Err(TooLarge);
            }
        }
        self.carry.drain(..start);
        if self.carry.len() > MAX_EVENT {
            return Err(TooLarge);
        }
        Ok(out)
    }

    fn line(&mut self, line: &str, out: &mut Vec<Event>) {
        if line.is_empty() {
            if self.has_data {
                let name = std::mem::take(&mut self.name);
                out.push(Event {
                    name: if name.is_empty() {
                        "message".into()
                    } else {
                        name
                    },
                    data: std::mem::take(&mut self.data),
                });
            }
            self.name.clear();
            self.has_data = false;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => value.clone_into(&mut self.name),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_however_split() {
        let text = b": ping\r\nevent: endpoint\r\ndata: /messages/?session_id=1\r\n\r\ndata: {\"a\":\ndata: 1}\n\nid: 3\n";
        let mut whole = Events::default();
        let all = whole.feed(text).unwrap();
        assert_eq!(
            all,
            vec![
                Event {
                    name: "endpoint".into(),
                    data: "/messages/?session_id=1".into()
                },
                Event {
                    name: "message".into(),
                    data: "{\"a\":\n1}".into()
                }
            ]
        );
        for cut in 0..text.len() {
            let mut e = Events::default();
            let mut got = e.feed(&text[..cut]).unwrap();
            got.extend(e.feed(&text[cut..]).unwrap());
            assert_eq!(got, all, "cut at {cut}");
        }
    }
}
