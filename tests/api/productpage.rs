//! productpage: the page, the API, sign-in, header forwarding and degraded answers, with real
//! services or stand-ins behind it.

use std::time::{Duration, Instant};

use crate::helpers::{
    Answer, Canned, Capture, Env, answer, client, details_body, get, reviews_body, spawn_details,
    spawn_productpage, spawn_ratings, spawn_reviews, spawn_stack,
};

const STAR: &str = "glyphicon glyphicon-star";

#[actix_web::test]
async fn the_page_with_reviews_v1_has_details_reviews_and_no_stars() {
    let stack = spawn_stack("v1");
    let page = get(&stack.productpage.url("/productpage")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.count("<title>Simple Bookstore App</title>"), 1);
    for marker in
        ["The Comedy of Errors", "William Shakespeare", "Book Details", "PublisherA", "Book Reviews"]
    {
        assert!(page.body.contains(marker), "missing {marker}");
    }
    assert_eq!(page.count("Reviews served by: reviews-v1"), 2);
    assert_eq!(page.count(STAR), 0);
    assert!(!page.body.contains("Ratings service is currently unavailable"));
}

#[actix_web::test]
async fn reviews_v2_gives_nine_black_stars_and_v3_nine_red_ones() {
    for (version, class) in [("v2", "text-black-500"), ("v3", "text-red-500")] {
        let stack = spawn_stack(version);
        let page = get(&stack.productpage.url("/productpage")).await;
        assert_eq!(page.count(STAR), 9, "{version}");
        assert_eq!(page.count(class), 2, "{version}");
        assert_eq!(page.count(&format!("Reviews served by: reviews-{version}")), 2);
    }
}

#[actix_web::test]
async fn the_page_is_200_with_both_error_sections_when_every_upstream_is_down() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let page = get(&productpage.url("/productpage")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>Simple Bookstore App</title>"));
    assert!(page.body.contains("Error fetching product details"));
    assert!(page.body.contains("Sorry, product details are currently unavailable for this book."));
    assert!(page.body.contains("Error fetching product reviews"));
    assert!(page.body.contains("Sorry, product reviews are currently unavailable for this book."));
    assert!(!page.body.contains("Book Details"));
}

#[actix_web::test]
async fn details_failing_with_a_status_degrades_only_the_details_section() {
    let details = Capture::start(Canned::status(555));
    let reviews = spawn_reviews("v1", None, &[]);
    let productpage = spawn_productpage(Some(&details.app), Some(&reviews), None, &[]);
    let page = get(&productpage.url("/productpage")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Error fetching product details"));
    assert!(page.body.contains("Book Reviews"));
}

#[actix_web::test]
async fn slow_details_is_abandoned_at_its_timeout() {
    let details = Capture::start(Canned::json("{}").after(Duration::from_secs(10)));
    let reviews = spawn_reviews("v1", None, &[]);
    let productpage =
        spawn_productpage(Some(&details.app), Some(&reviews), None, &[("BOOKINFO_DETAILS_TIMEOUT", "300ms")]);
    let start = Instant::now();
    let page = get(&productpage.url("/productpage")).await;
    let took = start.elapsed();
    assert!(page.body.contains("Error fetching product details"));
    assert!(page.body.contains("Book Reviews"), "reviews still shown");
    // Under the default timeout (3 s): the variable was read; the margin over 300 ms is for a
    // loaded machine.
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "took {took:?}");
}

#[actix_web::test]
async fn slow_reviews_is_tried_twice_then_given_up() {
    let reviews = Capture::start(Canned::json("{}").after(Duration::from_secs(10)));
    let details = spawn_details(&Env::new());
    let productpage =
        spawn_productpage(Some(&details), Some(&reviews.app), None, &[("BOOKINFO_REVIEWS_TIMEOUT", "300ms")]);
    let start = Instant::now();
    let page = get(&productpage.url("/productpage")).await;
    let took = start.elapsed();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Error fetching product reviews"));
    assert!(page.body.contains("Book Details"));
    assert_eq!(reviews.received().len(), 2, "one retry, as the original");
    // Under one attempt at the default timeout (3 s): the variable was read; the margin over
    // 600 ms is for a loaded machine.
    assert!(took >= Duration::from_millis(600) && took < Duration::from_secs(3), "took {took:?}");
}

