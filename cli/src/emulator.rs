//! `box-upload upload --emulator`: Box's emulator in-process on loopback, an upload through the
//! real HTTP stack, and a byte-for-byte check of what the emulator stored.

use crate::args::UploadArgs;
use crate::failure::{io_failure, Exit, Failure};
use crate::output::print_line;
use box_upload_conformance::{BlockingEmulator, Emulator};
use box_upload_core::models::FileFull;
use box_upload_core::FileHasher;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The emulator's bearer token.
pub(crate) const EMULATOR_TOKEN: &str = "box-upload-emulator-token";
/// Size of the file made up when no PATH is given.
const RANDOM_FILE_SIZE: u64 = 100_000_000;

/// An emulator running in-process, and the file to upload to it.
pub(crate) struct Emulated {
    emu: BlockingEmulator,
    /// Holds the made-up file, when no PATH was given.
    _temp: Option<tempfile::TempDir>,
    /// The file to upload.
    pub(crate) path: PathBuf,
}

impl Emulated {
    /// Starts the emulator (its part size from `args`), makes up a file when `args` names none,
    /// and uploads into the root folder unless `args` names a target.
    pub(crate) fn start(transport: &str, args: &mut UploadArgs) -> Result<Self, Failure> {
        let mut builder = Emulator::builder().token(EMULATOR_TOKEN);
        if let Some(part_size) = args.emulator_part_size {
            builder = builder.part_size(part_size);
        }
        let emu = builder
            .start_blocking()
            .map_err(|e| Failure::new(Exit::Other, format!("cannot start the emulator: {e}")))?;
        eprintln!("emulator listening at {} (transport {transport})", emu.upload_base_url());
        let (temp, path) = match args.path.take() {
            Some(p) => (None, p),
            None => {
                let temp =
                    tempfile::tempdir().map_err(|e| Failure::new(Exit::Io, format!("cannot make a temp dir: {e}")))?;
                let p = temp.path().join("random-100MB.bin");
                eprintln!("writing {RANDOM_FILE_SIZE} random bytes to {}", p.display());
                write_random(&p, RANDOM_FILE_SIZE)?;
                (Some(temp), p)
            }
        };
        if args.folder.is_none() && args.file_id.is_none() {
            args.folder = Some("0".into());
        }
        Ok(Self { emu, _temp: temp, path })
    }

    /// The emulator's upload API base URL.
    pub(crate) fn upload_base(&self) -> String {
        self.emu.upload_base_url()
    }

    /// Downloads `file` through a plain HTTP request, compares it with the source byte for byte
    /// and says so (on stdout, or stderr with `json`).
    pub(crate) fn verify(&self, file: &FileFull, took: Duration, json: bool) -> Result<(), Failure> {
        let url = format!("{}/2.0/files/{}/content", self.upload_base(), file.id);
        let (size, sha1) = compare(&url, &self.path)?;
        if let Some(box_sha1) = &file.sha1 {
            if !box_sha1.eq_ignore_ascii_case(&sha1) {
                return Err(Failure::new(
                    Exit::Integrity,
                    format!("the committed file's sha1 {box_sha1} is not the source's {sha1}"),
                ));
            }
        }
        let line = format!(
            "verified: file {} ({size} bytes, sha1 {sha1}) downloaded from the emulator matches {} byte for byte; \
             upload took {:.2} s ({:.1} MB/s)",
            file.id,
            self.path.display(),
            took.as_secs_f64(),
            size as f64 / took.as_secs_f64().max(0.001) / 1e6
        );
        if json {
            eprintln!("{line}");
            Ok(())
        } else {
            print_line(&line)
        }
    }
}

/// Streams `url` and `path` side by side; the size and SHA-1 when they are equal.
fn compare(url: &str, path: &Path) -> Result<(u64, String), Failure> {
    // Loopback, never through a proxy from the environment.
    let agent = ureq::Agent::config_builder().proxy(None).build().new_agent();
    let response = agent
        .get(url)
        .header("Authorization", format!("Bearer {EMULATOR_TOKEN}"))
        .call()
        .map_err(|e| Failure::new(Exit::Io, format!("downloading the uploaded file failed: {e}")))?;
    if response.status() != 200 {
        return Err(Failure::new(Exit::Api, format!("downloading the uploaded file: status {}", response.status())));
    }
    let mut remote = response.into_body().into_reader();
    let mut local = std::fs::File::open(path).map_err(|e| io_failure("cannot open", path, &e))?;
    let mut hasher = FileHasher::new();
    let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut remote, &mut a)
            .map_err(|e| Failure::new(Exit::Io, format!("downloading the uploaded file failed: {e}")))?;
        let m = read_full(&mut local, &mut b).map_err(|e| io_failure("cannot read", path, &e))?;
        if a[..n] != b[..m] {
            let at = a[..n].iter().zip(&b[..m]).position(|(x, y)| x != y).unwrap_or(n.min(m));
            return Err(Failure::new(
                Exit::Integrity,
                format!("the downloaded file differs from {} at byte {}", path.display(), offset + at as u64),
            ));
        }
        if n == 0 {
            return Ok((offset, hasher.finish().to_hex()));
        }
        hasher.update(&a[..n]);
        offset += n as u64;
    }
}

/// Reads until `buf` is full or the reader ends.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Writes `len` pseudo-random bytes (xorshift64*, seeded from the clock and the process) to `path`.
fn write_random(path: &Path, len: u64) -> Result<(), Failure> {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    let mut state = h.finish() | 1;
    let file = std::fs::File::create(path).map_err(|e| io_failure("cannot create", path, &e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
        out.write_all(&chunk[..n]).map_err(|e| io_failure("cannot write", path, &e))?;
        left -= n as u64;
    }
    out.flush().map_err(|e| io_failure("cannot write", path, &e))
}
