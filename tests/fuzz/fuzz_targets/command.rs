//! The client's command-line parser and the sandbox's path resolution: any text must
//! parse or be refused, and no resolved path may contain `..`, `.` or a reserved name.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = fos::internals::client::parse(text);
    let cwd = fos::internals::sandbox::UserPath::resolve(&fos::internals::sandbox::UserPath::root(), "a/b", false).unwrap();
    for clamp in [false, true] {
        if let Ok(p) = fos::internals::sandbox::UserPath::resolve(&cwd, text, clamp) {
            for c in p.components() {
                assert!(c != ".." && c != "." && !c.is_empty());
                assert!(!c.starts_with(fos::internals::sandbox::RESERVED_PREFIX));
                assert!(!c.contains('/') && !c.contains('\0'));
            }
        }
    }
    let _ = fos::internals::glob::matches(text, "some-name.txt");
});
