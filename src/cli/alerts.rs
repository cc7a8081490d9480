//! `hookplane alerts test --sink pagerduty|betterstack|webhook`: one test incident told to one sink, with
//! the sink's answer printed, so a team sees its paging work before the first real incident.

use anyhow::Context as _;

use super::{ConfigArgs, load_settings, runtime};
use crate::domain::incident::{Figure, Finding, Incident, NotifyAction, Rule, SinkAnswer, SinkKind, Subject};
use crate::domain::{Clock as _, Source, SystemClock};
use crate::sinks::{Sinks, Unsent};

#[derive(clap::Subcommand, Debug)]
pub enum AlertsCommand {
    /// Send a test incident to one sink (and resolve it again where the sink keeps incidents open), and
    /// print the sink's answers.
    Test(TestArgs),
}

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// pagerduty, betterstack or webhook.
    #[arg(long)]
    sink: String,
    #[command(flatten)]
    config: ConfigArgs,
}

pub fn run(cmd: AlertsCommand) -> anyhow::Result<()> {
    let AlertsCommand::Test(args) = cmd;
    let kind: SinkKind = args.sink.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let settings = load_settings(&args.config.flags())?;
    let sinks = Sinks::new(settings.sink_settings()).context("cannot set up the alert sinks")?;
    if !sinks.settings().kinds().contains(&kind) {
        anyhow::bail!("{}", not_configured(kind));
    }
    let now = SystemClock.now();
    let mut incident = Incident::open(
        Finding {
            subject: Subject::Source(Source::Standard),
            subject_name: "hookplane-alerts-test".to_owned(),
            rule: Rule::ConsecutiveFailures,
            summary: "a test notification from `hookplane alerts test`; nothing is wrong".to_owned(),
            figures: vec![Figure::new("test", true)],
        },
        now,
        &[kind],
    );
    runtime()?.block_on(async {
        let answer = send(&sinks, kind, NotifyAction::Trigger, &incident).await?;
        if let SinkAnswer::Accepted { external_id: Some(id), .. } = &answer {
            incident.external_ids.insert(kind.as_str().to_owned(), id.clone());
        }
        let accepted = matches!(answer, SinkAnswer::Accepted { .. });
        if accepted && kind != SinkKind::Webhook {
            send(&sinks, kind, NotifyAction::Resolve, &incident).await?;
        }
        if accepted { Ok(()) } else { anyhow::bail!("the {} sink did not accept the test notification", kind.as_str()) }
    })
}

async fn send(sinks: &Sinks, kind: SinkKind, action: NotifyAction, incident: &Incident) -> anyhow::Result<SinkAnswer> {
    let answer = match sinks.send(kind, action, incident, 0, SystemClock.now()).await {
        Ok(a) => a,
        Err(Unsent::Off) => anyhow::bail!("{}", not_configured(kind)),
        Err(Unsent::NeedsTrigger) => anyhow::bail!("Better Stack gave no incident id to resolve"),
    };
    let (verdict, text) = match &answer {
        SinkAnswer::Accepted { answer, .. } => ("accepted", answer),
        SinkAnswer::Retry { answer } => ("not taken (Hookplane would try again)", answer),
        SinkAnswer::Refused { answer } => ("refused", answer),
    };
    println!("{} {}: {verdict}: {text}", kind.as_str(), action.as_str());
    Ok(answer)
}

fn not_configured(kind: SinkKind) -> String {
    match kind {
        SinkKind::Pagerduty => "the pagerduty sink is off: set PAGERDUTY_ROUTING_KEY".to_owned(),
        SinkKind::Betterstack => "the betterstack sink is off: set BETTERSTACK_API_TOKEN".to_owned(),
        SinkKind::Webhook => {
            "the webhook sink is off: set alerts.webhook_url and HOOKPLANE_ALERTS_WEBHOOK_SECRET".to_owned()
        }
    }
}