#[actix_web::test]
async fn a_failing_reviews_is_retried_once_and_the_api_passes_its_status_on() {
    let reviews = Capture::start(Canned::status(503));
    let productpage = spawn_productpage(None, Some(&reviews.app), None, &[]);
    let answer = get(&productpage.url("/api/v1/products/0/reviews")).await;
    assert_eq!(answer.status, 503);
    assert_eq!(
        answer.body,
        r#"{"error": "Sorry, product reviews are currently unavailable for this book."}"#
    );
    assert_eq!(reviews.received().len(), 2);
}

#[actix_web::test]
async fn ratings_down_shows_the_ratings_error_under_each_review() {
    let reviews = spawn_reviews("v2", Some(&crate::helpers::dead_upstream()), &[]);
    let details = spawn_details(&Env::new());
    let productpage = spawn_productpage(Some(&details), Some(&reviews), None, &[]);
    let page = get(&productpage.url("/productpage")).await;
    assert_eq!(page.count("Ratings service is currently unavailable"), 2);
    assert_eq!(page.count(STAR), 0);
}

#[actix_web::test]
async fn the_api_answers_match_the_original() {
    let stack = spawn_stack("v1");
    let url = |path: &str| stack.productpage.url(path);
    let products = get(&url("/api/v1/products")).await;
    assert_eq!((products.status, products.header("content-type")), (200, Some("application/json")));
    assert_eq!(products.json()[0]["title"], "The Comedy of Errors");
    let product = get(&url("/api/v1/products/0")).await;
    assert_eq!(product.json()["author"], "William Shakespeare");
    let reviews = get(&url("/api/v1/products/0/reviews")).await;
    assert_eq!(reviews.json()["podname"], "reviews-v1");
    let ratings = get(&url("/api/v1/products/0/ratings")).await;
    assert_eq!(ratings.body, r#"{"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}"#);
}

#[actix_web::test]
async fn an_unknown_or_non_numeric_product_id_gets_the_upstream_error_not_a_500() {
    let stack = spawn_stack("v1");
    let details = get(&stack.productpage.url("/api/v1/products/abc")).await;
    assert_eq!(details.status, 400);
    assert_eq!(
        details.body,
        r#"{"error": "Sorry, product details are currently unavailable for this book."}"#
    );
    let reviews = get(&stack.productpage.url("/api/v1/products/abc/reviews")).await;
    assert_eq!(reviews.status, 404);
    let ratings = get(&stack.productpage.url("/api/v1/products/abc/ratings")).await;
    assert_eq!(ratings.status, 400);
    assert_eq!(
        ratings.body,
        r#"{"error": "Sorry, product ratings are currently unavailable for this book."}"#
    );
    let odd = get(&stack.productpage.url("/api/v1/products/%3Cb%3E%20x")).await;
    assert_eq!(odd.status, 400, "{}", odd.body);
}

#[actix_web::test]
async fn a_dead_ratings_gives_the_api_a_500_with_the_original_message() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let answer = get(&productpage.url("/api/v1/products/0/ratings")).await;
    assert_eq!(answer.status, 500);
    assert_eq!(
        answer.body,
        r#"{"error": "Sorry, product ratings are currently unavailable for this book."}"#
    );
}

#[actix_web::test]
async fn health_matches_the_original() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let answer = get(&productpage.url("/health")).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "Product page is healthy"));
    assert_eq!(answer.header("content-type"), Some("text/html; charset=utf-8"));
}

