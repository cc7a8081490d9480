//! Full-text search over payloads with tantivy. The index is derived data (invariant 6): redb holds every
//! delivery, the index only answers "which deliveries contain this text", and it can be deleted at any time
//! and rebuilt from redb.
//!
//! One thread (the indexer, `indexer.rs`) owns the `IndexWriter`. The ingest writer tells it which deliveries
//! each commit stored; it indexes them and commits every `commit_docs` documents or `commit_interval_ms`,
//! recording the newest delivery id it indexed in the commit payload. At start it re-indexes from that
//! position minus a margin (a delivery's id is taken a moment before its commit, so commits can finish out of
//! id order), which also covers a crash between a redb commit and the next index commit.

pub mod indexer;
mod pressure;
mod query;
mod words;
mod worker;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tantivy::schema::{
    BytesOptions, FAST, INDEXED, IndexRecordOption, JsonObjectOptions, OwnedValue, STRING, Schema, TextFieldIndexing,
    TextOptions,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, RemoveLongFilter, TextAnalyzer};
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term, doc};

pub use query::{Hit, MAX_QUERY_CHARS, SearchError, SearchQuery, Snippets};
use serde::Deserialize;

use crate::domain::{Delivery, DeliveryId, SubscriptionId, Timestamp};

/// The `[search]` section: how the indexer batches its commits and when it steps aside for ingest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSettings {
    pub commit_interval_ms: u64,
    pub commit_docs: usize,
    pub memory_mib: u32,
    pub catch_up_margin_seconds: u32,
    pub defer_batch: usize,
    pub defer_busy_percent: u8,
    pub defer_calm_ms: u64,
    pub max_queued_kib: usize,
}

/// Bumped when the schema or the way documents are built changes: an index of another version is rebuilt.
pub const SCHEMA_VERSION: u32 = 3;

/// How JSON payload values are indexed: each string value whole, lower-cased, so that a path query
/// (`customer.email:jon@example.com`, `line_items.sku:SKU-1042`) matches a value exactly, whatever its case.
/// Words inside values are found through the body field. One term per value instead of one per word with
/// positions halves what indexing a delivery costs.
const VALUE_TOKENIZER: &str = "hookplane_value";
/// Longer values are not path-searchable (their words still are, in the body). Values that long are URLs
/// and free text, searched by their words; each is unique, and indexing them whole cost a fifth of
/// indexing an order.
const MAX_VALUE_BYTES: usize = 64;
/// The schema's own fields: any other name in a query is a path into the JSON payload.
const FIELD_NAMES: [&str; 10] =
    ["id", "body", "payload", "source", "topic", "account", "subscription", "provider_id", "event_id", "received"];
const VERSION_FILE: &str = "hookplane-search-version";

/// Most body text indexed per delivery. Webhook bodies are a few kilobytes; the rare 5 MiB one is still
/// found by what its first quarter megabyte says.
pub const MAX_INDEXED_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
    #[error("search index directory {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

#[derive(Clone, Copy)]
pub struct Fields {
    /// The delivery id, 16 bytes big-endian: sorts newest first, and is the term deletes and cursors use.
    pub id: tantivy::schema::Field,
    /// The body's words: a JSON object's values (`words.rs`), or the whole text of anything else.
    pub body: tantivy::schema::Field,
    /// The body as JSON, each string value whole and lower-cased: `customer.email:jon@example.com` finds it.
    pub payload: tantivy::schema::Field,
    pub source: tantivy::schema::Field,
    pub topic: tantivy::schema::Field,
    pub account: tantivy::schema::Field,
    pub subscription: tantivy::schema::Field,
    /// Provider delivery id and event id, exact.
    pub provider_id: tantivy::schema::Field,
    pub event_id: tantivy::schema::Field,
    /// Arrival time in Unix milliseconds.
    pub received: tantivy::schema::Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextFieldIndexing::default()
        .set_tokenizer("default")
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let value = TextFieldIndexing::default().set_tokenizer(VALUE_TOKENIZER).set_index_option(IndexRecordOption::Basic);
    let fields = Fields {
        id: b.add_bytes_field("id", BytesOptions::default().set_indexed().set_fast()),
        body: b.add_text_field("body", TextOptions::default().set_indexing_options(text)),
        payload: b.add_json_field("payload", JsonObjectOptions::default().set_indexing_options(value)),
        source: b.add_text_field("source", STRING),
        topic: b.add_text_field("topic", STRING),
        account: b.add_text_field("account", STRING),
        subscription: b.add_text_field("subscription", STRING),
        provider_id: b.add_text_field("provider_id", STRING),
        event_id: b.add_text_field("event_id", STRING),
        received: b.add_i64_field("received", INDEXED | FAST),
    };
    (b.build(), fields)
}

