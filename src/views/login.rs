//! The sign-in page.

use maud::{Markup, Render, html};

use super::components::{Banner, Tone};
use super::layout::{self, Chrome};
use crate::auth::csrf;
use crate::contract::paths;

pub struct LoginPage<'a> {
    pub csrf: &'a str,
    /// Where to go after signing in.
    pub next: &'a str,
    /// The username to fill in again after a failed attempt.
    pub username: &'a str,
    pub notice: Option<(Tone, &'a str, String)>,
    /// No operator exists yet: say how to make one.
    pub no_operators: bool,
}

impl Render for LoginPage<'_> {
    fn render(&self) -> Markup {
        let main = html! {
            section.card.sign-in aria-labelledby="sign-in-title" {
                h1 #sign-in-title { "Sign in" }
                @if let Some((tone, title, detail)) = &self.notice {
                    (Banner { tone: *tone, title, body: html! { p { (detail) } } })
                }
                @if self.no_operators {
                    (Banner { tone: Tone::Info, title: "No operator exists yet", body: html! {
                        p { "Make the first one on the machine Hookplane runs on, while it is stopped:" }
                        pre { code { "hookplane admin create-user --username you --role admin" } }
                        p {
                            "Until then, a browser on that machine can use the dashboard as an operator: open the "
                            "one-time setup link Hookplane printed in its log when it started ("
                            code { "/setup?code=…" } ")."
                        }
                    } })
                }
                form method="post" action=(paths::LOGIN) {
                    input type="hidden" name=(csrf::FIELD) value=(self.csrf);
                    input type="hidden" name="next" value=(self.next);
                    label {
                        "Username"
                        input type="text" name="username" value=(self.username) autocomplete="username" required
                            autofocus[self.username.is_empty()] maxlength="64";
                    }
                    label {
                        "Password"
                        input type="password" name="password" autocomplete="current-password" required
                            autofocus[!self.username.is_empty()] maxlength="1024";
                    }
                    button.button.button-primary type="submit" { "Sign in" }
                }
            }
        };
        layout::page("Sign in", &Chrome::default(), main)
    }
}
