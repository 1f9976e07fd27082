//! Passwords: the rules a new one must meet, and Argon2id hashing on a
//! bounded pool.
//!
//! Argon2id is deliberately expensive: each computation holds about 19 MiB
//! for tens of milliseconds. Run unbounded, a flood of logins holds that
//! much per request at once and leaves the allocator holding it afterwards.
//! Every hash and every verification therefore runs on a [`PasswordPool`]:
//! a fixed set of worker threads (one per core by default) behind a bounded
//! queue. Work beyond the queue is refused at once with `SERVER_BUSY`, so
//! memory stays flat however many requests arrive.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::config::PasswordSettings;
use crate::error::{AppError, AppResult};

/// Shortest accepted password, in characters.
pub(crate) const MIN_PASSWORD: usize = 8;
/// Longest accepted password, in characters.
pub(crate) const MAX_PASSWORD: usize = 128;

/// The bundled list (`assets/passwords/common-10k.txt`), lower-cased.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../assets/passwords/common-10k.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
});

/// Whether `password` is among the 10,000 most common, ignoring case.
pub(crate) fn is_common(password: &str) -> bool {
    COMMON_PASSWORDS.contains(password.to_lowercase().as_str())
}

/// Checks a new password for `field`: 8–128 characters, not one of the
/// 10,000 most common, and not the account's e-mail address, the part of it
/// before the `@`, or its name (ignoring case and surrounding spaces).
pub(crate) fn check_new_password(
    field: &str,
    password: &str,
    email: &str,
    name: Option<&str>,
) -> AppResult<()> {
    let length = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(AppError::bad_input(
            field,
            format!("must be between {MIN_PASSWORD} and {MAX_PASSWORD} characters (got {length})"),
        ));
    }
    if is_common(password) {
        return Err(AppError::bad_input(
            field,
            "is one of the 10,000 most common passwords: choose one that is harder to guess",
        ));
    }
    let folded = password.trim().to_lowercase();
    let email = email.trim().to_lowercase();
    let local_part = email.split('@').next().unwrap_or_default();
    let name = name.map(|name| name.trim().to_lowercase());
    if folded == email || folded == local_part || name.as_deref() == Some(folded.as_str()) {
        return Err(AppError::bad_input(
            field,
            "must not be the account's e-mail address or name",
        ));
    }
    Ok(())
}

/// Blocks of working memory asked for at least, whatever the parameters:
/// 33 MiB, above the largest size glibc's malloc ever serves from its heaps
/// (its mmap threshold rises with use, but never past 32 MiB), so the
/// memory is mapped for the computation and returned to the system when it
/// ends. Only the blocks the parameters need are touched (and resident).
/// Allocated at the threshold or below, freed buffers stayed in the heaps
/// (measured: 240 MiB resident after sequential logins on one connection;
/// one buffer kept per worker still held 19 MiB per worker for good).
const RESERVED_BLOCKS: usize = 33 * 1024;

/// Runs `argon2` over memory of its own, into an output of `len` bytes.
fn compute(argon2: &Argon2<'_>, password: &[u8], salt: &[u8], len: usize) -> password_hash::Result<Output> {
    let needed = argon2.params().block_count();
    let mut blocks = Vec::with_capacity(needed.max(RESERVED_BLOCKS));
    blocks.resize(needed, Block::default());
    Output::init_with(len, |out| {
        argon2
            .hash_password_into_with_memory(password, salt, out, &mut blocks)
            .map_err(password_hash::Error::from)
    })
}

/// Hashes `password` into a PHC string (Argon2id, the default parameters)
/// with a fresh salt, on the calling thread. The server hashes through
/// [`PasswordPool`]; this is for its workers, the command line and fixtures.
pub fn hash_password(password: &str) -> AppResult<String> {
    let failed =
        |error: password_hash::Error| AppError::internal(anyhow::anyhow!("password hashing failed: {error}"));
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buffer = [0_u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buffer).map_err(failed)?;
    let argon2 = Argon2::default();
    let output = compute(
        &argon2,
        password.as_bytes(),
        salt_bytes,
        Params::DEFAULT_OUTPUT_LEN,
    )
    .map_err(failed)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC `hash` (with the parameters
/// stored in it), compared in constant time. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed))
    else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_buffer = [0_u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buffer) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    // `Output`'s equality is constant-time.
    compute(&argon2, password.as_bytes(), salt_bytes, expected.len())
        .is_ok_and(|computed| computed == expected)
}

type Job = Box<dyn FnOnce() + Send>;

/// What the pool has done, for tests and metrics.
#[derive(Debug, Default)]
pub struct PoolStats {
    admitted: AtomicUsize,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    completed: AtomicU64,
    refused: AtomicU64,
}

impl PoolStats {
    /// Computations running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The most computations that ever ran at once.
    pub fn peak_in_flight(&self) -> usize {
        self.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Computations finished.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::SeqCst)
    }

    /// Requests refused because the queue was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    fn started(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    }

    fn finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.completed.fetch_add(1, Ordering::SeqCst);
        self.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A fixed set of worker threads for Argon2, behind a bounded queue.
/// Cloning shares the pool; the workers stop when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct PasswordPool {
    sender: Sender<Job>,
    stats: Arc<PoolStats>,
    workers: usize,
    /// Computations running or waiting, at most.
    capacity: usize,
}

