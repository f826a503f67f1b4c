//! XML as a JSON value for the engine, and back: the codec of WebService-style regions
//! (`codec = "xml"`, format in `config/regions/README.md`).
//!
//! The mapping is the plain one, so that a dialect addresses XML with the same dotted
//! paths as JSON:
//!
//! - the document is an object with one key, the root element: a SOAP wrapper is just
//!   the first steps of every path (`Envelope.Body.validateCode.qrCode`);
//! - an element with neither child elements nor attributes is a string (its text,
//!   exactly, whitespace included; `<a/>` is `""`);
//! - any other element is an object: child elements by name, attributes as `@name`, and
//!   text that is not only whitespace as `#text`;
//! - repeated sibling elements of one name form an array (one element is not an array:
//!   a rule addresses it either way);
//! - names are read by their local part (`soap:Body` is `Body`); namespace declarations
//!   (`xmlns`, `xmlns:*`) are not part of the value, and the encoder writes an `@xmlns`
//!   key as a default namespace declaration. Namespaces are not checked.
//!
//! Every text value is a string: a dialect gives `national_type` where the national side
//! wants a number, as for form data.
//!
//! Reading is strict and bounded: UTF-8 only, at most [`MAX_XML_BYTES`] and
//! [`MAX_DEPTH`] nested elements, one root element, no DTD (a `<!DOCTYPE` is refused, so
//! no entity can be declared: no XXE, no entity expansion), and no entity references but
//! XML's five and character references. Every failure is [`TranslateError::Codec`].
//!
//! The tokenizer is `quick-xml` without features: a pull parser that never reads a DTD,
//! fetches nothing and expands nothing, which leaves the policy above to this module in a
//! few lines, where a parser of our own would have had to get well-formedness right too.

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use serde_json::{Map, Value};

use super::TranslateError;
use super::value::scalar_text;

/// The largest XML body read, in bytes.
pub const MAX_XML_BYTES: usize = 1 << 20;

/// The deepest nesting of elements read or written (the root is depth 1).
pub const MAX_DEPTH: usize = 32;

/// The key of an element's text when it also has attributes or child elements.
pub const TEXT_KEY: &str = "#text";

fn err(msg: impl Into<String>) -> TranslateError {
    TranslateError::Codec(format!("XML: {}", msg.into()))
}

/// An element being read.
struct Frame {
    name: String,
    children: Map<String, Value>,
    text: String,
    /// Whether it has child elements or attributes, i.e. is an object.
    structured: bool,
}

impl Frame {
    fn open(e: &BytesStart<'_>) -> Result<Self, TranslateError> {
        let name = local(e.local_name().as_ref())?;
        let mut children = Map::new();
        for a in e.attributes() {
            let a = a.map_err(|_| err("a malformed attribute"))?;
            let key = a.key;
            if key.as_ref() == b"xmlns" || key.prefix().is_some_and(|p| p.as_ref() == b"xmlns") {
                continue;
            }
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|_| err("an attribute value that does not unescape"))?;
            check_chars(&value, "attribute")?;
            let k = format!("@{}", local(key.local_name().as_ref())?);
            if children
                .insert(k.clone(), Value::String(value.into_owned()))
                .is_some()
            {
                return Err(err("an element repeats an attribute"));
            }
        }
        Ok(Self {
            name,
            structured: !children.is_empty(),
            children,
            text: String::new(),
        })
    }

    fn close(mut self) -> (String, Value) {
        let v = if self.structured {
            let t = self.text.trim();
            if !t.is_empty() {
                self.children
                    .insert(TEXT_KEY.to_owned(), Value::String(t.to_owned()));
            }
            Value::Object(self.children)
        } else {
            Value::String(self.text)
        };
        (self.name, v)
    }

    fn add(&mut self, name: String, v: Value) {
        self.structured = true;
        match self.children.get_mut(&name) {
            Some(Value::Array(items)) => items.push(v),
            Some(first) => {
                let first = first.take();
                self.children.insert(name, Value::Array(vec![first, v]));
            }
            None => {
                self.children.insert(name, v);
            }
        }
    }
}

fn local(raw: &[u8]) -> Result<String, TranslateError> {
    let name = std::str::from_utf8(raw).map_err(|_| err("a name is not UTF-8"))?;
    // The reader is lenient about names; what `encode` could not write back is refused
    // here (found by the translate fuzz target).
    if !is_name(name) {
        return Err(err("an element or attribute name is not an XML name"));
    }
    Ok(name.to_owned())
}

