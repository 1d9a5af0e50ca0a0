//! The client files, embedded at build time by `build.rs` (see there for how).

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The URL path it is served at, such as `/js/app.js`.
    pub path: &'static str,
    pub mime: &'static str,
    /// A strong ETag, quotes included.
    pub etag: &'static str,
    pub raw: &'static [u8],
    /// A gzip copy, when it is smaller.
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The file served at `path`, if any. The table is sorted by path at build time.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS
        .binary_search_by(|a| a.path.cmp(path))
        .ok()
        .map(|i| &ASSETS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_so_lookups_find_every_file() {
        for asset in ASSETS {
            assert!(std::ptr::eq(find(asset.path).unwrap(), asset));
        }
        assert!(find("/../Cargo.toml").is_none());
    }
}
