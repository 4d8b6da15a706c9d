//! Where 3proxy's sample configurations are: `shared/reference/3proxy-configs` beside the
//! repository unless `TRIPROXY_3PROXY_CONFIGS` names another folder. On a fresh clone
//! without it, tests that need it print `skipped` and pass, unless `CI` is set.

use std::path::PathBuf;

/// The sample folder, or `None` after printing why the test is skipped. A folder named in
/// `TRIPROXY_3PROXY_CONFIGS`, or any folder under `CI`, must exist.
pub fn sample_dir() -> Option<PathBuf> {
    let named = std::env::var_os("TRIPROXY_3PROXY_CONFIGS").map(PathBuf::from);
    let dir = named.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/3proxy-configs")
    });
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        named.is_none() && std::env::var_os("CI").is_none(),
        "3proxy sample folder {} is missing (CI must provide it: set TRIPROXY_3PROXY_CONFIGS)",
        dir.display()
    );
    eprintln!(
        "3proxy sample folder {} is not beside this clone: skipped \
         (set TRIPROXY_3PROXY_CONFIGS to run it)",
        dir.display()
    );
    None
}
