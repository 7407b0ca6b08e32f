//! Reading the source and uploading its parts: reads in offset order within the bound of parts
//! in flight, the whole-file hash, each part's answer checked against what was sent.

use super::{sha1_matches, BigUpload, Endpoint, Job, PartStatus, Phase, ReadTarget};
use crate::error::{Error, ProtocolError, SourceError};
use crate::machine::{Event, PartData, ReadId, ReadRequest, RequestKind};
use crate::models::UploadPart;
use crate::operations::UploadFilePart;
use bytes::Bytes;
use http::{Response, StatusCode};
use std::time::Instant;

impl BigUpload {
    /// The next range to read: a part to read again or the next part while fewer than
    /// `parts_in_flight + 1` are held (the next part ahead of that bound, for a deduplicated upload's
    /// plan, when [`may_read_ahead`](Self::may_read_ahead)), then one byte at the end of the file,
    /// which must come back empty.
    pub(super) fn next_read_request(&mut self) -> Option<ReadRequest> {
        if self.phase != Phase::Uploading || self.is_over() || !self.preflight_passed() {
            return None;
        }
        let plan = self.plan?;
        if self.holding < self.read_window() {
            // A plan's hit the session did not keep, read again to upload it.
            if let Some(part) = self.next_reread().and_then(|i| plan.part(i)) {
                self.parts[part.index].reading = true;
                self.holding += 1;
                self.next_read_id += 1;
                let id = ReadId(self.next_read_id);
                self.reads.insert(id, ReadTarget::Part(part.index));
                let len = usize::try_from(part.size).ok()?;
                return Some(ReadRequest { id, offset: part.offset, len });
            }
        }
        if self.next_read < plan.len() {
            let ahead = self.holding >= self.read_window();
            if ahead && !self.may_read_ahead() {
                return None;
            }
            let part = plan.part(self.next_read)?;
            self.parts[part.index].reading = true;
            if !ahead {
                self.holding += 1;
            }
            self.next_read += 1;
            self.next_read_id += 1;
            let id = ReadId(self.next_read_id);
            let target = if ahead { ReadTarget::Ahead(part.index) } else { ReadTarget::Part(part.index) };
            self.reads.insert(id, target);
            // Bounded by part_size, which fits in memory or the plan would be refused upstream.
            let len = usize::try_from(part.size).ok()?;
            return Some(ReadRequest { id, offset: part.offset, len });
        }
        if self.eof_checked.is_none() {
            self.eof_checked = Some(false);
            self.next_read_id += 1;
            let id = ReadId(self.next_read_id);
            self.reads.insert(id, ReadTarget::EndOfFile);
            return Some(ReadRequest { id, offset: plan.file_size(), len: 1 });
        }
        None
    }

    /// Parts held at once (read, being read, on the wire or ready to go): one more than the parts
    /// in flight, so the next part is read and hashed while the others are on the wire and goes
    /// out the moment one of them is answered.
    fn read_window(&self) -> usize {
        self.settings.parts_in_flight.saturating_add(1)
    }

