//! The book details the service answers: its own record, or one built from the Google Books API.
//! [`Book`] is the wire format of `/details/{id}`: details writes it, productpage reads it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use bookinfo_common::UpstreamError;
use bookinfo_common::respond::json as json_response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The ISBN the original looks up in the Google Books API, whatever the product id.
pub const EXTERNAL_ISBN: &str = "0486424618";

/// Details of one book, serialised with the original's field names and order. Fields other
/// than `id` keep whatever JSON they hold (the Google Books answer may lack any of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Book {
    /// The product id asked for.
    pub id: i64,
    /// First author.
    pub author: Value,
    /// Year (a number here; the Google Books date string for external lookups).
    pub year: Value,
    /// `paperback`, or `unknown` for external books that are not print books.
    #[serde(rename = "type")]
    pub kind: Value,
    /// Page count.
    pub pages: Value,
    /// Publisher.
    pub publisher: Value,
    /// `English`, or `unknown` for external books in another language.
    pub language: Value,
    /// ISBN-10.
    #[serde(rename = "ISBN-10")]
    pub isbn_10: Value,
    /// ISBN-13.
    #[serde(rename = "ISBN-13")]
    pub isbn_13: Value,
}

impl Book {
    /// The details v1 answers for every product id.
    pub fn comedy_of_errors(id: i64) -> Self {
        Self {
            id,
            author: json!("William Shakespeare"),
            year: json!(1595),
            kind: json!("paperback"),
            pages: json!(200),
            publisher: json!("PublisherA"),
            language: json!("English"),
            isbn_10: json!("1234567890"),
            isbn_13: json!("123-1234567890"),
        }
    }

    /// The details built from a Google Books `volumes` answer, as the original does: the first
    /// item's `volumeInfo`.
    ///
    /// # Errors
    /// [`LookupError::NotJson`] or [`LookupError::NoBook`].
    pub fn from_google_books(id: i64, body: &[u8]) -> Result<Self, LookupError> {
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
        Ok(Self {
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
    fn the_default_book_serialises_in_the_original_order() {
        let body = serde_json::to_string(&Book::comedy_of_errors(0)).unwrap();
        assert_eq!(
            body,
            r#"{"id":0,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}"#
        );
    }

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
        let book = Book::from_google_books(3, answer.to_string().as_bytes()).unwrap();
        assert_eq!(book.author, "William Shakespeare");
        assert_eq!(book.year, "2002-12-31");
        assert_eq!(book.kind, "paperback");
        assert_eq!(book.language, "unknown");
        assert_eq!(book.isbn_10, "0486424618");
        assert_eq!(book.isbn_13, "9780486424613");
    }

    #[test]
    fn an_empty_or_broken_answer_is_an_error_of_its_kind_answered_400() {
        let empty = Book::from_google_books(0, br#"{"totalItems": 0}"#).unwrap_err();
        assert!(matches!(empty, LookupError::NoBook), "{empty:?}");
        let broken = Book::from_google_books(0, b"<html>").unwrap_err();
        assert!(matches!(&broken, LookupError::NotJson(err) if err.is_syntax()), "{broken:?}");
        assert_eq!(broken.error_response().status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn what_details_writes_reads_back_as_the_same_book() {
        let book = Book::comedy_of_errors(7);
        let read: Book = serde_json::from_slice(&serde_json::to_vec(&book).unwrap()).unwrap();
        assert_eq!(read, book);
    }
}
