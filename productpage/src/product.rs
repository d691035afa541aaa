//! The one product of the store.

use serde::Serialize;

/// A product, as `/api/v1/products` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    /// Its id; details and reviews are asked about it.
    pub id: u32,
    /// Title.
    pub title: &'static str,
    /// Description, as HTML (trusted: it is ours).
    #[serde(rename = "descriptionHtml")]
    pub description_html: &'static str,
}

/// Every product; the page shows the first.
pub const PRODUCTS: [Product; 1] = [Product {
    id: 0,
    title: "The Comedy of Errors",
    description_html: "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: \
        The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his \
        most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in \
        addition to puns and word play.",
}];
