//! The reviews JSON, byte for byte as the original builds it by string concatenation (its
//! spacing included), with proper escaping of the configured strings.

use std::fmt::Write;

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

/// The reviews of product `id`, with a rating per reviewer when `ratings` is given.
pub fn render(id: i32, origin: &Origin, ratings: Option<(&[Stars; 2], &str)>) -> String {
    let mut out = String::with_capacity(512);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        r#"{{"id": "{id}","podname": {},"clustername": {},"reviews": ["#,
        quote(&origin.podname),
        quote(&origin.clustername)
    );
    for (i, (reviewer, text)) in REVIEWS.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, r#"{{  "reviewer": "{reviewer}",  "text": "{text}""#);
        if let Some((stars, color)) = ratings {
            match stars[i] {
                Stars::Count(n) => {
                    let _ = write!(out, r#", "rating": {{"stars": {n}, "color": {}}}"#, quote(color));
                }
                Stars::Unavailable => {
                    let _ = write!(out, r#", "rating": {{"error": "{RATINGS_UNAVAILABLE}"}}"#);
                }
            }
        }
        out.push('}');
    }
    out.push_str("]}");
    out
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
    fn configured_strings_are_escaped() {
        let origin = Origin { podname: "a\"b".into(), clustername: "c\\d".into() };
        let parsed: serde_json::Value = serde_json::from_str(&render(1, &origin, None)).unwrap();
        assert_eq!(parsed["podname"], "a\"b");
        assert_eq!(parsed["clustername"], "c\\d");
    }
}
