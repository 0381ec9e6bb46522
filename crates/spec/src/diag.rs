//! Diagnostics: what is wrong, where (file:line:column), and what to do next.
//!
//! Every problem the spec loader and the validator find becomes one [`Diagnostic`]; they are
//! collected and reported together, never first-error-only. Locations come from the YAML parser
//! (1-based line and column, plus a byte offset for the source snippet).

use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A spec file's text, shared by every diagnostic that points into it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
}

/// A position in a spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
pub struct Pos {
    /// 1-based line; 0 when unknown.
    pub line: u32,
    /// 1-based column; 0 when unknown.
    pub column: u32,
    /// Byte offset into the file, when known.
    #[serde(skip)]
    pub offset: Option<usize>,
}

impl Pos {
    pub const UNKNOWN: Pos = Pos {
        line: 0,
        column: 0,
        offset: None,
    };

    pub fn from_location(loc: &serde_saphyr::Location) -> Pos {
        Pos {
            line: loc.line() as u32,
            column: loc.column() as u32,
            offset: loc.span().byte_offset().map(|o| o as usize),
        }
    }

    pub fn is_known(&self) -> bool {
        self.line > 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in the spec.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A short, stable identifier of the rule, e.g. `route-collision`.
    pub code: &'static str,
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
    pub file: PathBuf,
    #[serde(flatten)]
    pub pos: Pos,
    /// A second place involved (the other route of a collision, the first definition …).
    pub related: Option<Related>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Related {
    pub message: String,
    #[serde(flatten)]
    pub pos: Pos,
}

impl Diagnostic {
    pub fn error(code: &'static str, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            help: None,
            file: PathBuf::new(),
            pos,
            related: None,
        }
    }

    pub fn warning(code: &'static str, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, pos, message)
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn related(mut self, pos: Pos, message: impl Into<String>) -> Self {
        self.related = Some(Related {
            message: message.into(),
            pos,
        });
        self
    }

    pub fn in_file(mut self, file: &Path) -> Self {
        self.file = file.to_path_buf();
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:column: error[code]: message` followed by the help, like a compiler.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.pos.is_known() {
            write!(
                f,
                "{}:{}:{}: {sev}[{}]: {}",
                self.file.display(),
                self.pos.line,
                self.pos.column,
                self.code,
                self.message
            )?;
        } else {
            write!(
                f,
                "{}: {sev}[{}]: {}",
                self.file.display(),
                self.code,
                self.message
            )?;
        }
        if let Some(rel) = &self.related {
            write!(
                f,
                "\n  note: {}:{}:{}: {}",
                self.file.display(),
                rel.pos.line,
                rel.pos.column,
                rel.message
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// All diagnostics of one load, with the source text for rendering snippets.
#[derive(Debug, Clone)]
pub struct Report {
    pub source: Option<SourceFile>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// Renders every diagnostic with a source snippet (miette's graphical handler), for humans.
    pub fn render_fancy(&self, color: bool) -> String {
        use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic};
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
        let mut out = String::new();
        for d in &self.diagnostics {
            let mut md = MietteDiagnostic::new(d.message.clone())
                .with_code(d.code.to_string())
                .with_severity(match d.severity {
                    Severity::Error => miette::Severity::Error,
                    Severity::Warning => miette::Severity::Warning,
                });
            if let Some(h) = &d.help {
                md = md.with_help(h.clone());
            }
            let mut labels = Vec::new();
            if let Some(off) = d.pos.offset {
                labels.push(LabeledSpan::new_primary_with_span(
                    Some("here".into()),
                    (off, 1),
                ));
            }
            if let Some(rel) = &d.related {
                if let Some(off) = rel.pos.offset {
                    labels.push(LabeledSpan::new_with_span(
                        Some(rel.message.clone()),
                        (off, 1),
                    ));
                }
            }
            md = md.with_labels(labels);
            let header = if d.pos.is_known() {
                format!("{}:{}:{}", d.file.display(), d.pos.line, d.pos.column)
            } else {
                d.file.display().to_string()
            };
            let report = match (&self.source, d.pos.offset) {
                (Some(src), Some(_)) => miette::Report::new(md).with_source_code(
                    miette::NamedSource::new(d.file.display().to_string(), src.text.to_string()),
                ),
                _ => miette::Report::new(md),
            };
            let mut s = String::new();
            if handler.render_report(&mut s, report.as_ref()).is_err() {
                s = d.to_string();
            }
            if d.pos.offset.is_none() {
                out.push_str(&header);
                out.push('\n');
            }
            out.push_str(&s);
            out.push('\n');
        }
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}
