//! `GET /details/{id}`: details writes a [`Book`], productpage reads it.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The service's name: its Kubernetes Service, its `app` label, its `service.name`.
pub const NAME: &str = "details";

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
    fn what_details_writes_reads_back_as_the_same_book() {
        let book = Book::comedy_of_errors(7);
        let read: Book = serde_json::from_slice(&serde_json::to_vec(&book).unwrap()).unwrap();
        assert_eq!(read, book);
    }
}
