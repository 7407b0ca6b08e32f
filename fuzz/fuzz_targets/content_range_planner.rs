//! The part planner and `Content-Range`: exact cover, alignment, only the last part short, the
//! header round trip, and clean `PlanError`s for impossible sessions.
#![no_main]

use arbitrary::Arbitrary;
use box_upload_fuzz::harness;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Size {
    /// Box-sized: at least MIN_FILE_SIZE, up to a few hundred GB.
    Real(u32, u16),
    /// Anything.
    Any(u64),
    /// Near u64::MAX.
    NearMax(u16),
}

impl Size {
    fn get(&self) -> u64 {
        match *self {
            Size::Real(lo, hi) => 20_000_000 + u64::from(lo) + (u64::from(hi) << 32) / 64,
            Size::Any(v) => v,
            Size::NearMax(d) => u64::MAX - u64::from(d),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum PartSize {
    /// A part size that splits the file in `n` parts.
    Split(u16),
    Any(u64),
    Small(u8),
    NearMax(u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    file_size: Size,
    part_size: PartSize,
    /// Offset from the right total_parts, or an absolute value.
    total_parts_delta: i8,
    total_parts_any: Option<u64>,
    order: Vec<u16>,
    range_numbers: (u64, u64, u64),
    text: String,
}

fuzz_target!(|input: Input| {
    let file_size = input.file_size.get();
    let part_size = match input.part_size {
        PartSize::Split(n) => file_size.div_ceil(u64::from(n).max(1)),
        PartSize::Any(v) => v,
        PartSize::Small(v) => u64::from(v),
        PartSize::NearMax(d) => u64::MAX - u64::from(d),
    };
    let total_parts = match input.total_parts_any {
        Some(v) => v,
        None if part_size == 0 => 0,
        None => file_size.div_ceil(part_size).saturating_add_signed(i64::from(input.total_parts_delta)),
    };
    harness::check_plan(file_size, part_size, total_parts, &input.order);
    let (o, s, t) = input.range_numbers;
    harness::check_content_range_numbers(o, s, t);
    harness::check_content_range_text(&input.text);
});
