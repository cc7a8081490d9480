//! The runbook page: `docs/runbook.md`, compiled into the binary and rendered once per request. Its
//! section anchors are the alert rules' names (`{#consecutive_failures}`), which every banner,
//! notification and incident page links to.

use maud::{Markup, PreEscaped, html};
use pulldown_cmark::{Options, Parser, html as md};

use super::layout::{self, Chrome};

pub const RUNBOOK_MD: &str = include_str!("../../docs/runbook.md");

/// The runbook as HTML. The source is ours, compiled in: its HTML can be trusted.
pub fn runbook_html() -> String {
    let mut out = String::with_capacity(RUNBOOK_MD.len() * 2);
    md::push_html(&mut out, Parser::new_ext(RUNBOOK_MD, Options::ENABLE_HEADING_ATTRIBUTES));
    out
}

pub fn page(chrome: &Chrome) -> Markup {
    let main = html! {
        article.card.runbook { (PreEscaped(runbook_html())) }
    };
    layout::page("Runbook", chrome, main)
}

#[cfg(test)]
mod tests {
    use crate::domain::incident::Rule;

    #[test]
    fn every_rule_has_its_section() {
        let html = super::runbook_html();
        for rule in Rule::ALL {
            assert!(html.contains(&format!("id=\"{}\"", rule.as_str())), "no section for {rule}");
        }
    }
}
