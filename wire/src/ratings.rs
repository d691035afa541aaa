//! `GET /ratings/{id}`: ratings writes [`Ratings`], reviews and productpage read it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The service's name: its Kubernetes Service, its `app` label, its `service.name`.
pub const NAME: &str = "ratings";

/// `BOOKINFO_RATINGS_TIMEOUT`: a caller's deadline on ratings (productpage: 3 s; reviews: 10 s
/// with black stars, 2.5 s otherwise).
pub const TIMEOUT: &str = "BOOKINFO_RATINGS_TIMEOUT";

/// What ratings answers for one product: `{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}`.
/// Read as leniently as the original reviews reads it: only `ratings` matters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratings {
    /// The product id.
    #[serde(default)]
    pub id: i64,
    /// Stars by reviewer: the defaults, or what was posted for the product (which the original
    /// keeps as it came, so its values are JSON).
    #[serde(default)]
    pub ratings: Value,
}

impl Ratings {
    /// The ratings every product has until others are posted.
    pub fn defaults(id: i64) -> Self {
        Self { id, ratings: serde_json::json!({"Reviewer1": 5, "Reviewer2": 4}) }
    }

    /// `reviewer`'s stars, when they are a whole number other than the original's `-1`
    /// ("no rating").
    pub fn stars(&self, reviewer: &str) -> Option<i64> {
        self.ratings.get(reviewer).and_then(Value::as_i64).filter(|stars| *stars != -1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_answer_is_the_originals_byte_for_byte() {
        let body = serde_json::to_string(&Ratings::defaults(0)).unwrap();
        assert_eq!(body, r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#);
        let read: Ratings = serde_json::from_str(&body).unwrap();
        assert_eq!(read, Ratings::defaults(0));
    }

    #[test]
    fn stars_are_whole_numbers_and_minus_one_is_none() {
        let posted: Ratings =
            serde_json::from_str(r#"{"id":1,"ratings":{"Reviewer1":-1,"Reviewer2":"4","Reviewer3":3}}"#)
                .unwrap();
        assert_eq!(posted.stars("Reviewer1"), None);
        assert_eq!(posted.stars("Reviewer2"), None);
        assert_eq!(posted.stars("Reviewer3"), Some(3));
        assert_eq!(Ratings::defaults(0).stars("Reviewer1"), Some(5));
    }
}
