//! Incidents: opened, kept and resolved as the alert rules' findings say (the decision is
//! `Incident::step`), acknowledged by operators, and their notifications' progress.

use std::collections::BTreeMap;

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

use super::{StoreError, audit, tables};
use crate::domain::audit::AuditEntry;
use crate::domain::ids::IncidentId;
use crate::domain::incident::{
    AlertRules, Finding, Incident, IncidentState, NotifyState, Rule, SinkAnswer, SinkKind, Subject,
};
use crate::domain::{SubscriptionId, Timestamp};

/// Writes `after`, keeping the open index and the notification index in step with it.
fn put(tx: &WriteTransaction, before: Option<&Incident>, after: &Incident) -> Result<(), StoreError> {
    let id = after.id.as_u128();
    tx.open_table(tables::INCIDENTS.def())?.insert(id, tables::INCIDENTS.encode(after)?.as_slice())?;
    let mut notify = tx.open_table(tables::INCIDENTS_NOTIFY)?;
    if let Some(at) = before.and_then(Incident::next_notification_at) {
        notify.remove((at.millis(), id))?;
    }
    if let Some(at) = after.next_notification_at() {
        notify.insert((at.millis(), id), ())?;
    }
    let key = after.subject.key();
    let mut open = tx.open_table(tables::INCIDENTS_OPEN)?;
    if after.resolved_at.is_some() {
        // Only its own entry: a newer incident of the same rule may have opened since.
        let current = open.get((key.as_str(), after.rule.as_str()))?.map(|v| v.value());
        if current == Some(id) {
            open.remove((key.as_str(), after.rule.as_str()))?;
        }
    } else {
        open.insert((key.as_str(), after.rule.as_str()), id)?;
    }
    Ok(())
}

fn get_in(tx: &WriteTransaction, id: u128) -> Result<Option<Incident>, StoreError> {
    let t = tx.open_table(tables::INCIDENTS.def())?;
    let row = t.get(id)?;
    row.map(|v| tables::INCIDENTS.decode(v.value())).transpose()
}

/// What one evaluation changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub opened: Vec<IncidentId>,
    pub resolved: Vec<IncidentId>,
}

/// Brings the incidents of the `evaluated` rules in line with `findings` (the rules that hold now): an
/// incident opens for a new finding, keeps its place while its rule holds, and resolves once its rule has
/// been clear for `rules.resolve_after_minutes`. Incidents of rules not `evaluated` are left alone.
pub fn reconcile(
    db: &Database,
    findings: Vec<Finding>,
    evaluated: &[Rule],
    now: Timestamp,
    rules: &AlertRules,
    sinks: &[SinkKind],
) -> Result<Reconciled, StoreError> {
    let mut found: BTreeMap<(String, Rule), Finding> =
        findings.into_iter().map(|f| ((f.subject.key(), f.rule), f)).collect();
    let mut done = Reconciled::default();
    let mut changed = false;
    let tx = db.begin_write()?;
    let open: Vec<u128> = {
        let t = tx.open_table(tables::INCIDENTS_OPEN)?;
        let mut ids = Vec::new();
        for row in t.iter()? {
            ids.push(row?.1.value());
        }
        ids
    };
    for id in open {
        let Some(before) = get_in(&tx, id)? else { continue };
        if !evaluated.contains(&before.rule) {
            continue;
        }
        let finding = found.remove(&(before.subject.key(), before.rule));
        let step = before.step(finding.is_some(), now, rules.resolve_after_ms());
        let mut after = before.clone();
        if after.apply(step, finding.as_ref().map(|f| f.figures.as_slice()), now, sinks) {
            changed = true;
            put(&tx, Some(&before), &after)?;
            if after.resolved_at.is_some() {
                done.resolved.push(after.id);
            }
        }
    }
    for (_, finding) in found {
        let incident = Incident::open(finding, now, sinks);
        put(&tx, None, &incident)?;
        done.opened.push(incident.id);
        changed = true;
    }
    // Most evaluations change nothing: no commit, so no sync and no longer hold on the write lock the
    // ingest writer needs.
    if changed {
        tx.commit()?;
    } else {
        tx.abort()?;
    }
    Ok(done)
}

