//! The SQLite store's request nonces: process memory answers "seen before?", and each new
//! nonce is appended to a journal file beside the database before its request is answered, so a
//! request replayed after a restart is still refused.
//!
//! Why a file and not a table (measured 2026-12-03, query via xxpay under load): the table's
//! commit per batch cost 29,000 instructions a request, ~5 `pwrite`s, ~6 `fcntl` locks and a
//! hand-off to a writer thread and back (1.3 context switches a request on one core), and every
//! commit made the reader connection drop its page cache (2.5 `pread`s a query). The journal is
//! one `write` of 24 bytes a new nonce, made in place while the nonce lock is held (a write
//! into the page cache: microseconds, so it does not leave the async task).
//!
//! Durability is the table's as it was (`synchronous = OFF`): a record survives the process
//! being killed, not a power cut. A record is (seen_at, a 128-bit SipHash of merchant and
//! nonce under the journal's random key), so the file holds no nonce in clear and has a fixed
//! size per request. Two files bound it: `<db>-nonces` takes new records; once it is older than
//! `NONCE_KEEP_SECS` it becomes `<db>-nonces.1` (the previous `.1`, all older than the window,
//! goes) and a new one starts. At 10,000 new nonces a second that is at most 2 × 144 MB.
//! A torn last record (the process killed mid-write) is ignored on open.

use siphasher::sip128::{Hasher128, SipHasher13};
use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::hash::Hasher;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// How long persisted nonces are kept: more than twice the ±300 s signature window.
pub const NONCE_KEEP_SECS: i64 = 600;

const MAGIC: &[u8; 8] = b"pgnonce1";
/// Magic, the hash key (two u64), the time the file started taking records.
const HEADER_LEN: usize = 8 + 16 + 8;
/// seen_at (i64), key (u128), little-endian.
const RECORD_LEN: usize = 8 + 16;

/// Request nonces seen inside the signature window, kept small: each is a 128-bit keyed hash of
/// (merchant, nonce) in a per-minute bucket, and a bucket is dropped whole once it is older
/// than the window. Memory is about 20 bytes per request of the last few minutes (a map of the
/// strings themselves grew by ~100 MiB per 10 minutes at 10k requests/s).
pub struct SeenNonces {
    key: (u64, u64),
    buckets: VecDeque<(i64, HashSet<u128>)>,
}

impl Default for SeenNonces {
    fn default() -> Self {
        SeenNonces::with_key(random_key())
    }
}

impl SeenNonces {
    fn with_key(key: (u64, u64)) -> Self {
        SeenNonces { key, buckets: VecDeque::new() }
    }

    fn hash(&self, merchant_id: &str, nonce: &str) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.key.0, self.key.1);
        h.write(merchant_id.as_bytes());
        // 0xff never occurs in UTF-8: ("ab", "c") and ("a", "bc") hash apart.
        h.write_u8(0xff);
        h.write(nonce.as_bytes());
        h.finish128().as_u128()
    }

    /// `true` the first time a nonce is seen since `not_before`; `false` for a replay.
    pub fn first_use(&mut self, merchant_id: &str, nonce: &str, now: i64, not_before: i64) -> bool {
        let key = self.hash(merchant_id, nonce);
        self.first_use_of(key, now, not_before)
    }

    fn first_use_of(&mut self, key: u128, now: i64, not_before: i64) -> bool {
        // A bucket holds minute m's nonces; conservative at the edge (a whole minute is kept).
        while self.buckets.front().is_some_and(|(minute, _)| minute * 60 + 59 < not_before) {
            self.buckets.pop_front();
        }
        if self.buckets.iter().any(|(_, seen)| seen.contains(&key)) {
            return false;
        }
        let minute = now.div_euclid(60);
        match self.buckets.back_mut() {
            Some((m, seen)) if *m >= minute => seen.insert(key),
            _ => {
                self.buckets.push_back((minute, [key].into_iter().collect()));
                true
            }
        }
    }

    fn forget(&mut self, key: u128) {
        for (_, seen) in &mut self.buckets {
            seen.remove(&key);
        }
    }
}

/// The nonces of one SQLite store: in memory and in the journal.
pub struct Nonces {
    seen: SeenNonces,
    journal: Journal,
}