pub fn id_bytes(id: DeliveryId) -> [u8; 16] {
    id.as_u128().to_be_bytes()
}

/// What an existing index says about itself when opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// Re-index from this delivery id on (the newest one the last commit held).
    Resume(Option<Position>),
    /// Created empty (missing, corrupt or of another schema version): index everything.
    Rebuild,
}

pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    dir: PathBuf,
    /// Set when the index was found missing or damaged while running, until its rebuild has caught up:
    /// searches answer `search_unavailable` meanwhile.
    damaged: std::sync::atomic::AtomicBool,
    /// Tells the indexer to rebuild, once it runs (`indexer::spawn` sets it).
    alarm: std::sync::OnceLock<std::sync::mpsc::Sender<indexer::Msg>>,
}

/// What a search says while the index is being rebuilt.
const REBUILDING: &str = "the search index was found missing or damaged and is being rebuilt from storage; \
                          search works again once it has caught up (listing and filters work meanwhile)";

impl SearchIndex {
    /// Whether every delivery `db` holds from before `before` is in the index (or was left out, erased):
    /// the index's last commit got past them all. A search for what to erase waits for this, so a delivery
    /// stored a moment earlier is not missed, and its document cannot come after the erasure's deletion.
    pub fn indexed_before(&self, db: &redb::Database, before: DeliveryId) -> Result<bool, IndexError> {
        let position = self.index.load_metas()?.payload.as_deref().and_then(parse_position);
        let next = |after| crate::storage::deliveries::next_id(db, after);
        Ok(match position {
            Some(p) if p.resume >= before => true,
            // Deferred: the deliveries from `resume` on are not all indexed yet.
            Some(p) if p.resume < p.newest => false,
            Some(p) => next(Some(p.resume))?.is_none_or(|n| n >= before),
            None => next(None)?.is_none_or(|n| n >= before),
        })
    }

    /// Stored deliveries the index's last commit has not got past, counted up to `cap`: how far search lags.
    pub fn lag(&self, db: &redb::Database, cap: u64) -> Result<u64, IndexError> {
        let position = self.index.load_metas()?.payload.as_deref().and_then(parse_position);
        Ok(crate::storage::deliveries::count_after(db, position.map(|p| p.resume), cap)?)
    }