pub fn get(db: &Database, id: IncidentId) -> Result<Option<Incident>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::INCIDENTS.def())?;
    let row = t.get(id.as_u128())?;
    row.map(|v| tables::INCIDENTS.decode(v.value())).transpose()
}

/// Which incidents to list; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub state: Option<IncidentState>,
    pub rule: Option<Rule>,
    pub subscription: Option<SubscriptionId>,
}

impl IncidentFilter {
    fn matches(&self, i: &Incident) -> bool {
        self.state.is_none_or(|s| s == i.state())
            && self.rule.is_none_or(|r| r == i.rule)
            && self.subscription.is_none_or(|s| i.subject == Subject::Subscription(s))
    }
}

/// Up to `limit` incidents matching `filter`, newest first, older than `before`; and the cursor for the
/// next page when there may be more. At most `SCAN_LIMIT` rows are examined per page.
pub fn list(
    db: &Database,
    filter: &IncidentFilter,
    before: Option<IncidentId>,
    limit: usize,
) -> Result<(Vec<Incident>, Option<IncidentId>), StoreError> {
    const SCAN_LIMIT: usize = 10_000;
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::INCIDENTS.def())?;
    let high = before.map_or(u128::MAX, IncidentId::as_u128);
    let mut out: Vec<Incident> = Vec::new();
    for (scanned, row) in t.range(..high)?.rev().enumerate() {
        let incident = tables::INCIDENTS.decode(row?.1.value())?;
        if scanned == SCAN_LIMIT {
            return Ok((out, Some(incident.id)));
        }
        if !filter.matches(&incident) {
            continue;
        }
        if out.len() == limit {
            return Ok((out.clone(), out.last().map(|i| i.id)));
        }
        out.push(incident);
    }
    Ok((out, None))
}

/// Open incidents by rule, every rule listed: what the metrics export.
pub fn open_counts(db: &Database) -> Result<Vec<(Rule, u64)>, StoreError> {
    let tx = db.begin_read()?;
    let index = tx.open_table(tables::INCIDENTS_OPEN)?;
    let mut counts: BTreeMap<Rule, u64> = Rule::ALL.into_iter().map(|r| (r, 0)).collect();
    for row in index.iter()? {
        if let Ok(rule) = row?.0.value().1.parse::<Rule>() {
            *counts.entry(rule).or_default() += 1;
        }
    }
    Ok(counts.into_iter().collect())
}

