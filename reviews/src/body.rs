//! The reviews answer, built from the fixed reviews and the ratings; its wire format
//! ([`Reviews`]) is shared with its readers through `bookinfo-wire`.

pub use bookinfo_wire::reviews::{RATINGS_UNAVAILABLE, Rating, Review, Reviews};

/// The two fixed reviews: reviewer and text.
pub const REVIEWS: [(&str, &str); 2] = [
    ("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"),
    (
        "Reviewer2",
        "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.",
    ),
];

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
pub fn build(id: i32, origin: &Origin, ratings: Option<(&[Stars; 2], &str)>) -> Reviews {
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
    Reviews {
        id: id.to_string(),
        podname: origin.podname.clone(),
        clustername: origin.clustername.clone(),
        reviews,
    }
}

/// The reviews of product `id` as the original writes them, with a rating per reviewer when
/// `ratings` is given.
pub fn render(id: i32, origin: &Origin, ratings: Option<(&[Stars; 2], &str)>) -> String {
    build(id, origin, ratings).to_json()
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
            let written = build(3, &origin(), ratings);
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
            let written = build(0, &origin, pair.as_ref().map(|p| (p, color.as_str())));
            let read: Reviews = serde_json::from_str(&written.to_json()).unwrap();
            prop_assert_eq!(read, written);
        }
    }
}