    /// The index's size on disk, in bytes.
    pub fn size_bytes(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
            })
            .unwrap_or(0)
    }

    /// Opens the index in `dir`, or creates it empty when it is missing, unreadable or of another schema
    /// version, in which case the caller rebuilds it from redb.
    pub fn open(dir: &Path) -> Result<(Self, Opened), IndexError> {
        let io = |source| IndexError::Io { path: dir.to_path_buf(), source };
        let version = std::fs::read_to_string(dir.join(VERSION_FILE)).ok();
        if version.as_deref().map(str::trim) == Some(SCHEMA_VERSION.to_string().as_str()) {
            match Index::open_in_dir(dir).and_then(|index| Ok((index.load_metas()?, index))) {
                Ok((metas, index)) => {
                    let position = metas.payload.as_deref().and_then(parse_position);
                    return Ok((Self::with_index(index, dir)?, Opened::Resume(position)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, dir = %dir.display(), "the search index cannot be opened; rebuilding it")
                }
            }
        } else if dir.exists() {
            tracing::info!(dir = %dir.display(), found = ?version, want = SCHEMA_VERSION, "search index of another version; rebuilding it");
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io)?;
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        let index = Index::create_in_dir(dir, schema().0)?;
        std::fs::write(dir.join(VERSION_FILE), SCHEMA_VERSION.to_string()).map_err(io)?;
        Ok((Self::with_index(index, dir)?, Opened::Rebuild))
    }

    fn with_index(index: Index, dir: &Path) -> Result<Self, IndexError> {
        let (_, fields) = schema();
        let value = TextAnalyzer::builder(RawTokenizer::default())
            .filter(RemoveLongFilter::limit(MAX_VALUE_BYTES + 1))
            .filter(LowerCaser)
            .build();
        index.tokenizers().register(VALUE_TOKENIZER, value);
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(Self {
            index,
            reader,
            fields,
            dir: dir.to_path_buf(),
            damaged: Default::default(),
            alarm: Default::default(),
        })
    }

    /// Whether the index can answer: not being rebuilt, and its files still there. A directory deleted
    /// under a running server would otherwise answer from what the reader had loaded, silently stale.
    pub(crate) fn usable(&self) -> Result<(), SearchError> {
        if self.damaged.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SearchError::Unavailable(REBUILDING.into()));
        }
        if !self.dir.join(VERSION_FILE).is_file() || !self.dir.join("meta.json").is_file() {
            return Err(self.found_damaged("its files are missing"));
        }
        Ok(())
    }

    /// A search found the index missing or damaged: searches answer `search_unavailable`, and the indexer
    /// is told to rebuild it.
    pub(crate) fn found_damaged(&self, why: &str) -> SearchError {
        if self.mark_damaged(why)
            && let Some(alarm) = self.alarm.get()
        {
            let _ = alarm.send(indexer::Msg::Damaged);
        }
        SearchError::Unavailable(REBUILDING.into())
    }

    /// Marks the index damaged until its rebuild has caught up; true when it was not marked yet.
    pub(crate) fn mark_damaged(&self, why: &str) -> bool {
        let first = !self.damaged.swap(true, std::sync::atomic::Ordering::SeqCst);
        if first {
            tracing::error!(dir = %self.dir.display(), why, "the search index is missing or damaged; rebuilding it from storage");
        }
        first
    }

    /// Whether the index was found damaged and is not rebuilt yet.
    pub(crate) fn is_damaged(&self) -> bool {
        self.damaged.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Its rebuild has caught up with storage: searches answer again.
    pub(crate) fn rebuilt(&self) {
        if self.damaged.swap(false, std::sync::atomic::Ordering::SeqCst) {
            tracing::info!(dir = %self.dir.display(), "the search index is rebuilt; searches answer again");
        }
    }

    /// Empties the index in place, with the same schema, for a rebuild: the files of the old one (deleted,
    /// or damaged) go. The reader then sees an empty index.
    pub(crate) fn recreate(&self) -> Result<(), IndexError> {
        let io = |source| IndexError::Io { path: self.dir.clone(), source };
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(io)?;
        }
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        drop(Index::create_in_dir(&self.dir, schema().0)?);
        std::fs::write(self.dir.join(VERSION_FILE), SCHEMA_VERSION.to_string()).map_err(io)?;
        self.reader.reload()?;
        Ok(())
    }

    /// Whether the index's version is this build's and its last commit can be read. A damaged segment is
    /// found by the search that reads it instead: checking every file's checksum would read the whole index.
    pub(crate) fn sound(&self) -> bool {
        let version = std::fs::read_to_string(self.dir.join(VERSION_FILE)).ok();
        version.as_deref().map(str::trim) == Some(SCHEMA_VERSION.to_string().as_str())
            && self.index.load_metas().is_ok()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The documents of subscription `sub` that arrived before `at`.
    pub(crate) fn older_than(&self, sub: SubscriptionId, at: Timestamp) -> Box<dyn tantivy::query::Query> {
        use std::ops::Bound;
        use tantivy::query::{BooleanQuery, Occur, RangeQuery, TermQuery};
        let f = &self.fields;
        let of_sub = TermQuery::new(Term::from_field_text(f.subscription, &sub.to_string()), IndexRecordOption::Basic);
        let before = RangeQuery::new(Bound::Unbounded, Bound::Excluded(Term::from_field_i64(f.received, at.millis())));
        Box::new(BooleanQuery::new(vec![(Occur::Must, Box::new(of_sub)), (Occur::Must, Box::new(before))]))
    }

    pub(crate) fn document(&self, d: &Delivery, body: &[u8]) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = doc!(
            f.id => id_bytes(d.id).to_vec(),
            f.source => d.source.as_str(),
            f.topic => d.topic.as_str(),
            f.account => d.account.as_str(),
            f.subscription => d.subscription_id.to_string(),
            f.received => d.received_at.millis(),
        );
        if let Some(p) = &d.provider_delivery_id {
            doc.add_text(f.provider_id, p);
        }
        if let Some(e) = &d.event_id {
            doc.add_text(f.event_id, e);
        }
        // A JSON object gives the body field its values' words and the JSON field its paths; anything else
        // is found by its text alone.
        // UTF-8 is checked once, here; the JSON is parsed from the checked text.
        let json = (body.len() <= MAX_INDEXED_BYTES && body.trim_ascii_start().first() == Some(&b'{'))
            .then(|| std::str::from_utf8(body).ok())
            .flatten();
        let object = json.and_then(|j| serde_json::from_str::<BTreeMap<String, OwnedValue>>(j).ok().map(|o| (j, o)));
        match object {
            Some((json, object)) => {
                words::values(json, |value| {
                    if !value.is_empty() {
                        doc.add_text(f.body, value);
                    }
                });
                doc.add_object(f.payload, object);
            }
            _ => doc.add_text(f.body, String::from_utf8_lossy(&body[..body.len().min(MAX_INDEXED_BYTES)])),
        }
        doc
    }
}

