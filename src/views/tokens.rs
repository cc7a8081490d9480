//! The API tokens page (admins): the tokens `listTokens` answers, a form to make one, and revocation.

use maud::{Markup, Render, html};

use super::components::{Badge, Banner, Copied, CopyButton, Tone};
use super::format;
use super::layout::{self, Chrome};
use crate::auth::csrf;
use crate::contract::paths;
use crate::contract::{TokenCreated, TokenOut};
use crate::domain::access::Role;

pub struct TokensView<'a> {
    pub tokens: &'a [TokenOut],
    /// A token just made: its secret is on this page once.
    pub made: Option<&'a TokenCreated>,
    pub notice: Option<(Tone, String)>,
    pub chrome: &'a Chrome,
}

impl Render for TokensView<'_> {
    fn render(&self) -> Markup {
        let csrf_field = html! {
            @if let Some(t) = &self.chrome.csrf { input type="hidden" name=(csrf::FIELD) value=(t); }
        };
        let main = html! {
            div.page-header { h1 { "API tokens" } }
            @if let Some((tone, text)) = &self.notice {
                (Banner { tone: *tone, title: text, body: html! {} })
            }
            @if let Some(m) = self.made {
                (Banner { tone: Tone::Success, title: &format!("Made token {}", m.token.name), body: html! {
                    p { "Copy it now: it is shown this once, and Hookplane keeps only its SHA-256." }
                    p { code #new-token { (m.secret) } " " (CopyButton { label: "Copy", what: Copied::Element("new-token") }) }
                } })
            }
            section.card aria-labelledby="make-title" {
                h2 #make-title { "Make a token" }
                form.filter-row method="post" action=(paths::DASHBOARD_TOKENS) autocomplete="off" {
                    input type="hidden" name="intent" value="create";
                    (csrf_field)
                    label { span { "Name" } input type="text" name="name" required maxlength="64" placeholder="deploy-monitor"; }
                    label { span { "Role" }
                        select name="role" {
                            @for r in Role::ALL { option value=(r.as_str()) selected[r == Role::Viewer] { (r.as_str()) } }
                        }
                    }
                    button.button.button-primary type="submit" { "Make token" }
                }
            }
            div.card.table-card {
                @if self.tokens.is_empty() {
                    p.empty { "No tokens yet." }
                } @else {
                    table.index-table {
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Made" }
                            th scope="col" { "By" } th scope="col" { "State" } th scope="col" { span.visually-hidden { "Actions" } }
                        } }
                        tbody {
                            @for t in self.tokens.iter().rev() {
                                tr {
                                    td { (t.name) " " code.subdued { (t.id) } }
                                    td { (crate::domain::access::Role::from(t.role).as_str()) }
                                    td { time datetime=(t.created_at) { (format::time(&t.created_at)) } }
                                    td { (t.created_by) }
                                    td {
                                        @match &t.revoked_at {
                                            Some(at) => { (Badge { tone: Tone::Neutral, label: "Revoked" }) " " (format::time(at)) },
                                            None => (Badge { tone: Tone::Success, label: "Live" }),
                                        }
                                    }
                                    td {
                                        @if t.revoked_at.is_none() {
                                            form method="post" action=(paths::DASHBOARD_TOKENS) {
                                                input type="hidden" name="intent" value="revoke";
                                                input type="hidden" name="token" value=(t.id);
                                                (csrf_field)
                                                button.button type="submit" { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        };
        layout::page("API tokens", self.chrome, main)
    }
}
