//! The one JSON writer, for watch's event lines and scan's lines: [`Obj`] writes an object's
//! fields in the order they are given; strings are escaped by [`json_str`] exactly as
//! serde_json escapes them (tested against it), numbers go through `itoa`, and bytes that are
//! not UTF-8 get a `<key>_b64` field with the exact bytes (standard base64, padded).
//!
//! `json_str` is hand-written rather than serde_json's: it copies unescaped runs whole, and
//! that was measured (callgrind, replayed chmod storm: json_line 13.4k -> 12.0k instructions
//! per event, commit 4e15123).

use base64::Engine;

/// A JSON object being written into `out`: `{` on creation, `}` on [`Obj::end`].
pub(crate) struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// Fields to be spliced into an object that already has one (each written with a leading
    /// comma, no braces): see [`Obj::fields`].
    pub(crate) fn continuing(out: &'a mut Vec<u8>) -> Self {
        Obj { out, first: false }
    }

    #[inline(always)]
    pub(crate) fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    #[inline(always)]
    pub(crate) fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        json_str(v, self.out);
    }

    #[inline(always)]
    pub(crate) fn num(&mut self, k: &str, v: impl itoa::Integer) {
        self.key(k);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    /// A string of ours that needs no escape (a time, an op or backend name): copied as it
    /// is, without the test for characters to escape.
    #[inline(always)]
    pub(crate) fn plain(&mut self, k: &str, v: &str) {
        debug_assert!(!needs_escape(v.as_bytes()), "{v:?}");
        self.quoted(k, v.as_bytes());
    }

    /// `"k":"v"` with v's bytes as they are: only for bytes known to need no escape.
    #[inline(always)]
    fn quoted(&mut self, k: &str, v: &[u8]) {
        self.key(k);
        self.out.reserve(v.len() + 2);
        self.out.push(b'"');
        self.out.extend_from_slice(v);
        self.out.push(b'"');
    }

    /// A string, or null.
    #[inline(always)]
    pub(crate) fn opt_str(&mut self, k: &str, v: Option<&str>) {
        self.key(k);
        opt_str(v, self.out);
    }

    #[inline(always)]
    pub(crate) fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
    }

    /// Bytes that may not be UTF-8: a lossy string, and `<k>_b64` with the exact bytes.
    #[inline(always)]
    pub(crate) fn bytes(&mut self, k: &str, v: &[u8]) {
        if plain_ascii(v) {
            // (most paths and names: one test, one copy)
            self.quoted(k, v);
            return;
        }
        match std::str::from_utf8(v) {
            Ok(s) => self.str(k, s),
            Err(_) => {
                self.str(k, &String::from_utf8_lossy(v));
                self.key(&format!("{k}_b64"));
                b64_str(v, self.out);
            }
        }
    }

    /// A value already rendered as JSON.
    #[inline(always)]
    pub(crate) fn raw(&mut self, k: &str, json: &[u8]) {
        self.key(k);
        self.out.extend_from_slice(json);
    }

    /// Fields already rendered by an [`Obj::continuing`] (each with its leading comma); only
    /// after at least one field of this object.
    pub(crate) fn fields(&mut self, rendered: &[u8]) {
        debug_assert!(!self.first);
        self.out.extend_from_slice(rendered);
    }

    /// `"k":[…]`, each element written by `item`.
    pub(crate) fn array<T>(
        &mut self,
        k: &str,
        items: impl IntoIterator<Item = T>,
        mut item: impl FnMut(T, &mut Vec<u8>),
    ) {
        self.key(k);
        self.out.push(b'[');
        for (i, x) in items.into_iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            item(x, self.out);
        }
        self.out.push(b']');
    }

    /// How much of the output is written.
    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    /// What was written since `start` (a `len()`).
    pub(crate) fn since(&self, start: usize) -> &[u8] {
        &self.out[start..]
    }

    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

