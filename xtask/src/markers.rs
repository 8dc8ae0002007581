//! The generated sections of a Markdown document: everything between
//! `<!-- BEGIN GENERATED: name -->` and the next `<!-- END GENERATED -->`,
//! each marker on a line of its own. Text outside the markers is never
//! touched.

const BEGIN: &str = "<!-- BEGIN GENERATED: ";
const BEGIN_TAIL: &str = " -->";
const END: &str = "<!-- END GENERATED -->";

/// The names of the document's generated sections, in order. Fails on a
/// BEGIN without its END, an END without a BEGIN, a nested BEGIN, or a
/// name used twice.
pub(crate) fn section_names(document: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    let mut open: Option<(String, usize)> = None;
    for (index, line) in document.lines().enumerate() {
        let line_number = index + 1;
        let line = line.trim();
        if let Some(name) = begin_name(line) {
            if let Some((outer, at)) = &open {
                return Err(format!(
                    "line {line_number}: BEGIN GENERATED {name:?} inside {outer:?} (opened on line {at})"
                ));
            }
            if names.iter().any(|n| n == name) {
                return Err(format!(
                    "line {line_number}: a second generated section named {name:?}"
                ));
            }
            open = Some((name.to_owned(), line_number));
        } else if line == END {
            let Some((name, _)) = open.take() else {
                return Err(format!("line {line_number}: END GENERATED without a BEGIN"));
            };
            names.push(name);
        }
    }
    if let Some((name, at)) = open {
        return Err(format!(
            "the generated section {name:?} opened on line {at} has no END GENERATED"
        ));
    }
    Ok(names)
}

fn begin_name(line: &str) -> Option<&str> {
    line.strip_prefix(BEGIN)?.strip_suffix(BEGIN_TAIL)
}

/// `document` with the body of section `name` replaced by `body`.
pub(crate) fn replace(document: &str, name: &str, body: &str) -> Result<String, String> {
    section_names(document)?;
    let mut out = String::with_capacity(document.len() + body.len());
    let mut inside = false;
    let mut found = false;
    for line in document.split_inclusive('\n') {
        let trimmed = line.trim();
        if inside {
            if trimmed == END {
                inside = false;
                out.push_str(line);
            }
            continue;
        }
        out.push_str(line);
        if begin_name(trimmed) == Some(name) {
            inside = true;
            found = true;
            out.push_str(body.trim_end_matches('\n'));
            out.push('\n');
        }
    }
    if found {
        Ok(out)
    } else {
        Err(format!("no generated section named {name:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Title\n\nprose before\n\n<!-- BEGIN GENERATED: a -->\nold a\nold a 2\n<!-- END GENERATED -->\n\nmiddle prose\n<!-- BEGIN GENERATED: b -->\n<!-- END GENERATED -->\nprose after\n";

    #[test]
    fn lists_the_sections_in_order() {
        assert_eq!(section_names(DOC).unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn replaces_one_body_and_keeps_every_other_line() {
        let out = replace(DOC, "a", "| new |\n|---|\n").unwrap();
        assert_eq!(
            out,
            "# Title\n\nprose before\n\n<!-- BEGIN GENERATED: a -->\n| new |\n|---|\n<!-- END GENERATED -->\n\nmiddle prose\n<!-- BEGIN GENERATED: b -->\n<!-- END GENERATED -->\nprose after\n"
        );
        let twice = replace(&out, "a", "| new |\n|---|\n").unwrap();
        assert_eq!(twice, out, "regenerating the same body changes nothing");
    }

    #[test]
    fn fills_an_empty_section() {
        let out = replace(DOC, "b", "body").unwrap();
        assert!(
            out.contains(
                "<!-- BEGIN GENERATED: b -->\nbody\n<!-- END GENERATED -->\nprose after\n"
            )
        );
    }

    #[test]
    fn refuses_unbalanced_or_repeated_markers() {
        let unclosed = "<!-- BEGIN GENERATED: a -->\ntext\n";
        assert!(section_names(unclosed).unwrap_err().contains("no END"));
        let stray = "text\n<!-- END GENERATED -->\n";
        assert!(
            section_names(stray)
                .unwrap_err()
                .contains("without a BEGIN")
        );
        let nested = "<!-- BEGIN GENERATED: a -->\n<!-- BEGIN GENERATED: b -->\n<!-- END GENERATED -->\n<!-- END GENERATED -->\n";
        assert!(section_names(nested).unwrap_err().contains("inside"));
        let twice = "<!-- BEGIN GENERATED: a -->\n<!-- END GENERATED -->\n<!-- BEGIN GENERATED: a -->\n<!-- END GENERATED -->\n";
        assert!(section_names(twice).unwrap_err().contains("second"));
        assert!(
            replace(DOC, "c", "x")
                .unwrap_err()
                .contains("no generated section")
        );
    }
}
