//! Build step: checks `memlimit.toml` and embeds `assets/` into the binary.
//!
//! Every file under `assets/` becomes an entry of a static table (`$OUT_DIR/assets.rs`) with its
//! MIME type, a strong ETag (a hash of the bytes) and, when it saves space, a gzip copy made here
//! at the highest level, so the server never compresses or reads a file at run time.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "src/core/limits.rs"]
mod limits;

fn main() {
    println!("cargo:rerun-if-changed=memlimit.toml");
    println!("cargo:rerun-if-changed=assets");
    println!("cargo:rerun-if-changed=src/core/limits.rs");

    let mut checked = limits::Limits::unset();
    if let Err(e) = checked.apply_toml(limits::DEFAULT_TOML) {
        panic!("memlimit.toml: {e}");
    }

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let root = Path::new("assets");
    let mut files = Vec::new();
    collect(root, &mut files);
    files.sort();

    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (index, path) in files.iter().enumerate() {
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(path).expect("asset is readable");
        let rel = path
            .strip_prefix(root)
            .expect("collected under assets/")
            .to_string_lossy()
            .replace('\\', "/");
        let raw_path = out.join(format!("asset{index}"));
        std::fs::write(&raw_path, &bytes).expect("OUT_DIR is writable");

        let gz = gzip(&bytes);
        // Only keep the gzip copy when it is worth the bytes it costs in the binary.
        let gz_expr = if gz.len() + 64 < bytes.len() {
            let gz_path = out.join(format!("asset{index}.gz"));
            std::fs::write(&gz_path, &gz).expect("OUT_DIR is writable");
            format!("Some(include_bytes!({:?}))", gz_path.display().to_string())
        } else {
            "None".to_string()
        };
        writeln!(
            table,
            "    Asset {{ path: {:?}, mime: {:?}, etag: \"\\\"{:016x}-{:x}\\\"\", raw: include_bytes!({:?}), gzip: {gz_expr} }},",
            format!("/{rel}"),
            mime(&rel),
            fnv1a(&bytes),
            bytes.len(),
            raw_path.display().to_string(),
        )
        .expect("writing to a String");
    }
    table.push_str("];\n");
    std::fs::write(out.join("assets.rs"), table).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("writing to a Vec");
    encoder.finish().expect("writing to a Vec")
}

/// 64-bit FNV-1a: a stable content hash for ETags (not a security boundary).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "webmanifest" => "application/manifest+json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
