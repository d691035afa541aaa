//! One schema per wire format: what details and reviews answer over HTTP is read by productpage
//! into the very types they write, with nothing lost or added.

use bookinfo_wire::details::Book;
use bookinfo_wire::reviews::Reviews;
use serde_json::Value;

use crate::helpers::{Env, get, spawn_details, spawn_ratings, spawn_reviews};

#[actix_web::test]
async fn the_details_answer_reads_as_productpages_book_without_loss() {
    let details = spawn_details(&Env::new());
    let answer = get(&details.url("/details/0")).await;
    let book: Book = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(book, Book::comedy_of_errors(0));
    assert_eq!(serde_json::to_string(&book).unwrap(), answer.body, "written again, the same bytes");
}

#[actix_web::test]
async fn every_reviews_version_answer_reads_as_productpages_reviews_without_loss() {
    let ratings = spawn_ratings(&Env::new());
    for version in ["v1", "v2", "v3"] {
        for ratings in [Some(&ratings), None] {
            let reviews = spawn_reviews(version, ratings, &[("CLUSTER_NAME", "east \"1\"")]);
            let answer = get(&reviews.url("/reviews/0")).await;
            let read: Reviews = serde_json::from_str(&answer.body).unwrap();
            assert_eq!(read.to_json(), answer.body, "{version}: written again, the same bytes");
            let as_read = serde_json::to_value(&read).unwrap();
            assert_eq!(
                as_read,
                serde_json::from_str::<Value>(&answer.body).unwrap(),
                "{version}: no field lost"
            );
            let rated = read.reviews.iter().all(|review| review.rating.is_some());
            assert_eq!(rated, version != "v1", "{version}");
        }
    }
}
