//! Cutting a stream's bytes into HTTP chunks (see [`Chunking`]).

use std::collections::VecDeque;

use bytes::Bytes;

/// How the simulator cuts each stream's body into HTTP/1.1 chunks. Real OANDA gives no guarantee that
/// a chunk holds whole lines; clients must reassemble lines across chunks.
///
/// Cuts are made over the byte stream, not per line: the state of [`Fixed`](Self::Fixed) and
/// [`Awkward`](Self::Awkward) carries on from one write to the next. Bytes are never held back waiting
/// for more data, though: when the stream's queue runs dry, what is cut so far is sent as a shorter
/// chunk and the next chunk makes up the rest. Changing the mode restarts the cutting pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Chunking {
    /// Every line (`\n` included) is its own chunk. The default.
    #[default]
    Lines,
    /// The byte stream re-cut into chunks of `n` bytes (`Fixed(0)` counts as `Fixed(1)`), so lines
    /// are split across chunks and several lines share one.
    Fixed(usize),
    /// A deterministic, repeating pattern of odd cuts: 1, 7, 2 and 61 bytes, right before the next
    /// `\n`, 3 bytes, right after the next `\n`, single bytes, long runs... Small cuts land inside
    /// multi-byte UTF-8 characters and escapes; newline cuts leave a chunk ending in the last `}`
    /// followed by one starting with `\n`, and a chunk ending exactly at the `\n`.
    Awkward,
}

/// One step of the [`Chunking::Awkward`] pattern.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// The next `n` bytes.
    Len(usize),
    /// Up to (excluding) the next `\n`.
    BeforeNewline,
    /// Up to and including the next `\n`.
    AfterNewline,
}

const AWKWARD: [Cut; 17] = [
    Cut::Len(1),
    Cut::Len(7),
    Cut::Len(2),
    Cut::Len(61),
    Cut::BeforeNewline,
    Cut::Len(3),
    Cut::AfterNewline,
    Cut::Len(1),
    Cut::Len(1),
    Cut::Len(5),
    Cut::Len(130),
    Cut::BeforeNewline,
    Cut::Len(2),
    Cut::AfterNewline,
    Cut::Len(11),
    Cut::Len(257),
    Cut::Len(4),
];

/// Per-stream cutting state.
#[derive(Debug, Default)]
pub(crate) struct Chunker {
    mode: Chunking,
    /// Position in [`AWKWARD`].
    step: usize,
    /// Bytes still owed to the current fixed-length cut (0: start a new one).
    left: usize,
}

impl Chunker {
    /// Cuts `data` according to `mode` and appends the chunks (never empty) to `out`.
    pub(crate) fn cut(&mut self, mode: Chunking, mut data: Bytes, out: &mut VecDeque<Bytes>) {
        if mode != self.mode {
            *self = Self {
                mode,
                ..Self::default()
            };
        }
        while !data.is_empty() {
            let len = match mode {
                Chunking::Lines => newline(&data).map_or(data.len(), |i| i + 1),
                Chunking::Fixed(n) => self.take(n.max(1), data.len()),
                Chunking::Awkward => self.awkward(&data),
            };
            out.push_back(data.split_to(len));
        }
    }

    /// Length of the next piece of a fixed-length cut of `n`, given `available` bytes.
    fn take(&mut self, n: usize, available: usize) -> usize {
        if self.left == 0 {
            self.left = n;
        }
        let len = self.left.min(available);
        self.left -= len;
        len
    }

    /// Length of the next [`Chunking::Awkward`] chunk of `data` (non-empty), advancing the pattern.
    fn awkward(&mut self, data: &[u8]) -> usize {
        loop {
            let cut = AWKWARD[self.step % AWKWARD.len()];
            let len = match cut {
                Cut::Len(n) => {
                    let len = self.take(n, data.len());
                    if self.left == 0 {
                        self.step += 1;
                    }
                    len
                }
                Cut::BeforeNewline | Cut::AfterNewline => match newline(data) {
                    Some(i) => {
                        self.step += 1;
                        if matches!(cut, Cut::AfterNewline) {
                            i + 1
                        } else {
                            i
                        }
                    }
                    // No newline yet: send what there is and keep looking in the next write.
                    None => data.len(),
                },
            };
            if len > 0 {
                return len;
            }
        }
    }
}

fn newline(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut_all(chunker: &mut Chunker, mode: Chunking, writes: &[&str]) -> Vec<String> {
        let mut out = VecDeque::new();
        for w in writes {
            chunker.cut(mode, Bytes::copy_from_slice(w.as_bytes()), &mut out);
        }
        out.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn lines_cut_after_every_newline() {
        let mut c = Chunker::default();
        assert_eq!(
            cut_all(&mut c, Chunking::Lines, &["a\nbb\n", "c\n"]),
            ["a\n", "bb\n", "c\n"]
        );
    }

    #[test]
    fn fixed_cuts_carry_over_writes() {
        let mut c = Chunker::default();
        assert_eq!(
            cut_all(&mut c, Chunking::Fixed(3), &["a\nbb\n", "c\nd\n"]),
            ["a\nb", "b\n", "c", "\nd\n"]
        );
        let mut c = Chunker::default();
        assert_eq!(cut_all(&mut c, Chunking::Fixed(0), &["ab"]), ["a", "b"]);
    }

    #[test]
    fn awkward_never_loses_bytes_and_cuts_around_newlines() {
        let line = "{\"k\":\"€ü\"}\n".repeat(100);
        let mut c = Chunker::default();
        let mut out = VecDeque::new();
        c.cut(
            Chunking::Awkward,
            Bytes::copy_from_slice(line.as_bytes()),
            &mut out,
        );
        let joined: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(joined, line.as_bytes());
        assert!(out.iter().all(|b| !b.is_empty()));
        assert!(out.iter().any(|b| b.ends_with(b"}")));
        assert!(out.iter().any(|b| b.starts_with(b"\n")));
        assert!(out.iter().any(|b| b.ends_with(b"\n")));
        assert!(
            out.iter().any(|b| std::str::from_utf8(b).is_err()),
            "some chunk splits a multi-byte character"
        );
        assert_eq!(out[0].len(), 1);
        assert_eq!(out[1].len(), 7);
        assert_eq!(out[2].len(), 2);
    }
}