/// What went wrong in quick-xml's reader, without its text: its messages quote element
/// names, entities and declarations of the document, and a region's answer is untrusted text
/// that may key an element by an ID number (the message reaches the log). Syntax errors are
/// fixed phrases and are kept.
fn read_error(e: &quick_xml::Error) -> String {
    match e {
        quick_xml::Error::Syntax(s) => s.to_string(),
        quick_xml::Error::IllFormed(_) => "not well-formed (an end tag that does not match, a \
                                          missing end tag, or a malformed declaration)"
            .to_owned(),
        quick_xml::Error::InvalidAttr(_) => "a malformed attribute".to_owned(),
        quick_xml::Error::Encoding(_) => "text that does not decode".to_owned(),
        quick_xml::Error::Escape(_) => "an escape that does not decode".to_owned(),
        quick_xml::Error::Namespace(_) => "a namespace that does not resolve".to_owned(),
        quick_xml::Error::Io(_) => "the document could not be read".to_owned(),
    }
}

/// Reads an XML document into the value described in the module docs.
///
/// # Errors
/// [`TranslateError::Codec`] for a body that is too large, not UTF-8, not well-formed,
/// too deep, carries a DTD or an entity other than XML's five, or has no single root.
pub fn decode(body: &[u8]) -> Result<Value, TranslateError> {
    if body.len() > MAX_XML_BYTES {
        return Err(err(format!("larger than {MAX_XML_BYTES} bytes")));
    }
    let text = std::str::from_utf8(body).map_err(|_| err("not UTF-8"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<(String, Value)> = None;
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| err(format!("at byte {at}: {}", read_error(&e))))?;
        match event {
            Event::Decl(d) => {
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(|_| err("a declaration's encoding is unreadable"))?;
                    if !enc.eq_ignore_ascii_case(b"utf-8") {
                        return Err(err("only UTF-8 documents are read"));
                    }
                }
            }
            Event::DocType(_) => return Err(err("a DTD is refused (no entities, no XXE)")),
            Event::PI(_) | Event::Comment(_) => {}
            Event::Start(e) => {
                if root.is_some() {
                    return Err(err("more than one root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(err(format!("nested deeper than {MAX_DEPTH} elements")));
                }
                stack.push(Frame::open(&e)?);
            }
            Event::Empty(e) => {
                if root.is_some() {
                    return Err(err("more than one root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(err(format!("nested deeper than {MAX_DEPTH} elements")));
                }
                let (name, v) = Frame::open(&e)?.close();
                match stack.last_mut() {
                    Some(parent) => parent.add(name, v),
                    None => root = Some((name, v)),
                }
            }
            Event::End(_) => {
                // quick-xml checks that the end tag matches its start.
                let frame = stack.pop().ok_or_else(|| err("an end tag without start"))?;
                let (name, v) = frame.close();
                match stack.last_mut() {
                    Some(parent) => parent.add(name, v),
                    None => root = Some((name, v)),
                }
            }
            Event::Text(t) => {
                let s = t
                    .xml10_content()
                    .map_err(|_| err("text that does not decode"))?;
                push_text(&mut stack, &s)?;
            }
            Event::CData(t) => {
                let s = t
                    .xml10_content()
                    .map_err(|_| err("CDATA that does not decode"))?;
                push_text(&mut stack, &s)?;
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => {
                        let name = r
                            .decode()
                            .map_err(|_| err("an entity that does not decode"))?;
                        match &*name {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            _ => {
                                return Err(err(
                                    "an entity that is not one of XML's five (no DTD, no custom entities)",
                                ));
                            }
                        }
                    }
                    Err(_) => return Err(err("a character reference that is not a character")),
                };
                push_text(&mut stack, c.encode_utf8(&mut [0; 4]))?;
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(err("an element is not closed"));
    }
    let (name, v) = root.ok_or_else(|| err("no root element"))?;
    let mut out = Map::new();
    out.insert(name, v);
    Ok(Value::Object(out))
}

fn push_text(stack: &mut [Frame], s: &str) -> Result<(), TranslateError> {
    check_chars(s, "text")?;
    match stack.last_mut() {
        Some(f) => {
            f.text.push_str(s);
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(err("text outside the root element")),
    }
}

/// Writes the engine's value as an XML document (UTF-8, with a declaration): the inverse
/// of [`decode`] for the values it produces.
///
/// # Errors
/// [`TranslateError::Shape`] when the value is not an object with exactly one key (the
/// root element), a key is not an XML name, an array holds an array, an attribute is not
/// a scalar, a text holds a character XML 1.0 cannot carry, or the nesting is deeper
/// than [`MAX_DEPTH`].
pub fn encode(v: &Value) -> Result<Vec<u8>, TranslateError> {
    let root = v
        .as_object()
        .filter(|m| m.len() == 1)
        .and_then(|m| m.iter().next())
        .ok_or(TranslateError::Shape {
            path: "(message)".into(),
            expected: "an object with one key, the XML root element",
        })?;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    if root.1.is_array() {
        return Err(TranslateError::Shape {
            path: root.0.clone(),
            expected: "one root element, not an array",
        });
    }
    element(&mut out, root.0, root.0, root.1, 1)?;
    Ok(out.into_bytes())
}

fn shape(path: &str, expected: &'static str) -> TranslateError {
    TranslateError::Shape {
        path: path.to_owned(),
        expected,
    }
}

fn element(
    out: &mut String,
    name: &str,
    path: &str,
    v: &Value,
    depth: usize,
) -> Result<(), TranslateError> {
    if depth > MAX_DEPTH {
        return Err(shape(path, "a shallower document (XML depth limit)"));
    }
    if !is_name(name) {
        return Err(shape(path, "an XML element name"));
    }
    out.push('<');
    out.push_str(name);
    let Value::Object(map) = v else {
        return match v {
            Value::Null => {
                out.push_str("/>");
                Ok(())
            }
            _ => {
                let text = scalar_text(v).ok_or_else(|| shape(path, "a scalar"))?;
                out.push('>');
                escape(out, &text, false).map_err(|()| shape(path, "text XML 1.0 can carry"))?;
                close(out, name);
                Ok(())
            }
        };
    };
    for (k, a) in map {
        let Some(attr) = k.strip_prefix('@') else {
            continue;
        };
        let at = format!("{path}.{k}");
        if !is_name(attr) {
            return Err(shape(&at, "an XML attribute name"));
        }
        let text = scalar_text(a).ok_or_else(|| shape(&at, "a scalar attribute value"))?;
        out.push(' ');
        out.push_str(attr);
        out.push_str("=\"");
        escape(out, &text, true).map_err(|()| shape(&at, "text XML 1.0 can carry"))?;
        out.push('"');
    }
    out.push('>');
    for (k, child) in map {
        if k.starts_with('@') {
            continue;
        }
        let at = format!("{path}.{k}");
        if k == TEXT_KEY {
            let text = scalar_text(child).ok_or_else(|| shape(&at, "a scalar text"))?;
            escape(out, &text, false).map_err(|()| shape(&at, "text XML 1.0 can carry"))?;
            continue;
        }
        match child {
            Value::Array(items) => {
                for item in items {
                    if item.is_array() {
                        return Err(shape(&at, "an element, not an array of arrays"));
                    }
                    element(out, k, &at, item, depth + 1)?;
                }
            }
            _ => element(out, k, &at, child, depth + 1)?,
        }
    }
    close(out, name);
    Ok(())
}

fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Whether a key can be written as an XML name (no prefix: names are local).
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Escapes text for content or an attribute value, so that reading it back gives the
/// same characters (line ends and, in attributes, whitespace are written as references).
/// `Err` for a character XML 1.0 cannot carry at all.
/// XML 1.0's `Char` production: no C0 control but tab, newline and carriage return (raw or
/// as a character reference), no U+FFFE or U+FFFF. What `decode` accepts, `encode` can
/// write again.
fn check_chars(s: &str, what: &str) -> Result<(), TranslateError> {
    match s.chars().find(|&c| {
        (u32::from(c) < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
            || matches!(c, '\u{fffe}' | '\u{ffff}')
    }) {
        Some(c) => Err(err(format!(
            "{what}: character U+{:04X} is not allowed in XML 1.0",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

fn escape(out: &mut String, s: &str, attribute: bool) -> Result<(), ()> {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            c if u32::from(c) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => {
                return Err(());
            }
            c => out.push(c),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
