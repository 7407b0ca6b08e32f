//! Starting a new upload: the create request (new file or new version) and taking on the
//! session Box answers with, whether created or resumed.

use super::{BigUpload, Endpoint, Job, PartSlot, PartStatus, Phase, Settings, UploadRequest, UploadTarget};
use crate::error::{Error, InputError, ProtocolError};
use crate::machine::{Event, RequestKind};
use crate::models::UploadSession;
use crate::operations::{CreateUploadSession, CreateUploadSessionForFile, Operation};
use crate::planner::PartPlan;
use crate::Client;
use bytes::Bytes;
use http::Response;

impl BigUpload {
    pub(crate) fn start(client: &Client, request: UploadRequest) -> Result<Self, InputError> {
        Self::start_with_floor(client, request, 0)
    }

    /// [`start`](Self::start), giving out request ids above `id_floor`.
    pub(super) fn start_with_floor(client: &Client, request: UploadRequest, id_floor: u64) -> Result<Self, InputError> {
        let settings = request.into_settings()?;
        // The create operation checks the size, ids and name before anything is sent.
        let create = create_request(&settings)?;
        let mut upload = Self::new(client, settings, Phase::Creating);
        upload.dispatch.ids_after(id_floor);
        match create.request(&upload.dispatch.config().clone()) {
            Ok(mut req) => {
                upload.add_headers(&mut req);
                upload.dispatch.submit(Job::Create, create.kind(), req, None);
            }
            Err(e) => upload.fail(e),
        }
        Ok(upload)
    }

    pub(super) fn on_create_answer(&mut self, response: Response<Bytes>) {
        let create = match create_request(&self.settings) {
            Ok(c) => c,
            Err(e) => return self.fail(e.into()),
        };
        let kind = create.kind();
        match create.parse(response).and_then(|s| self.on_session(s, kind)) {
            Ok(()) if self.pending_failure.is_some() => {
                // The preflight check failed meanwhile: abort the session, fail with the check.
                self.phase = Phase::Uploading;
                let error = self.pending_failure.take().unwrap_or(Error::Cancelled);
                self.fail(error);
            }
            Ok(()) => {
                self.phase = Phase::Uploading;
                let session_id = self.session.as_ref().map(|s| s.id.clone()).unwrap_or_default();
                self.events.push_back(Event::SessionCreated { session_id });
                self.events.push_back(Event::CheckpointUpdated);
            }
            Err(e) => self.create_failed(e),
        }
    }

    pub(super) fn on_session(&mut self, session: UploadSession, kind: RequestKind) -> Result<(), Error> {
        if session.id.is_empty() {
            return Err(ProtocolError::MissingField { kind, field: "id" }.into());
        }
        crate::operations::check_id("session id", &session.id)
            .map_err(|_| ProtocolError::MissingField { kind, field: "a valid session id" })?;
        let plan = PartPlan::for_session(self.settings.file_size, &session);
        let part_size = session.part_size;
        // Box holds the session even when its numbers are unusable: keep it so the failure aborts it.
        self.session = Some(session);
        let plan = plan.map_err(ProtocolError::BadSession)?;
        if let Some(part_size) = part_size {
            self.check_part_size(part_size)?;
        }
        // Refuse foreign endpoints now, before a single part is read.
        for endpoint in [Endpoint::UploadPart, Endpoint::Commit, Endpoint::ListParts, Endpoint::Abort, Endpoint::Status]
        {
            self.session_ref(endpoint)?;
        }
        if self.dedupe.is_some() {
            self.session_ref(Endpoint::Plan)?;
        }
        self.plan = Some(plan);
        self.parts = (0..plan.len())
            .map(|_| PartSlot {
                status: PartStatus::Pending,
                reading: false,
                data: None,
                hashed: false,
                unanswered: None,
            })
            .collect();
        self.progress.total_parts = plan.len() as u64;
        Ok(())
    }
}

impl BigUpload {
    /// Refuses parts larger than the client's cap: memory holds up to parts in flight + 1 of
    /// them, and a server may answer any `part_size`, up to the whole file.
    pub(super) fn check_part_size(&self, part_size: u64) -> Result<(), ProtocolError> {
        let max_part_size = self.dispatch.config().max_part_size;
        if part_size > max_part_size {
            return Err(ProtocolError::PartSizeTooLarge { part_size, max_part_size });
        }
        Ok(())
    }
}

fn create_request(settings: &Settings) -> Result<Box<dyn CreateOp>, InputError> {
    Ok(match &settings.target {
        UploadTarget::NewFile { folder_id, file_name } => {
            Box::new(CreateUploadSession::new(folder_id.clone(), file_name.clone(), settings.file_size)?)
        }
        UploadTarget::NewVersion { file_id, file_name } => {
            let mut op = CreateUploadSessionForFile::new(file_id.clone(), settings.file_size)?;
            if let Some(name) = file_name {
                op = op.with_file_name(name.clone())?;
            }
            Box::new(op)
        }
    })
}

/// Either create operation, so the machine can hold one without caring which.
trait CreateOp: Operation<Output = UploadSession> {}
impl CreateOp for CreateUploadSession {}
impl CreateOp for CreateUploadSessionForFile {}

impl Operation for Box<dyn CreateOp> {
    type Output = UploadSession;

    fn kind(&self) -> RequestKind {
        (**self).kind()
    }

    fn request(&self, config: &crate::Config) -> Result<http::Request<Bytes>, Error> {
        (**self).request(config)
    }

    fn parse(&self, response: Response<Bytes>) -> Result<UploadSession, Error> {
        (**self).parse(response)
    }
}
