//! The client surface every transport shares: the preambles of an upload and a resume, and the
//! operation methods, written once in [`client_surface!`](crate::client_surface) and expanded
//! in each transport as blocking or async methods.

use crate::checkpoint::load_checkpoint;
use crate::options::UploadOptions;
use crate::source::{OpenSource, Source};
use crate::Error;
use box_upload_core::{
    BigUpload, Client, FileUpload, FileUploadOptions, ResumeFrom, ResumeOptions, UploadRequest, DEFAULT_PARTS_IN_FLIGHT,
};

/// Opens `source` with part buffers kept for `parts_in_flight` parts on the wire and the one
/// being read.
pub fn open_source(source: Source, parts_in_flight: Option<usize>) -> Result<OpenSource, Error> {
    source.open(parts_in_flight.unwrap_or(DEFAULT_PARTS_IN_FLIGHT).saturating_add(1))
}

/// The big upload of `source` as `request` says, with the source opened: the core decides the
/// size, fingerprint and checks ([`Client::start_upload`]).
pub fn open_upload(
    core: &Client,
    source: Source,
    request: UploadRequest,
    parts_in_flight: Option<usize>,
) -> Result<(BigUpload, OpenSource), Error> {
    let pif = parts_in_flight.or(Some(request.parts_in_flight));
    let source = open_source(source, pif)?;
    tracing::info!(size = request.file_size, parts_in_flight = pif, path = ?source.path(), "starting upload");
    let machine = core.start_upload(request, &source.facts(), parts_in_flight)?;
    Ok((machine, source))
}

/// The upload of `source` as `request` says, any size: a direct upload below `chunked_from`,
/// an upload session from it ([`Client::file_upload`]), with the source opened and its times
/// and the conflict policy taken from `options`. A stream smaller than `chunked_from` is read
/// into memory first (it is at most 50 MB): a direct upload reads its source twice, once for
/// the SHA-1 Box checks, once to send it.
pub fn open_file_upload(
    core: &Client,
    source: Source,
    request: UploadRequest,
    parts_in_flight: Option<usize>,
    chunked_from: u64,
    options: &UploadOptions,
) -> Result<(FileUpload, OpenSource), Error> {
    let source = source.rereadable(request.file_size, chunked_from.saturating_sub(1))?;
    let pif = parts_in_flight.or(Some(request.parts_in_flight));
    let source = open_source(source, pif)?;
    let (modified, created) = if options.no_timestamps { (None, None) } else { source.times() };
    let file_options = FileUploadOptions { chunked_from, on_conflict: options.on_conflict, modified, created };
    let machine = core.file_upload(request, &source.facts(), parts_in_flight, file_options)?;
    if !machine.is_chunked() && !source.can_reread() {
        return Err(Error::Config(
            "a stream below the chunked cutoff needs its size in the request (it is read into memory first)".into(),
        ));
    }
    if machine.is_chunked() && !source.can_reread() && options.on_conflict == box_upload_core::OnConflict::Skip {
        // Comparing with the file holding the name reads the source once before the session does.
        return Err(Error::Config(
            "on_conflict skip needs a source that can be read twice (a file or bytes), not a stream".into(),
        ));
    }
    tracing::info!(
        size = machine.size(),
        chunked = machine.is_chunked(),
        path = ?source.path(),
        "starting upload"
    );
    Ok((machine, source))
}

/// The resume of a checkpoint (a value, or the path of a checkpoint file, which the run then
/// keeps up to date unless `upload` names another) from `source` ([`Client::start_resume`]).
pub fn open_resume(
    core: &Client,
    from: ResumeFrom,
    source: Source,
    options: ResumeOptions,
    upload: &mut UploadOptions,
    parts_in_flight: Option<usize>,
) -> Result<(BigUpload, OpenSource), Error> {
    let checkpoint = match from {
        ResumeFrom::Checkpoint(c) => *c,
        ResumeFrom::File(path) => {
            let checkpoint = load_checkpoint(&path)?;
            upload.default_checkpoint_file(path);
            checkpoint
        }
    };
    let source = open_source(source, parts_in_flight.or(Some(options.parts_in_flight)))?;
    tracing::info!(session_id = %checkpoint.session.id, parts_done = checkpoint.parts.len(), "resuming upload");
    let machine = core.start_resume(checkpoint, options, &source.facts(), parts_in_flight)?;
    Ok((machine, source))
}