async fn login(productpage: &crate::helpers::TestApp, form: &str, referer: Option<&str>) -> Answer {
    let mut request = client()
        .post(productpage.url("/login"))
        .insert_header(("content-type", "application/x-www-form-urlencoded"));
    if let Some(referer) = referer {
        request = request.insert_header(("referer", referer));
    }
    answer(request.send_body(form.to_owned())).await
}

/// The `name=value` of the first Set-Cookie.
fn session_cookie(answer: &Answer) -> String {
    let set_cookie = answer.header("set-cookie").expect("a session cookie");
    set_cookie.split(';').next().unwrap().to_owned()
}

#[actix_web::test]
async fn sign_in_without_a_referer_redirects_to_the_page_and_sets_the_session() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let signed_in = login(&productpage, "username=jason&passwd=password", None).await;
    assert_eq!(signed_in.status, 302);
    assert_eq!(signed_in.header("location"), Some("/productpage"));
    let cookie = session_cookie(&signed_in);
    assert!(signed_in.header("set-cookie").unwrap().contains("HttpOnly"));
    let page =
        answer(client().get(productpage.url("/productpage")).insert_header(("cookie", cookie)).send()).await;
    assert!(page.body.contains(">jason</p>"), "the page greets the user");
    assert!(page.body.contains("Sign out"));
    assert_eq!(page.header("vary"), Some("Cookie"));
}

#[actix_web::test]
async fn the_sign_in_form_suggests_only_the_users_routing_tells_apart() {
    let hint = |page: &Answer| {
        let start = page.body.find("<p class=\"hint\">").expect("the form's hint");
        let end = start + page.body[start..].find("</p>").expect("its end");
        page.body[start..end].split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let nobody = spawn_productpage(None, None, None, &[]);
    for path in ["/productpage", "/"] {
        let page = get(&nobody.url(path)).await;
        assert_eq!(
            hint(&page),
            "<p class=\"hint\">Any user name and password will do: Bookinfo checks neither."
        );
    }
    let routed = spawn_productpage(None, None, None, &[("BOOKINFO_ROUTED_USERS", " jason,,<eve> , amy")]);
    for path in ["/productpage", "/"] {
        let page = get(&routed.url(path)).await;
        assert!(
            hint(&page).ends_with(
                "Sign in as <b>jason</b>, <b>&#60;eve&#62;</b> or <b>amy</b> to see user-based routing at work."
            ),
            "{}",
            hint(&page)
        );
    }
}

#[actix_web::test]
async fn sign_in_and_out_return_to_a_referer_of_this_site_only() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let own = productpage.url("/productpage?u=normal");
    // Back to the page, always as a path of this site.
    for (referer, back) in
        [(own.as_str(), "/productpage?u=normal"), ("/productpage?u=test", "/productpage?u=test")]
    {
        let signed_in = login(&productpage, "username=jason", Some(referer)).await;
        assert_eq!((signed_in.status, signed_in.header("location")), (302, Some(back)));
        let signed_out =
            answer(client().get(productpage.url("/logout")).insert_header(("referer", referer)).send()).await;
        assert_eq!((signed_out.status, signed_out.header("location")), (302, Some(back)));
    }
    for foreign in [
        "http://evil.example/productpage",
        "javascript:alert(document.cookie)",
        "//evil.example/productpage",
        "/\t/evil.example/",
        &format!("http://{}:1/productpage", productpage.addr.ip()),
    ] {
        let signed_in = login(&productpage, "username=jason", Some(foreign)).await;
        assert_eq!(
            (signed_in.status, signed_in.header("location")),
            (302, Some("/productpage")),
            "{foreign}"
        );
        let signed_out =
            answer(client().get(productpage.url("/logout")).insert_header(("referer", foreign)).send()).await;
        assert_eq!(signed_out.header("location"), Some("/productpage"), "{foreign}");
    }
}

