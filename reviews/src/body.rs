//! The reviews answer: [`Reviews`] is the wire format of `/reviews/{id}`, written by reviews
//! byte for byte as the original builds it by string concatenation (its spacing included, with
//! proper escaping of the configured strings), and read by productpage through serde.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// The two fixed reviews: reviewer and text.
pub const REVIEWS: [(&str, &str); 2] = [
    ("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"),
    (
        "Reviewer2",
        "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.",
    ),
];

/// The error text of a review whose rating is unavailable.
pub const RATINGS_UNAVAILABLE: &str = "Ratings service is currently unavailable";

/// The rating shown with one review (v2 and v3 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stars {
    /// The number of stars the ratings service gave.
    Count(i64),
    /// The ratings service did not give this reviewer's stars.
    Unavailable,
}

/// Who served the reviews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `HOSTNAME`: the pod name.
    pub podname: String,
    /// `CLUSTER_NAME`, or the string `null` when unset, as the original prints it.
    pub clustername: String,
}

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
    /// The reviews of product `id`, with a rating per reviewer when `ratings` is given.
    pub fn new(id: i32, origin: &Origin, ratings: Option<(&[Stars; 2], &str)>) -> Self {
        let reviews = REVIEWS
            .iter()
            .enumerate()
            .map(|(i, (reviewer, text))| Review {
                reviewer: (*reviewer).to_owned(),
                text: (*text).to_owned(),
                rating: ratings.map(|(stars, color)| match stars[i] {
                    Stars::Count(stars) => Rating::Stars { stars, color: color.to_owned() },
                    Stars::Unavailable => Rating::Error { error: RATINGS_UNAVAILABLE.to_owned() },
                }),
            })
            .collect();
        Self {
            id: id.to_string(),
            podname: origin.podname.clone(),
            clustername: origin.clustername.clone(),
            reviews,
        }
    }

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

/// The reviews of product `id` as the original writes them, with a rating per reviewer when
/// `ratings` is given.
pub fn render(id: i32, origin: &Origin, ratings: Option<(&[Stars; 2], &str)>) -> String {
    Reviews::new(id, origin, ratings).to_json()
}

/// A JSON string literal of `text`.
fn quote(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin { podname: "reviews-v1".into(), clustername: "null".into() }
    }

    #[test]
    fn v1_matches_the_original_byte_for_byte() {
        assert_eq!(
            render(0, &origin(), None),
            r#"{"id": "0","podname": "reviews-v1","clustername": "null","reviews": [{  "reviewer": "Reviewer1",  "text": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"},{  "reviewer": "Reviewer2",  "text": "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."}]}"#
        );
    }

    #[test]
    fn ratings_are_appended_per_review() {
        let body = render(7, &origin(), Some((&[Stars::Count(5), Stars::Unavailable], "red")));
        assert!(body.contains(r#"refreshing!", "rating": {"stars": 5, "color": "red"}}"#), "{body}");
        assert!(
            body.contains(
                r#"Shakespeare.", "rating": {"error": "Ratings service is currently unavailable"}}"#
            ),
            "{body}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["id"], "7");
    }

    #[test]
    fn what_reviews_writes_reads_back_as_the_same_answer() {
        let all = [Stars::Count(5), Stars::Unavailable];
        for ratings in [None, Some((&all, "red")), Some((&[Stars::Count(0), Stars::Count(-3)], "a\"b"))] {
            let written = Reviews::new(3, &origin(), ratings);
            let read: Reviews = serde_json::from_str(&written.to_json()).unwrap();
            assert_eq!(read, written);
            assert_eq!(read.to_json(), written.to_json());
        }
    }

    #[test]
    fn configured_strings_are_escaped() {
        let origin = Origin { podname: "a\"b".into(), clustername: "c\\d".into() };
        let parsed: serde_json::Value = serde_json::from_str(&render(1, &origin, None)).unwrap();
        assert_eq!(parsed["podname"], "a\"b");
        assert_eq!(parsed["clustername"], "c\\d");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the configured strings and the stars: what reviews writes, productpage reads
        /// back as the same answer.
        #[test]
        fn any_answer_round_trips(
            podname in ".{0,40}",
            clustername in ".{0,40}",
            color in ".{0,20}",
            stars in proptest::option::of((any::<i64>(), any::<bool>())),
        ) {
            let origin = Origin { podname, clustername };
            let pair = stars.map(|(n, unavailable)| {
                [Stars::Count(n), if unavailable { Stars::Unavailable } else { Stars::Count(n) }]
            });
            let written = Reviews::new(0, &origin, pair.as_ref().map(|p| (p, color.as_str())));
            let read: Reviews = serde_json::from_str(&written.to_json()).unwrap();
            prop_assert_eq!(read, written);
        }
    }
}
