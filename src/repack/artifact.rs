//! One artifact repacked: its entries scanned, decided in plan order and
//! cut into pieces — the one way an artifact is repacked. The pipeline runs
//! it on several threads at once; [`super::Repacker`] on one (fixtures,
//! benches, fuzzers), so they exercise what users run.
//!
//! Only the decisions that depend on earlier artifacts wait for plan order
//! (the *turn*, handed on by [`Turns`]). An artifact that holds the turn
//! is decided as it is read (*live*); one ahead of its turn is held
//! (`Pending`) up to a limit and decided in one go when its turn comes;
//! one that outgrows the limit keeps only its entries' heads, is decided
//! from them, and is read a second time to be cut (*two passes*).

use std::io::BufRead;

pub(crate) use super::decide::Decider;
pub(crate) use super::pending::Pending;
pub(crate) use super::scan::Rules;

use super::conflict::Fingerprint;
use super::decide::{Cut, Deciding, OpenFile, Target};
use super::scan::{Entries, Head, Scanner};
use super::{ArtifactStats, PieceWriter};
use crate::error::{Error, Result};

/// What repacking one artifact needs from whoever runs several at once:
/// plan order, stopping, a second read, and where its time goes.
pub trait Turns {
    /// Whether work on artifact `index` is no longer needed.
    fn cancelled(&self, index: usize) -> bool;

    /// Whether it is artifact `index`'s turn now.
    fn is_turn(&self, index: usize) -> bool;

    /// Waits for artifact `index`'s turn: the conflict table, or `None`
    /// if the artifact is cancelled first.
    fn wait_turn(&self, index: usize) -> Option<Decider>;

    /// Artifact `index` is decided: the next one's turn.
    fn pass_turn(&self, index: usize, decider: Decider);

    /// Artifact `index` failed ahead of its turn: every later one stops
    /// (the earlier ones are still checked).
    fn failed_ahead(&self, index: usize);

    /// Ends the run with artifact `index`'s error (the first in plan order
    /// wins).
    fn fail(&self, index: usize, error: Error);

    /// Artifact `index` holds the turn while it is still read (`Some`):
    /// decoding it is on the run's one-at-a-time chain from now on, as its
    /// scanning is; or no longer (`None`).
    fn live(&self, index: Option<usize>);

    /// The calling thread's CPU time so far, in nanoseconds (0 where not
    /// measured).
    fn cpu_ns(&self) -> u64;

    /// `ns` of CPU spent on work that runs one artifact at a time.
    fn serial(&self, ns: u64);

    /// Artifact `index`'s decoded bytes again, for its second read.
    fn reopen(&self, index: usize) -> Result<Box<dyn BufRead + '_>>;

    /// An artifact was read twice.
    fn read_twice(&self);
}

/// An artifact's decoded bytes, as the first read gets them.
pub trait ArtifactInput: BufRead {
    /// Whether its compressed stream was read to its end (and verified):
    /// bytes after it are an error.
    fn complete(&self) -> bool;
}

/// How an artifact waits for its turn.
#[derive(Clone, Copy, Debug)]
pub struct Ahead {
    /// Whether it may be scanned ahead of its turn (several at once);
    /// otherwise it takes the turn first and is decided live.
    pub allowed: bool,
    /// Bytes it may hold ahead of its turn.
    pub limit: u64,
}

/// Repacks artifact `index` (`name`) from `bytes` into `pieces`, in its
/// turn; `pending` is reused from artifact to artifact (its buffers keep
/// their memory). Errors are reported through `turns` (`Err` here only
/// says the artifact was not written); returns what its first read held.
#[allow(clippy::too_many_arguments)]
pub fn repack(
    rules: &Rules,
    turns: &dyn Turns,
    index: usize,
    name: &str,
    bytes: Result<impl ArtifactInput>,
    pieces: &mut PieceWriter<'_>,
    pending: &mut Pending,
    ahead: Ahead,
) -> Result<ArtifactStats> {
    pending.clear();
    let mut flow = Flow {
        turns,
        rules,
        index,
        name,
        pieces,
        pending,
        limit: ahead.limit,
        decider: None,
        file: OpenFile::default(),
        live_since: 0,
        turn_since: None,
        peak: 0,
    };
    let early = if ahead.allowed {
        Ok(())
    } else {
        flow.go_live()
    };
    let scanned = early.and_then(|()| scan(rules, index, name, bytes, &mut flow));
    let stats = scanned.as_ref().map(|s| *s).unwrap_or_default();
    flow.end(scanned.map(|_| ()))?;
    Ok(stats)
}

