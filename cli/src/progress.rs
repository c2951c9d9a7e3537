//! Progress on a terminal, nothing in a pipe or a log: indicatif hides its
//! bars when standard error is not a terminal, so no `\r` ever reaches a file.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `len` units of `what` ("trials", "clusters"), on standard
/// error, hidden when that is not a terminal.
#[must_use]
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template =
        format!("{{msg}} [{{bar:32}}] {{pos}}/{{len}} {what}, {{elapsed}} (eta {{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A spinner with a message that the caller updates, hidden the same way.
#[must_use]
pub fn spinner() -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
        spinner.set_style(style);
    }
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    spinner
}