#[actix_web::test]
async fn no_header_a_client_sends_makes_the_redirect_leave_the_site() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let referer = "http://evil.example/productpage";
    for spoof in
        [("x-forwarded-host", "evil.example"), ("forwarded", "host=evil.example"), ("host", "evil.example")]
    {
        let request =
            client().get(productpage.url("/logout")).insert_header(("referer", referer)).insert_header(spoof);
        let location = answer(request.send()).await.header("location").map(str::to_owned);
        let location = location.unwrap();
        assert!(location.starts_with('/') && !location.starts_with("//"), "{spoof:?}: {location}");
    }
}

#[actix_web::test]
async fn the_session_cookie_is_http_only_and_same_site_lax_and_so_is_its_removal() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let signed_in = login(&productpage, "username=jason", None).await;
    let removed = answer(client().get(productpage.url("/logout")).send()).await;
    for set_cookie in [signed_in.header("set-cookie").unwrap(), removed.header("set-cookie").unwrap()] {
        let attributes: Vec<&str> = set_cookie.split(';').map(str::trim).collect();
        assert!(attributes.contains(&"HttpOnly") && attributes.contains(&"SameSite=Lax"), "{set_cookie}");
    }
}

#[actix_web::test]
async fn a_tampered_unsigned_or_foreign_session_cookie_means_signed_out() {
    let details = Capture::start(Canned::json(&details_body()));
    let productpage = spawn_productpage(Some(&details.app), None, None, &[]);
    let cookie = session_cookie(&login(&productpage, "username=jason", None).await);
    let elsewhere = spawn_productpage(None, None, None, &[]);
    let foreign = session_cookie(&login(&elsewhere, "username=jason", None).await);
    let (payload, tag) = cookie.rsplit_once('.').unwrap();
    for forged in [
        payload.replace("jason", "admin") + "." + tag,
        format!("{payload}.{}", tag.replace(|c: char| c.is_ascii_alphabetic(), "A")),
        payload.to_owned(),
        "session=jason".to_owned(),
        "session=u1.jason".to_owned(),
        foreign,
    ] {
        let page = answer(
            client().get(productpage.url("/productpage")).insert_header(("cookie", forged.clone())).send(),
        )
        .await;
        assert_eq!(page.status, 200, "{forged}");
        assert!(page.body.contains("Sign in") && !page.body.contains(">jason</p>"), "{forged}");
    }
    assert!(details.received().iter().all(|r| r.get("end-user").is_none()), "nobody is sent upstream");
    let page =
        answer(client().get(productpage.url("/productpage")).insert_header(("cookie", cookie)).send()).await;
    assert!(page.body.contains(">jason</p>"), "the genuine cookie still signs in");
}

#[actix_web::test]
async fn one_session_key_lets_two_productpages_share_sessions() {
    let key = [("BOOKINFO_SESSION_KEY", "a-secret-of-thirty-two-bytes-or-more")];
    let first = spawn_productpage(None, None, None, &key);
    let second = spawn_productpage(None, None, None, &key);
    let cookie = session_cookie(&login(&first, "username=jason", None).await);
    let page =
        answer(client().get(second.url("/productpage")).insert_header(("cookie", cookie)).send()).await;
    assert!(page.body.contains(">jason</p>"));
}

#[actix_web::test]
async fn sign_out_clears_the_session() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let cookie = session_cookie(&login(&productpage, "username=jason", None).await);
    let signed_out =
        answer(client().get(productpage.url("/logout")).insert_header(("cookie", cookie)).send()).await;
    assert_eq!(signed_out.status, 302);
    let cleared = signed_out.header("set-cookie").unwrap();
    assert!(cleared.starts_with("session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    let page = get(&productpage.url("/productpage")).await;
    assert!(page.body.contains("Sign in"));
}

#[actix_web::test]
async fn a_user_name_is_escaped_in_the_page() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let cookie =
        session_cookie(&login(&productpage, "username=%3Cscript%3Ealert(1)%3C%2Fscript%3E", None).await);
    let page =
        answer(client().get(productpage.url("/productpage")).insert_header(("cookie", cookie)).send()).await;
    assert!(
        page.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || page.body.contains("&lt;script&gt;")
    );
    assert!(!page.body.contains("<script>alert(1)</script>"));
}

