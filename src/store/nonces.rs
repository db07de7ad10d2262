//! The SQLite store's request nonces: process memory answers "seen before?", and each new
//! nonce is appended to a journal file beside the database before its request is answered, so a
//! request replayed after a restart is still refused.
//!
//! Why a file and not a table (measured 2026-12-03, query via xxpay under load): the table's
//! commit per batch cost 29,000 instructions a request, ~5 `pwrite`s, ~6 `fcntl` locks and a
//! hand-off to a writer thread and back (1.3 context switches a request on one core), and every
//! commit made the reader connection drop its page cache (2.5 `pread`s a query). The journal is
//! one `write` of 24 bytes a new nonce, made in place while the nonce lock is held (a write
//! into the page cache: microseconds, so it does not leave the async task; every 11 minutes
//! one of them also empties the other file, a truncate, and nothing waits for an fsync).
//!
//! Durability is the table's as it was (`synchronous = OFF`): a record survives the process
//! being killed, not a power cut. A record is (seen_at, a 128-bit SipHash of merchant and
//! nonce under the journal's random key), so the file holds no nonce in clear and has a fixed
//! size. Two files, `<db>-nonces.0` and `<db>-nonces.1`, take turns: records go to the one
//! started last; once it is `ROTATE_AFTER_SECS` old, the other one, whose every record is past
//! the window by then, is emptied and takes over. No file is renamed, so a crash at any point
//! leaves both names in place; a file cut short inside its header is one whose restart did not
//! finish (it held only old records). At 10,000 new nonces a second both files together stay
//! under 2 × 159 MB. A torn last record (the process killed mid-write) is ignored on open, and
//! a failed write is cut off again so the records after it stay aligned.

use siphasher::sip128::{Hasher128, SipHasher13};
use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::hash::BuildHasher;
use std::hash::Hasher;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// How long persisted nonces are kept: twice the ±300 s signature window (a nonce first seen
/// at s can come back signed for s + 300 until s + 600).
pub const NONCE_KEEP_SECS: i64 = 600;

/// A journal file takes records this long before the other one takes over: a minute more than
/// the window, so the records a restart reads back always cover it.
const ROTATE_AFTER_SECS: i64 = NONCE_KEEP_SECS + 60;

/// After a failed rotation, the current file keeps taking records; the next try waits this long.
const ROTATE_RETRY_SECS: i64 = 60;

const MAGIC: &[u8; 8] = b"pgnonce1";
/// Magic, the hash key (two u64), the time the file started taking records.
const HEADER_LEN: usize = 8 + 16 + 8;
/// seen_at (i64), key (u128), little-endian.
const RECORD_LEN: usize = 8 + 16;

/// Request nonces seen inside the signature window, kept small: each is 64 bits of a 128-bit
/// keyed hash of (merchant, nonce) in a per-minute bucket, and a bucket is dropped whole once
/// it is older than the window. Memory is about 17 bytes per request of the last 11 minutes (32
/// with the whole 128-bit hash under the default hasher, measured at 10,000 nonces a second;
/// a map of the strings themselves grew by ~100 MiB per 10 minutes at 10k requests/s).
struct SeenNonces {
    key: (u64, u64),
    hasher: SetHasher,
    buckets: VecDeque<(i64, HashSet<u64, SetHasher>)>,
}

/// The 64 bits a nonce is known by in memory (the journal keeps all 128). Two nonces of one
/// window sharing them would refuse the later as a replay (at 10 million nonces in a window,
/// about once in 2^40 requests); a replay is never let through.
fn in_memory(key: u128) -> u64 {
    key as u64
}

/// The sets' hasher. Their keys are uniformly random under the journal's key already, so the
/// default SipHash over each (once per bucket looked in) bought nothing; one multiplication by
/// a per-process random odd number, whose high half becomes the slot, keeps a signed merchant
/// who learned the journal's key (it is in the journal files' headers) from choosing nonces
/// that crowd one slot.
#[derive(Clone)]
struct SetHasher(u64);

