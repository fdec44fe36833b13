//! A configuration file as read from disk: its text, its spanned TOML tree,
//! and the way from a byte span or a key path to a line and column.
//!
//! Reading a file reports every error in it, not just the first: after an
//! error, the entry it points at is cut out of the tree and the file is read
//! again, until it reads cleanly or nothing more can be cut.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem in the configuration, at a place in a file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// One step of a path into a TOML document: a key or an array index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key<'a> {
    Field(&'a str),
    Index(usize),
}

impl<'a> From<&'a str> for Key<'a> {
    fn from(name: &'a str) -> Self {
        Key::Field(name)
    }
}

impl From<usize> for Key<'_> {
    fn from(index: usize) -> Self {
        Key::Index(index)
    }
}

/// Builds a key path: `key_path!["services", 0, "client_ca"]`.
macro_rules! key_path {
    ($($key:expr),* $(,)?) => { &[$($crate::source::Key::from($key)),*] };
}
pub(crate) use key_path;

/// A file's text, kept so that spans can be turned into positions.
#[derive(Debug)]
pub(crate) struct SourceFile {
    path: PathBuf,
    text: String,
}

/// How many errors one file may report before reading it stops; a file
/// with more is not a configuration at all.
const MAX_ERRORS_PER_FILE: usize = 50;

impl SourceFile {
    pub fn read(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            path: path.to_owned(),
            text: std::fs::read_to_string(path)?,
        })
    }

    /// The diagnostic for `message` at byte offset `offset`.
    pub fn diagnostic_at(&self, offset: usize, message: impl Into<String>) -> Diagnostic {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or_default();
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        Diagnostic {
            file: self.path.clone(),
            line: before.matches('\n').count() + 1,
            column: before
                .get(line_start..)
                .map_or(0, |line| line.chars().count())
                + 1,
            message: sentence(&message.into()),
        }
    }

    /// The diagnostic for `message` at the value found under `path`, or at
    /// the nearest enclosing value that exists (a defaulted key has no
    /// place of its own).
    pub fn diagnostic(&self, path: &[Key<'_>], message: impl Into<String>) -> Diagnostic {
        let offset = DeTable::parse(&self.text)
            .ok()
            .map_or(0, |tree| locate(&tree, path).start);
        self.diagnostic_at(offset, message)
    }

    /// Reads the file as a `T`, pushing every error found onto `errors`.
    ///
    /// When the file reads after cutting out the entries in error (they
    /// were all optional), the value is still returned, so that the rules
    /// that span files can report their errors in the same run; the errors
    /// already pushed keep the configuration from being accepted.
    pub fn deserialize<T: DeserializeOwned>(&self, errors: &mut Vec<Diagnostic>) -> Option<T> {
        let (mut tree, syntax_errors) = DeTable::parse_recoverable(&self.text);
        if !syntax_errors.is_empty() {
            errors.extend(
                syntax_errors
                    .iter()
                    .map(|error| self.toml_diagnostic(error)),
            );
            return None;
        }
        let mut cut_keys = Vec::new();
        for _ in 0..MAX_ERRORS_PER_FILE {
            let error = match T::deserialize(toml::de::Deserializer::from(tree.clone())) {
                Ok(value) => return Some(value),
                Err(error) => error,
            };
            // A required key we cut out is now missing: that is the error
            // already reported, not a new one.
            if let Some(missing) = missing_field(error.message())
                && cut_keys.iter().any(|cut| cut == missing)
            {
                return None;
            }
            errors.push(self.toml_diagnostic(&error));
            let span = error.span()?;
            cut_keys.push(cut_entry(tree.get_mut(), &span)?);
        }
        None
    }

    fn toml_diagnostic(&self, error: &toml::de::Error) -> Diagnostic {
        let offset = error.span().map_or(0, |span| span.start);
        self.diagnostic_at(offset, error.message())
    }
}