/// Scans artifact `index` into `flow`, and checks nothing follows its
/// compressed stream.
fn scan(
    rules: &Rules,
    index: usize,
    name: &str,
    bytes: Result<impl ArtifactInput>,
    flow: &mut Flow<'_, '_, '_>,
) -> Result<ArtifactStats> {
    let mut input = bytes?;
    let mut scanner = Scanner::start(rules, index, name, &mut input)?;
    while scanner.next(flow)? {}
    let stats = scanner.stats();
    drop(scanner);
    if !input.complete() {
        return Err(Error::artifact(
            name,
            None,
            "data after the end of the compressed stream",
        ));
    }
    tracing::debug!(artifact = %name, members = stats.members, bytes = stats.data_bytes, "repacked");
    Ok(stats)
}

/// One artifact's entries, held ahead of its turn or decided live.
struct Flow<'w, 'p, 'o> {
    turns: &'w dyn Turns,
    rules: &'w Rules,
    index: usize,
    name: &'w str,
    pieces: &'p mut PieceWriter<'o>,
    pending: &'w mut Pending,
    limit: u64,
    /// The conflict table, while this artifact holds the turn (live).
    decider: Option<Decider>,
    file: OpenFile,
    /// The thread's CPU time when it went live.
    live_since: u64,
    /// The thread's CPU time when it saw the turn come while still reading
    /// ahead: later artifacts wait for the rest of this read.
    turn_since: Option<u64>,
    /// The most it held ahead of its turn.
    peak: usize,
}

impl<'o> Flow<'_, '_, 'o> {
    fn stopped(&self) -> Result<()> {
        if self.turns.cancelled(self.index) {
            return Err(Error::internal("the run stopped"));
        }
        Ok(())
    }

    /// Notes when the turn comes to an artifact read ahead: from then on
    /// the run waits for its read, which is one-at-a-time work.
    fn note_turn(&mut self) {
        if self.turn_since.is_none() && self.turns.is_turn(self.index) {
            self.turn_since = Some(self.turns.cpu_ns());
            self.turns.live(Some(self.index));
        }
    }

    /// The live path: decisions as entries come, straight into the pieces.
    fn deciding(&mut self) -> Option<Deciding<'_, 'o>> {
        let decider = self.decider.as_mut()?;
        Some(Deciding {
            file: &mut self.file,
            decider,
            index: self.index,
            name: self.name,
            target: Target::Pieces(self.pieces),
        })
    }

    /// When the artifact may not be held any longer: goes live if it
    /// holds the turn (nothing to wait for), otherwise keeps only heads
    /// and leaves its bytes to a second read.
    fn check_held(&mut self) -> Result<()> {
        let held = self.pending.held();
        self.peak = self.peak.max(held);
        if self.decider.is_some() || self.pending.heads_only() || held as u64 <= self.limit {
            return Ok(());
        }
        if self.turns.is_turn(self.index) {
            return self.go_live();
        }
        // Heads take ~100 bytes and a path per entry: an artifact whose
        // heads alone outgrow the share is still read ahead, not stalled.
        self.pending.drop_bytes();
        Ok(())
    }

    fn go_live(&mut self) -> Result<()> {
        let decider = self
            .turns
            .wait_turn(self.index)
            .ok_or_else(|| Error::internal("the run stopped"))?;
        self.decider = Some(decider);
        self.turns.live(Some(self.index));
        self.live_since = self.turns.cpu_ns();
        let mut pending = std::mem::take(self.pending);
        let mut d = self.deciding().expect("live");
        let r = pending.replay(&mut d, None);
        pending.clear();
        *self.pending = pending;
        r
    }