impl Nonces {
    /// Opens the journal beside the database file `db` (starting it if there is none) and
    /// reads back the nonces seen since `now - NONCE_KEEP_SECS`.
    pub fn open(db: &Path, now: i64) -> io::Result<Nonces> {
        let current = suffixed(db, "-nonces");
        let previous = suffixed(db, "-nonces.1");
        let old = read_journal(&previous)?;
        let new = read_journal(&current)?;
        let key = match (&new, &old) {
            (Some(n), _) => n.key,
            (None, Some(o)) => o.key,
            (None, None) => random_key(),
        };
        let mut seen = SeenNonces::with_key(key);
        let not_before = now - NONCE_KEEP_SECS;
        // The previous file's records count only under the same key (it is always so, unless a
        // file was copied in from elsewhere).
        let started_at = new.as_ref().map(|n| n.started_at);
        for journal in [old.filter(|o| o.key == key), new].into_iter().flatten() {
            for &(seen_at, k) in journal.records.iter().filter(|(at, _)| *at >= not_before) {
                seen.first_use_of(k, seen_at, not_before);
            }
        }
        let journal = match started_at {
            Some(started_at) => Journal { file: append_to(&current)?, current, previous, key, started_at },
            None => Journal::start(current, previous, key, now)?,
        };
        Ok(Nonces { seen, journal })
    }

    /// `Ok(true)` the first time a nonce is seen since `not_before`, once it is in the journal;
    /// `Ok(false)` for a replay. If the journal cannot be written the nonce is not taken.
    pub fn first_use(&mut self, merchant_id: &str, nonce: &str, now: i64, not_before: i64) -> io::Result<bool> {
        let key = self.seen.hash(merchant_id, nonce);
        if !self.seen.first_use_of(key, now, not_before) {
            return Ok(false);
        }
        match self.journal.append(key, now) {
            Ok(()) => Ok(true),
            Err(e) => {
                self.seen.forget(key);
                Err(e)
            }
        }
    }
}

/// The journal's file being written.
struct Journal {
    file: File,
    current: PathBuf,
    previous: PathBuf,
    key: (u64, u64),
    started_at: i64,
}

impl Journal {
    /// A new, empty current file (header written and synced before it replaces anything).
    fn start(current: PathBuf, previous: PathBuf, key: (u64, u64), now: i64) -> io::Result<Journal> {
        let fresh = suffixed(&current, ".new");
        {
            let mut f = File::create(&fresh)?;
            let mut header = Vec::with_capacity(HEADER_LEN);
            header.extend_from_slice(MAGIC);
            header.extend_from_slice(&key.0.to_le_bytes());
            header.extend_from_slice(&key.1.to_le_bytes());
            header.extend_from_slice(&now.to_le_bytes());
            f.write_all(&header)?;
            f.sync_all()?;
        }
        std::fs::rename(&fresh, &current)?;
        Ok(Journal { file: append_to(&current)?, current, previous, key, started_at: now })
    }

    fn append(&mut self, key: u128, seen_at: i64) -> io::Result<()> {
        if seen_at - self.started_at >= NONCE_KEEP_SECS {
            // Everything in the previous file is older than the window by now.
            std::fs::rename(&self.current, &self.previous)?;
            *self = Journal::start(self.current.clone(), self.previous.clone(), self.key, seen_at)?;
        }
        let mut record = [0u8; RECORD_LEN];
        record[..8].copy_from_slice(&seen_at.to_le_bytes());
        record[8..].copy_from_slice(&key.to_le_bytes());
        self.file.write_all(&record)
    }
}

/// A journal file as read back.
struct JournalFile {
    key: (u64, u64),
    started_at: i64,
    records: Vec<(i64, u128)>,
}

/// `None` when the file is absent or shorter than its header (its creation did not finish, so
/// nothing was recorded in it); an error when it is not a nonce journal.
fn read_journal(path: &Path) -> io::Result<Option<JournalFile>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if bytes.len() < HEADER_LEN {
        return Ok(None);
    }
    let (header, body) = bytes.split_at(HEADER_LEN);
    if &header[..8] != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a payglot nonce journal", path.display()),
        ));
    }
    let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
    let records = body
        .chunks_exact(RECORD_LEN)
        .map(|r| {
            let seen_at = i64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
            (seen_at, u128::from_le_bytes(r[8..].try_into().expect("16 bytes")))
        })
        .collect();
    Ok(Some(JournalFile { key: (u64_at(8), u64_at(16)), started_at: u64_at(24) as i64, records }))
}

