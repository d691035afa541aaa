//! ratings, against the original's answers, and its fault modes.

use crate::helpers::{Env, answer, client, env, get, spawn_ratings};

#[actix_web::test]
async fn ratings_of_a_book_match_the_original() {
    let ratings = spawn_ratings(&Env::new());
    let answer = get(&ratings.url("/ratings/0")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.body, r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#);
}

#[actix_web::test]
async fn a_non_numeric_id_gets_the_original_400() {
    let ratings = spawn_ratings(&Env::new());
    for path in ["/ratings/abc", "/ratings/", "/ratings/0x"] {
        let answer = get(&ratings.url(path)).await;
        assert_eq!(answer.status, 400, "{path}");
        assert_eq!(answer.body, r#"{"error":"please provide numeric product ID"}"#);
    }
}

#[actix_web::test]
async fn health_matches_the_original() {
    let ratings = spawn_ratings(&Env::new());
    let answer = get(&ratings.url("/health")).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, r#"{"status":"Ratings is healthy"}"#));
}

#[actix_web::test]
async fn ids_follow_javascript_parse_int_on_the_raw_target() {
    let ratings = spawn_ratings(&Env::new());
    for (path, id) in
        [("/ratings/7?x=1", 7), ("/ratings/1/2", 2), ("/ratings/12abc", 12), ("/ratings/0x10", 16)]
    {
        assert_eq!(get(&ratings.url(path)).await.json()["id"], id, "{path}");
    }
}

#[actix_web::test]
async fn posted_ratings_are_kept_and_served() {
    let ratings = spawn_ratings(&Env::new());
    let posted =
        answer(client().post(ratings.url("/ratings/3")).send_body(r#"{"Reviewer1":1,"Reviewer2":2}"#)).await;
    assert_eq!(
        (posted.status, posted.body.as_str()),
        (200, r#"{"id":3,"ratings":{"Reviewer1":1,"Reviewer2":2}}"#)
    );
    assert_eq!(get(&ratings.url("/ratings/3")).await.body, posted.body);
    assert_eq!(get(&ratings.url("/ratings/4")).await.json()["ratings"]["Reviewer1"], 5);
}

#[actix_web::test]
async fn a_post_checks_the_id_first_then_the_json() {
    let ratings = spawn_ratings(&Env::new());
    let bad_id = answer(client().post(ratings.url("/ratings/x")).send_body("not json")).await;
    assert_eq!(
        (bad_id.status, bad_id.body.as_str()),
        (400, r#"{"error":"please provide numeric product ID"}"#)
    );
    let bad_json = answer(client().post(ratings.url("/ratings/1")).send_body("{")).await;
    assert_eq!(
        (bad_json.status, bad_json.body.as_str()),
        (400, r#"{"error":"please provide valid ratings JSON"}"#)
    );
}

#[actix_web::test]
async fn unknown_paths_get_an_empty_404_and_other_methods_a_405() {
    let ratings = spawn_ratings(&Env::new());
    for path in ["/ratings", "/ratingsX", "/foo"] {
        let answer = get(&ratings.url(path)).await;
        assert_eq!((answer.status, answer.body.as_str()), (404, ""), "{path}");
        assert_eq!(answer.header("content-type"), None);
    }
    let put = answer(client().put(ratings.url("/ratings/1")).send()).await;
    assert_eq!(put.status, 405);
}

#[actix_web::test]
async fn v_faulty_fails_about_half_of_the_reads_with_503() {
    let ratings = spawn_ratings(&env(&[("SERVICE_VERSION", "v-faulty")]));
    let mut failed = 0;
    for _ in 0..100 {
        let answer = get(&ratings.url("/ratings/0")).await;
        match answer.status {
            503 => {
                assert_eq!(answer.body, r#"{"error":"Service unavailable"}"#);
                failed += 1;
            }
            200 => {}
            other => panic!("unexpected {other}"),
        }
    }
    // Binomial(100, 0.5): outside 20..=80 happens with probability below 1e-9.
    assert!((20..=80).contains(&failed), "{failed} of 100 failed");
}

#[actix_web::test]
async fn v2_on_an_unreachable_mysql_answers_the_originals_200_error_and_refuses_posts() {
    // Port 0: nothing can listen there, so the connection is refused at once.
    let ratings = spawn_ratings(&env(&[
        ("SERVICE_VERSION", "v2"),
        ("DB_TYPE", "mysql"),
        ("MYSQL_DB_HOST", "127.0.0.1"),
        ("MYSQL_DB_PORT", "0"),
    ]));
    let read = get(&ratings.url("/ratings/0")).await;
    // The original ends the response without writing a status: 200, and no content type.
    assert_eq!(
        (read.status, read.body.as_str()),
        (200, r#"{"error":"could not connect to ratings database"}"#)
    );
    assert_eq!(read.header("content-type"), None);
    let post = answer(client().post(ratings.url("/ratings/0")).send_body("{}")).await;
    assert_eq!(
        (post.status, post.body.as_str()),
        (501, r#"{"error":"Post not implemented for database backed ratings"}"#)
    );
}

#[test]
fn v2_on_mongodb_is_refused_at_start_naming_the_missing_support() {
    use bookinfo::serve::Configured;
    use bookinfo::service::Service;
    use bookinfo_reviews::ReviewsVersion;
    for source in [
        vec![("SERVICE_VERSION", "v2"), ("MONGO_DB_URL", "mongodb://mongodb:27017/test")],
        vec![("SERVICE_VERSION", "v2"), ("DB_TYPE", "mongodb")],
    ] {
        let err =
            Configured::from_source(Service::Ratings, ReviewsVersion::V1, source.as_slice()).unwrap_err();
        assert_eq!(err.name, "DB_TYPE");
        assert!(err.to_string().contains("MongoDB backend"), "{err}");
    }
}

#[actix_web::test]
async fn a_post_holds_whole_stars_from_one_to_five_or_is_refused_and_changes_nothing() {
    let ratings = spawn_ratings(&Env::new());
    for body in [
        r#"{"Reviewer1": -1}"#,
        r#"{"Reviewer1": 1.5}"#,
        r#"{"Reviewer1": "5"}"#,
        r#"{"Reviewer1": 1e23}"#,
        "[0,0,0]",
    ] {
        let refused = answer(client().post(ratings.url("/ratings/5")).send_body(body)).await;
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (400, r#"{"error":"please provide valid ratings JSON"}"#),
            "{body}"
        );
    }
    let read = get(&ratings.url("/ratings/5")).await;
    assert_eq!(
        read.body, r#"{"id":5,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#,
        "everyone still sees the stars"
    );
}

#[actix_web::test]
async fn large_posts_are_refused_before_they_are_read_and_cost_no_memory() {
    let ratings = crate::process::Served::start("ratings", &[], &[]).await;
    let pid = ratings.proc.pid();
    let before = crate::wait::peak_rss(pid);
    // Under actix-web's own limit (256 KiB), over ratings': each one kept would cost megabytes.
    let big = format!("[{}0]", "0,".repeat(100_000));
    for id in 0..50 {
        let refused =
            answer(client().post(ratings.url(&format!("/ratings/{id}"))).send_body(big.clone())).await;
        assert_eq!(refused.status, 413);
    }
    let grown = crate::wait::peak_rss(pid).saturating_sub(before);
    // Each body read whole and parsed would have cost megabytes (hundreds in all).
    assert!(grown < 16 << 20, "ratings grew by {} MB for refused bodies", grown >> 20);
    assert_eq!(get(&ratings.url("/ratings/1")).await.status, 200);
    ratings.stop().await;
}