    /// Ends the artifact after its scan: decides what is still held (in
    /// turn), passes the turn on and writes the rest; or reports the
    /// first error.
    fn end(&mut self, scanned: Result<()>) -> Result<()> {
        let turns = self.turns;
        if turns.cancelled(self.index) {
            return Err(Error::internal("the run stopped"));
        }
        if scanned.is_err() && self.decider.is_none() {
            // Later artifacts cannot matter any more: stop them now.
            turns.failed_ahead(self.index);
        }
        let live = self.decider.is_some();
        let mut decider = match self.decider.take() {
            Some(d) => d,
            None => turns
                .wait_turn(self.index)
                .ok_or_else(|| Error::internal("the run stopped"))?,
        };
        let from = turns.cpu_ns();
        let decided = if live {
            scanned.map(|()| Vec::new())
        } else {
            self.pending
                .decide(&mut decider, self.index, self.name, scanned.err())
        };
        let now = turns.cpu_ns();
        // From when the turn came, if the read was still going.
        let since = self
            .turn_since
            .unwrap_or(if live { self.live_since } else { from });
        let serial = now.saturating_sub(since);
        turns.serial(serial);
        let two_passes = self.pending.heads_only();
        tracing::debug!(
            artifact = %self.name,
            serial_ms = serial / 1_000_000,
            held_ahead = self.peak,
            limit = self.limit,
            live,
            two_passes,
            "decided"
        );
        turns.live(None);
        let masks = match decided {
            Err(e) => {
                turns.fail(self.index, e);
                return Err(Error::internal("failed"));
            }
            Ok(masks) => masks,
        };
        turns.pass_turn(self.index, decider);
        if !two_passes {
            return self.pending.cut(&masks, self.pieces);
        }
        turns.read_twice();
        match self.second_pass(&masks) {
            // A write fails only when the output stopped, which reports
            // its own error.
            Err(e) if !turns.cancelled(self.index) => {
                turns.fail(self.index, e);
                Err(Error::internal("failed"))
            }
            other => other,
        }
    }

    /// Reads the artifact again and cuts its decided entries.
    fn second_pass(&mut self, cuts: &[Cut]) -> Result<()> {
        let mut input = self.turns.reopen(self.index)?;
        let (rules, index, name) = (self.rules, self.index, self.name);
        self.pending.second_pass(cuts, name, self.pieces, |out| {
            let mut scanner = Scanner::start(rules, index, name, &mut input)?;
            while scanner.next(out)? {}
            Ok(())
        })
    }
}