/// What an index commit records (its payload, `"{resume} {newest}"`): where the next start catches up from,
/// and the newest delivery the index may hold. They differ while indexing is deferred: the index then holds
/// deliveries newer than the oldest it skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub resume: DeliveryId,
    pub newest: DeliveryId,
}

/// Reads a commit payload; a single id (the format before deferral) is both.
pub fn parse_position(payload: &str) -> Option<Position> {
    let mut ids = payload.split_whitespace().map(str::parse::<DeliveryId>);
    let resume = ids.next()?.ok()?;
    let newest = match ids.next() {
        Some(n) => n.ok()?,
        None => resume,
    };
    Some(Position { resume, newest: newest.max(resume) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_both_formats_and_refuse_garbage() {
        let a: DeliveryId = "dlv_01M8HQ9D018ZNZBC51X6AEG16D".parse().unwrap();
        let b: DeliveryId = "dlv_01M8HQCNS7F25TPT5F2N6T8PVB".parse().unwrap();
        assert_eq!(parse_position(&format!("{a}")), Some(Position { resume: a, newest: a }));
        assert_eq!(parse_position(&format!("{a} {b}")), Some(Position { resume: a, newest: b }));
        assert_eq!(parse_position(""), None);
        assert_eq!(parse_position(&format!("{a} nonsense")), None);
    }

    #[test]
    fn the_field_names_are_the_schemas() {
        let (schema, _) = schema();
        let names: Vec<&str> = schema.fields().map(|(_, entry)| entry.name()).collect();
        assert_eq!(names, FIELD_NAMES);
    }
}
