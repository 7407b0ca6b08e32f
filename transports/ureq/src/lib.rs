//! Blocking (ureq) transport for box-upload-core.
