//! A real headless Chromium, driven through ChromeDriver's W3C WebDriver protocol: the few
//! commands the viewer's tests need (open, find, click, read, run a script, screenshot, read
//! the browser's console), spoken over HTTP with the tests' own client. A WebDriver crate would
//! bring a second copy of several crates of the tree for these eight requests.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::client;
use crate::process::Proc;

/// Where Debian's packages put them (`apt-get install chromium chromium-driver`).
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How W3C WebDriver names an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; the driver stops with it.
pub struct Browser {
    driver: Proc,
    base: String,
}

/// An element of the page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts ChromeDriver on a free port and a headless Chromium under it; fails the test when
    /// they are not installed.
    pub async fn start() -> Self {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(Path::new(program).exists(), "no {program}: apt-get install chromium chromium-driver");
        }
        let driver = Proc::start_program(CHROMEDRIVER, &["--port=0"], &[]);
        let port: u16 = driver
            .wait_for(Duration::from_secs(30), |l| {
                l.split("started successfully on port ").nth(1)?.trim_end_matches('.').parse().ok()
            })
            .await;
        let base = format!("http://127.0.0.1:{port}");
        // Headless, and kept off the network it cannot reach here (no updates, no sync).
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1400,900",
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let session = post(&format!("{base}/session"), &capabilities).await;
        let id = session["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {session}"));
        Self { driver, base: format!("{base}/session/{id}") }
    }

    async fn command(&self, path: &str, body: &Value) -> Value {
        post(&format!("{}{path}", self.base), body).await
    }

    /// Opens `url` and waits for its load.
    pub async fn open(&self, url: &str) {
        self.command("/url", &json!({ "url": url })).await;
    }

    /// The elements `css` selects now.
    pub async fn all(&self, css: &str) -> Vec<Element<'_>> {
        let found = self.command("/elements", &json!({"using": "css selector", "value": css})).await;
        found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str())
            .map(|id| Element { browser: self, id: id.to_owned() })
            .collect()
    }

    /// Waits until `css` selects at least `count` elements, and returns them.
    pub async fn wait_for(&self, css: &str, count: usize) -> Vec<Element<'_>> {
        crate::wait::eventually(
            Duration::from_secs(15),
            || format!("{count} elements {css:?} on the page"),
            || async {
                let found = self.all(css).await;
                (found.len() >= count).then_some(found)
            },
        )
        .await
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns what it returns.
    pub async fn run(&self, script: &str, args: &[Value]) -> Value {
        self.command("/execute/sync", &json!({"script": script, "args": args})).await
    }

    /// The page as PNG, into `file`.
    pub async fn screenshot(&self, file: &Path) {
        let shot = get_value(&format!("{}/screenshot", self.base)).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().unwrap()).unwrap();
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, png).unwrap();
    }

    /// What the page logged as errors in the console (uncaught exceptions among them).
    pub async fn console_errors(&self) -> Vec<String> {
        let log = self.command("/se/log", &json!({"type": "browser"})).await;
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Ends the session and the driver.
    pub async fn quit(mut self) {
        let _ = client().delete(&self.base).send().await;
        self.driver.signal(nix::sys::signal::Signal::SIGTERM);
        let _ = self.driver.wait(Duration::from_secs(10)).await;
    }
}

impl Element<'_> {
    fn path(&self, rest: &str) -> String {
        format!("{}/element/{}{rest}", self.browser.base, self.id)
    }

    /// Its text, as rendered.
    pub async fn text(&self) -> String {
        get_value(&self.path("/text")).await.as_str().unwrap_or_default().to_owned()
    }

    /// The value of its attribute `name`.
    pub async fn attribute(&self, name: &str) -> Option<String> {
        get_value(&self.path(&format!("/attribute/{name}"))).await.as_str().map(str::to_owned)
    }

    /// Clicks it.
    pub async fn click(&self) {
        post(&self.path("/click"), &json!({})).await;
    }
}

/// A command's `value`, failing the test on a WebDriver error.
async fn post(url: &str, body: &Value) -> Value {
    let mut response = client().post(url).send_json(body).await.expect("webdriver");
    value(url, response.json::<Value>().limit(64 * 1024 * 1024).await.expect("webdriver JSON"))
}

async fn get_value(url: &str) -> Value {
    let mut response = client().get(url).send().await.expect("webdriver");
    value(url, response.json::<Value>().limit(64 * 1024 * 1024).await.expect("webdriver JSON"))
}

fn value(url: &str, answer: Value) -> Value {
    let value = answer["value"].clone();
    assert!(value.get("error").is_none(), "{url}: {value}");
    value
}