impl Entries for Flow<'_, '_, '_> {
    fn head(&mut self, head: &Head<'_>, tar_header: &[u8]) -> Result<()> {
        self.stopped()?;
        if let Some(mut d) = self.deciding() {
            return d.head(head, tar_header);
        }
        self.note_turn();
        self.pending.head(head, tar_header)?;
        self.check_held()
    }

    fn data(&mut self, bytes: &[u8]) -> Result<()> {
        self.stopped()?;
        if let Some(mut d) = self.deciding() {
            return d.data(bytes);
        }
        self.note_turn();
        self.pending.data(bytes)?;
        self.check_held()
    }

    fn file_end(&mut self, fp: Fingerprint) -> Result<()> {
        if let Some(mut d) = self.deciding() {
            return d.file_end(fp);
        }
        self.pending.file_end(fp)
    }

    fn refused(&mut self, head: &Head<'_>, error: Error) -> Error {
        match self.deciding() {
            Some(mut d) => d.refused(head, error),
            None => self.pending.refused(head, error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::io::Read;

    use super::*;
    use crate::fixtures::{plan_of, MemoryOut};
    use crate::fixtures::{raw_tar, Member};
    use crate::plan::Format;
    use crate::repack::{ConflictPolicy, COMPARE_BUFFER};

    /// Plan order on one thread where the "CPU clock" is the bytes read so
    /// far, and the turn comes once `turn_at` bytes were read.
    struct Clocked {
        clock: Cell<u64>,
        turn_at: u64,
        decider: RefCell<Option<Decider>>,
        serial: Cell<u64>,
    }

    impl Turns for Clocked {
        fn cancelled(&self, _: usize) -> bool {
            false
        }
        fn is_turn(&self, _: usize) -> bool {
            self.clock.get() >= self.turn_at
        }
        fn wait_turn(&self, _: usize) -> Option<Decider> {
            self.decider.borrow_mut().take()
        }
        fn pass_turn(&self, _: usize, decider: Decider) {
            *self.decider.borrow_mut() = Some(decider);
        }
        fn failed_ahead(&self, _: usize) {}
        fn fail(&self, _: usize, error: Error) {
            panic!("{error}");
        }
        fn live(&self, _: Option<usize>) {}
        fn cpu_ns(&self) -> u64 {
            self.clock.get()
        }
        fn serial(&self, ns: u64) {
            self.serial.set(self.serial.get() + ns);
        }
        fn reopen(&self, _: usize) -> Result<Box<dyn BufRead + '_>> {
            Err(Error::internal("no second read"))
        }
        fn read_twice(&self) {}
    }

    /// Bytes that advance the clock as they are consumed, 4 KiB at a time.
    struct Ticking<'a> {
        bytes: &'a [u8],
        clock: &'a Cell<u64>,
    }

    impl Read for Ticking<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.fill_buf()?.len().min(buf.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.consume(n);
            Ok(n)
        }
    }

    impl BufRead for Ticking<'_> {
        fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
            Ok(&self.bytes[..self.bytes.len().min(4096)])
        }
        fn consume(&mut self, n: usize) {
            self.bytes = &self.bytes[n..];
            self.clock.set(self.clock.get() + n as u64);
        }
    }

    impl ArtifactInput for Ticking<'_> {
        fn complete(&self) -> bool {
            true
        }
    }

    /// Serial work counted for one artifact of 64 files of 16 KiB whose
    /// turn comes after `turn_at` bytes, read ahead (`allowed`) or not;
    /// and the artifact's size.
    fn serial_of(turn_at: u64, allowed: bool) -> (u64, u64) {
        let name = "x_lib_generic.tar.zst";
        let plan = plan_of(&[name], &[&[0]], Format::Gzip);
        let members: Vec<Member> = (0..64)
            .map(|i| Member::file(format!("x/stage/lib/f{i}"), vec![i as u8; 16 << 10]))
            .collect();
        let tar = raw_tar(Some(&["x/stage"]), &members);
        let rules = Rules::new(&plan, Default::default()).unwrap();
        let turns = Clocked {
            clock: Cell::new(0),
            turn_at,
            decider: RefCell::new(Some(Decider::new(
                &plan,
                ConflictPolicy::Error,
                COMPARE_BUFFER,
            ))),
            serial: Cell::new(0),
        };
        let mut out = MemoryOut::new(1);
        let mut pieces = PieceWriter::new(&mut out, &[Format::Gzip], name);
        let input = Ticking {
            bytes: &tar,
            clock: &turns.clock,
        };
        let ahead = Ahead {
            allowed,
            limit: u64::MAX,
        };
        let mut pending = Pending::default();
        repack(
            &rules,
            &turns,
            0,
            name,
            Ok(input),
            &mut pieces,
            &mut pending,
            ahead,
        )
        .unwrap();
        (turns.serial.get(), tar.len() as u64)
    }

    /// The turn holder's reading is serial work however it is read: live
    /// from its start, or read ahead and reached by the turn midway (the
    /// run waits for the rest of its read), but not when its read ended
    /// before the turn came.
    #[test]
    fn reading_while_holding_the_turn_is_serial() {
        let (live, size) = serial_of(0, false);
        assert!(live + 4096 >= size, "{live} of {size}");
        let (midway, size) = serial_of(size / 4, true);
        let rest = size - size / 4;
        assert!(
            midway + 4096 >= rest && midway <= rest + 4096,
            "{midway} of {rest}"
        );
        let (before, size) = serial_of(u64::MAX, true);
        assert_eq!(before, 0, "of {size}");
    }
}
