//! Searching: the operator's query text, combined with the delivery filters, newest first.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Bound;

use tantivy::collector::TopDocs;
use tantivy::collector::sort_key::SortByBytes;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocSet, Order, TERMINATED, Term};

use super::{SearchIndex, id_bytes};
use crate::domain::DeliveryId;
use crate::domain::delivery::Match;
use crate::domain::filter::Filter;

/// Longest query accepted: a query is typed by a person, and parsing cost grows with its length.
pub const MAX_QUERY_CHARS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub text: String,
    pub filter: Filter,
    /// Only deliveries older than this (the cursor).
    pub before: Option<DeliveryId>,
    pub limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The operator's query cannot be understood; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The index is missing or damaged and being rebuilt; the message says so.
    #[error("{0}")]
    Unavailable(String),
}

/// One match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub id: DeliveryId,
}

/// Makes the snippets of one page of results.
pub struct Snippets {
    words: SnippetGenerator,
    /// The values of the query's JSON paths (`customer.email:jon@example.com`), lower-cased as indexed:
    /// they match the payload field, which the word snippets do not see.
    values: Vec<String>,
}

/// Bytes of context on each side of a JSON path's value in its fragment.
const VALUE_CONTEXT: usize = 100;

impl Snippets {
    pub fn of(&self, body: &[u8]) -> Match {
        let body = String::from_utf8_lossy(&body[..body.len().min(super::MAX_INDEXED_BYTES)]);
        // A JSON object's words are its values': the fragment is chosen with its keys blanked out, then cut
        // from the body itself at the same place.
        let object = body.trim_start().starts_with('{');
        let view = if object { Cow::Owned(super::words::without_keys(&body)) } else { Cow::Borrowed(&*body) };
        let s = self.words.snippet(&view);
        if !s.fragment().is_empty() {
            let fragment =
                view.find(s.fragment()).and_then(|at| body.get(at..at + s.fragment().len())).unwrap_or(s.fragment());
            return Match {
                fragment: fragment.to_owned(),
                highlights: s.highlighted().iter().map(|r| (r.start, r.end)).collect(),
            };
        }
        self.value_match(&body).unwrap_or(Match { fragment: String::new(), highlights: Vec::new() })
    }

    /// The fragment around the first JSON path value found in `body` (any case), with it highlighted.
    fn value_match(&self, body: &str) -> Option<Match> {
        let lower = body.to_ascii_lowercase();
        let (at, len) = self
            .values
            .iter()
            .filter(|v| !v.is_empty())
            .find_map(|v| lower.find(v.as_str()).map(|at| (at, v.len())))?;
        let mut start = at.saturating_sub(VALUE_CONTEXT);
        while !body.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (at + len + VALUE_CONTEXT).min(body.len());
        while !body.is_char_boundary(end) {
            end += 1;
        }
        Some(Match { fragment: body[start..end].to_owned(), highlights: vec![(at - start, at - start + len)] })
    }
}

/// The string value a JSON path term looks for: its serialized value is the path, a 0 byte, the value's
/// type code and the value.
fn json_value(term: &Term) -> Option<String> {
    if term.typ() != tantivy::schema::Type::Json {
        return None;
    }
    let bytes = term.serialized_value_bytes();
    let (typ, value) = bytes.split_at(bytes.iter().position(|b| *b == 0)? + 1).1.split_first()?;
    (*typ == tantivy::schema::Type::Str.to_code()).then(|| String::from_utf8_lossy(value).into_owned())
}

