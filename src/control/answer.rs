//! The client's reading of an answer line. A `status` is taken apart as
//! it arrives: each account and job is parsed as soon as all of it is
//! here, while the daemon still writes the rest, so that the client's
//! parse of a hundred thousand jobs overlaps the daemon's writing instead
//! of following it.
//!
//! Only the exact shape this version's daemon writes is read that way
//! (`{"answer":"status","report":{"accounts":[…],"jobs":[…],"daemon":{…}}}`,
//! no white space between the parts); anything else, a refusal or a daemon
//! of another version, is read whole by [`Response::read_bytes`] at the end
//! of the line. Either way the result is the same typed [`Response`].

use serde::de::DeserializeOwned;

use super::{Request, Response};
use crate::status::{AccountStatus, DaemonInfo, JobReport, StatusReport};

/// An answer line being read.
#[derive(Debug)]
pub(super) struct AnswerLine {
    /// Every byte read so far.
    pub(super) bytes: Vec<u8>,
    /// How far the bytes are taken apart.
    at: usize,
    /// How many bytes must be here before a long part found incomplete is
    /// parsed again: twice what it had, so that a part of megabytes (a
    /// daemon gone wrong, or a very long error) is parsed a few times, not
    /// once for each read.
    retry_at: usize,
    stage: Stage,
    /// How many times a part was parsed (for a test).
    #[cfg(test)]
    parses: usize,
    report: StatusReport,
}

/// Where the taking apart of a status has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Head,
    Accounts(List),
    Jobs(List),
    AfterJobs,
    Daemon,
    Tail,
    /// The whole status was read.
    Done,
    /// Not a status in the expected shape: read whole at the end.
    Whole,
}

/// Where in a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    /// Before its first element, or its end.
    Start,
    /// Before an element.
    Element,
    /// After an element: a comma or the end.
    Next,
}

const HEAD: &[u8] = br#"{"answer":"status","report":{"accounts":["#;
const ACCOUNTS_END: &[u8] = br#"],"jobs":["#;
const DAEMON: &[u8] = br#","daemon":"#;
const TAIL: &[u8] = b"}}";
/// A part longer than this, found incomplete, is parsed again only once
/// its bytes may have doubled.
const LONG_PART: usize = 4096;

/// What taking one part showed.
enum Step {
    /// Taken; go on.
    Took,
    /// At the end of a list.
    Done,
    /// The part is not all here yet.
    Wait,
    /// Not the expected shape.
    Other,
}

impl AnswerLine {
    /// The reading of an answer to `request`.
    pub(super) fn new(request: &Request) -> Self {
        AnswerLine {
            bytes: Vec::new(),
            at: 0,
            retry_at: 0,
            #[cfg(test)]
            parses: 0,
            stage: if matches!(request, Request::Status) {
                Stage::Head
            } else {
                Stage::Whole
            },
            report: StatusReport::default(),
        }
    }

    /// Takes apart what has arrived since the last call, as far as it is
    /// complete.
    pub(super) fn advance(&mut self) {
        if self.bytes.len() < self.retry_at {
            return;
        }
        loop {
            let step = match self.stage {
                Stage::Done | Stage::Whole => return,
                Stage::Head => self.literal(HEAD, Stage::Accounts(List::Start)),
                Stage::Accounts(at) => match self.list(at) {
                    Step::Took => {
                        self.stage = Stage::Accounts(List::Element);
                        self.element(|line, a: AccountStatus| {
                            line.report.accounts.push(a);
                            line.stage = Stage::Accounts(List::Next);
                        })
                    }
                    Step::Done => self.literal(ACCOUNTS_END, Stage::Jobs(List::Start)),
                    other => other,
                },
                Stage::Jobs(at) => match self.list(at) {
                    Step::Took => {
                        self.stage = Stage::Jobs(List::Element);
                        self.element(|line, j: JobReport| {
                            line.report.jobs.push(j);
                            line.stage = Stage::Jobs(List::Next);
                        })
                    }
                    Step::Done => self.literal(b"]", Stage::AfterJobs),
                    other => other,
                },
                Stage::AfterJobs => match self.next_byte() {
                    None => Step::Wait,
                    Some(b',') => self.literal(DAEMON, Stage::Daemon),
                    Some(_) => {
                        self.stage = Stage::Tail;
                        Step::Took
                    }
                },
                Stage::Daemon => self.element(|line, d: DaemonInfo| {
                    line.report.daemon = Some(d);
                    line.stage = Stage::Tail;
                }),
                Stage::Tail => self.literal(TAIL, Stage::Done),
            };
            match step {
                Step::Took | Step::Done => {}
                Step::Wait => return,
                Step::Other => {
                    self.stage = Stage::Whole;
                    self.report = StatusReport::default();
                    return;
                }
            }
        }
    }