#[actix_web::test]
async fn login_refuses_other_methods_and_an_absurdly_long_name() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let get_login = get(&productpage.url("/login")).await;
    assert_eq!((get_login.status, get_login.header("allow")), (405, Some("OPTIONS, POST")));
    let long = format!("username={}", "x".repeat(10_000));
    assert_eq!(login(&productpage, &long, None).await.status, 400);
    let post_logout = answer(client().post(productpage.url("/logout")).send()).await;
    assert_eq!(post_logout.status, 405);
}

#[actix_web::test]
async fn the_session_user_goes_upstream_as_end_user_and_a_client_end_user_never_does() {
    let details = Capture::start(Canned::json(&details_body()));
    let reviews = Capture::start(Canned::json(&reviews_body()));
    let productpage = spawn_productpage(Some(&details.app), Some(&reviews.app), None, &[]);
    // Anonymous, with a forged end-user: nothing is sent on.
    let forged = client().get(productpage.url("/productpage")).insert_header(("end-user", "jason"));
    assert_eq!(answer(forged.send()).await.status, 200);
    assert_eq!(details.received()[0].get("end-user"), None);
    assert_eq!(reviews.received()[0].get("end-user"), None);
    // Signed in as bob, still forging jason: bob is sent.
    let cookie = session_cookie(&login(&productpage, "username=bob", None).await);
    let signed = client()
        .get(productpage.url("/productpage"))
        .insert_header(("cookie", cookie))
        .insert_header(("end-user", "jason"));
    answer(signed.send()).await;
    assert_eq!(details.received()[1].all("end-user"), ["bob"]);
    assert_eq!(reviews.received()[1].all("end-user"), ["bob"]);
}

#[actix_web::test]
async fn tracing_headers_reach_reviews_and_ratings_unchanged() {
    // The vector of the original's own unit test (tests/unit/test_productpage.py).
    let reviews = Capture::start(Canned::json(&reviews_body()));
    let ratings = Capture::start(Canned::json("{}"));
    let productpage = spawn_productpage(None, Some(&reviews.app), Some(&ratings.app), &[]);
    for (path, request_id) in [
        ("reviews", "34eeb41d-d267-9e49-8b84-dde403fc5b72"),
        ("ratings", "34eeb41d-d267-9e49-8b84-dde403fc5b73"),
    ] {
        let request = client()
            .get(productpage.url(&format!("/api/v1/products/0/{path}")))
            .insert_header(("x-request-id", request_id))
            .insert_header(("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"))
            .insert_header(("x-b3-spanid", "e457b5a2e4d86bd1"))
            .insert_header(("x-b3-sampled", "1"))
            .insert_header(("sw8", "40c7fdf104e3de67"))
            .insert_header(("x-envoy-decorator-operation", "productpage.default.svc.cluster.local:9080/*"))
            .insert_header(("x-forwarded-for", "10.0.0.1"));
        assert_eq!(answer(request.send()).await.status, 200);
    }
    for (capture, request_id) in [
        (&reviews, "34eeb41d-d267-9e49-8b84-dde403fc5b72"),
        (&ratings, "34eeb41d-d267-9e49-8b84-dde403fc5b73"),
    ] {
        let received = &capture.received()[0];
        assert_eq!(received.get("x-request-id"), Some(request_id));
        assert_eq!(received.get("x-b3-traceid"), Some("80f198ee56343ba864fe8b2a57d3eff7"));
        assert_eq!(received.get("x-b3-spanid"), Some("e457b5a2e4d86bd1"));
        assert_eq!(received.get("x-b3-sampled"), Some("1"));
        assert_eq!(received.get("sw8"), Some("40c7fdf104e3de67"));
        assert_eq!(received.get("x-envoy-decorator-operation"), None);
        assert_eq!(received.get("x-forwarded-for"), None);
    }
}