impl SearchIndex {
    fn parse(&self, text: &str) -> Result<Box<dyn Query>, SearchError> {
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(SearchError::Invalid(format!("the query is longer than {MAX_QUERY_CHARS} characters")));
        }
        long_path_values(text)?;
        let f = &self.fields;
        // Unqualified words search the body; a dotted name that is not a field (`customer.email:…`) is a
        // path into the JSON payload.
        let mut parser = QueryParser::for_index(&self.index, vec![f.body, f.payload]);
        parser.set_conjunction_by_default();
        parser.parse_query(text).map_err(|e| SearchError::Invalid(describe(&e)))
    }

    /// Ids of deliveries matching `q`, newest first: at most `q.limit`, and whether there are more.
    pub fn search(&self, q: &SearchQuery) -> Result<(Vec<Hit>, bool), SearchError> {
        self.usable()?;
        let user = self.parse(&q.text)?;
        let f = &self.fields;
        let mut must: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, user)];
        let term = |field, value: &str| -> (Occur, Box<dyn Query>) {
            (Occur::Must, Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic)))
        };
        if let Some(s) = q.filter.source {
            must.push(term(f.source, s.as_str()));
        }
        if let Some(t) = &q.filter.topic {
            must.push(term(f.topic, t));
        }
        if let Some(a) = &q.filter.account {
            must.push(term(f.account, a));
        }
        if let Some(s) = q.filter.subscription {
            must.push(term(f.subscription, &s.to_string()));
        }
        if q.filter.from.is_some() || q.filter.to.is_some() {
            let lower = q
                .filter
                .from
                .map_or(Bound::Unbounded, |t| Bound::Included(Term::from_field_i64(f.received, t.millis())));
            let upper =
                q.filter.to.map_or(Bound::Unbounded, |t| Bound::Excluded(Term::from_field_i64(f.received, t.millis())));
            must.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
        if let Some(before) = q.before {
            let upper = Bound::Excluded(Term::from_field_bytes(f.id, &id_bytes(before)));
            must.push((Occur::Must, Box::new(RangeQuery::new(Bound::Unbounded, upper))));
        }
        let query = BooleanQuery::new(must);
        let searcher = self.reader.searcher();
        let collector = TopDocs::with_limit(q.limit + 1).order_by((SortByBytes::for_field("id"), Order::Desc));
        let found = self.reading(|| searcher.search(&query, &collector))?;
        let more = found.len() > q.limit;
        let hits = found
            .into_iter()
            .take(q.limit)
            .filter_map(|(key, _)| {
                let bytes: [u8; 16] = key?.try_into().ok()?;
                Some(Hit { id: DeliveryId::from_u128(u128::from_be_bytes(bytes)) })
            })
            .collect();
        Ok((hits, more))
    }

    /// Shows where `text` matched in bodies, for results of `text`.
    pub fn snippets(&self, text: &str) -> Result<Snippets, SearchError> {
        let query = self.parse(text)?;
        let searcher = self.reader.searcher();
        let mut words = self.reading(|| SnippetGenerator::create(&searcher, &*query, self.fields.body))?;
        words.set_max_num_chars(240);
        let mut values = Vec::new();
        query.query_terms(&mut |term, _| values.extend(json_value(term)));
        Ok(Snippets { words, values })
    }

    /// The deliveries from `first` to `last` the searchable index holds a document for: per segment, one
    /// seek into its ids and a step over each held one, far cheaper than indexing a delivery again (or
    /// than a delete, which looks its id up in every segment at the next commit).
    pub(super) fn held(&self, first: DeliveryId, last: DeliveryId) -> tantivy::Result<HashSet<DeliveryId>> {
        let mut held = HashSet::new();
        let searcher = self.reader.searcher();
        for segment in searcher.segment_readers() {
            let ids = segment.inverted_index(self.fields.id)?;
            let alive = segment.alive_bitset();
            let mut terms = ids.terms().range().ge(id_bytes(first)).le(id_bytes(last)).into_stream()?;
            while terms.advance() {
                let Ok(key) = <[u8; 16]>::try_from(terms.key()) else { continue };
                let mut docs = ids.read_postings_from_terminfo(terms.value(), IndexRecordOption::Basic)?;
                while docs.doc() != TERMINATED {
                    if alive.is_none_or(|a| a.is_alive(docs.doc())) {
                        held.insert(DeliveryId::from_u128(u128::from_be_bytes(key)));
                        break;
                    }
                    docs.advance();
                }
            }
        }
        Ok(held)
    }

    /// Runs a read of the index's files. One that fails or panics (tantivy trusts its files, and a damaged
    /// one can make it index out of bounds) means the index is damaged: it is rebuilt, and the search
    /// answers `search_unavailable` rather than an internal error.
    fn reading<T>(&self, read: impl FnOnce() -> tantivy::Result<T>) -> Result<T, SearchError> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)) {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(self.found_damaged(&format!("a search failed reading it: {e}"))),
            Err(panic) => {
                Err(self
                    .found_damaged(&format!("a search panicked reading it: {}", crate::task::panic_message(&*panic))))
            }
        }
    }

    pub(crate) fn reload(&self) -> Result<(), tantivy::TantivyError> {
        self.reader.reload()
    }

    /// The number of deliveries the searchable index holds.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }
}

/// Refuses a path query for a value longer than path terms hold: tantivy would drop the clause without a
/// word, so `a:x b:<long>` would run as `a:x`, and an erasure or a bulk replay would take more than its
/// author meant.
fn long_path_values(text: &str) -> Result<(), SearchError> {
    use tantivy::query_grammar::{UserInputAst, UserInputLeaf};
    fn walk(ast: &UserInputAst) -> Result<(), SearchError> {
        let check = |field: &Option<String>, value: &str| match field {
            Some(path) if !super::FIELD_NAMES.contains(&path.as_str()) && value.len() > super::MAX_VALUE_BYTES => {
                Err(SearchError::Invalid(format!(
                    "`{path}`: a path query matches whole values of up to {} bytes, and this one is {}; \
                     search its words without the path",
                    super::MAX_VALUE_BYTES,
                    value.len()
                )))
            }
            _ => Ok(()),
        };
        match ast {
            UserInputAst::Clause(clauses) => clauses.iter().try_for_each(|(_, ast)| walk(ast)),
            UserInputAst::Boost(ast, _) => walk(ast),
            UserInputAst::Leaf(leaf) => match leaf.as_ref() {
                UserInputLeaf::Literal(l) => check(&l.field_name, &l.phrase),
                UserInputLeaf::Set { field, elements } => elements.iter().try_for_each(|e| check(field, e)),
                _ => Ok(()),
            },
        }
    }
    // A query the grammar refuses is explained by the parser that runs next.
    tantivy::query_grammar::parse_query(text).map_or(Ok(()), |ast| walk(&ast))
}

/// tantivy's parse errors name its internals; operators get what they typed wrong.
fn describe(e: &tantivy::query::QueryParserError) -> String {
    use tantivy::query::QueryParserError as E;
    match e {
        E::SyntaxError(s) => {
            format!("the query is not valid syntax near `{s}`: quote phrases, and close brackets and quotes")
        }
        E::FieldDoesNotExist(name) => format!(
            "`{name}` is not a field; search the body with plain words, or a payload path such as `customer.email:\"jon@example.com\"`"
        ),
        E::ExpectedInt(_) | E::ExpectedFloat(_) | E::ExpectedBool(_) | E::ExpectedBase64(_) | E::DateFormatError(_) => {
            format!("a value does not fit its field: {e}")
        }
        E::RangeMustNotHavePhrase => "a range cannot contain a phrase".to_owned(),
        E::AllButQueryForbidden => "a query cannot only exclude: add something to find".to_owned(),
        E::NoDefaultFieldDeclared => "the query needs a field".to_owned(),
        other => format!("the query cannot be used: {other}"),
    }
}
