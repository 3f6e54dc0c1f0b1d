//! URIs and URLs as we show them: object paths escaped for a URI, and
//! credentials in URLs (user info, query strings) redacted from every text
//! that may reach a log, an error or a repr.

/// `text` with every URL in it passed through [`redact_url`].
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("http") {
        let (before, url_and_more) = rest.split_at(start);
        out.push_str(before);
        let end = url_and_more.find(|c: char| c.is_whitespace() || c == '"' || c == '\'').unwrap_or(url_and_more.len());
        let (url, more) = url_and_more.split_at(end);
        out.push_str(&redact_url(url));
        rest = more;
    }
    out.push_str(rest);
    out
}

/// `url` without the parts that may carry a credential, each replaced by
/// `<redacted>`: the user and password before the host
/// (`https://user:pass@host`) and the query string, where SAS tokens and
/// signed-URL signatures travel.
pub(crate) fn redact_url(url: &str) -> String {
    let parts = UrlParts::of(url);
    let mut out = String::with_capacity(url.len());
    out.push_str(parts.scheme);
    if parts.user.is_some() {
        out.push_str("<redacted>@");
    }
    out.push_str(parts.host);
    out.push_str(parts.path);
    if parts.query.is_some() {
        out.push_str("?<redacted>");
    }
    out
}

/// `url` with neither user info nor query string, nor a trailing `/`: an address
/// to show, such as a container's URL, with no room for a credential.
#[cfg(any(feature = "azure", test))]
pub(crate) fn bare_url(url: &str) -> String {
    let parts = UrlParts::of(url);
    let path = parts.path.split('#').next().unwrap_or_default();
    format!("{}{}{}", parts.scheme, parts.host, path).trim_end_matches('/').to_owned()
}

/// A URL cut where credentials can be: `scheme://user@host/path?query`.
struct UrlParts<'a> {
    /// `https://`, or empty for a URL without a scheme.
    scheme: &'a str,
    /// What precedes the host and `@`: a user, and perhaps a password.
    user: Option<&'a str>,
    /// The host and port.
    host: &'a str,
    /// From the first `/` (or `#`) after the host up to the query string.
    path: &'a str,
    /// After the `?`.
    query: Option<&'a str>,
}

impl<'a> UrlParts<'a> {
    fn of(url: &'a str) -> Self {
        let (scheme, rest) = url.split_at(url.find("://").map_or(0, |at| at + 3));
        let (authority, rest) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        let (user, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        Self { scheme, user, host, path, query }
    }
}

/// Escapes what would end or break a URI path; unicode stays readable.
pub(crate) fn uri_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            ' ' | '%' | '#' | '?' | '"' | '<' | '>' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{bare_url, redact, redact_url, uri_escape};

    #[test]
    fn urls_lose_their_query_strings() {
        let text = "Error performing PUT https://acct.blob.core.windows.net/c/x?sv=2022&sig=SECRET%3D in 1s - 403";
        assert_eq!(redact(text), "Error performing PUT https://acct.blob.core.windows.net/c/x?<redacted> in 1s - 403");
        assert_eq!(redact("no url here"), "no url here");
        assert_eq!(redact("\"http://h/p?k=v\" and http://h/q"), "\"http://h/p?<redacted>\" and http://h/q");
        let text = "GET http://user:pa55@127.0.0.1:9000/b/k?X-Amz-Signature=SECRET failed";
        assert_eq!(redact(text), "GET http://<redacted>@127.0.0.1:9000/b/k?<redacted> failed");
    }

    #[test]
    fn urls_lose_their_user_and_query_string() {
        let cases = [
            ("https://acct.blob.core.windows.net/c?sv=1&sig=SECRET", "https://acct.blob.core.windows.net/c?<redacted>"),
            ("https://user:SECRET@host:9000/path", "https://<redacted>@host:9000/path"),
            ("http://SECRET@host?sig=SECRET", "http://<redacted>@host?<redacted>"),
            ("http://host/a@b", "http://host/a@b"),
            ("http://127.0.0.1:10000/devstoreaccount1", "http://127.0.0.1:10000/devstoreaccount1"),
            ("user:SECRET@host/x", "<redacted>@host/x"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown);
        }
    }

    #[test]
    fn bare_urls_keep_only_the_address() {
        let cases = [
            ("https://acct.blob.core.windows.net/?sv=1&sig=SECRET", "https://acct.blob.core.windows.net"),
            ("http://user:SECRET@127.0.0.1:10000/devstoreaccount1/", "http://127.0.0.1:10000/devstoreaccount1"),
            ("https://host/a@b#frag", "https://host/a@b"),
            ("https://host", "https://host"),
        ];
        for (url, shown) in cases {
            assert_eq!(bare_url(url), shown);
        }
    }

    #[test]
    fn paths_keep_unicode_and_escape_what_ends_a_uri() {
        assert_eq!(uri_escape("a b/ünï#1?.txt"), "a%20b/ünï%231%3F.txt");
    }
}