/// serde's messages are lowercase fragments; ours are sentences.
fn sentence(message: &str) -> String {
    let message = message.trim_end_matches('\n');
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The key named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Removes the innermost key-value entry whose key or value covers `span`,
/// returning the removed key's name. Every nested table is searched: the
/// span of a `[table]` covers only its header, not its entries.
fn cut_entry(table: &mut DeTable<'_>, span: &Range<usize>) -> Option<String> {
    for (_, value) in table.iter_mut() {
        if let Some(cut) = cut_inside(value.get_mut(), span) {
            return Some(cut);
        }
    }
    let key = table
        .iter()
        .find(|(key, value)| contains(&key.span(), span) || contains(&value.span(), span))
        .map(|(key, _)| key.get_ref().to_string())?;
    table.remove(key.as_str());
    Some(key)
}

fn cut_inside(value: &mut DeValue<'_>, span: &Range<usize>) -> Option<String> {
    match value {
        DeValue::Table(table) => cut_entry(table, span),
        DeValue::Array(array) => array
            .iter_mut()
            .find_map(|element| match element.get_mut() {
                DeValue::Table(table) => cut_entry(table, span),
                _ => None,
            }),
        _ => None,
    }
}

/// The span of the value under `path`, or of the deepest part of the path
/// that exists.
fn locate(tree: &Spanned<DeTable<'_>>, path: &[Key<'_>]) -> Range<usize> {
    let mut found = 0..0;
    let mut current: Option<&DeValue<'_>> = None;
    let mut table = Some(tree.get_ref());
    for key in path {
        let next = match (key, table, current) {
            (Key::Field(name), Some(table), _) => table.get(*name),
            (Key::Index(index), _, Some(DeValue::Array(array))) => array.get(*index),
            _ => None,
        };
        let Some(next) = next else { break };
        found = next.span();
        current = Some(next.get_ref());
        table = next.get_ref().as_table();
    }
    found
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::types::Asn;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // the fields exist to be deserialized
    struct Inner {
        asn: Asn,
        #[serde(default)]
        label: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // the fields exist to be deserialized
    struct Doc {
        name: String,
        #[serde(default)]
        count: u32,
        inner: Inner,
    }

    fn file(text: &str) -> SourceFile {
        SourceFile {
            path: "t.toml".into(),
            text: text.to_owned(),
        }
    }

    fn read(text: &str) -> (Option<Doc>, Vec<String>) {
        let mut errors = Vec::new();
        let doc = file(text).deserialize::<Doc>(&mut errors);
        (doc, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn clean_file_reads() {
        let (doc, errors) = read("name = \"x\"\n[inner]\nasn = 65000\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(doc.map(|d| d.inner.asn.get()), Some(65000));
    }

    #[test]
    fn reports_every_error_in_a_file() {
        let text = "name = \"x\"\ncolour = 1\ncount = \"many\"\n[inner]\nasn = 0\nlabel = 3\n";
        let (doc, errors) = read(text);
        assert!(doc.is_none());
        assert_eq!(
            errors,
            [
                "t.toml:2:1: Unknown field `colour`, expected one of `name`, `count`, `inner`",
                "t.toml:3:9: Invalid type: string \"many\", expected u32",
                "t.toml:5:7: AS number 0 is reserved (RFC 7607) and never valid on a BGP session",
                "t.toml:6:9: Invalid type: integer `3`, expected a string",
            ]
        );
    }

    #[test]
    fn a_cut_required_key_is_not_reported_twice() {
        let (doc, errors) = read("name = 5\n[inner]\nasn = 65000\n");
        assert!(doc.is_none());
        assert_eq!(
            errors,
            ["t.toml:1:8: Invalid type: integer `5`, expected a string"]
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let (doc, errors) = read("name = \"x\n");
        assert!(doc.is_none());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("t.toml:1:"), "{errors:?}");
    }

    #[test]
    fn locates_values_by_path() {
        let source = file("name = \"x\"\n[inner]\nasn = 65000\n");
        let at = |path: &[Key<'_>]| {
            let d = source.diagnostic(path, "m");
            (d.line, d.column)
        };
        assert_eq!(at(key_path!["inner", "asn"]), (3, 7));
        assert_eq!(at(key_path!["name"]), (1, 8));
        // A defaulted key points at its table.
        assert_eq!(at(key_path!["inner", "label"]).0, 2);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let source = file("# é\nname = \"é\" x\n");
        let d = source.diagnostic_at(source.text.find('x').unwrap(), "m");
        assert_eq!((d.line, d.column), (2, 12));
    }
}
