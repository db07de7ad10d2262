//! Small charts drawn by payglot as inline SVG (no script, no external asset): stacked bars.

use maud::{html, Markup};

/// One bar's parts, bottom up: (value, colour).
pub type Stack = Vec<(i64, &'static str)>;

/// A drawn rectangle: x, top, height, colour.
type Rect<'a> = (f64, f64, f64, &'a str);

/// A stacked bar chart: one bar per label, a title for each bar's tooltip.
pub fn stacked_bars(label: &str, bars: &[(String, String, Stack)]) -> Markup {
    let (width, height, left, bottom) = (720.0_f64, 180.0_f64, 36.0_f64, 22.0_f64);
    let max = bars.iter().map(|(_, _, s)| s.iter().map(|p| p.0).sum::<i64>()).max().unwrap_or(0).max(1);
    let slot = (width - left) / bars.len().max(1) as f64;
    let bar = (slot * 0.72).max(1.0);
    let plot = height - bottom - 6.0;
    let y = |v: i64| height - bottom - plot * v as f64 / max as f64;
    // Each bar's rectangles, bottom up: (x, top, height, colour).
    let shapes: Vec<(&String, &String, Vec<Rect>)> = bars
        .iter()
        .enumerate()
        .map(|(i, (tick, title, stack))| {
            let x = left + slot * i as f64 + (slot - bar) / 2.0;
            let mut base = 0;
            let rects = stack
                .iter()
                .filter(|(value, _)| *value > 0)
                .map(|(value, colour)| {
                    let rect = (x, y(base + value), y(base) - y(base + value), *colour);
                    base += value;
                    rect
                })
                .collect();
            (tick, title, rects)
        })
        .collect();
    html! {
        svg.chart role="img" aria-label=(label) viewBox=(format!("0 0 {width} {height}")) width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg" {
            line x1=(left) y1=(y(0)) x2=(width) y2=(y(0)) stroke="#b8c0cc" {}
            line x1=(left) y1=(y(max)) x2=(width) y2=(y(max)) stroke="#e3e7ee" stroke-dasharray="3 3" {}
            text x=(left - 4.0) y=(y(max) + 4.0) text-anchor="end" font-size="10" fill="#5b6475" { (max) }
            text x=(left - 4.0) y=(y(0)) text-anchor="end" font-size="10" fill="#5b6475" { "0" }
            @for (i, (tick, title, rects)) in shapes.iter().enumerate() {
                g {
                    title { (title) }
                    @for (x, top, h, colour) in rects {
                        rect x=(format!("{x:.1}")) y=(format!("{top:.1}")) width=(format!("{bar:.1}")) height=(format!("{h:.1}")) fill=(colour) {}
                    }
                }
                @if i % 3 == 0 {
                    text x=(format!("{:.1}", left + slot * i as f64 + slot / 2.0)) y=(height - 6.0) text-anchor="middle" font-size="10" fill="#5b6475" { (tick) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_as_tall_as_their_share_of_the_tallest() {
        let bars = vec![
            ("00".to_string(), "a".to_string(), vec![(2, "#0a0"), (2, "#a00")]),
            ("01".to_string(), "b".to_string(), vec![(1, "#0a0")]),
        ];
        let svg = stacked_bars("test", &bars).into_string();
        assert_eq!(svg.matches("<rect").count(), 3);
        // The plot is 152 units tall: the tallest bar's halves are 76 each, the other bar 38.
        assert_eq!(svg.matches("height=\"76.0\"").count(), 2, "{svg}");
        assert_eq!(svg.matches("height=\"38.0\"").count(), 1, "{svg}");
    }
}
