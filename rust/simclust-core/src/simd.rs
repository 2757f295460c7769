//! Which SIMD code paths the kernels may take.
//!
//! By default every kernel picks the fastest path the CPU has, at run time
//! (the `gemm` crate's AVX-512/AVX2 GEMM, k-means' AVX2+FMA lanes, the exact
//! self-kNN's bf16 screening with AMX or int16 screening with AVX-512 VNNI).
//! Setting
//! `SIMCLUST_SIMD=portable` forces the portable paths (plain Rust that the
//! compiler vectorises for the baseline target), so the tests can exercise
//! them on any machine. Results of the portable path agree with the fast
//! one to rounding, not bit for bit: summation order differs (except the
//! exact self-kNN, whose lists are the same on every path).

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Environment variable that selects the SIMD paths: `auto` (default) or
/// `portable`.
pub const SIMD_ENV: &str = "SIMCLUST_SIMD";

/// The choice read from [`SIMD_ENV`] once per process.
fn setting() -> &'static std::result::Result<bool, String> {
    static SETTING: OnceLock<std::result::Result<bool, String>> = OnceLock::new();
    SETTING.get_or_init(|| match std::env::var(SIMD_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(false),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(false),
            "portable" => Ok(true),
            _ => Err(v),
        },
        Err(std::env::VarError::NotUnicode(_)) => Err("<not text>".into()),
    })
}

/// Whether the portable paths are forced (an invalid setting counts as not).
pub fn forced_portable() -> bool {
    matches!(setting(), Ok(true))
}

/// `Err` naming [`SIMD_ENV`] when it holds something other than `auto` or
/// `portable`; every kernel checks it when it starts its thread pool.
pub fn check_setting() -> Result<()> {
    match setting() {
        Ok(_) => Ok(()),
        Err(v) => Err(Error::Parameter(format!(
            "{SIMD_ENV} must be 'auto' or 'portable', got {v:?}"
        ))),
    }
}

/// The SIMD level the kernels run at: `"portable"` when forced, else the
/// widest x86 level the CPU has (`"amx_bf16"` when the exact self-kNN screens
/// with the bf16 AMX kernel, `"avx512_vnni"` with the int16 VNNI kernel,
/// `"avx512"`, `"avx2"`) or `"baseline"`.
pub fn active_level() -> &'static str {
    if forced_portable() {
        return "portable";
    }
    #[cfg(target_arch = "x86_64")]
    {
        if crate::similarity::amx_usable() {
            return "amx_bf16";
        }
        if std::is_x86_feature_detected!("avx512f") {
            if std::is_x86_feature_detected!("avx512vnni") {
                return "avx512_vnni";
            }
            return "avx512";
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return "avx2";
        }
    }
    "baseline"
}
