//! The fast path: one pass over the bytes of a well-formed line, straight into
//! [`LineFields`], about twice as fast as serde's generic machinery on a `PRICE` line.
//!
//! It reads only what OANDA sends: strings without escapes or control characters, JSON
//! numbers, literals, and objects and arrays nested at most [`MAX_DEPTH`] deep. On anything
//! else, and on anything serde would refuse (a duplicated field, a field of the wrong JSON type,
//! trailing text), it gives up and returns `None`, and the line is read again by serde, the
//! reference. So whenever it returns `Some`, serde returns the same fields; the property tests
//! and the fuzz target check exactly that (`parse_line` against `parse_line_via_serde`).

use std::borrow::Cow;

use super::messages::{BucketText, LineFields};

/// Deeper nesting (in fields tickflow ignores) is left to serde, whose own limit is 128.
const MAX_DEPTH: usize = 64;

/// Reads a line that starts with `{` and has no surrounding whitespace; `None`: ask serde.
pub(crate) fn fields(text: &str) -> Option<LineFields<'_>> {
    let mut c = Cursor {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let mut f = LineFields::default();
    let mut seen = Seen::default();
    c.object(|c, key| {
        match key {
            "type" => {
                seen.once(0)?;
                f.kind = c.opt_string()?;
            }
            "instrument" => {
                seen.once(1)?;
                f.instrument = c.opt_string()?;
            }
            "time" => {
                seen.once(2)?;
                f.time = c.opt_raw()?;
            }
            "tradeable" => {
                seen.once(3)?;
                f.tradeable = c.opt_bool()?;
            }
            "status" => {
                seen.once(4)?;
                f.status = c.opt_string()?;
            }
            "bids" => {
                seen.once(5)?;
                f.bids = c.opt_book()?;
            }
            "asks" => {
                seen.once(6)?;
                f.asks = c.opt_book()?;
            }
            _ => {
                c.value(1)?;
            }
        }
        Some(())
    })?;
    c.ws();
    (c.at == c.bytes.len()).then_some(f)
}

/// Which known fields have been read: serde refuses a duplicated known field.
#[derive(Default)]
struct Seen(u8);

impl Seen {
    fn once(&mut self, bit: u8) -> Option<()> {
        let mask = 1 << bit;
        if self.0 & mask != 0 {
            return None;
        }
        self.0 |= mask;
        Some(())
    }
}

struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// JSON whitespace: space, tab, line feed, carriage return (nothing else).
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// `{ "key": value, ... }`, calling `each` with the cursor on each value (after the
    /// whitespace that follows the colon). Keys must be plain strings.
    fn object(&mut self, mut each: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            each(self, key)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.ws();
                }
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string without escapes or control characters: its contents.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' | 0x00..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        // Both ends are at ASCII quotes, so on character boundaries.
        let contents = self.text.get(start..self.at)?;
        self.at += 1;
        Some(contents)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at.checked_add(word.len())?;
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    fn digits(&mut self) -> Option<()> {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        (self.at > start).then_some(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, as JSON has it.
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits()?,
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.digits()?;
        }
        Some(())
    }

    /// Any value, checked for syntax as strictly as serde does (or refused): its raw text.
    fn value(&mut self, depth: usize) -> Option<&'a str> {
        let start = self.at;
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => self.number()?,
            b'[' if depth < MAX_DEPTH => {
                self.at += 1;
                self.ws();
                if self.eat(b']').is_none() {
                    self.elements(depth + 1)?;
                }
            }
            b'{' if depth < MAX_DEPTH => self.object(|c, _| c.value(depth + 1).map(drop))?,
            _ => return None,
        }
        self.text.get(start..self.at)
    }

    /// The rest of a non-empty array, from its next element to its `]`.
    fn elements(&mut self, depth: usize) -> Option<()> {
        loop {
            self.value(depth)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.ws();
                }
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal(b"null").is_some()
    }

    /// A string or `null` (serde's `Option<Cow<str>>`); anything else: give up.
    fn opt_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(|s| Some(Cow::Borrowed(s)))
    }

    /// Any value's raw text, or `null` (serde's `Option<&RawValue>`).
    fn opt_raw(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        self.value(1).map(Some)
    }

    /// `true`, `false` or `null` (serde's `Option<bool>`).
    fn opt_bool(&mut self) -> Option<Option<bool>> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| Some(true)),
            b'f' => self.literal(b"false").map(|()| Some(false)),
            b'n' => self.literal(b"null").map(|()| None),
            _ => None,
        }
    }

    /// A bucket array's first bucket (`Some(None)` when empty), or `null`; the deeper buckets
    /// are skipped.
    fn opt_book(&mut self) -> Option<Option<Option<BucketText<'a>>>> {
        if self.null() {
            return Some(None);
        }
        self.eat(b'[')?;
        self.ws();
        if self.eat(b']').is_some() {
            return Some(Some(None));
        }
        let mut bucket = BucketText::default();
        let (mut price, mut liquidity) = (false, false);
        self.object(|c, key| {
            match key {
                "price" if !price => {
                    price = true;
                    bucket.price = c.opt_raw()?;
                }
                "liquidity" if !liquidity => {
                    liquidity = true;
                    bucket.liquidity = c.opt_raw()?;
                }
                "price" | "liquidity" => return None,
                _ => {
                    c.value(3)?;
                }
            }
            Some(())
        })?;
        self.ws();
        match self.peek()? {
            b']' => self.at += 1,
            b',' => {
                self.at += 1;
                self.ws();
                self.elements(2)?;
            }
            _ => return None,
        }
        Some(Some(Some(bucket)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oanda::messages::WireLine;

    fn serde(text: &str) -> Option<LineFields<'_>> {
        serde_json::from_str::<WireLine<'_>>(text)
            .ok()
            .map(LineFields::from)
    }

    #[test]
    fn reads_what_serde_reads() {
        for text in [
            r#"{"type":"PRICE","instrument":"EUR_USD","time":"2016-10-27T08:38:45.664613867Z","tradeable":true,"status":"tradeable","bids":[{"price":"1.09177","liquidity":10000000},{"price":"1.09175","liquidity":10000000}],"asks":[{"price":"1.09188","liquidity":10000000.0}],"closeoutBid":"1.09173","closeoutAsk":"1.09192"}"#,
            r#"{ "type" : "HEARTBEAT" , "time" : "2016-10-27T08:38:44.327443673Z" }"#,
            r#"{}"#,
            r#"{"type":null,"instrument":null,"time":null,"tradeable":null,"status":null,"bids":null,"asks":null}"#,
            r#"{"bids":[],"asks":[{}],"time":1514852541.189833163}"#,
            r#"{"x":{"y":[1,-2.5e+3,true,false,null,"s",{}],"z":[]},"bids":[{"a":[{}],"price":7,"liquidity":"x"},[],{}]}"#,
            "{\"type\":\"PRICÉ\",\t\"x\":\r\n0}",
        ] {
            let fast = fields(text);
            assert!(fast.is_some(), "{text}");
            assert_eq!(fast, serde(text), "{text}");
        }
    }

    #[test]
    fn gives_up_on_what_it_does_not_read() {
        for text in [
            // Escapes (serde reads these, so the scanner must not guess).
            r#"{"typ\u0065":"PRICE"}"#,
            r#"{"type":"PRI\u0043E"}"#,
            r#"{"x":"a\nb"}"#,
            // What serde refuses.
            r#"{"type":"PRICE","type":"PRICE"}"#,
            r#"{"bids":[{"price":"1","price":"2"}]}"#,
            r#"{"type":7}"#,
            r#"{"tradeable":"yes"}"#,
            r#"{"bids":{}}"#,
            r#"{"bids":[["1.1",1]]}"#,
            r#"{"x":01}"#,
            r#"{"x":1.}"#,
            r#"{"x":.5}"#,
            r#"{"x":-}"#,
            r#"{"x":1e}"#,
            r#"{"x":tru}"#,
            r#"{"x":[1,]}"#,
            r#"{"x":{"a":1,}}"#,
            r#"{"x":1,}"#,
            r#"{"x":1} x"#,
            r#"{"x":1}{}"#,
            "{\"x\":\"\u{1}\"}",
            "{\"x\":\u{c}1}",
            r#"{"x":1"#,
            r#"{"x""#,
            r#"{"#,
        ] {
            assert_eq!(fields(text), None, "{text}");
        }
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(70), "]".repeat(70));
        assert_eq!(fields(&deep), None);
        assert!(serde(&deep).is_some(), "serde reads it: the fallback will");
    }
}