    /// The answer, once the line has been read (or the daemon closed).
    pub(super) fn finish(mut self, request: &Request) -> Result<Response, serde_json::Error> {
        self.retry_at = 0;
        self.advance();
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        if self.stage == Stage::Done && rest.iter().all(u8::is_ascii_whitespace) {
            return Ok(Response::Status {
                report: Box::new(self.report),
            });
        }
        Response::read_bytes(&self.bytes, request)
    }

    fn next_byte(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// In a list at `at`: `Took` when an element is next (a comma before
    /// it taken), `Done` at the list's end (its `]` not taken).
    fn list(&mut self, at: List) -> Step {
        match (at, self.next_byte()) {
            (List::Element, _) => Step::Took,
            (_, None) => Step::Wait,
            (List::Start | List::Next, Some(b']')) => Step::Done,
            (List::Next, Some(b',')) => {
                self.at += 1;
                Step::Took
            }
            (List::Start, Some(_)) => Step::Took,
            (List::Next, Some(_)) => Step::Other,
        }
    }

    /// Takes `lit`, then goes on to `next`.
    fn literal(&mut self, lit: &[u8], next: Stage) -> Step {
        let here = self.bytes.get(self.at..).unwrap_or_default();
        let n = here.len().min(lit.len());
        if here[..n] != lit[..n] {
            Step::Other
        } else if n < lit.len() {
            Step::Wait
        } else {
            self.at += lit.len();
            self.stage = next;
            Step::Took
        }
    }

    /// Takes one JSON object of type `T` and hands it to `took`.
    fn element<T: DeserializeOwned>(&mut self, took: impl FnOnce(&mut Self, T)) -> Step {
        let here = self.bytes.get(self.at..).unwrap_or_default();
        if here.first() != Some(&b'{') {
            return if here.is_empty() {
                Step::Wait
            } else {
                Step::Other
            };
        }
        let mut values = serde_json::Deserializer::from_slice(here).into_iter::<T>();
        #[cfg(test)]
        {
            self.parses += 1;
        }
        match values.next() {
            Some(Ok(value)) => {
                self.at += values.byte_offset();
                took(self, value);
                Step::Took
            }
            Some(Err(e)) if e.is_eof() => {
                // A part of a few KiB (any real one) is parsed again at the
                // next read; a longer one when it may have doubled.
                if here.len() > LONG_PART {
                    self.retry_at = self.bytes.len() + here.len();
                }
                Step::Wait
            }
            _ => Step::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Refusal;

    /// `line` fed to an [`AnswerLine`] `piece` bytes at a time.
    fn read_in_pieces(line: &[u8], piece: usize, request: &Request) -> (Response, bool) {
        let mut reading = AnswerLine::new(request);
        let mut took_early = false;
        for chunk in line.chunks(piece.max(1)) {
            reading.bytes.extend_from_slice(chunk);
            reading.advance();
            took_early |= reading.stage != Stage::Done && !reading.report.accounts.is_empty();
        }
        (reading.finish(request).unwrap(), took_early)
    }

    fn status_line(jobs: usize, daemon: bool) -> (Vec<u8>, Response) {
        let snapshot = crate::status::sample::snapshot(jobs, daemon);
        let answer = Response::Status {
            report: Box::new(snapshot.to_report()),
        };
        let mut line = serde_json::to_vec(&answer).unwrap();
        line.push(b'\n');
        (line, answer)
    }

    #[test]
    fn a_status_is_taken_apart_as_it_arrives_into_the_same_answer() {
        for (jobs, daemon) in [(0, false), (0, true), (1, false), (40, true)] {
            let (line, answer) = status_line(jobs, daemon);
            for piece in [1, 2, 7, 64, 1000, line.len()] {
                let (read, early) = read_in_pieces(&line, piece, &Request::Status);
                assert_eq!(read, answer, "{jobs} jobs, pieces of {piece}");
                if piece < line.len() / 2 {
                    assert!(
                        early,
                        "{jobs} jobs, pieces of {piece}: read only at the end"
                    );
                }
            }
        }
    }

    #[test]
    fn other_shapes_are_read_whole() {
        let (line, answer) = status_line(3, true);
        let text = String::from_utf8(line).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let shapes = [
            // Pretty, and with the daemon first.
            serde_json::to_string_pretty(&value).unwrap(),
            format!(
                r#"{{"report":{},"answer":"status"}}"#,
                serde_json::to_string(&value["report"]).unwrap()
            ),
            // The first version's.
            format!(
                r#"{{"ok":true,"status":{}}}"#,
                serde_json::to_string(&value["report"]).unwrap()
            ),
        ];
        for shape in shapes {
            for piece in [1, 5, 100, shape.len()] {
                let (read, _) = read_in_pieces(shape.as_bytes(), piece, &Request::Status);
                assert_eq!(read, answer, "{shape}");
            }
        }
        let refused = br#"{"answer":"refused","refusal":"failed","error":"busy"}"#;
        let (read, _) = read_in_pieces(refused, 3, &Request::Status);
        assert_eq!(read, Response::refused(Refusal::Failed, "busy"));
    }

    #[test]
    fn a_broken_status_is_an_error_not_a_short_report() {
        let (line, _) = status_line(5, true);
        let cut = &line[..line.len() / 2];
        let mut reading = AnswerLine::new(&Request::Status);
        reading.bytes.extend_from_slice(cut);
        assert!(reading.finish(&Request::Status).is_err());
        let mut spoiled = line.clone();
        let at = spoiled.len() - 3;
        spoiled[at] = b']';
        let mut reading = AnswerLine::new(&Request::Status);
        reading.bytes.extend_from_slice(&spoiled);
        assert!(reading.finish(&Request::Status).is_err());
        let text = String::from_utf8(line.clone()).unwrap();
        for broken in [
            text.replacen("},{", "}{", 3),
            text.replacen("}],\"daemon\"", "},],\"daemon\"", 1),
            text.replacen("[{", "[,{", 1),
        ] {
            assert_ne!(broken, text);
            for piece in [1, 9, broken.len()] {
                let mut reading = AnswerLine::new(&Request::Status);
                for chunk in broken.as_bytes().chunks(piece) {
                    reading.bytes.extend_from_slice(chunk);
                    reading.advance();
                }
                assert!(reading.finish(&Request::Status).is_err(), "{broken}");
            }
        }
        let mut trailing = line[..line.len() - 1].to_vec();
        trailing.extend_from_slice(b"{}\n");
        let mut reading = AnswerLine::new(&Request::Status);
        reading.bytes.extend_from_slice(&trailing);
        assert!(reading.finish(&Request::Status).is_err());
    }

    /// A part of megabytes arriving a little at a time is parsed a few
    /// times, not once for every read (a hundred thousand parses of
    /// megabytes would take minutes).
    #[test]
    fn a_long_part_is_not_parsed_again_for_every_read() {
        let mut snapshot = crate::status::sample::snapshot(3, true);
        snapshot.accounts[0].last_error = Some("e".repeat(4 << 20));
        let answer = Response::Status {
            report: Box::new(snapshot.to_report()),
        };
        let mut line = serde_json::to_vec(&answer).unwrap();
        line.push(b'\n');
        let mut reading = AnswerLine::new(&Request::Status);
        for chunk in line.chunks(4096) {
            reading.bytes.extend_from_slice(chunk);
            reading.advance();
        }
        assert!(reading.parses < 40, "{} parses", reading.parses);
        assert_eq!(reading.finish(&Request::Status).unwrap(), answer);
    }
}