#[actix_web::test]
async fn repeated_headers_are_forwarded_in_order() {
    let details = Capture::start(Canned::json(&details_body()));
    let productpage = spawn_productpage(Some(&details.app), None, None, &[]);
    let request = client()
        .get(productpage.url("/api/v1/products/0"))
        .append_header(("cookie", "a=1"))
        .append_header(("cookie", "b=2"));
    answer(request.send()).await;
    assert_eq!(details.received()[0].all("cookie"), ["a=1", "b=2"]);
}

#[actix_web::test]
async fn upstream_connections_are_reused_across_requests() {
    let details = Capture::start(Canned::json(&details_body()));
    let productpage = spawn_productpage(Some(&details.app), None, None, &[]);
    for _ in 0..3 {
        assert_eq!(get(&productpage.url("/api/v1/products/0")).await.status, 200);
    }
    let peers: std::collections::BTreeSet<_> = details.received().iter().map(|r| r.peer).collect();
    assert_eq!(peers.len(), 1, "one pooled connection, got {peers:?}");
}

#[actix_web::test]
async fn metrics_count_upstream_results_by_app_and_code() {
    let stack = spawn_stack("v1");
    get(&stack.productpage.url("/productpage")).await;
    get(&stack.productpage.url("/api/v1/products/abc")).await;
    let metrics = get(&stack.productpage.url("/metrics")).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    for line in [
        "# TYPE request_result_total counter",
        r#"request_result_total{destination_app="details",response_code="200"} 1"#,
        r#"request_result_total{destination_app="details",response_code="400"} 1"#,
        r#"request_result_total{destination_app="reviews",response_code="200"} 1"#,
    ] {
        assert!(metrics.body.lines().any(|l| l == line), "missing {line} in\n{}", metrics.body);
    }
}

#[actix_web::test]
async fn static_files_are_served_from_the_binary() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let css = get(&productpage.url("/static/css/bookinfo.css")).await;
    assert_eq!((css.status, css.header("content-type")), (200, Some("text/css; charset=utf-8")));
    assert!(css.body.contains(".text-red-500"));
    let png = get(&productpage.url("/static/img/izzy.png")).await;
    assert_eq!((png.status, png.header("content-type")), (200, Some("image/png")));
    let etag = png.header("etag").unwrap().to_owned();
    let revalidated = answer(
        client().get(productpage.url("/static/img/izzy.png")).insert_header(("if-none-match", etag)).send(),
    )
    .await;
    assert_eq!(revalidated.status, 304);
    assert_eq!(get(&productpage.url("/static/nope.js")).await.status, 404);
}

#[actix_web::test]
async fn unknown_paths_and_trailing_slashes_are_not_found() {
    let productpage = spawn_productpage(None, None, None, &[]);
    for path in ["/nope", "/productpage/", "/api/v1/products/"] {
        assert_eq!(get(&productpage.url(path)).await.status, 404, "{path}");
    }
    let post = answer(client().post(productpage.url("/productpage")).send()).await;
    assert_eq!(post.status, 405);
}

#[actix_web::test]
async fn head_answers_without_a_body_and_the_index_lists_the_services() {
    let stack = spawn_stack("v1");
    let head = answer(client().head(stack.productpage.url("/productpage")).send()).await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    let index = get(&stack.productpage.url("/")).await;
    assert_eq!(index.status, 200);
    for upstream in [&stack.details, &stack.reviews, &stack.ratings] {
        assert!(index.body.contains(&format!("http://{}", upstream.addr)));
    }
    assert!(index.body.contains("productpage?u=normal"));
}

#[actix_web::test]
async fn the_page_makes_no_ratings_call_of_its_own() {
    let ratings = Capture::start(Canned::json("{}"));
    let stack_ratings = spawn_ratings(&Env::new());
    let reviews = spawn_reviews("v2", Some(&stack_ratings), &[]);
    let productpage = spawn_productpage(None, Some(&reviews), Some(&ratings.app), &[]);
    get(&productpage.url("/productpage")).await;
    assert!(ratings.received().is_empty(), "only reviews calls ratings while rendering");
}
