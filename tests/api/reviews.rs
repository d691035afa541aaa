//! reviews v1, v2 and v3, against the original's answers, with real or stand-in ratings.

use std::time::{Duration, Instant};

use crate::helpers::{
    Canned, Capture, Env, answer, client, dead_upstream, get, spawn_ratings, spawn_reviews,
};

const V1_BODY: &str = r#"{"id": "0","podname": "reviews-v1","clustername": "null","reviews": [{  "reviewer": "Reviewer1",  "text": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"},{  "reviewer": "Reviewer2",  "text": "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."}]}"#;

#[actix_web::test]
async fn v1_answers_the_original_body_byte_for_byte_without_calling_ratings() {
    let ratings = Capture::start(Canned::json("{}"));
    let reviews = spawn_reviews("v1", Some(&ratings.app), &[]);
    let answer = get(&reviews.url("/reviews/0")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.body, V1_BODY);
    assert!(ratings.received().is_empty(), "v1 never calls ratings");
}

#[actix_web::test]
async fn v2_shows_black_stars_and_v3_red_stars_from_ratings() {
    let ratings = spawn_ratings(&Env::new());
    for (version, color) in [("v2", "black"), ("v3", "red")] {
        let reviews = spawn_reviews(version, Some(&ratings), &[]);
        let body = get(&reviews.url("/reviews/0")).await.json();
        assert_eq!(body["podname"], format!("reviews-{version}"));
        assert_eq!(body["reviews"][0]["rating"], serde_json::json!({"stars": 5, "color": color}));
        assert_eq!(body["reviews"][1]["rating"], serde_json::json!({"stars": 4, "color": color}));
    }
}

#[actix_web::test]
async fn the_id_is_normalised_to_a_java_int_string() {
    let reviews = spawn_reviews("v1", None, &[]);
    assert_eq!(get(&reviews.url("/reviews/007")).await.json()["id"], "7");
    assert_eq!(get(&reviews.url("/reviews/-2")).await.json()["id"], "-2");
}

#[actix_web::test]
async fn ids_that_are_not_java_ints_are_not_found() {
    let reviews = spawn_reviews("v1", None, &[]);
    for path in ["/reviews/abc", "/reviews/", "/reviews/1/2", "/reviews/99999999999"] {
        assert_eq!(get(&reviews.url(path)).await.status, 404, "{path}");
    }
    let post = answer(client().post(reviews.url("/reviews/0")).send()).await;
    assert_eq!(post.status, 405);
}

#[actix_web::test]
async fn health_matches_the_original_text() {
    let reviews = spawn_reviews("v2", None, &[]);
    let answer = get(&reviews.url("/health")).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, r#"{"status": "Reviews is healthy"}"#));
}

#[actix_web::test]
async fn when_ratings_is_down_each_review_says_so_and_the_answer_is_still_200() {
    let reviews = spawn_reviews("v2", Some(&dead_upstream()), &[]);
    let answer = get(&reviews.url("/reviews/0")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.count(r#""rating": {"error": "Ratings service is currently unavailable"}"#),
        2,
        "{}",
        answer.body
    );
}

#[actix_web::test]
async fn a_ratings_error_status_makes_both_ratings_unavailable() {
    let ratings = Capture::start(Canned::status(503));
    let reviews = spawn_reviews("v3", Some(&ratings.app), &[]);
    let answer = get(&reviews.url("/reviews/0")).await;
    assert_eq!(answer.count("Ratings service is currently unavailable"), 2);
}

#[actix_web::test]
async fn a_ratings_call_past_its_timeout_is_abandoned() {
    let ratings = Capture::start(
        Canned::json(r#"{"ratings":{"Reviewer1":5,"Reviewer2":4}}"#).after(Duration::from_secs(5)),
    );
    let reviews = spawn_reviews("v2", Some(&ratings.app), &[("BOOKINFO_RATINGS_TIMEOUT", "300ms")]);
    let start = Instant::now();
    let answer = get(&reviews.url("/reviews/0")).await;
    let took = start.elapsed();
    assert_eq!(answer.count("Ratings service is currently unavailable"), 2);
    // Under the stand-in's 5 s (v2 would wait 10 s by default); the margin over 300 ms is for a
    // loaded machine.
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(4), "took {took:?}");
}

#[actix_web::test]
async fn a_reviewer_missing_from_ratings_is_unavailable_alone() {
    let ratings = Capture::start(Canned::json(r#"{"id":0,"ratings":{"Reviewer1":3}}"#));
    let reviews = spawn_reviews("v2", Some(&ratings.app), &[]);
    let body = get(&reviews.url("/reviews/0")).await.json();
    assert_eq!(body["reviews"][0]["rating"]["stars"], 3);
    assert_eq!(body["reviews"][1]["rating"]["error"], "Ratings service is currently unavailable");
}

#[actix_web::test]
async fn reviews_forwards_the_allowlist_to_ratings_including_end_user() {
    let ratings = Capture::start(Canned::json(r#"{"ratings":{"Reviewer1":5,"Reviewer2":4}}"#));
    let reviews = spawn_reviews("v2", Some(&ratings.app), &[]);
    let request = client()
        .get(reviews.url("/reviews/0"))
        .insert_header(("x-request-id", "34eeb41d-d267-9e49-8b84-dde403fc5b73"))
        .insert_header(("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"))
        .insert_header(("x-b3-spanid", "e457b5a2e4d86bd1"))
        .insert_header(("x-b3-sampled", "1"))
        .insert_header(("end-user", "jason"))
        .insert_header(("x-envoy-attempt-count", "1"))
        .insert_header(("x-custom", "nope"));
    assert_eq!(answer(request.send()).await.status, 200);
    let received = &ratings.received()[0];
    assert_eq!(received.path, "/ratings/0");
    assert_eq!(received.get("accept"), Some("application/json"));
    assert_eq!(received.get("x-request-id"), Some("34eeb41d-d267-9e49-8b84-dde403fc5b73"));
    assert_eq!(received.get("x-b3-traceid"), Some("80f198ee56343ba864fe8b2a57d3eff7"));
    assert_eq!(received.get("x-b3-spanid"), Some("e457b5a2e4d86bd1"));
    assert_eq!(received.get("x-b3-sampled"), Some("1"));
    assert_eq!(received.get("end-user"), Some("jason"));
    assert_eq!(received.get("x-envoy-attempt-count"), None);
    assert_eq!(received.get("x-custom"), None);
}