/// Adds `Expect: 100-continue` to a request whose body is at least
/// [`EXPECT_CONTINUE_FROM`](crate::EXPECT_CONTINUE_FROM) bytes, unless it has an `Expect`.
pub fn expect_continue(request: &mut http::Request<bytes::Bytes>) {
    if request.body().len() >= crate::EXPECT_CONTINUE_FROM && !request.headers().contains_key(http::header::EXPECT) {
        request.headers_mut().insert(http::header::EXPECT, http::HeaderValue::from_static("100-continue"));
    }
}

/// A transport's `Client`, written once: the struct (the core client, the transport's wire, the
/// parts in flight), its [`ClientBuilder`](crate::ClientBuilder) alias and the marker type the
/// builder builds it with, and every method of [`client_surface!`](crate::client_surface).
/// `client!(Marker, Wire, {async} {.await})` in an async transport, `client!(Marker, Wire, {}
/// {})` in a blocking one; `Wire::new(&Settings) -> Result<Wire, Error>` makes the wire, and the
/// transport writes its loop, `driver::drive`, and `part_data` (see
/// [`client_surface!`](crate::client_surface)).
#[macro_export]
macro_rules! client {
    ($(#[$meta:meta])* $marker:ident, $wire:ty, {$($async:tt)*} {$($await:tt)*}) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct Client {
            core: $crate::core::Client,
            pub(crate) wire: $wire,
            pub(crate) parts_in_flight: Option<usize>,
            pub(crate) chunked_from: u64,
        }

        impl ::std::fmt::Debug for Client {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct("Client")
                    .field("core", &self.core)
                    .field("parts_in_flight", &self.parts_in_flight)
                    .finish_non_exhaustive()
            }
        }

        /// Builds a [`Client`]: the same builder, with the same settings, as every transport's.
        pub type ClientBuilder = $crate::ClientBuilder<$marker>;

        /// This transport, as the [`ClientBuilder`] knows it.
        #[derive(Debug)]
        pub enum $marker {}

        impl $crate::Wire for $marker {
            type Client = Client;

            fn build(settings: $crate::Settings) -> Result<Client, $crate::Error> {
                Ok(Client {
                    core: settings.core_client()?,
                    wire: <$wire>::new(&settings)?,
                    parts_in_flight: settings.parts_in_flight(),
                    chunked_from: settings.chunked_from,
                })
            }
        }

        impl Client {
            /// A builder with the defaults.
            pub fn builder() -> ClientBuilder {
                ClientBuilder::new()
            }

            $crate::client_surface!({$($async)*} {$($await)*});
        }
    };
}

