//! The daily consumption chart: an inline SVG bar chart drawn on the server, so the
//! page needs no script and no third-party asset.

use maud::{Markup, html};

use super::i18n::Lang;
use crate::ledger::Credits;
use crate::ledger::credits::SCALE;

/// The drawing area: a wide one for screens, a narrow one whose text stays legible on a
/// phone (an SVG scaled down shrinks its labels with it).
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    class: &'static str,
    /// Day labels under the axis: first, middle and last, or first and last.
    middle_label: bool,
}

const WIDE: Frame = Frame {
    width: 720.0,
    height: 240.0,
    left: 64.0,
    right: 8.0,
    top: 12.0,
    bottom: 30.0,
    class: "chart wide",
    middle_label: true,
};

const NARROW: Frame = Frame {
    width: 360.0,
    height: 190.0,
    left: 40.0,
    right: 4.0,
    top: 10.0,
    bottom: 26.0,
    class: "chart narrow",
    middle_label: false,
};

/// The smallest "round" number (1, 2 or 5 × 10^k credits) at or above `units`.
fn nice_ceiling(units: i64) -> i64 {
    let mut step = SCALE / 10_000; // one unit, the smallest amount
    loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= units {
                return step.saturating_mul(m);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// A bar per day from `first_day` for `days` days (days since the epoch, UTC); days
/// without consumption are empty bars. Two drawings: the style sheet shows one.
pub fn daily_bars(
    values: &[(i64, Credits)],
    first_day: i64,
    days: i64,
    lang: Lang,
    unit: &str,
) -> Markup {
    let per_day: Vec<(i64, i64)> = (0..days)
        .map(|i| {
            let day = first_day + i;
            let units = values
                .iter()
                .filter(|(d, _)| *d == day)
                .map(|(_, c)| c.units())
                .sum::<i64>();
            (day, units)
        })
        .collect();
    html! {
        (draw(&WIDE, &per_day, first_day, days, lang, unit))
        (draw(&NARROW, &per_day, first_day, days, lang, unit))
    }
}

fn draw(
    f: &Frame,
    per_day: &[(i64, i64)],
    first_day: i64,
    days: i64,
    lang: Lang,
    unit: &str,
) -> Markup {
    let t = lang.t();
    let max = per_day.iter().map(|(_, u)| *u).max().unwrap_or(0);
    // At least one credit high, so an empty or tiny chart still has a sensible scale.
    let top = nice_ceiling(max.max(SCALE));
    let plot_w = f.width - f.left - f.right;
    let plot_h = f.height - f.top - f.bottom;
    let slot = plot_w / days.max(1) as f64;
    let bar_w = (slot * 0.72).max(1.0);
    let y = |units: i64| f.top + plot_h - plot_h * units as f64 / top as f64;
    let label = |units: i64| {
        Credits::from_units(units)
            .map(|c| lang.number(c))
            .unwrap_or_default()
    };
    let ticks: Vec<i64> = if f.middle_label {
        vec![0, days / 2, days - 1]
    } else {
        vec![0, days - 1]
    };
    // An empty chart keeps only its baseline.
    let grid: Vec<i64> = if max == 0 {
        vec![0]
    } else {
        vec![0, top / 2, top]
    };
    html! {
        svg class=(f.class) viewBox=(format!("0 0 {} {}", f.width, f.height)) role="img"
            aria-label=(format!("{} ({unit})", t.chart_label)) xmlns="http://www.w3.org/2000/svg" {
            @for units in &grid {
                line class="grid" x1=(f.left) x2=(f.width - f.right) y1=(y(*units)) y2=(y(*units)) {}
                text class="ylabel" x=(f.left - 6.0) y=(y(*units) + 4.0) text-anchor="end" { (label(*units)) }
            }
            @for (i, (day, units)) in per_day.iter().enumerate() {
                @let x = f.left + slot * i as f64 + (slot - bar_w) / 2.0;
                @if *units > 0 {
                    rect class="bar" x=(format!("{x:.2}")) y=(format!("{:.2}", y(*units)))
                        width=(format!("{bar_w:.2}")) height=(format!("{:.2}", f.top + plot_h - y(*units))) rx="1.5" {
                        title { (lang.day(*day)) " · " (label(*units)) " " (unit) }
                    }
                }
            }
            @for i in ticks {
                @let x = f.left + slot * i as f64 + slot / 2.0;
                text class="xlabel" x=(format!("{x:.2}")) y=(f.height - 8.0)
                    text-anchor=(if i == 0 { "start" } else if i == days - 1 { "end" } else { "middle" }) {
                    (lang.short_day(first_day + i))
                }
            }
            @if max == 0 {
                text class="empty" x=(f.left + plot_w / 2.0) y=(f.top + plot_h / 2.0) text-anchor="middle" { (t.chart_empty) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_round() {
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3 * SCALE), 5 * SCALE);
        assert_eq!(nice_ceiling(12 * SCALE), 20 * SCALE);
        assert_eq!(nice_ceiling(20 * SCALE), 20 * SCALE);
        assert_eq!(nice_ceiling(51 * SCALE), 100 * SCALE);
    }

    #[test]
    fn one_bar_per_day_with_consumption() {
        let c = |n| Credits::whole(n).expect("credits");
        let svg =
            daily_bars(&[(100, c(3)), (102, c(7))], 99, 30, Lang::En, "credits").into_string();
        // Two bars in each of the two drawings.
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(svg.contains("credits"));
        let empty = daily_bars(&[], 99, 30, Lang::Fr, "crédits").into_string();
        assert!(empty.contains("Aucune consommation"));
    }
}