impl PasswordPool {
    /// A pool sized by `settings` (workers 0 = one per available core).
    pub fn new(settings: &PasswordSettings) -> AppResult<Self> {
        let workers = match settings.hashing_workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            workers => workers,
        };
        Self::with_capacity(workers, settings.hashing_queue)
    }

    /// A pool of `workers` threads and `queue` waiting places.
    pub(crate) fn with_capacity(workers: usize, queue: usize) -> AppResult<Self> {
        let workers = workers.max(1);
        // The channel itself is unbounded: `submit` admits at most
        // `workers + queue` jobs, counted, whatever the workers are doing.
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..workers {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || work(&receiver))
                .map_err(AppError::internal)?;
        }
        Ok(Self {
            sender,
            stats: Arc::new(PoolStats::default()),
            workers,
            capacity: workers.saturating_add(queue),
        })
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// What the pool has done.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// Hands `task` to a worker, or refuses at once with `SERVER_BUSY` when
    /// every worker is busy and the queue is full; the receiver gets the
    /// result.
    pub fn submit<T, F>(&self, task: F) -> AppResult<tokio::sync::oneshot::Receiver<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let admitted = self.stats.admitted.fetch_add(1, Ordering::SeqCst) + 1;
        if admitted > self.capacity {
            self.stats.admitted.fetch_sub(1, Ordering::SeqCst);
            self.stats.refused.fetch_add(1, Ordering::SeqCst);
            return Err(AppError::Busy(
                "the server is checking too many passwords at once: try again in a moment".to_owned(),
            ));
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stats = Arc::clone(&self.stats);
        let job: Job = Box::new(move || {
            stats.started();
            // A panic must not take the worker, or the count, with it; the
            // requester then sees the reply dropped.
            let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task));
            stats.finished();
            if let Ok(value) = value {
                // The requester may have gone (a dropped request): nothing to do.
                let _ignored = reply.send(value);
            }
        });
        if self.sender.send(job).is_err() {
            self.stats.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(AppError::internal(anyhow::anyhow!(
                "the password pool has stopped"
            )));
        }
        Ok(answer)
    }

    /// Runs `task` on a worker and waits for its result (see [`Self::submit`]).
    pub async fn run<T, F>(&self, task: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.submit(task)?
            .await
            .map_err(|_| AppError::internal(anyhow::anyhow!("a password worker stopped mid-task")))
    }

    /// Hashes `password` on the pool.
    pub async fn hash(&self, password: String) -> AppResult<String> {
        self.run(move || hash_password(&password)).await?
    }

    /// Verifies `password` against `hash` on the pool.
    pub(crate) async fn verify(&self, password: String, hash: String) -> AppResult<bool> {
        self.run(move || verify_password(&password, &hash)).await
    }
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job.
        let job = receiver.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_made_here_and_by_the_argon2_crate_verify_each_other() {
        use argon2::PasswordHasher as _;
        use argon2::PasswordVerifier as _;
        let ours = hash_password("correct horse").unwrap_or_default();
        let parsed = PasswordHash::new(&ours).unwrap_or_else(|error| panic!("{error}"));
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default();
        assert!(verify_password("battery staple", &theirs));
        assert!(!verify_password("battery stapler", &theirs));
        // Other parameters, stored in the hash, are honoured.
        let light = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 2, 1, None).unwrap_or_default(),
        )
        .hash_password(b"light", &salt)
        .map(|hash| hash.to_string())
        .unwrap_or_default();
        assert!(verify_password("light", &light));
    }

    #[test]
    fn a_hash_verifies_only_its_password() {
        let hash = hash_password("correct horse").unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn common_passwords_and_the_accounts_own_names_are_refused() {
        let check = |password: &str| {
            check_new_password("password", password, "Ada@Example.org", Some("Ada Lovelace"))
        };
        assert!(check("1234567").is_err(), "too short");
        assert!(check(&"x".repeat(129)).is_err(), "too long");
        assert!(check("password").is_err());
        assert!(check("Password1").is_err(), "case does not matter");
        assert!(check("iloveyou").is_err());
        assert!(check("ada@example.org").is_err());
        assert!(check("ada lovelace").is_err());
        assert!(check("correct horse battery").is_ok());
        assert!(check(&"x".repeat(128)).is_ok());
        assert_eq!(COMMON_PASSWORDS.len(), 10_000);
    }

    #[tokio::test]
    async fn the_pool_runs_at_most_its_workers_and_refuses_beyond_its_queue() {
        let pool = PasswordPool::with_capacity(2, 1).unwrap_or_else(|error| panic!("{error:?}"));
        let (started_tx, started_rx) = channel::<()>();
        let mut releases = Vec::new();
        let mut blocking = |pool: &PasswordPool| {
            let (release_tx, release_rx) = channel::<()>();
            releases.push(release_tx);
            let started = started_tx.clone();
            pool.submit(move || {
                let _ignored = started.send(());
                let _ignored = release_rx.recv();
            })
        };
        let first = blocking(&pool);
        let second = blocking(&pool);
        for _ in 0..2 {
            started_rx.recv().unwrap_or_default();
        }
        // Both workers are busy: one more waits in the queue, the next is refused.
        let queued = blocking(&pool);
        let refused = pool.submit(|| ()).map(|_| ()).map_err(|error| error.code());
        assert_eq!(refused, Err("SERVER_BUSY"));
        assert_eq!(pool.stats().in_flight(), 2);
        for release in releases {
            let _ignored = release.send(());
        }
        for answer in [first, second, queued] {
            let answer = answer.unwrap_or_else(|error| panic!("{error:?}"));
            assert!(answer.await.is_ok());
        }
        assert_eq!(pool.stats().peak_in_flight(), 2);
        assert_eq!(pool.stats().refused(), 1);
        assert_eq!(pool.stats().completed(), 3);
    }
}