    /// Uploads a part whose bytes are held, or queues it until fewer than `parts_in_flight` are on
    /// the wire.
    pub(super) fn send_part(&mut self, index: usize) {
        if self.parts_sending >= self.settings.parts_in_flight {
            self.ready.push_back(index);
            return;
        }
        let (Some(plan), Some(data)) = (self.plan, self.parts.get(index).and_then(|s| s.data.clone())) else { return };
        let Some(planned) = plan.part(index) else { return };
        let session = match self.session_ref(Endpoint::UploadPart) {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        let op = UploadFilePart {
            session,
            range: planned.content_range(plan.file_size()),
            data,
            headers: Default::default(),
        };
        self.parts[index].status = PartStatus::Sending;
        self.parts_sending += 1;
        self.submit(Job::Part(index), &op, None);
    }

    /// A part's request is over (answered or failed): the next ready part goes out.
    pub(super) fn part_request_over(&mut self) {
        self.parts_sending = self.parts_sending.saturating_sub(1);
        while self.parts_sending < self.settings.parts_in_flight && !self.is_over() {
            let Some(index) = self.ready.pop_front() else { break };
            self.send_part(index);
        }
    }

    /// Lets go of a part's bytes once Box holds the part and the whole-file hash has them.
    pub(super) fn release_if_done(&mut self, index: usize) {
        let slot = &mut self.parts[index];
        if slot.hashed && matches!(slot.status, PartStatus::Acked(_)) && slot.data.take().is_some() {
            self.holding -= 1;
        }
    }

    pub(super) fn on_read(&mut self, id: ReadId, data: Result<PartData, SourceError>, now: Instant) {
        let Some(target) = self.reads.remove(&id) else { return };
        let data = match data {
            Ok(d) => d,
            Err(e) => return self.fail(e.into()),
        };
        let Some(plan) = self.plan else { return };
        match target {
            ReadTarget::EndOfFile => {
                if data.is_empty() {
                    self.eof_checked = Some(true);
                    self.maybe_verify(now);
                } else {
                    self.fail(SourceError::RanLong { file_size: plan.file_size() }.into());
                }
            }
            ReadTarget::Part(index) | ReadTarget::Ahead(index) => {
                let ahead = matches!(target, ReadTarget::Ahead(_));
                let Some(planned) = plan.part(index) else { return };
                self.parts[index].reading = false;
                if data.len() as u64 != planned.size {
                    let e = if (data.len() as u64) < planned.size {
                        SourceError::EndedEarly {
                            offset: planned.offset,
                            expected: planned.size,
                            got: data.len() as u64,
                        }
                    } else {
                        SourceError::RanLong { file_size: plan.file_size() }
                    };
                    return self.fail(e.into());
                }
                // A part read again (a deduplicated upload's) was counted the first time.
                if !self.dedupe.as_ref().is_some_and(|d| d.is_reread(index)) {
                    self.progress.bytes_read += planned.size;
                }
                let data = if ahead {
                    match self.keep_digests(index, data) {
                        None => {
                            self.emit_progress();
                            return self.flush_plan();
                        }
                        // Plans are over: held and sent like a part read within the bound.
                        Some(data) => {
                            self.holding += 1;
                            data
                        }
                    }
                } else {
                    data
                };
                match &self.parts[index].status {
                    PartStatus::Acked(known) => {
                        // Resumed: Box has this part; it must still be the source's.
                        if let Err(e) = Self::check_resumed_part(known, &planned, &data) {
                            return self.fail(e);
                        }
                    }
                    _ => {
                        match self.hold_for_plan(index, &data) {
                            Err(e) => return self.fail(e),
                            Ok(true) => {
                                self.parts[index].data = Some(data);
                                self.advance_hash();
                                self.emit_progress();
                                return self.flush_plan();
                            }
                            Ok(false) => {}
                        }
                        self.parts[index].data = Some(data);
                        self.send_part(index);
                        self.advance_hash();
                        self.emit_progress();
                        return self.maybe_verify(now);
                    }
                }
                self.parts[index].data = Some(data);
                self.advance_hash();
                self.emit_progress();
                self.maybe_verify(now);
            }
        }
    }

    /// Feeds the whole-file hasher every part now contiguous from the start, and lets go of the
    /// bytes of parts Box already holds.
    pub(super) fn advance_hash(&mut self) {
        while let Some(slot) = self.parts.get_mut(self.hashed_upto) {
            let Some(data) = &slot.data else { break };
            // The reading thread may have carried the whole-file hash on already (see
            // `part_builder`); it did if the hasher it returns covers exactly this part more.
            match &data.file {
                Some(file) if file.len() == self.whole.len() + data.len() as u64 => self.whole = (**file).clone(),
                _ => {
                    self.whole.update(data.bytes());
                    self.whole_hashed_here += data.len() as u64;
                }
            }
            slot.hashed = true;
            self.release_if_done(self.hashed_upto);
            self.hashed_upto += 1;
        }
        if self.hashed_upto == self.parts.len() && self.digest.is_none() && !self.parts.is_empty() {
            self.digest = Some(std::mem::take(&mut self.whole).finish());
        }
    }

    pub(super) fn on_part_answer(&mut self, index: usize, response: Response<Bytes>, now: Instant) {
        let (Some(plan), Some(slot)) = (self.plan, self.parts.get(index)) else { return };
        let Some(planned) = plan.part(index) else { return };
        let Some(data) = slot.data.as_ref() else { return };
        let ours = data.sha1();
        let status = response.status();
        let code = overlap_code(&response);
        if status == StatusCode::CONFLICT || (status == StatusCode::RANGE_NOT_SATISFIABLE && code) {
            self.parts[index].status = PartStatus::Conflict;
            self.start_reconcile();
            return;
        }
        let op_kind = RequestKind::UploadPart;
        let echoed = match crate::response::parse_json::<crate::models::UploadedPart>(op_kind, response) {
            Ok(p) => p.part,
            Err(e) => return self.fail(e),
        };
        let Some(part) = echoed else {
            return self.fail(ProtocolError::MissingField { kind: op_kind, field: "part" }.into());
        };
        let mismatch = |field, ours: String, theirs: String| {
            Error::from(ProtocolError::PartEchoMismatch { offset: planned.offset, field, ours, theirs })
        };
        if part.offset != planned.offset {
            return self.fail(mismatch("offset", planned.offset.to_string(), part.offset.to_string()));
        }
        if part.size != planned.size {
            return self.fail(mismatch("size", planned.size.to_string(), part.size.to_string()));
        }
        if !sha1_matches(part.sha1.as_deref(), ours) {
            return self.fail(mismatch("sha1", ours.to_hex(), part.sha1.clone().unwrap_or_default()));
        }
        self.ack(index, part);
        self.maybe_verify(now);
    }

    pub(super) fn ack(&mut self, index: usize, part: UploadPart) {
        let size = part.size;
        let slot = &mut self.parts[index];
        if matches!(slot.status, PartStatus::Acked(_)) {
            return;
        }
        slot.status = PartStatus::Acked(part);
        self.release_if_done(index);
        self.progress.parts_acknowledged += 1;
        self.progress.bytes_acknowledged += size;
        self.emit_progress();
        self.events.push_back(Event::CheckpointUpdated);
    }
}

fn overlap_code(response: &Response<Bytes>) -> bool {
    crate::response::read_json::<crate::models::ClientError>(response.body())
        .ok()
        .and_then(|e| e.code)
        .is_some_and(|c| c == "range_overlaps_existing_part")
}