impl SetHasher {
    fn new() -> SetHasher {
        SetHasher(std::collections::hash_map::RandomState::new().hash_one(0u8) | 1)
    }
}

impl BuildHasher for SetHasher {
    type Hasher = MultiplyHasher;
    fn build_hasher(&self) -> MultiplyHasher {
        MultiplyHasher { multiplier: self.0, value: 0 }
    }
}

struct MultiplyHasher {
    multiplier: u64,
    value: u64,
}

impl Hasher for MultiplyHasher {
    fn finish(&self) -> u64 {
        self.value.wrapping_mul(self.multiplier).rotate_left(32)
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the keys are u64); kept correct for any other input.
        for &b in bytes {
            self.value = self.value.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.value = n;
    }
}

/// Tests use `SeenNonces` alone; the store's `Nonces` gives it the journal's key.
#[cfg(test)]
impl Default for SeenNonces {
    fn default() -> Self {
        SeenNonces::with_key(random_key())
    }
}

impl SeenNonces {
    fn with_key(key: (u64, u64)) -> Self {
        SeenNonces { key, hasher: SetHasher::new(), buckets: VecDeque::new() }
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
    #[cfg(test)]
    fn first_use(&mut self, merchant_id: &str, nonce: &str, now: i64, not_before: i64) -> bool {
        let key = self.hash(merchant_id, nonce);
        self.first_use_of(key, now, not_before)
    }

    fn first_use_of(&mut self, key: u128, now: i64, not_before: i64) -> bool {
        let key = in_memory(key);
        // A bucket holds minute m's nonces; conservative at the edge (a whole minute is kept),
        // and a minute more: concurrent requests take `now` before they queue for the lock, so
        // one with a later `now` must not drop what an earlier one still needs.
        let keep_from = not_before.saturating_sub(60);
        while self.buckets.front().is_some_and(|(minute, _)| minute.saturating_mul(60).saturating_add(59) < keep_from) {
            self.buckets.pop_front();
        }
        if self.buckets.iter().any(|(_, seen)| seen.contains(&key)) {
            return false;
        }
        let minute = now.div_euclid(60);
        match self.buckets.back_mut() {
            Some((m, seen)) if *m >= minute => seen.insert(key),
            _ => {
                let mut seen = HashSet::with_hasher(self.hasher.clone());
                seen.insert(key);
                self.buckets.push_back((minute, seen));
                true
            }
        }
    }

    /// A record read back: a later record of the same key wins (its window ends later).
    fn load(&mut self, key: u128, seen_at: i64, not_before: i64) {
        self.forget(key);
        self.first_use_of(key, seen_at, not_before);
    }

    fn forget(&mut self, key: u128) {
        let key = in_memory(key);
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
        let paths = [suffixed(db, "-nonces.0"), suffixed(db, "-nonces.1")];
        let headers = [read_header(&paths[0])?, read_header(&paths[1])?];
        // The file started last is the current one; a file under another key (copied in from
        // elsewhere) counts for nothing and is the next to be emptied.
        let newer = match (&headers[0], &headers[1]) {
            (Some(a), Some(b)) if b.started_at > a.started_at => 1,
            (None, Some(_)) => 1,
            _ => 0,
        };
        let key = headers[newer].as_ref().map_or_else(random_key, |h| h.key);
        let mut seen = SeenNonces::with_key(key);
        let not_before = now - NONCE_KEEP_SECS;
        let mut current_records = 0;
        for i in [1 - newer, newer] {
            if headers[i].as_ref().is_some_and(|h| h.key == key) {
                let records = for_each_record(&paths[i], |seen_at, k| {
                    // Records ahead of this clock count too (the clock was set back: their
                    // requests come within the window again once it catches up).
                    if seen_at >= not_before {
                        seen.load(k, seen_at, not_before);
                    }
                })?;
                if i == newer {
                    current_records = records;
                }
            }
        }
        let journal = match &headers[newer] {
            Some(h) => {
                let len = (HEADER_LEN as u64) + current_records * RECORD_LEN as u64;
                Journal {
                    file: OpenOptions::new().append(true).open(&paths[newer]).map_err(|e| at(&paths[newer], e))?,
                    torn: h.file_len != len,
                    len,
                    paths,
                    current: newer,
                    key,
                    started_at: h.started_at,
                    retry_at: i64::MIN,
                }
            }
            None => {
                let file = start_file(&paths[0], key, now)?;
                let len = HEADER_LEN as u64;
                Journal { file, torn: false, len, paths, current: 0, key, started_at: now, retry_at: i64::MIN }
            }
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

/// The two journal files, and the one being written.
struct Journal {
    paths: [PathBuf; 2],
    current: usize,
    file: File,
    /// The current file's length in whole records: a torn or failed write is cut back to it.
    len: u64,
    /// The file ends in a torn record (found on open): cut off before the first append, not on
    /// open, so a process that only reads the store (`payglot reconcile`) never writes here.
    torn: bool,
    key: (u64, u64),
    started_at: i64,
    retry_at: i64,
}

impl Journal {
    fn append(&mut self, key: u128, seen_at: i64) -> io::Result<()> {
        if seen_at.saturating_sub(self.started_at) >= ROTATE_AFTER_SECS && seen_at >= self.retry_at {
            let other = 1 - self.current;
            match start_file(&self.paths[other], self.key, seen_at) {
                Ok(file) => {
                    (self.file, self.len, self.torn) = (file, HEADER_LEN as u64, false);
                    (self.current, self.started_at) = (other, seen_at);
                }
                Err(e) => {
                    // Records still land in a file that is read back; only the disk use grows.
                    tracing::warn!(error = %e, "the nonce journal could not turn to its other file; retrying in 60 s");
                    self.retry_at = seen_at.saturating_add(ROTATE_RETRY_SECS);
                }
            }
        }
        if self.torn {
            self.file.set_len(self.len).map_err(|e| at(&self.paths[self.current], e))?;
            self.torn = false;
        }
        let mut record = [0u8; RECORD_LEN];
        record[..8].copy_from_slice(&seen_at.to_le_bytes());
        record[8..].copy_from_slice(&key.to_le_bytes());
        match self.file.write_all(&record) {
            Ok(()) => {
                self.len += RECORD_LEN as u64;
                Ok(())
            }
            Err(e) => {
                // A part of the record may be written (a full disk): the next append cuts it
                // off first, so no record starts mid-record.
                self.torn = true;
                Err(at(&self.paths[self.current], e))
            }
        }
    }
}

/// Empties `path` and writes its header; opened for append. Not synced: like the records, the
/// header has to survive the process being killed, not a power cut, and a rotation does not
/// wait for the disk while requests wait for the nonce lock.
fn start_file(path: &Path, key: (u64, u64), now: i64) -> io::Result<File> {
    let start = || {
        let mut file = OpenOptions::new().append(true).create(true).open(path)?;
        file.set_len(0)?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&key.0.to_le_bytes());
        header.extend_from_slice(&key.1.to_le_bytes());
        header.extend_from_slice(&now.to_le_bytes());
        file.write_all(&header)?;
        Ok(file)
    };
    start().map_err(|e| at(path, e))
}

/// A journal file's header, and the file's length.
struct Header {
    key: (u64, u64),
    started_at: i64,
    file_len: u64,
}

/// `None` when the file is absent or shorter than its header (its start did not finish, so
/// nothing was recorded in it); an error when it is not a nonce journal.
fn read_header(path: &Path) -> io::Result<Option<Header>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(at(path, e)),
    };
    let file_len = file.metadata().map_err(|e| at(path, e))?.len();
    let mut header = [0u8; HEADER_LEN];
    match file.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(at(path, e)),
    }
    if &header[..8] != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a payglot nonce journal", path.display()),
        ));
    }
    let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
    Ok(Some(Header { key: (u64_at(8), u64_at(16)), started_at: u64_at(24) as i64, file_len }))
}

