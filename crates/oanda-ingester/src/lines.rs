//! Reassembling lines from HTTP chunks. Chunk boundaries are not line boundaries (a line may
//! arrive in pieces, and one chunk may carry several lines), so bytes are buffered and split on
//! `\n`. A line longer than the cap is counted and skipped up to its newline, so one runaway
//! line costs neither memory nor the connection.

/// Splits a byte stream into lines of at most `max` bytes (the `\n` excluded).
#[derive(Debug)]
pub struct LineBuffer {
    buf: Vec<u8>,
    max: usize,
    /// Inside a line that went over the cap: dropping bytes until its newline.
    discarding: bool,
    oversized: u64,
}

impl LineBuffer {
    /// An empty buffer with a line cap of `max` bytes (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::with_capacity(4096),
            max: max.max(1),
            discarding: false,
            oversized: 0,
        }
    }

    /// Adds a chunk and calls `line` with every line it completes, in order. Lines are passed
    /// without their `\n` (a trailing `\r` is left for the parser, which tolerates it).
    pub fn push(&mut self, mut chunk: &[u8], mut line: impl FnMut(&[u8])) {
        while let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            let (head, rest) = chunk.split_at(nl);
            chunk = rest.get(1..).unwrap_or_default();
            if self.discarding {
                self.discarding = false;
                continue;
            }
            if self.buf.is_empty() {
                if head.len() <= self.max {
                    line(head);
                } else {
                    self.oversized += 1;
                }
            } else if self.buf.len() + head.len() <= self.max {
                self.buf.extend_from_slice(head);
                line(&self.buf);
                self.buf.clear();
            } else {
                self.buf.clear();
                self.oversized += 1;
            }
        }
        if self.discarding {
            return;
        }
        if self.buf.len() + chunk.len() > self.max {
            self.buf.clear();
            self.discarding = true;
            self.oversized += 1;
        } else {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// Bytes of an unfinished line (what a closed connection leaves behind).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Lines skipped for being over the cap, so far.
    pub fn oversized(&self) -> u64 {
        self.oversized
    }

    /// Forgets any unfinished line (a new connection starts clean).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.discarding = false;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use proptest::prelude::*;

    use super::LineBuffer;

    fn collect(buf: &mut LineBuffer, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for c in chunks {
            buf.push(c, |l| out.push(l.to_vec()));
        }
        out
    }

    #[test]
    fn lines_split_across_chunks_are_reassembled() {
        let mut b = LineBuffer::new(100);
        let out = collect(
            &mut b,
            &[b"{\"a\"", b":1}\n{\"b\":2}\n{", b"\"c\":3}", b"\n"],
        );
        assert_eq!(
            out,
            vec![
                b"{\"a\":1}".to_vec(),
                b"{\"b\":2}".to_vec(),
                b"{\"c\":3}".to_vec()
            ]
        );
        assert_eq!(b.pending(), 0);
    }

    #[test]
    fn an_oversized_line_is_skipped_up_to_its_newline_and_counted() {
        let mut b = LineBuffer::new(8);
        let out = collect(
            &mut b,
            &[
                b"ok\n0123456",
                b"789abcdef",
                b"more\nfine\n",
                b"0123456789\nx\n",
            ],
        );
        assert_eq!(out, vec![b"ok".to_vec(), b"fine".to_vec(), b"x".to_vec()]);
        assert_eq!(b.oversized(), 2);
    }

    #[test]
    fn a_line_of_exactly_the_cap_passes() {
        let mut b = LineBuffer::new(4);
        let out = collect(&mut b, &[b"ab", b"cd\nabcd\n"]);
        assert_eq!(out, vec![b"abcd".to_vec(), b"abcd".to_vec()]);
        assert_eq!(b.oversized(), 0);
    }

    proptest! {
        /// Any cutting of a byte stream yields the same lines as splitting it whole.
        #[test]
        fn any_chunking_yields_the_same_lines(
            lines in proptest::collection::vec("[a-z{}\":,0-9 ]{0,40}", 0..20),
            cuts in proptest::collection::vec(0usize..64, 0..30),
        ) {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let bytes = text.as_bytes();
            let mut at = 0;
            let mut chunks = Vec::new();
            for c in cuts {
                let end = (at + c).min(bytes.len());
                chunks.push(&bytes[at..end]);
                at = end;
            }
            chunks.push(&bytes[at..]);
            let mut b = LineBuffer::new(1024);
            let out = collect(&mut b, &chunks);
            let expected: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
            prop_assert_eq!(out, expected);
        }
    }
}
