//! Lines for the terminal that never panic: once a reader goes away (`bookinfo up | head`),
//! output to it stops quietly and the program goes on.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// `text` and a newline on standard output.
pub fn line(text: &str) {
    write(&mut io::stdout().lock(), text, &STDOUT_CLOSED);
}

/// `text` and a newline on standard error.
pub fn error(text: &str) {
    write(&mut io::stderr().lock(), text, &STDERR_CLOSED);
}

fn write(out: &mut dyn Write, text: &str, closed: &AtomicBool) {
    if closed.load(Ordering::Relaxed) {
        return;
    }
    if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
        closed.store(true, Ordering::Relaxed);
    }
}