#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error("no incident {0}")]
    NotFound(IncidentId),
    #[error("incident {0} resolved already; there is nothing to acknowledge")]
    Resolved(IncidentId),
    #[error("incident {id} was acknowledged already, by {by}")]
    Acknowledged { id: IncidentId, by: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::task::TaskFailed> for AckError {
    fn from(e: crate::task::TaskFailed) -> Self {
        AckError::Store(e.into())
    }
}

/// Records who acknowledged the incident, queues the sinks' acknowledgements, and appends `entry` to the
/// audit log, all in one transaction.
pub fn acknowledge(
    db: &Database,
    id: IncidentId,
    by: &str,
    now: Timestamp,
    sinks: &[SinkKind],
    entry: &AuditEntry,
) -> Result<Incident, AckError> {
    let tx = db.begin_write().map_err(StoreError::from)?;
    let before = get_in(&tx, id.as_u128())?.ok_or(AckError::NotFound(id))?;
    if before.resolved_at.is_some() {
        return Err(AckError::Resolved(id));
    }
    if let Some(ack) = &before.acknowledged {
        return Err(AckError::Acknowledged { id, by: ack.by.clone() });
    }
    let mut after = before.clone();
    after.acknowledge(by, now, sinks);
    put(&tx, Some(&before), &after)?;
    audit::append(&tx, entry)?;
    tx.commit().map_err(StoreError::from)?;
    Ok(after)
}

/// Incidents with a notification due at `now`, soonest first.
pub fn due(db: &Database, now: Timestamp, limit: usize) -> Result<Vec<Incident>, StoreError> {
    let tx = db.begin_read()?;
    let index = tx.open_table(tables::INCIDENTS_NOTIFY)?;
    let t = tx.open_table(tables::INCIDENTS.def())?;
    let mut out = Vec::new();
    for row in index.range(..=(now.millis(), u128::MAX))?.take(limit) {
        let (_, id) = row?.0.value();
        if let Some(v) = t.get(id)? {
            out.push(tables::INCIDENTS.decode(v.value())?);
        }
    }
    Ok(out)
}

/// What became of one try of notification `index` of incident `id`.
pub enum Tried {
    Answered(SinkAnswer),
    /// Not sent, and not needed any more.
    Skipped(String),
    /// Not sent yet: it waits for another notification (Better Stack's resolve for its trigger).
    Later(Timestamp),
}

pub fn tried(db: &Database, id: IncidentId, index: usize, outcome: Tried, now: Timestamp) -> Result<(), StoreError> {
    let tx = db.begin_write()?;
    let Some(before) = get_in(&tx, id.as_u128())? else { return Ok(()) };
    let mut after = before.clone();
    let Some(n) = after.notifications.get_mut(index) else { return Ok(()) };
    match outcome {
        Tried::Answered(answer) => {
            n.answered(&answer, now);
            if let SinkAnswer::Accepted { external_id: Some(ext), .. } = &answer {
                after.external_ids.insert(n.sink.as_str().to_owned(), ext.clone());
            }
        }
        Tried::Skipped(why) => n.state = NotifyState::Skipped { at: now, why },
        Tried::Later(at) => n.state = NotifyState::Pending { next_at: at },
    }
    put(&tx, Some(&before), &after)?;
    tx.commit()?;
    Ok(())
}

/// The open incident of `rule` for `subject`, if one is open.
pub fn open_id_in(tx: &redb::ReadTransaction, subject: Subject, rule: Rule) -> Result<Option<IncidentId>, StoreError> {
    let index = tx.open_table(tables::INCIDENTS_OPEN)?;
    let key = subject.key();
    let id = index.get((key.as_str(), rule.as_str()))?.map(|v| IncidentId::from_u128(v.value()));
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::incident::Figure;

    fn finding(rule: Rule) -> Finding {
        Finding {
            subject: Subject::Subscription(SubscriptionId::from_u128(7)),
            subject_name: "orders".into(),
            rule,
            summary: "holds".into(),
            figures: vec![Figure::new("n", 1)],
        }
    }

    #[test]
    fn open_incidents_are_counted_by_rule_and_a_resolved_one_leaves_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("i.redb")).unwrap();
        super::super::migrations::migrate(&db).unwrap();
        let rules = AlertRules::default();
        let evaluated = [Rule::ConsecutiveFailures, Rule::Silence];
        let now = Timestamp::from_millis(1_000);
        let both = vec![finding(Rule::ConsecutiveFailures), finding(Rule::Silence)];
        let done = reconcile(&db, both, &evaluated, now, &rules, &[]).unwrap();
        assert_eq!(done.opened.len(), 2);
        let count = |rule| open_counts(&db).unwrap().into_iter().find(|(r, _)| *r == rule).unwrap().1;
        assert_eq!((count(Rule::ConsecutiveFailures), count(Rule::Silence), count(Rule::Handshake)), (1, 1, 0));
        // Still holding: nothing opens again, nothing changes.
        let again = reconcile(
            &db,
            vec![finding(Rule::Silence), finding(Rule::ConsecutiveFailures)],
            &evaluated,
            now,
            &rules,
            &[],
        );
        assert_eq!(again.unwrap(), Reconciled::default());
        // Silence clears; with no wait configured it resolves at once.
        let done = reconcile(&db, vec![finding(Rule::ConsecutiveFailures)], &evaluated, now, &rules, &[]).unwrap();
        assert_eq!(done.resolved.len(), 1);
        assert_eq!((count(Rule::ConsecutiveFailures), count(Rule::Silence)), (1, 0));
    }
}
