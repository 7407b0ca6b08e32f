//! Async (tokio + hyper) transport for box-upload-core.
