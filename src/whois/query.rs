//! Parsing one WHOIS query line: a pure function of the bytes received.

/// Longest query line accepted, without its line terminator (docs/whois.md).
pub const MAX_QUERY_LEN: usize = 255;

/// What the client asked for. Names are as typed (trimmed, one trailing dot
/// dropped); they are normalised against the registry's zones at lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// A domain name, U- or A-label, any case.
    Domain(String),
    /// `nameserver NAME`.
    Nameserver(String),
    /// `registrar HANDLE`.
    Registrar(String),
}

/// Why a query line was refused. The `Display` text is sent to the client
/// after `% Error: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("empty query; send a domain name, 'nameserver NAME' or 'registrar HANDLE'")]
    Empty,
    #[error("query is longer than {MAX_QUERY_LEN} bytes")]
    TooLong,
    #[error("query is not valid UTF-8")]
    NotUtf8,
    #[error("query contains a control character")]
    ControlChar,
    #[error("'{0}' needs an argument")]
    MissingArgument(&'static str),
    #[error(
        "query has too many words; send a domain name, 'nameserver NAME' or 'registrar HANDLE'"
    )]
    TooManyWords,
    #[error("'{0}' is not a valid registrar handle (letters, digits, '-' or '_', at most 64)")]
    BadHandle(String),
}

/// Parse one query line. `line` may end with LF or CRLF (or with nothing,
/// when the client half-closed without a terminator).
pub fn parse_query(line: &[u8]) -> Result<Query, QueryError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_QUERY_LEN {
        return Err(QueryError::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| QueryError::NotUtf8)?;
    if text.chars().any(char::is_control) {
        return Err(QueryError::ControlChar);
    }
    let mut words = text.split_whitespace();
    let first = words.next().ok_or(QueryError::Empty)?;
    let second = words.next();
    if words.next().is_some() {
        return Err(QueryError::TooManyWords);
    }
    let keyword = |k: &'static str| first.eq_ignore_ascii_case(k).then_some(k);
    if let Some(k) = keyword("nameserver").or_else(|| keyword("registrar")) {
        let arg = second.ok_or(QueryError::MissingArgument(k))?;
        return Ok(if k == "nameserver" {
            Query::Nameserver(strip_dot(arg).to_string())
        } else {
            if !crate::registry::input::valid_handle(arg) {
                return Err(QueryError::BadHandle(arg.to_string()));
            }
            Query::Registrar(arg.to_string())
        });
    }
    if second.is_some() {
        return Err(QueryError::TooManyWords);
    }
    Ok(Query::Domain(strip_dot(first).to_string()))
}

fn strip_dot(s: &str) -> &str {
    s.strip_suffix('.').unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kinds() {
        assert_eq!(
            parse_query(b"Example.RU.\r\n"),
            Ok(Query::Domain("Example.RU".into()))
        );
        assert_eq!(
            parse_query("пример.рф\n".as_bytes()),
            Ok(Query::Domain("пример.рф".into()))
        );
        assert_eq!(
            parse_query(b"  example.ru  "),
            Ok(Query::Domain("example.ru".into()))
        );
        assert_eq!(
            parse_query(b"NAMESERVER ns1.example.ru.\r\n"),
            Ok(Query::Nameserver("ns1.example.ru".into()))
        );
        assert_eq!(
            parse_query(b"registrar REGRU-RU\n"),
            Ok(Query::Registrar("REGRU-RU".into()))
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(parse_query(b"\r\n"), Err(QueryError::Empty));
        assert_eq!(parse_query(b""), Err(QueryError::Empty));
        assert_eq!(parse_query(b"   \n"), Err(QueryError::Empty));
        assert_eq!(parse_query(b"exa\0mple.ru\n"), Err(QueryError::ControlChar));
        assert_eq!(parse_query(b"a\tb\n"), Err(QueryError::ControlChar));
        assert_eq!(parse_query(b"a\rb\n"), Err(QueryError::ControlChar));
        assert_eq!(parse_query(b"\xff\xfe.ru\n"), Err(QueryError::NotUtf8));
        assert_eq!(
            parse_query(b"nameserver\n"),
            Err(QueryError::MissingArgument("nameserver"))
        );
        assert_eq!(parse_query(b"a b\n"), Err(QueryError::TooManyWords));
        assert_eq!(
            parse_query(b"registrar a b\n"),
            Err(QueryError::TooManyWords)
        );
        assert!(matches!(
            parse_query(b"registrar a/b\n"),
            Err(QueryError::BadHandle(_))
        ));
        let long = vec![b'a'; MAX_QUERY_LEN + 1];
        assert_eq!(parse_query(&long), Err(QueryError::TooLong));
        let mut ok = vec![b'a'; MAX_QUERY_LEN];
        ok.extend_from_slice(b"\r\n");
        assert!(parse_query(&ok).is_ok());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_query(&bytes);
        }
    }
}