/// A JSON string, escaped exactly as serde_json escapes it (quote, backslash, control
/// characters; \b \f \n \r \t short forms, else \u00xx), copying unescaped runs whole.
pub fn json_str(v: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b = v.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    // Most strings need no escape: tested 8 bytes at a time, then one copy.
    if !needs_escape(b) {
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let short = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0..=0x1f => b'u',
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        out.push(b'\\');
        out.push(short);
        if short == b'u' {
            out.extend_from_slice(&[b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of the word `x` that JSON escapes (a control character, a quote
/// or a backslash; SWAR): a quote or backslash is a zero byte after an xor, which `(x -
/// 0x01..) & !x & 0x80..` finds (the classic test: non-zero exactly when some byte is zero).
fn to_escape(x: u64) -> u64 {
    // some byte of y is 0
    let zero = |y: u64| y.wrapping_sub(ONES) & !y & HIGH;
    // (byte & 0x7f) + 0x60 reaches the high bit from 0x20 up (no carry leaves a byte): a
    // byte without it, and without its own high bit, is below 0x20
    let at_least_space = (x & !HIGH) + 0x60 * ONES;
    let control = !at_least_space & !x & HIGH;
    control | zero(x ^ (u64::from(b'"') * ONES)) | zero(x ^ (u64::from(b'\\') * ONES))
}

/// Whether any byte of `b` is a control character, a quote or a backslash, 8 bytes at a time;
/// with `ascii`, also any byte of 0x80 or above.
fn flagged(b: &[u8], ascii: bool) -> bool {
    let high = if ascii { HIGH } else { 0 };
    let word = |w: &[u8]| {
        let x = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        to_escape(x) | (x & high) != 0
    };
    if b.len() < 8 {
        return b
            .iter()
            .any(|&c| c < 0x20 || c == b'"' || c == b'\\' || (ascii && c >= 0x80));
    }
    let mut words = b.chunks_exact(8);
    if words.any(word) {
        return true;
    }
    // the bytes left over: the last 8, which overlap the last word (tested again, harmless),
    // one test instead of a loop over up to 7
    !words.remainder().is_empty() && word(&b[b.len() - 8..])
}

fn needs_escape(b: &[u8]) -> bool {
    flagged(b, false)
}

/// ASCII with nothing to escape: the bytes are the JSON string's, as they are (no UTF-8
/// check needed either).
fn plain_ascii(b: &[u8]) -> bool {
    !flagged(b, true)
}

/// A JSON string, or `null` for none.
pub fn opt_str(v: Option<&str>, out: &mut Vec<u8>) {
    match v {
        Some(v) => json_str(v, out),
        None => out.extend_from_slice(b"null"),
    }
}

/// `data` in standard base64 (padded) as a JSON string: the exact bytes of a `*_b64` field.
pub fn b64_str(data: &[u8], out: &mut Vec<u8>) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let start = out.len() + 1;
    let len = base64::encoded_len(data.len(), true).expect("base64 length fits in usize");
    out.push(b'"');
    out.resize(start + len, 0);
    let n = b64
        .encode_slice(data, &mut out[start..])
        .expect("sized for the encoding");
    debug_assert_eq!(n, len);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_test_flags_exactly_the_bytes_to_escape() {
        let naive = |b: &[u8]| b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
        let ascii = |b: &[u8]| b.iter().all(|&c| c < 0x80) && !naive(b);
        for fill in [
            b'a',
            0xff,
            0x20,
            0x21,
            0x80,
            0x7f,
            b'"' + 1,
            b'\\' + 1,
            0x1f + 1,
        ] {
            for len in 0..20 {
                for at in 0..len {
                    for c in 0..=255u8 {
                        let mut b = vec![fill; len];
                        b[at] = c;
                        assert_eq!(needs_escape(&b), naive(&b), "{b:?}");
                        assert_eq!(plain_ascii(&b), ascii(&b), "{b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn bytes_as_before_plain_or_not() {
        for v in [
            &b"/srv/app/f"[..],
            b"a\"b",
            b"caf\xc3\xa9",
            b"\xff\xfe",
            b"tab\tx",
            b"",
        ] {
            let mut got = Vec::new();
            let mut o = Obj::new(&mut got);
            o.bytes("p", v);
            o.end();
            let mut want = Vec::new();
            let mut o = Obj::new(&mut want);
            match std::str::from_utf8(v) {
                Ok(s) => o.str("p", s),
                Err(_) => {
                    o.str("p", &String::from_utf8_lossy(v));
                    o.key("p_b64");
                    b64_str(v, o.out);
                }
            }
            o.end();
            assert_eq!(got, want, "{v:?}");
        }
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        let mut all = String::new();
        for c in (0u8..0x80).map(char::from) {
            all.push(c);
        }
        for v in [
            "",
            "plain",
            "a\"b\\c",
            "\u{7f}\u{80}é☃𝄞",
            "\n\r\t\u{8}\u{c}\u{0}\u{1f}x",
            all.as_str(),
        ] {
            let mut got = Vec::new();
            json_str(v, &mut got);
            assert_eq!(got, serde_json::to_vec(v).unwrap(), "{v:?}");
        }
    }

    #[test]
    fn numbers_as_display_writes_them() {
        fn one(v: impl itoa::Integer) -> Vec<u8> {
            let mut out = Vec::new();
            let mut o = Obj::continuing(&mut out);
            o.num("n", v);
            out
        }
        for n in [0u64, 7, 10, 4242, u32::MAX as u64, u64::MAX] {
            assert_eq!(one(n), format!(",\"n\":{n}").into_bytes());
        }
        for n in [0i32, -1, -13, i32::MIN, i32::MAX] {
            assert_eq!(one(n), format!(",\"n\":{n}").into_bytes());
        }
        assert_eq!(one(u32::MAX), b",\"n\":4294967295");
    }

    /// Base64 the slow, obvious way: every 6 bits of the input (zero-padded) as one letter,
    /// then `=` up to a multiple of 4, as RFC 4648 and the encoder the crate replaced do.
    fn by_the_book(data: &[u8]) -> Vec<u8> {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let bits: Vec<usize> = data
            .iter()
            .flat_map(|&b| (0..8).rev().map(move |i| usize::from(b >> i & 1)))
            .collect();
        let mut out: Vec<u8> = bits
            .chunks(6)
            .map(|c| A[(0..6).fold(0, |v, i| v << 1 | c.get(i).copied().unwrap_or(0))])
            .collect();
        while out.len() % 4 != 0 {
            out.push(b'=');
        }
        out
    }

    fn b64(data: &[u8]) -> Vec<u8> {
        let mut out = b"x".to_vec();
        b64_str(data, &mut out);
        assert_eq!(out[..2], *b"x\"");
        assert_eq!(out.last(), Some(&b'"'));
        out[2..out.len() - 1].to_vec()
    }

    #[test]
    fn base64_as_before_and_by_the_book() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
            ("/t/a\"\n\u{ff}", "L3QvYSIKw78="),
        ] {
            assert_eq!(b64(i.as_bytes()), o.as_bytes(), "{i:?}");
        }
        let mut data = Vec::new();
        for len in 0..600usize {
            assert_eq!(b64(&data), by_the_book(&data), "length {len}");
            data.push((len * 151 % 256) as u8);
        }
    }

    #[test]
    fn objects_arrays_and_spliced_fields() {
        let mut rest = Vec::new();
        let mut c = Obj::continuing(&mut rest);
        c.array("a", [&b"x"[..], b"\xff"], b64_str);
        c.opt_str("u", None);
        let mut out = Vec::new();
        let mut o = Obj::new(&mut out);
        o.bytes("p", b"a\xffb");
        o.fields(&rest);
        o.bool("t", true);
        o.end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"p\":\"a\u{fffd}b\",\"p_b64\":\"Yf9i\",\"a\":[\"eA==\",\"/w==\"],\"u\":null,\
             \"t\":true}"
        );
    }
}
