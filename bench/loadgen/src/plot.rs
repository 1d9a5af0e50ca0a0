//! The samples as CSV (for anyone's own plotting) and as small hand-written SVG line charts, so
//! docs/BENCHMARKS.md can show a run without a plotting dependency.

use crate::proc::Sample;

/// `seconds,connected,rss_kib,hwm_kib,cpu_pct` (summed over the processes), then the same three
/// per process when several are watched (`rss_kib_PID`, ...).
pub fn write_csv(path: &str, pids: &[u32], samples: &[Sample]) -> std::io::Result<()> {
    let mut csv = String::from("seconds,connected,rss_kib,hwm_kib,cpu_pct");
    if pids.len() > 1 {
        for pid in pids {
            csv.push_str(&format!(",rss_kib_{pid},hwm_kib_{pid},cpu_pct_{pid}"));
        }
    }
    csv.push('\n');
    for s in samples {
        csv.push_str(&format!(
            "{:.1},{},{},{},{:.1}",
            s.t,
            s.connected,
            s.rss(),
            s.hwm(),
            s.cpu()
        ));
        if pids.len() > 1 {
            for (rss, hwm, cpu) in &s.each {
                csv.push_str(&format!(",{rss},{hwm},{cpu:.1}"));
            }
        }
        csv.push('\n');
    }
    std::fs::write(path, csv)
}

/// One chart: a solid line and an optional dashed one, both in MiB, against `x`.
struct Chart<'a> {
    title: String,
    x_unit: &'a str,
    solid: (&'a str, Vec<(f64, f64)>),
    dashed: Option<(&'a str, Vec<(f64, f64)>)>,
}

impl Chart<'_> {
    fn svg(&self) -> String {
        let (w, h, pad) = (640.0, 320.0, 48.0);
        let all = self
            .solid
            .1
            .iter()
            .chain(self.dashed.iter().flat_map(|d| d.1.iter()));
        let (mut xmax, mut ymax) = (1.0f64, 1.0f64);
        for (x, y) in all {
            xmax = xmax.max(*x);
            ymax = ymax.max(*y);
        }
        let px = |x: f64| pad + (w - 2.0 * pad) * x / xmax;
        let py = |y: f64| h - pad - (h - 2.0 * pad) * y / ymax;
        let points = |pts: &[(f64, f64)]| {
            pts.iter()
                .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let (b, r) = (h - pad, w - pad);
        let mut svg = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="{pad}" y="20">{title}</text>
<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="#888"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="#888"/>
<text x="4" y="{pad}">{ymax:.0}</text><text x="4" y="{b}">0</text><text x="{r}" y="{bl}" text-anchor="end">{xmax:.0} {unit}</text>
<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{solid}"/>
<text x="{r}" y="{pad}" text-anchor="end" fill="#2563eb">{solid_name}</text>
"##,
            title = self.title,
            bl = b + 16.0,
            unit = self.x_unit,
            solid = points(&self.solid.1),
            solid_name = self.solid.0,
        );
        if let Some((name, pts)) = &self.dashed {
            svg.push_str(&format!(
                r##"<polyline fill="none" stroke="#dc2626" stroke-dasharray="4 3" points="{}"/>
<text x="{r}" y="{}" text-anchor="end" fill="#dc2626">{name}</text>
"##,
                points(pts),
                pad + 16.0
            ));
        }
        svg.push_str("</svg>\n");
        svg
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// VmRSS and VmHWM (summed over the processes) over time.
pub fn write_svg_time(path: &str, what: &str, samples: &[Sample]) -> std::io::Result<()> {
    let chart = Chart {
        title: format!("server RSS over time, {what} (MiB)"),
        x_unit: "s",
        solid: (
            "VmRSS",
            samples.iter().map(|s| (s.t, mib(s.rss()))).collect(),
        ),
        dashed: Some((
            "VmHWM",
            samples.iter().map(|s| (s.t, mib(s.hwm()))).collect(),
        )),
    };
    std::fs::write(path, chart.svg())
}

/// VmRSS against participants joined at that moment (the ramp of `scale`: its slope is the
/// memory per participant).
pub fn write_svg_participants(path: &str, what: &str, samples: &[Sample]) -> std::io::Result<()> {
    let chart = Chart {
        title: format!("server RSS against connected participants, {what} (MiB)"),
        x_unit: "participants",
        solid: (
            "VmRSS",
            samples
                .iter()
                .map(|s| (s.connected as f64, mib(s.rss())))
                .collect(),
        ),
        dashed: None,
    };
    std::fs::write(path, chart.svg())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_is_small_and_well_formed_enough() {
        let samples: Vec<Sample> = (0..5)
            .map(|i| Sample {
                t: i as f64,
                connected: i * 10,
                each: vec![(1024 * (10 + i), 1024 * (11 + i), 5.0)],
            })
            .collect();
        let chart = Chart {
            title: "t".into(),
            x_unit: "s",
            solid: (
                "VmRSS",
                samples.iter().map(|s| (s.t, mib(s.rss()))).collect(),
            ),
            dashed: None,
        };
        let svg = chart.svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("points=\"48.0,"));
        assert!(svg.lines().count() < 15);
    }
}