fn append_to(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).open(path)
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn random_key() -> (u64, u64) {
    let mut bytes = [0u8; 16];
    // Without the OS's randomness, a fixed key still tells nonces apart (only guessing
    // collisions becomes possible): better than refusing to start.
    let _ = getrandom::getrandom(&mut bytes);
    (
        u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
        u64::from_le_bytes(bytes[8..].try_into().expect("8 bytes")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_taken_once_inside_the_window_and_forgotten_after_it() {
        let mut seen = SeenNonces::default();
        assert!(seen.first_use("m", "n1", 1000, 700));
        assert!(!seen.first_use("m", "n1", 1001, 701), "a replay");
        assert!(seen.first_use("other", "n1", 1001, 701), "nonces are per merchant");
        assert!(seen.first_use("m", "n2", 1100, 800));
        assert!(!seen.first_use("m", "n1", 1250, 950), "still inside the window");
        assert!(seen.first_use("m", "n1", 1400, 1100), "the window has passed");
        assert!(seen.buckets.len() <= 3, "old minutes are dropped: {}", seen.buckets.len());
        assert!(seen.first_use("ab", "c", 1400, 1100));
        assert!(seen.first_use("a", "bc", 1400, 1100), "merchant and nonce do not run together");
    }

    fn records(path: &Path) -> usize {
        read_journal(path).unwrap().map_or(0, |j| j.records.len())
    }

    /// What a restart sees: the nonces of the window, also those taken just before it
    /// rotated the file; nothing older; and the files stay at two.
    #[test]
    fn the_journal_keeps_the_window_across_restarts_and_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("payglot.db");
        let t = 1_800_000_000;
        let mut n = Nonces::open(&db, t).unwrap();
        assert!(n.first_use("m", "nonce-at-start-001", t, t - 300).unwrap());
        drop(n);
        let mut n = Nonces::open(&db, t + 1).unwrap();
        assert!(!n.first_use("m", "nonce-at-start-001", t + 1, t - 299).unwrap(), "a replay after a restart");
        assert!(n.first_use("m", "nonce-later-00001", t + 500, t + 200).unwrap());
        drop(n);
        let mut n = Nonces::open(&db, t + 501).unwrap();
        assert!(!n.first_use("m", "nonce-later-00001", t + 501, t + 201).unwrap());
        // 600 s after the file started: it becomes the previous one and a new file starts.
        assert!(n.first_use("m", "nonce-rotated-001", t + 650, t + 350).unwrap());
        assert_eq!(records(&suffixed(&db, "-nonces.1")), 2);
        assert_eq!(records(&suffixed(&db, "-nonces")), 1);
        drop(n);
        let mut n = Nonces::open(&db, t + 651).unwrap();
        assert!(!n.first_use("m", "nonce-later-00001", t + 651, t + 351).unwrap(), "kept in the previous file");
        assert!(!n.first_use("m", "nonce-rotated-001", t + 651, t + 351).unwrap());
        // Another rotation drops the first file's records, which are past the window.
        assert!(n.first_use("m", "nonce-next-00001", t + 1300, t + 1000).unwrap());
        drop(n);
        assert_eq!(records(&suffixed(&db, "-nonces.1")), 1);
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 2, "two journal files, no leftovers");
        let mut n = Nonces::open(&db, t + 1301).unwrap();
        assert!(!n.first_use("m", "nonce-next-00001", t + 1301, t + 1001).unwrap());
        assert!(n.first_use("m", "nonce-rotated-001", t + 1301, t + 1001).unwrap(), "past the window");
    }

    /// A process killed in the middle of a write leaves a torn record: it is ignored, the rest
    /// is read, and new records follow.
    #[test]
    fn a_torn_last_record_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("payglot.db");
        let t = 1_800_000_000;
        let mut n = Nonces::open(&db, t).unwrap();
        assert!(n.first_use("m", "nonce-before-kill1", t, t - 300).unwrap());
        drop(n);
        let mut f = OpenOptions::new().append(true).open(suffixed(&db, "-nonces")).unwrap();
        f.write_all(&[7u8; 13]).unwrap();
        drop(f);
        let mut n = Nonces::open(&db, t + 1).unwrap();
        assert!(!n.first_use("m", "nonce-before-kill1", t + 1, t - 299).unwrap());
        assert!(n.first_use("m", "nonce-after-kill01", t + 1, t - 299).unwrap());
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("payglot.db");
        std::fs::write(suffixed(&db, "-nonces"), [b'x'; 64]).unwrap();
        let e = Nonces::open(&db, 1_800_000_000).err().unwrap();
        assert!(e.to_string().contains("payglot.db-nonces is not a payglot nonce journal"), "{e}");
    }
}
