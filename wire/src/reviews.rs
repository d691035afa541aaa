//! `GET /reviews/{id}`: reviews writes [`Reviews`] byte for byte as the original builds it by
//! string concatenation (its spacing included, with proper escaping of the configured
//! strings, [`Reviews::to_json`]); productpage reads it through serde.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// The service's name: its Kubernetes Service, its `app` label, its `service.name`.
pub const NAME: &str = "reviews";

/// The error text of a review whose rating is unavailable.
pub const RATINGS_UNAVAILABLE: &str = "Ratings service is currently unavailable";

/// The answer of `/reviews/{id}`. Its serde form (field names and order) is what productpage
/// reads and passes on; [`Reviews::to_json`] is the exact text reviews answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reviews {
    /// The product id, as a string (as the original writes it).
    pub id: String,
    /// The pod that answered.
    pub podname: String,
    /// Its cluster, or the string `null`.
    pub clustername: String,
    /// The reviews, in order.
    pub reviews: Vec<Review>,
}

/// One review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Who wrote it.
    pub reviewer: String,
    /// What they wrote.
    pub text: String,
    /// Its rating: absent in v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
}

/// The rating of one review (v2, v3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Rating {
    /// The reviewer's stars, in the configured colour.
    Stars {
        /// How many.
        stars: i64,
        /// `STAR_COLOR`.
        color: String,
    },
    /// Ratings did not answer for this reviewer.
    Error {
        /// Why, for people ([`RATINGS_UNAVAILABLE`]).
        error: String,
    },
}

impl Reviews {
    /// The answer as the original writes it.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(512);
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            r#"{{"id": {},"podname": {},"clustername": {},"reviews": ["#,
            quote(&self.id),
            quote(&self.podname),
            quote(&self.clustername)
        );
        for (i, review) in self.reviews.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                r#"{{  "reviewer": {},  "text": {}"#,
                quote(&review.reviewer),
                quote(&review.text)
            );
            match &review.rating {
                Some(Rating::Stars { stars, color }) => {
                    let _ = write!(out, r#", "rating": {{"stars": {stars}, "color": {}}}"#, quote(color));
                }
                Some(Rating::Error { error }) => {
                    let _ = write!(out, r#", "rating": {{"error": {}}}"#, quote(error));
                }
                None => {}
            }
            out.push('}');
        }
        out.push_str("]}");
        out
    }
}

/// A JSON string literal of `text`.
fn quote(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}
