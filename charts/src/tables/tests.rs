use super::*;

const MIB: f64 = 1024.0 * 1024.0;

#[test]
fn cells_read_with_their_units() {
    assert_eq!(parse_cell("200287"), Ok(Some(Quantity::Number(200_287.0))));
    assert_eq!(parse_cell("65.0"), Ok(Some(Quantity::Number(65.0))));
    assert_eq!(parse_cell("12.3 ms"), Ok(Some(Quantity::Millis(12.3))));
    assert_eq!(parse_cell("1.2 s"), Ok(Some(Quantity::Millis(1200.0))));
    assert_eq!(parse_cell("250 µs"), Ok(Some(Quantity::Millis(0.25))));
    assert_eq!(
        parse_cell("45.2 MiB"),
        Ok(Some(Quantity::Bytes(45.2 * MIB)))
    );
    assert_eq!(parse_cell("91.9 B"), Ok(Some(Quantity::Bytes(91.9))));
    assert_eq!(parse_cell("2 KiB"), Ok(Some(Quantity::Bytes(2048.0))));
    assert_eq!(
        parse_cell("1.5 GiB"),
        Ok(Some(Quantity::Bytes(1.5 * 1024.0 * MIB)))
    );
    assert_eq!(parse_cell("3.2x"), Ok(Some(Quantity::Ratio(3.2))));
    assert_eq!(parse_cell("81%"), Ok(Some(Quantity::Percent(81.0))));
}

#[test]
fn n_a_and_dash_are_absent() {
    assert_eq!(parse_cell("n/a"), Ok(None));
    assert_eq!(parse_cell("—"), Ok(None));
}

#[test]
fn text_and_unknown_units_are_errors() {
    assert!(parse_cell("").is_err());
    assert!(parse_cell("fast").is_err());
    assert!(parse_cell("1.2.3").is_err());
    assert!(parse_cell("-5").is_err());
    assert_eq!(
        parse_cell("3 parsecs"),
        Err("has the unknown unit \"parsecs\"".to_owned())
    );
}

#[test]
fn a_number_too_large_for_an_f64_is_an_error() {
    let digits = "9".repeat(400);
    let too_large = Err("is too large to draw".to_owned());
    assert_eq!(parse_cell(&digits), too_large);
    assert_eq!(parse_cell(&format!("{digits} ms")), too_large);
    // Finite as written, infinite in bytes.
    let just_finite = format!("1{}", "0".repeat(307));
    assert!(parse_cell(&just_finite).is_ok());
    assert_eq!(parse_cell(&format!("{just_finite} TiB")), too_large);
}

const PAGE: &str = "\
# Title

<!-- bench:one -->

`Sync`, first paragraph
over two lines.

| operation | a ops/s | b |
| --- | ---: | :---: |
| put | 10 | 1.5 ms |
| get | n/a | 2 s |

`Flush`, second.

| operation | a ops/s |
| --- | ---: |
| put | 20 |

<!-- /bench:one -->

| outside | blocks |
| --- | --- |

<!-- bench:two -->
<!-- /bench:two -->
";

fn one() -> Block {
    blocks(PAGE).unwrap().into_iter().next().unwrap()
}

#[test]
fn blocks_are_found_by_their_markers() {
    let found = blocks(PAGE).unwrap();
    let names: Vec<&str> = found.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
    assert!(found[1].lines.is_empty());
}

#[test]
fn a_block_without_its_end_marker_is_an_error() {
    let err = blocks("<!-- bench:one -->\ntext\n").unwrap_err();
    assert!(
        matches!(&err, Error::Markers { block, .. } if block == "one"),
        "{err}"
    );
    let err = blocks("<!-- bench:one -->\n<!-- bench:two -->\n<!-- /bench:two -->\n").unwrap_err();
    assert!(
        matches!(&err, Error::Markers { block, .. } if block == "one"),
        "{err}"
    );
    let err = blocks("<!-- /bench:one -->\n").unwrap_err();
    assert!(
        matches!(&err, Error::Markers { block, .. } if block == "one"),
        "{err}"
    );
}

#[test]
fn tables_keep_the_paragraph_above_them() {
    let tables = one().tables().unwrap();
    assert_eq!(tables.len(), 2);
    assert_eq!(tables[0].caption, "`Sync`, first paragraph over two lines.");
    assert_eq!(tables[0].header, ["operation", "a ops/s", "b"]);
    assert_eq!(tables[0].rows.len(), 2);
    assert_eq!(tables[1].caption, "`Flush`, second.");
    assert_eq!(
        one().table_captioned("`Flush`").unwrap().rows[0],
        ["put", "20"]
    );
}

#[test]
fn columns_are_found_by_name_with_units_read() {
    let table = one().table_with("b").unwrap();
    assert_eq!(table.text("operation").unwrap(), ["put", "get"]);
    assert_eq!(
        table.values("a ops/s", Expect::Number).unwrap(),
        [Some(10.0), None]
    );
    assert_eq!(
        table.values("b", Expect::Millis).unwrap(),
        [Some(1.5), Some(2000.0)]
    );
}

#[test]
fn a_missing_column_is_an_error_naming_it() {
    let table = one().table_with("b").unwrap();
    let err = table.values("c ops/s", Expect::Number).unwrap_err();
    assert!(
        matches!(&err, Error::MissingColumn { block, column } if block == "one" && column == "c ops/s"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "block one: the table has no column \"c ops/s\""
    );
    let err = one().table_with("c ops/s").unwrap_err();
    assert!(
        matches!(&err, Error::MissingColumn { column, .. } if column == "c ops/s"),
        "{err}"
    );
    let err = one().table_captioned("`Other`").unwrap_err();
    assert!(
        matches!(&err, Error::NoTable { block, .. } if block == "one"),
        "{err}"
    );
}

#[test]
fn a_cell_in_the_wrong_unit_is_an_error_naming_block_column_and_row() {
    let table = one().table_with("b").unwrap();
    let err = table.values("b", Expect::Number).unwrap_err();
    assert_eq!(
        err.to_string(),
        "block one, column \"b\", row \"put\": cell \"1.5 ms\" is a time, expected a plain number"
    );
    let err = table.values("b", Expect::Bytes).unwrap_err();
    assert!(
        matches!(&err, Error::Cell { column, row, .. } if column == "b" && row == "put"),
        "{err}"
    );
}

#[test]
fn a_row_with_too_few_cells_is_an_error() {
    let page =
        "<!-- bench:bad -->\n| operation | a |\n| --- | --- |\n| put |\n<!-- /bench:bad -->\n";
    let err = blocks(page).unwrap()[0].tables().unwrap_err();
    assert!(
        matches!(&err, Error::Row { block, row, .. } if block == "bad" && row == "put"),
        "{err}"
    );
}