/// The methods of a transport's `Client`, written once: the fifteen operations, the big
/// upload and the resume, and the generic `run` / `drive` entry points. Expanded inside
/// `impl Client { ... }` as `client_surface!({} {})` for a blocking client or
/// `client_surface!({async} {.await})` for an async one.
///
/// [`client!`](crate::client) expands it. The client must have the fields
/// `core: box_upload_core::Client` and `parts_in_flight: Option<usize>`; the transport has its
/// loop, `crate::driver::drive(&Client, &mut M, Option<OpenSource>, UploadOptions) ->
/// Result<M::Output, Error>`, and a method `part_data(Bytes) -> Result<PartData, Error>`
/// (hashing a part where the transport allows blocking work), blocking or async as the surface.
// `crate::driver::drive` is the expanding transport's own loop, on purpose.
#[allow(clippy::crate_in_macro_def)]
#[macro_export]
macro_rules! client_surface {
    ({$($async:tt)*} {$($await:tt)*}) => {
        /// The core client (policy and token source) this one drives.
        #[must_use]
        pub fn core(&self) -> &$crate::core::Client {
            &self.core
        }

        // ---- the generic surface -----------------------------------------------------------

        /// Runs any core machine to its output: sends its requests, keeps its deadlines. Reads
        /// it asks for fail (it has no source): see [`drive_with`](Self::drive_with).
        pub $($async)* fn drive<M>(&self, machine: &mut M) -> Result<M::Output, $crate::Error>
        where
            M: $crate::core::Machine + Send,
            M::Output: Send,
        {
            crate::driver::drive(self, machine, None, $crate::UploadOptions::default()) $($await)*
        }

        /// Runs any core machine to its output, serving its reads from `source` (e.g. a
        /// [`BigUpload`]($crate::core::BigUpload) made with `core().start_upload(..)`), one
        /// read at a time, in order, each through the machine's `part_builder`, and steered by
        /// `options` (progress, events, checkpoint, cancellation).
        pub $($async)* fn drive_with<M>(
            &self,
            machine: &mut M,
            source: $crate::Source,
            options: $crate::UploadOptions,
        ) -> Result<M::Output, $crate::Error>
        where
            M: $crate::core::Machine + Send,
            M::Output: Send,
        {
            let source = $crate::open_source(source, self.parts_in_flight)?;
            crate::driver::drive(self, machine, Some(source), options) $($await)*
        }

        /// Runs any core machine to its output, serving its reads from a source already opened
        /// (the one [`open_upload`]($crate::open_upload) gave with the machine, so the reads are
        /// checked against the very file the machine's size and fingerprint came from), or none,
        /// steered by `options`.
        pub $($async)* fn drive_open<M>(
            &self,
            machine: &mut M,
            source: Option<$crate::OpenSource>,
            options: $crate::UploadOptions,
        ) -> Result<M::Output, $crate::Error>
        where
            M: $crate::core::Machine + Send,
            M::Output: Send,
        {
            crate::driver::drive(self, machine, source, options) $($await)*
        }

        /// Runs one operation (with the core's token handling and retries).
        pub $($async)* fn run<O>(&self, operation: O) -> Result<O::Output, $crate::Error>
        where
            O: $crate::core::operations::Operation + Send,
            O::Output: Send,
        {
            let mut call = self.core.call(operation);
            self.drive(&mut call) $($await)*
        }

        // ---- the 15 operations -------------------------------------------------------------

        /// `POST /files/upload_sessions`: a session for a new file.
        pub $($async)* fn create_upload_session(
            &self,
            folder_id: impl Into<String>,
            file_name: impl Into<String>,
            file_size: u64,
        ) -> Result<$crate::core::models::UploadSession, $crate::Error> {
            let op = $crate::core::operations::CreateUploadSession::new(folder_id, file_name, file_size)?;
            self.run(op) $($await)*
        }

        /// `POST /files/{file_id}/upload_sessions`: a session for a new version, optionally
        /// renamed.
        pub $($async)* fn create_upload_session_for_file(
            &self,
            file_id: impl Into<String>,
            file_size: u64,
            file_name: Option<String>,
        ) -> Result<$crate::core::models::UploadSession, $crate::Error> {
            let mut op = $crate::core::operations::CreateUploadSessionForFile::new(file_id, file_size)?;
            if let Some(name) = file_name {
                op = op.with_file_name(name)?;
            }
            self.run(op) $($await)*
        }

        /// `GET /files/upload_sessions/{id}`.
        pub $($async)* fn get_upload_session_by_id(
            &self,
            session_id: impl Into<String>,
        ) -> Result<$crate::core::models::UploadSession, $crate::Error> {
            self.run($crate::core::operations::GetUploadSession::by_id(session_id)) $($await)*
        }

        /// `GET` the session's `session_endpoints.status` URL.
        pub $($async)* fn get_upload_session_by_url(
            &self,
            url: impl Into<String>,
        ) -> Result<$crate::core::models::UploadSession, $crate::Error> {
            self.run($crate::core::operations::GetUploadSession::by_url(url)) $($await)*
        }

        /// `PUT /files/upload_sessions/{id}`: one part at `offset` of a file of `file_size`
        /// bytes. The part's SHA-1 is computed where the transport allows blocking work.
        pub $($async)* fn upload_file_part_by_id(
            &self,
            session_id: impl Into<String>,
            offset: u64,
            file_size: u64,
            bytes: impl Into<$crate::bytes::Bytes>,
        ) -> Result<$crate::core::models::UploadedPart, $crate::Error> {
            let data = Self::part_data(bytes.into()) $($await)* ?;
            self.run($crate::core::operations::UploadFilePart::by_id(session_id, offset, file_size, data)?) $($await)*
        }

        /// `PUT` the session's `session_endpoints.upload_part` URL.
        pub $($async)* fn upload_file_part_by_url(
            &self,
            url: impl Into<String>,
            offset: u64,
            file_size: u64,
            bytes: impl Into<$crate::bytes::Bytes>,
        ) -> Result<$crate::core::models::UploadedPart, $crate::Error> {
            let data = Self::part_data(bytes.into()) $($await)* ?;
            self.run($crate::core::operations::UploadFilePart::by_url(url, offset, file_size, data)?) $($await)*
        }

        /// `DELETE /files/upload_sessions/{id}`: aborts the session.
        pub $($async)* fn delete_upload_session_by_id(
            &self,
            session_id: impl Into<String>,
        ) -> Result<(), $crate::Error> {
            self.run($crate::core::operations::DeleteUploadSession::by_id(session_id)) $($await)*
        }

        /// `DELETE` the session's `session_endpoints.abort` URL.
        pub $($async)* fn delete_upload_session_by_url(&self, url: impl Into<String>) -> Result<(), $crate::Error> {
            self.run($crate::core::operations::DeleteUploadSession::by_url(url)) $($await)*
        }

        /// `GET /files/upload_sessions/{id}/parts`, one page (`limit` at most 1000).
        pub $($async)* fn list_upload_session_parts_by_id(
            &self,
            session_id: impl Into<String>,
            offset: Option<u64>,
            limit: Option<u64>,
        ) -> Result<$crate::core::models::UploadParts, $crate::Error> {
            let op = $crate::core::operations::ListUploadSessionParts::by_id(session_id).with_page(offset, limit)?;
            self.run(op) $($await)*
        }

        /// `GET` the session's `session_endpoints.list_parts` URL, one page.
        pub $($async)* fn list_upload_session_parts_by_url(
            &self,
            url: impl Into<String>,
            offset: Option<u64>,
            limit: Option<u64>,
        ) -> Result<$crate::core::models::UploadParts, $crate::Error> {
            let op = $crate::core::operations::ListUploadSessionParts::by_url(url).with_page(offset, limit)?;
            self.run(op) $($await)*
        }

        /// `POST /files/upload_sessions/{id}/commit` with every part and the whole file's SHA-1.
        /// A 202 comes back as
        /// [`CommitResponse::NotReady`]($crate::core::operations::CommitResponse::NotReady):
        /// this single call does not wait and retry it (the big upload does).
        pub $($async)* fn commit_upload_session_by_id(
            &self,
            session_id: impl Into<String>,
            parts: Vec<$crate::core::models::UploadPart>,
            digest: $crate::core::Sha1Digest,
            if_match: Option<String>,
            if_none_match: Option<String>,
        ) -> Result<$crate::core::operations::CommitResponse, $crate::Error> {
            let op = $crate::core::operations::CommitUploadSession::by_id(session_id, parts, digest);
            self.run(op.with_conditions(if_match, if_none_match)) $($await)*
        }

        /// `POST` the session's `session_endpoints.commit` URL.
        pub $($async)* fn commit_upload_session_by_url(
            &self,
            url: impl Into<String>,
            parts: Vec<$crate::core::models::UploadPart>,
            digest: $crate::core::Sha1Digest,
            if_match: Option<String>,
            if_none_match: Option<String>,
        ) -> Result<$crate::core::operations::CommitResponse, $crate::Error> {
            let op = $crate::core::operations::CommitUploadSession::by_url(url, parts, digest);
            self.run(op.with_conditions(if_match, if_none_match)) $($await)*
        }

        /// `POST /files/upload_sessions/{id}/plan`: which of these parts (offset, size, SHA-512)
        /// Box holds already. The answer is checked against the parts asked about.
        pub $($async)* fn plan_upload_session_by_id(
            &self,
            session_id: impl Into<String>,
            parts: Vec<$crate::core::models::PlanPart>,
        ) -> Result<$crate::core::models::UploadSessionPlan, $crate::Error> {
            self.run($crate::core::operations::PlanUploadSession::by_id(session_id, parts)?) $($await)*
        }

        /// `POST` the session's `session_endpoints.plan` URL.
        pub $($async)* fn plan_upload_session_by_url(
            &self,
            url: impl Into<String>,
            parts: Vec<$crate::core::models::PlanPart>,
        ) -> Result<$crate::core::models::UploadSessionPlan, $crate::Error> {
            self.run($crate::core::operations::PlanUploadSession::by_url(url, parts)?) $($await)*
        }

        /// `GET /2.0/files/{id}` on the API host: the file's standard fields, or the mini file
        /// and `fields` when some are named.
        pub $($async)* fn get_file(
            &self,
            file_id: impl Into<String>,
            fields: &[&str],
        ) -> Result<$crate::core::models::FileFull, $crate::Error> {
            let op = $crate::core::operations::GetFile::new(file_id)?.with_fields(fields.iter().copied())?;
            self.run(op) $($await)*
        }

        /// `OPTIONS /2.0/files/content` on the API host: whether a new file `file_name` of
        /// `size` bytes would be accepted in `folder_id`; a name in use comes back as
        /// [`PreflightCheck::NameInUse`]($crate::core::operations::PreflightCheck::NameInUse)
        /// with the file holding it.
        pub $($async)* fn preflight_file_upload(
            &self,
            folder_id: impl Into<String>,
            file_name: impl Into<String>,
            size: u64,
        ) -> Result<$crate::core::operations::PreflightCheck, $crate::Error> {
            self.run($crate::core::operations::PreflightFileUpload::new(folder_id, file_name, size)?) $($await)*
        }

        // ---- the big upload ----------------------------------------------------------------

        /// Uploads `source` as the request says (a new file, or a new version with
        /// [`UploadRequest::new_version`]($crate::core::UploadRequest::new_version)), any size,
        /// 0 bytes included: below the client's `chunked_from` (default
        /// [`DEFAULT_CHUNKED_FROM`]($crate::core::DEFAULT_CHUNKED_FROM)) in one direct upload
        /// streamed from the source, from it in an upload session (a new file's preflight check
        /// beside the session's creation, parts in parallel, commit; on failure the session is
        /// aborted unless the request keeps it). Box's answer must carry our SHA-1 and size. See
        /// [`FileUpload`]($crate::core::FileUpload).
        ///
        /// A request `file_size` of 0 is taken from the source when it knows its size (files
        /// and bytes); another size than the source's is refused. A file source's fingerprint
        /// (path, size, modification time) goes into the checkpoint, and its times into Box's
        /// `content_modified_at` / `content_created_at` unless
        /// [`UploadOptions::timestamps`]($crate::UploadOptions::timestamps) says not to.
        pub $($async)* fn upload(
            &self,
            source: $crate::Source,
            request: $crate::core::UploadRequest,
        ) -> Result<$crate::core::models::FileFull, $crate::Error> {
            self.upload_with(source, request, $crate::UploadOptions::default()) $($await)*
        }

        /// [`upload`](Self::upload) with progress, events, a checkpoint file and cancellation.
        pub $($async)* fn upload_with(
            &self,
            source: $crate::Source,
            request: $crate::core::UploadRequest,
            options: $crate::UploadOptions,
        ) -> Result<$crate::core::models::FileFull, $crate::Error> {
            let (mut machine, source) = $crate::open_file_upload(
                &self.core,
                source,
                request,
                self.parts_in_flight,
                self.chunked_from,
                &options,
            )?;
            crate::driver::drive(self, &mut machine, Some(source), options) $($await)*
        }

        /// Continues an upload from a checkpoint (a value, or the path of a checkpoint file)
        /// with the same source. Parts Box already holds are read again to check they still
        /// match, but not sent. The source's size and fingerprint are checked against the
        /// checkpoint's.
        pub $($async)* fn resume(
            &self,
            from: impl Into<$crate::core::ResumeFrom>,
            source: $crate::Source,
            options: $crate::core::ResumeOptions,
        ) -> Result<$crate::core::models::FileFull, $crate::Error> {
            self.resume_with(from, source, options, $crate::UploadOptions::default()) $($await)*
        }

        /// [`resume`](Self::resume) with progress, events, a checkpoint file and cancellation.
        /// Resuming from a checkpoint file keeps updating that file unless `upload_options`
        /// names another.
        pub $($async)* fn resume_with(
            &self,
            from: impl Into<$crate::core::ResumeFrom>,
            source: $crate::Source,
            options: $crate::core::ResumeOptions,
            mut upload_options: $crate::UploadOptions,
        ) -> Result<$crate::core::models::FileFull, $crate::Error> {
            let (mut machine, source) = $crate::open_resume(
                &self.core,
                from.into(),
                source,
                options,
                &mut upload_options,
                self.parts_in_flight,
            )?;
            crate::driver::drive(self, &mut machine, Some(source), upload_options) $($await)*
        }
    };
}
