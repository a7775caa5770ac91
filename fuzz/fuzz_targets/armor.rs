//! The tolerant armor reader. Oracle: whatever block it finds, armoring that
//! block's bytes under its label again reads back to the same block.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodelock::format::armor;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(block)) = armor::find_block(data) {
        let again = armor::encode(&block.label, &block.bytes);
        let back = armor::find_block(again.as_bytes())
            .expect("our own armor reads")
            .expect("our own armor has a block");
        assert_eq!(back.label, block.label);
        assert_eq!(back.bytes, block.bytes);
    }
});
