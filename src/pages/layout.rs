//! The page shell: head, inline style sheet, header with the language switch.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::i18n::Lang;

/// What the header shows besides the brand.
pub struct Chrome<'a> {
    pub lang: Lang,
    /// The current path (and query), where the language switch returns to.
    pub here: &'a str,
    /// The customer session's CSRF token, when signed in: shows "Your services" and
    /// "Sign out".
    pub customer_csrf: Option<&'a str>,
    /// The provider session's CSRF token, when signed in as a provider.
    pub provider_csrf: Option<&'a str>,
}

/// Small, phone-first style sheet; inline so the page needs nothing else.
pub(crate) const STYLE: &str = r#"
:root{--ink:#1d2433;--muted:#5b6478;--line:#e3e6ec;--bg:#f5f6f8;--card:#fff;--accent:#3b50d6;--accent-ink:#fff;--good:#17784b;--bad:#b42318;--warn:#8a5a00}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
header{background:var(--card);border-bottom:1px solid var(--line)}
.top{max-width:1040px;margin:0 auto;padding:10px 16px;display:flex;flex-wrap:wrap;gap:8px 18px;align-items:center}
.top .brand{font-weight:700;font-size:17px;color:var(--ink);text-decoration:none;margin-right:auto}
.top a,.linkbtn{color:var(--accent);text-decoration:none;font-size:14px}
.linkbtn{background:none;border:0;padding:0;cursor:pointer;font:inherit;font-size:14px}
main{max-width:1040px;margin:0 auto;padding:16px}
h1{font-size:24px;margin:8px 0 4px}
h2{font-size:17px;margin:0 0 12px}
.sub{color:var(--muted);margin:0 0 16px;font-size:14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px;margin:0 0 16px}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.figure{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.figure .label{color:var(--muted);font-size:13px}
.figure .value{font-size:26px;font-weight:650;font-variant-numeric:tabular-nums}
.figure.main .value{color:var(--accent);font-size:32px}
.unit{font-size:14px;color:var(--muted);font-weight:400}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:8px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:13px;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.pos{color:var(--good)}
td.neg{color:var(--ink)}
.nowrap{white-space:nowrap}
.notice{border-radius:10px;padding:12px 16px;margin:0 0 16px;border:1px solid}
.notice.info{background:#eef1fd;border-color:#c9d1fa}
.notice.ok{background:#e9f7ef;border-color:#b7e4c9}
.notice.warn{background:#fff6e0;border-color:#f3d48a}
.notice.error{background:#fdeceb;border-color:#f5c2bd}
.packs{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px;margin:0 0 12px}
.pack{display:block;border:1px solid var(--line);border-radius:10px;padding:12px;cursor:pointer;position:relative}
.pack input{position:absolute;top:12px;right:12px}
.pack .name{font-weight:650}
.pack .credits{font-size:20px;font-weight:650}
.pack .price{color:var(--muted)}
.pack .hint{color:var(--good);font-size:12px}
.pack:has(input:checked){border-color:var(--accent);box-shadow:0 0 0 2px #c9d1fa}
button,.button{display:inline-block;background:var(--accent);color:var(--accent-ink);border:0;border-radius:8px;padding:9px 16px;font:inherit;font-weight:600;cursor:pointer;text-decoration:none}
button.secondary{background:#eef0f4;color:var(--ink)}
button.danger{background:#fdeceb;color:var(--bad)}
label{display:block;font-weight:600;font-size:14px;margin:0 0 4px}
input[type=text],input[type=password],input[type=number],textarea,select{width:100%;max-width:420px;padding:8px 10px;border:1px solid #c8cdd7;border-radius:8px;font:inherit;background:#fff}
textarea{min-height:90px}
.field{margin:0 0 12px}
.tabs{display:flex;gap:8px;margin:0 0 8px}
.tabs a{padding:4px 10px;border-radius:999px;text-decoration:none;color:var(--accent);border:1px solid var(--line);font-size:13px}
.tabs a.on{background:var(--accent);color:var(--accent-ink);border-color:var(--accent)}
.chart{width:100%;height:auto;display:block}
.chart.narrow{display:none}
.chart .bar{fill:var(--accent)}
.chart .grid{stroke:var(--line);stroke-width:1}
.chart text{fill:var(--muted);font-size:12px}
.chart .empty{font-size:14px}
.pager{display:flex;justify-content:space-between;gap:12px;margin-top:10px;flex-wrap:wrap}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;background:#eef0f4;white-space:nowrap}
.badge.credited,.badge.active{background:#e9f7ef;color:var(--good)}
.badge.pending,.badge.paid{background:#fff6e0;color:var(--warn)}
.badge.cancelled,.badge.disabled{background:#fdeceb;color:var(--bad)}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:16px}
.inline{display:inline}
.key{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all;background:#f0f2f6;padding:8px;border-radius:6px}
.muted{color:var(--muted)}
@media (max-width:560px){
main{padding:10px}.card{padding:12px}th,td{padding:6px}
.figures{grid-template-columns:repeat(3,minmax(0,1fr));gap:8px}.figure{padding:8px 10px}
.figure .value{font-size:19px}.figure.main .value{font-size:22px}.figure .unit{display:block;font-size:12px}
.chart.wide{display:none}.chart.narrow{display:block}
.chart text{font-size:11px}
table.stack thead{display:none}
table.stack tr{display:grid;grid-template-columns:1fr auto;gap:0 12px;padding:8px 0;border-bottom:1px solid var(--line)}
table.stack td{border:0;padding:1px 0}
table.stack td.t{grid-column:1;grid-row:1;color:var(--muted);font-size:13px}
table.stack td.k{grid-column:1;grid-row:2;font-weight:600}
table.stack td.d{grid-column:1/3;grid-row:3}
table.stack td.a{grid-column:2;grid-row:1;font-weight:650}
table.stack td.b{grid-column:2;grid-row:2;color:var(--muted);font-size:13px}
table.stack td.b::before{content:attr(data-label) " "}
table.cards thead{display:none}
table.cards tr{display:block;border:1px solid var(--line);border-radius:8px;margin:0 0 8px;padding:6px 10px}
table.cards td{display:flex;justify-content:space-between;gap:12px;border:0;padding:3px 0;text-align:right}
table.cards td::before{content:attr(data-label);color:var(--muted);font-size:13px;text-align:left}
}
"#;

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A whole page.
pub fn page(chrome: &Chrome<'_>, title: &str, body: Markup) -> Markup {
    let t = chrome.lang.t();
    let other = chrome.lang.other();
    // Only portal pages come back after a language switch: an entry link's query holds
    // an account token, which must not be copied into another URL.
    let back = if chrome.here.starts_with("/portal") {
        chrome.here
    } else {
        "/portal"
    };
    html! {
        (DOCTYPE)
        html lang=(chrome.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · " (t.brand) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    div.top {
                        a.brand href=(if chrome.customer_csrf.is_some() { "/portal" } else { "#" }) { (t.brand) }
                        @if chrome.customer_csrf.is_some() {
                            a href="/portal" { (t.nav_services) }
                        }
                        a href=(format!("/portal/lang?to={}&next={}", other.code(), encode(back)))
                            hreflang=(other.code()) lang=(other.code()) { (t.switch_to) }
                        @if let Some(csrf) = chrome.customer_csrf {
                            form.inline method="post" action="/portal/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button.linkbtn type="submit" { (t.sign_out) }
                            }
                        }
                        @if let Some(csrf) = chrome.provider_csrf {
                            form.inline method="post" action="/portal/provider/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button.linkbtn type="submit" { (t.sign_out) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}