/// Reads a journal's whole records in order, one at a time (a file can hold millions); a torn
/// last record is left out. Returns how many were read.
fn for_each_record(path: &Path, mut each: impl FnMut(i64, u128)) -> io::Result<u64> {
    let file = File::open(path).map_err(|e| at(path, e))?;
    let mut reader = io::BufReader::with_capacity(64 * 1024, file);
    reader.seek_relative(HEADER_LEN as i64).map_err(|e| at(path, e))?;
    let mut record = [0u8; RECORD_LEN];
    let mut count = 0;
    loop {
        match reader.read_exact(&mut record) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(count),
            Err(e) => return Err(at(path, e)),
        }
        let seen_at = i64::from_le_bytes(record[..8].try_into().expect("8 bytes"));
        each(seen_at, u128::from_le_bytes(record[8..].try_into().expect("16 bytes")));
        count += 1;
    }
}

/// An I/O error that names its file.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn random_key() -> (u64, u64) {
    let mut bytes = [0u8; 16];
    // Without the OS's randomness, a fixed key still tells nonces apart (only guessing
    // collisions becomes possible, and the sets' own hasher is randomized apart from it):
    // better than refusing to start.
    if let Err(e) = getrandom::getrandom(&mut bytes) {
        tracing::warn!(error = %e, "no randomness for the nonce journal's key: a fixed key is used");
    }
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

    /// A whole minute's first second, for readable offsets.
    const T: i64 = 1_800_000_000;

    /// An empty folder and the database path the journal sits beside.
    fn journal_dir() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("payglot.db");
        (dir, db)
    }

    fn records(path: &Path) -> usize {
        for_each_record(path, |_, _| {}).unwrap() as usize
    }

    /// What a restart sees: the nonces of the window, also those taken just before the
    /// files took turns; nothing older; and the files stay at two.
    #[test]
    fn the_journal_keeps_the_window_across_restarts_and_rotations() {
        let (dir, db) = journal_dir();
        let t = T;
        let mut n = Nonces::open(&db, t).unwrap();
        assert!(n.first_use("m", "nonce-at-start-001", t, t - 300).unwrap());
        drop(n);
        let mut n = Nonces::open(&db, t + 1).unwrap();
        assert!(!n.first_use("m", "nonce-at-start-001", t + 1, t - 299).unwrap(), "a replay after a restart");
        assert!(n.first_use("m", "nonce-later-00001", t + 500, t + 200).unwrap());
        drop(n);
        let mut n = Nonces::open(&db, t + 501).unwrap();
        assert!(!n.first_use("m", "nonce-later-00001", t + 501, t + 201).unwrap());
        // 660 s after the first file started, the second one takes over.
        assert!(n.first_use("m", "nonce-turned-0001", t + 700, t + 400).unwrap());
        assert_eq!(records(&suffixed(&db, "-nonces.0")), 2);
        assert_eq!(records(&suffixed(&db, "-nonces.1")), 1);
        drop(n);
        let mut n = Nonces::open(&db, t + 701).unwrap();
        assert!(!n.first_use("m", "nonce-later-00001", t + 701, t + 401).unwrap(), "kept in the older file");
        assert!(!n.first_use("m", "nonce-turned-0001", t + 701, t + 401).unwrap());
        // The next turn empties the first file, whose records are past the window.
        assert!(n.first_use("m", "nonce-next-00001", t + 1400, t + 1100).unwrap());
        drop(n);
        assert_eq!(records(&suffixed(&db, "-nonces.0")), 1);
        assert_eq!(records(&suffixed(&db, "-nonces.1")), 1);
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 2, "two journal files, no leftovers");
        let mut n = Nonces::open(&db, t + 1401).unwrap();
        assert!(!n.first_use("m", "nonce-next-00001", t + 1401, t + 1101).unwrap());
        assert!(n.first_use("m", "nonce-turned-0001", t + 1401, t + 1101).unwrap(), "past the window");
    }

    /// When the other file cannot be started, records keep going to the current one, which a
    /// restart reads back.
    #[test]
    fn a_turn_that_fails_keeps_the_records_readable() {
        let (_dir, db) = journal_dir();
        let t = T;
        let mut n = Nonces::open(&db, t).unwrap();
        std::fs::create_dir(suffixed(&db, "-nonces.1")).unwrap();
        assert!(n.first_use("m", "nonce-no-turn-001", t + 700, t + 400).unwrap());
        drop(n);
        assert_eq!(records(&suffixed(&db, "-nonces.0")), 1);
        std::fs::remove_dir(suffixed(&db, "-nonces.1")).unwrap();
        let mut n = Nonces::open(&db, t + 701).unwrap();
        assert!(!n.first_use("m", "nonce-no-turn-001", t + 701, t + 401).unwrap());
    }

    /// A process killed in the middle of a write leaves a torn record: it is ignored, the rest
    /// is read, and new records follow.
    #[test]
    fn a_torn_last_record_is_ignored() {
        let (_dir, db) = journal_dir();
        let t = T;
        let mut n = Nonces::open(&db, t).unwrap();
        assert!(n.first_use("m", "nonce-before-kill1", t, t - 300).unwrap());
        drop(n);
        let mut f = OpenOptions::new().append(true).open(suffixed(&db, "-nonces.0")).unwrap();
        f.write_all(&[7u8; 13]).unwrap();
        drop(f);
        let mut n = Nonces::open(&db, t + 1).unwrap();
        assert!(!n.first_use("m", "nonce-before-kill1", t + 1, t - 599).unwrap());
        assert!(n.first_use("m", "nonce-after-kill01", t + 1, t - 599).unwrap());
        drop(n);
        let mut n = Nonces::open(&db, t + 2).unwrap();
        for nonce in ["nonce-before-kill1", "nonce-after-kill01"] {
            assert!(!n.first_use("m", nonce, t + 2, t - 598).unwrap(), "{nonce}: the torn bytes were cut off");
        }
        assert_eq!(records(&suffixed(&db, "-nonces.0")), 2);
    }

    /// A nonce used again after its window (allowed) and read back by a restart whose clock is
    /// behind: its later use is the one that counts.
    #[test]
    fn the_later_of_two_uses_counts_when_read_back() {
        let (_dir, db) = journal_dir();
        let t = T;
        let mut n = Nonces::open(&db, t).unwrap();
        assert!(n.first_use("m", "nonce-used-twice1", t, t - 600).unwrap());
        assert!(n.first_use("m", "nonce-used-twice1", t + 760, t + 160).unwrap(), "past its window");
        drop(n);
        let mut n = Nonces::open(&db, t + 10).unwrap();
        assert!(!n.first_use("m", "nonce-used-twice1", t + 780, t + 180).unwrap(), "within the second use's window");
    }

    /// Requests take `now` before they wait for the lock: one with a later `now` that gets the
    /// lock first must not drop a nonce an earlier request still needs at the window's edge.
    #[test]
    fn a_later_now_first_does_not_open_the_window_edge() {
        let mut seen = SeenNonces::default();
        let first = 1_800_000_059; // the last second of a minute (1_800_000_000 is a whole one)
        assert!(seen.first_use("m", "edge-nonce-000001", first, first - 600));
        let n = first + 600;
        assert!(seen.first_use("m", "other-nonce-00001", n + 1, n + 1 - 600));
        assert!(!seen.first_use("m", "edge-nonce-000001", n, n - 600), "a replay at the edge");
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused_with_its_name() {
        let (_dir, db) = journal_dir();
        std::fs::write(suffixed(&db, "-nonces.0"), [b'x'; 64]).unwrap();
        let e = Nonces::open(&db, 1_800_000_000).err().unwrap();
        assert!(e.to_string().contains("payglot.db-nonces.0 is not a payglot nonce journal"), "{e}");
    }
}
