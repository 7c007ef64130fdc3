//! Frame decoder and native request parser: any bytes from the network must give a
//! value or an error, never a panic, and never read or allocate past the bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let mut buf = Vec::new();
    // a stream of frames, as a server reads them
    for _ in 0..64 {
        match fos::protocol::frame::read_frame(&mut input, &mut buf) {
            Ok(_) => {
                assert!(buf.len() <= fos::protocol::frame::MAX_PAYLOAD);
                let _ = fos::protocol::Request::decode(&buf);
                if let Ok(fields) = fos::protocol::frame::decode_fields(&buf) {
                    for f in fields {
                        let _ = fos::protocol::Entry::decode(f);
                        let _ = fos::protocol::Entry::decode_with_mode(f);
                    }
                }
            }
            Err(_) => break,
        }
    }
});
