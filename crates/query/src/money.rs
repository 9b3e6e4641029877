//! Revenue amounts as Plausible answers them: `{short, long, value, currency}`, with the
//! amount kept to thousandths (ClickHouse's `Decimal64(3)` of Plausible's revenue columns),
//! `long` to cents and `short` to one decimal (compact from a thousand on), halves rounding
//! to even as Plausible's money library does.

use serde_json::{json, Value};

/// The symbol an amount in `currency` is written with (English conventions), or the code
/// and a space.
fn symbol(currency: &str) -> String {
    match currency {
        "USD" => "$".into(),
        "EUR" => "€".into(),
        "GBP" => "£".into(),
        "JPY" => "¥".into(),
        "CNY" => "CN¥".into(),
        "INR" => "₹".into(),
        "CAD" => "CA$".into(),
        "AUD" => "A$".into(),
        "NZD" => "NZ$".into(),
        "BRL" => "R$".into(),
        "MXN" => "MX$".into(),
        "KRW" => "₩".into(),
        "ILS" => "₪".into(),
        "VND" => "₫".into(),
        "PHP" => "₱".into(),
        other => format!("{other} "),
    }
}

/// `thousandths` rounded to `digits` decimals (at most 3), halves to even, as an integer
/// count of 10^-digits.
fn round_half_even(thousandths: i128, digits: u32) -> i128 {
    let divisor = 10i128.pow(3 - digits);
    let (quotient, remainder) = (
        thousandths.div_euclid(divisor),
        thousandths.rem_euclid(divisor),
    );
    let twice = remainder * 2;
    if twice > divisor || (twice == divisor && quotient % 2 != 0) {
        quotient + 1
    } else {
        quotient
    }
}

/// `units` (in 10^-digits) written with `digits` decimals and, when `grouped`, thousands
/// separators.
fn decimal(units: i128, digits: u32, grouped: bool) -> String {
    let negative = units < 0;
    let units = units.abs();
    let scale = 10i128.pow(digits);
    let whole = (units / scale).to_string();
    let whole = if grouped {
        let mut out = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        whole
    };
    let sign = if negative { "-" } else { "" };
    if digits == 0 {
        format!("{sign}{whole}")
    } else {
        format!(
            "{sign}{whole}.{:0width$}",
            units % scale,
            width = digits as usize
        )
    }
}

/// An amount of `currency` in thousandths, as Plausible's revenue metric value.
pub fn money(thousandths: i128, currency: &str) -> Value {
    let sign = symbol(currency);
    let long = format!(
        "{sign}{}",
        decimal(round_half_even(thousandths, 2), 2, true)
    );
    let magnitude = thousandths.abs();
    let short = match [
        (1_000_000_000_000i128, "B"),
        (1_000_000_000, "M"),
        (1_000_000, "K"),
    ]
    .into_iter()
    .find(|(unit, _)| magnitude >= *unit)
    {
        // A compact amount: `$1.2K`.
        Some((unit, suffix)) => {
            let scaled = thousandths * 1000 / unit;
            format!(
                "{sign}{}{suffix}",
                decimal(round_half_even(scaled, 1), 1, false)
            )
        }
        None => format!(
            "{sign}{}",
            decimal(round_half_even(thousandths, 1), 1, false)
        ),
    };
    json!({
        "short": short,
        "long": long,
        "value": thousandths as f64 / 1000.0,
        "currency": currency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_formats() {
        // Plausible's own expectations (query_test.exs, revenue metrics).
        assert_eq!(
            money(100_300, "USD"),
            json!({"short": "$100.3", "long": "$100.30", "value": 100.3, "currency": "USD"})
        );
        assert_eq!(
            money(50_450, "USD"),
            json!({"short": "$50.4", "long": "$50.45", "value": 50.45, "currency": "USD"})
        );
        assert_eq!(
            money(67_066, "USD"),
            json!({"short": "$67.1", "long": "$67.07", "value": 67.066, "currency": "USD"})
        );
        assert_eq!(
            money(100_000, "EUR"),
            json!({"short": "€100.0", "long": "€100.00", "value": 100.0, "currency": "EUR"})
        );
    }

    #[test]
    fn large_and_unknown() {
        let m = money(1_234_567_890, "CHF");
        assert_eq!(m["long"], "CHF 1,234,567.89");
        assert_eq!(m["short"], "CHF 1.2M");
    }
}
