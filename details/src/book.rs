//! The book details the service answers: its own record ([`Book::comedy_of_errors`]), or one
//! built from the Google Books API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use bookinfo_http::UpstreamError;
use bookinfo_http::respond::json as json_response;
pub use bookinfo_wire::details::Book;
use serde_json::{Value, json};

/// The ISBN the original looks up in the Google Books API, whatever the product id.
pub const EXTERNAL_ISBN: &str = "0486424618";

/// The details built from a Google Books `volumes` answer, as the original does: the first
/// item's `volumeInfo`.
///
/// # Errors
/// [`LookupError::NotJson`] or [`LookupError::NoBook`].
pub fn from_google_books(id: i64, body: &[u8]) -> Result<Book, LookupError> {
    let answer: Value = serde_json::from_slice(body).map_err(LookupError::NotJson)?;
    let book = answer.pointer("/items/0/volumeInfo").ok_or(LookupError::NoBook)?;
    let field = |name: &str| book.get(name).cloned().unwrap_or(Value::Null);
    let isbn = |kind: &str| {
        book.get("industryIdentifiers")
            .and_then(Value::as_array)
            .and_then(|ids| ids.iter().find(|i| i.get("type").and_then(Value::as_str) == Some(kind)))
            .and_then(|i| i.get("identifier").cloned())
            .unwrap_or(Value::Null)
    };
    let when = |name: &str, expected: &str, yes: &str| {
        json!(if book.get(name).and_then(Value::as_str) == Some(expected) { yes } else { "unknown" })
    };
    Ok(Book {
        id,
        author: book.pointer("/authors/0").cloned().unwrap_or(Value::Null),
        year: field("publishedDate"),
        kind: when("printType", "BOOK", "paperback"),
        pages: field("pageCount"),
        publisher: field("publisher"),
        language: when("language", "en", "English"),
        isbn_10: isbn("ISBN_10"),
        isbn_13: isbn("ISBN_13"),
    })
}

/// Why details v2 has no book to answer. Answered as the original does: 400 with the message.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The book service could not be asked, or did not answer 200.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Its answer is not JSON.
    #[error("invalid answer from the book service: {0}")]
    NotJson(#[source] serde_json::Error),
    /// Its answer holds no book.
    #[error("the book service knows no book with ISBN {EXTERNAL_ISBN}")]
    NoBook,
}

impl ResponseError for LookupError {
    fn status_code(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn error_response(&self) -> HttpResponse {
        json_response(self.status_code(), &json!({ "error": self.to_string() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_google_books_answer_becomes_details() {
        let answer = json!({"items": [{"volumeInfo": {
            "authors": ["William Shakespeare", "Someone"],
            "publishedDate": "2002-12-31",
            "printType": "BOOK",
            "pageCount": 128,
            "publisher": "Dover",
            "language": "fr",
            "industryIdentifiers": [
                {"type": "ISBN_13", "identifier": "9780486424613"},
                {"type": "ISBN_10", "identifier": "0486424618"}
            ]
        }}]});
        let book = from_google_books(3, answer.to_string().as_bytes()).unwrap();
        assert_eq!(book.author, "William Shakespeare");
        assert_eq!(book.year, "2002-12-31");
        assert_eq!(book.kind, "paperback");
        assert_eq!(book.language, "unknown");
        assert_eq!(book.isbn_10, "0486424618");
        assert_eq!(book.isbn_13, "9780486424613");
    }

    #[test]
    fn an_empty_or_broken_answer_is_an_error_of_its_kind_answered_400() {
        let empty = from_google_books(0, br#"{"totalItems": 0}"#).unwrap_err();
        assert!(matches!(empty, LookupError::NoBook), "{empty:?}");
        let broken = from_google_books(0, b"<html>").unwrap_err();
        assert!(matches!(&broken, LookupError::NotJson(err) if err.is_syntax()), "{broken:?}");
        assert_eq!(broken.error_response().status(), StatusCode::BAD_REQUEST);
    }
}
